// Attribute/item/slice access, iteration, length, membership and the binary operators, with
// Jinja2's undefined and Python's type rules.
#include <algorithm>
#include <cmath>

#include "builtins.h"

namespace ohm::jinja {

Value get_attr(const Value& obj, const std::string& name) {
  switch (obj.type()) {
    case Value::Type::Undefined:
      throw EvalError(obj.undefined_hint());
    case Value::Type::String:
      return string_method(obj, name);
    case Value::Type::Dict: {
      if (auto m = dict_method(obj, name)) return *m;
      if (const Value* v = obj.as_dict().find(name)) return *v;
      return Value::undefined("'dict object' has no attribute '" + name + "'");
    }
    case Value::Type::Namespace: {
      if (const Value* v = obj.as_dict().find(name)) return *v;
      return Value::undefined("'Namespace object' has no attribute '" + name + "'");
    }
    case Value::Type::List:
      return list_method(obj, name);
    default:
      return Value::undefined("'" +
                              (obj.is_none() ? std::string("None") : obj.type_name() + " object") +
                              "' has no attribute '" + name + "'");
  }
}

Value get_item(const Value& obj, const Value& key) {
  switch (obj.type()) {
    case Value::Type::Undefined:
      throw EvalError(obj.undefined_hint());
    case Value::Type::Dict:
    case Value::Type::Namespace: {
      if (key.is_string()) {
        if (const Value* v = obj.as_dict().find(key.as_string())) return *v;
        if (obj.is_dict()) {
          if (auto m = dict_method(obj, key.as_string())) return *m;
        }
      }
      return Value::undefined("'dict object' has no attribute " + key.repr());
    }
    case Value::Type::List: {
      if (obj.is_generator()) return Value::undefined("'generator' object is not subscriptable");
      if (key.is_int() || key.is_bool()) {
        const auto& l = obj.as_list();
        int64_t i = key.as_int();
        if (i < 0) i += static_cast<int64_t>(l.size());
        if (i < 0 || i >= static_cast<int64_t>(l.size()))
          return Value::undefined("'list object' has no element " + key.repr());
        return l[static_cast<size_t>(i)];
      }
      if (key.is_string()) return list_method(obj, key.as_string());
      return Value::undefined("'list object' has no element " + key.repr());
    }
    case Value::Type::String: {
      if (key.is_int() || key.is_bool()) {
        auto cs = utf8_chars(obj.as_string());
        int64_t i = key.as_int();
        if (i < 0) i += static_cast<int64_t>(cs.size());
        if (i < 0 || i >= static_cast<int64_t>(cs.size()))
          return Value::undefined("'str object' has no element " + key.repr());
        return Value(std::string(cs[static_cast<size_t>(i)]));
      }
      if (key.is_string()) return string_method(obj, key.as_string());
      return Value::undefined("'str object' has no element " + key.repr());
    }
    default:
      return Value::undefined("'" +
                              (obj.is_none() ? std::string("None") : obj.type_name() + " object") +
                              "' has no attribute " + key.repr());
  }
}

Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) throw EvalError(obj.undefined_hint());
  auto idx = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_none()) return std::nullopt;
    if (v.is_int() || v.is_bool()) return v.as_int();
    throw EvalError(std::string("slice indices must be integers or None (") + what + ")");
  };
  const int64_t st = idx(step, "step").value_or(1);
  if (st == 0) throw EvalError("slice step cannot be zero");
  std::vector<std::string_view> chars;
  int64_t len;
  if (obj.is_string()) {
    chars = utf8_chars(obj.as_string());
    len = static_cast<int64_t>(chars.size());
  } else if (obj.is_list()) {
    len = static_cast<int64_t>(obj.as_list().size());
  } else {
    throw EvalError("'" + obj.type_name() + "' object is not subscriptable");
  }
  const int64_t lower = st > 0 ? 0 : -1, upper = st > 0 ? len : len - 1;
  auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) return std::max(x + len, lower);
    return std::min(x, upper);
  };
  const int64_t b = clamp(idx(start, "start"), st > 0 ? lower : upper);
  const int64_t e = clamp(idx(stop, "stop"), st > 0 ? upper : lower);
  std::vector<int64_t> picks;
  if (st > 0)
    for (int64_t i = b; i < e; i += st) picks.push_back(i);
  else
    for (int64_t i = b; i > e; i += st) picks.push_back(i);
  if (obj.is_string()) {
    std::string out;
    for (int64_t i : picks) out += chars[static_cast<size_t>(i)];
    return Value(out);
  }
  List out;
  for (int64_t i : picks) out.push_back(obj.as_list()[static_cast<size_t>(i)]);
  return Value(std::move(out), obj.is_tuple());
}

std::vector<Value> iterate(const Value& v) {
  switch (v.type()) {
    case Value::Type::Undefined:
      return {};
    case Value::Type::List:
      return v.as_list();
    case Value::Type::Dict: {
      std::vector<Value> keys;
      for (const auto& kv : v.as_dict().items()) keys.emplace_back(kv.first);
      return keys;
    }
    case Value::Type::String: {
      std::vector<Value> out;
      for (auto c : utf8_chars(v.as_string())) out.emplace_back(std::string(c));
      return out;
    }
    default:
      throw EvalError("'" + v.type_name() + "' object is not iterable");
  }
}

int64_t length(const Value& v) {
  switch (v.type()) {
    case Value::Type::Undefined:
      return 0;
    case Value::Type::String:
      return static_cast<int64_t>(utf8_length(v.as_string()));
    case Value::Type::List:
      if (v.is_generator()) throw EvalError("object of type 'generator' has no len()");
      return static_cast<int64_t>(v.as_list().size());
    case Value::Type::Dict:
    case Value::Type::Namespace:
      return static_cast<int64_t>(v.as_dict().size());
    default:
      throw EvalError("object of type '" + v.type_name() + "' has no len()");
  }
}

bool contains(const Value& c, const Value& item) {
  switch (c.type()) {
    case Value::Type::Undefined:
      return false;
    case Value::Type::List:
      for (const auto& v : c.as_list())
        if (equals(v, item)) return true;
      return false;
    case Value::Type::Dict:
      return item.is_string() && c.as_dict().contains(item.as_string());
    case Value::Type::String:
      if (!item.is_string())
        throw EvalError("'in <string>' requires string as left operand, not " + item.type_name());
      return c.as_string().find(item.as_string()) != std::string::npos;
    default:
      throw EvalError("argument of type '" + c.type_name() + "' is not iterable");
  }
}

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") return Value(a.str() + b.str());
  if (a.is_undefined()) throw EvalError(a.undefined_hint());
  if (b.is_undefined()) throw EvalError(b.undefined_hint());
  auto unsupported = [&]() -> EvalError {
    return EvalError("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" +
                     b.type_name() + "'");
  };
  const bool nums = a.is_number() && b.is_number();
  const bool ints = nums && !a.is_float() && !b.is_float();
  if (op == "+") {
    if (ints) return Value(a.as_int() + b.as_int());
    if (nums) return Value(a.to_double() + b.to_double());
    if (a.is_string() && b.is_string()) {
      if (a.is_markup() || b.is_markup()) {
        auto esc = [](const Value& x) {
          return x.is_markup() ? x.as_string() : html_escape(x.as_string());
        };
        return Value::markup(esc(a) + esc(b));
      }
      return Value(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple() && !a.is_generator() &&
        !b.is_generator()) {
      List l = a.as_list();
      l.insert(l.end(), b.as_list().begin(), b.as_list().end());
      return Value(std::move(l), a.is_tuple());
    }
    if (a.is_string() && !b.is_string())
      throw EvalError("can only concatenate str (not \"" + b.type_name() + "\") to str");
    throw unsupported();
  }
  if (op == "-") {
    if (ints) return Value(a.as_int() - b.as_int());
    if (nums) return Value(a.to_double() - b.to_double());
    throw unsupported();
  }
  if (op == "*") {
    if (ints) return Value(a.as_int() * b.as_int());
    if (nums) return Value(a.to_double() * b.to_double());
    const Value* seq = (a.is_string() || a.is_list())   ? &a
                       : (b.is_string() || b.is_list()) ? &b
                                                        : nullptr;
    const Value* n = seq == &a ? &b : &a;
    if (seq && (n->is_int() || n->is_bool())) {
      const int64_t k = std::max<int64_t>(0, n->as_int());
      if (seq->is_string()) {
        std::string out;
        for (int64_t i = 0; i < k; ++i) out += seq->as_string();
        return seq->is_markup() ? Value::markup(out) : Value(out);
      }
      List l;
      for (int64_t i = 0; i < k; ++i)
        l.insert(l.end(), seq->as_list().begin(), seq->as_list().end());
      return Value(std::move(l), seq->is_tuple());
    }
    throw unsupported();
  }
  if (op == "/") {
    if (!nums) throw unsupported();
    if (b.to_double() == 0) throw EvalError("division by zero");
    return Value(a.to_double() / b.to_double());
  }
  if (op == "//") {
    if (!nums) throw unsupported();
    if (b.to_double() == 0) throw EvalError("integer division or modulo by zero");
    if (ints) {
      const int64_t x = a.as_int(), y = b.as_int();
      int64_t q = x / y;
      if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
      return Value(q);
    }
    return Value(std::floor(a.to_double() / b.to_double()));
  }
  if (op == "%") {
    if (a.is_string()) return Value(percent_format(a.as_string(), b));
    if (!nums) throw unsupported();
    if (b.to_double() == 0) throw EvalError("integer division or modulo by zero");
    if (ints) {
      const int64_t x = a.as_int(), y = b.as_int();
      int64_t r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) r += y;
      return Value(r);
    }
    const double x = a.to_double(), y = b.to_double();
    double r = std::fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return Value(r);
  }
  if (op == "**") {
    if (!nums) throw unsupported();
    if (ints && b.as_int() >= 0) {
      int64_t r = 1, base = a.as_int();
      for (int64_t e = b.as_int(); e > 0; --e) r *= base;
      return Value(r);
    }
    return Value(std::pow(a.to_double(), b.to_double()));
  }
  throw EvalError("unknown operator " + op);
}

}  // namespace ohm::jinja
