// jinja::Value: construction, Python str()/repr(), json.dumps, comparisons.
#include "ohm/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace ohm::jinja {

// ---------------------------------------------------------------------------------------------
// Dict / Args

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items_)
    if (k == key) return &v;
  return nullptr;
}

Value* Dict::find(std::string_view key) {
  for (auto& [k, v] : items_)
    if (k == key) return &v;
  return nullptr;
}

void Dict::set(const std::string& key, Value v) {
  if (Value* p = find(key)) {
    *p = std::move(v);
    return;
  }
  items_.emplace_back(key, std::move(v));
}

const Value* Args::get(size_t i, std::string_view name) const {
  if (i < pos.size()) return &pos[i];
  for (const auto& [k, v] : kw)
    if (k == name) return &v;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Construction

Value Value::undefined(std::string hint) {
  Value v;
  v.s_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::none() {
  Value v;
  v.type_ = Type::None;
  return v;
}

Value::Value(bool b) : type_(Type::Bool), b_(b), i_(b ? 1 : 0) {}
Value::Value(int64_t i) : type_(Type::Int), i_(i) {}
Value::Value(double d) : type_(Type::Float), d_(d) {}
Value::Value(std::string s)
    : type_(Type::String), s_(std::make_shared<const std::string>(std::move(s))) {}
Value::Value(List l, bool tuple)
    : type_(Type::List), tuple_(tuple), l_(std::make_shared<const List>(std::move(l))) {}
Value::Value(Dict d) : type_(Type::Dict), m_(std::make_shared<Dict>(std::move(d))) {}

Value Value::callable(std::string name, std::function<Value(Args&)> fn) {
  Value v;
  v.type_ = Type::Callable;
  v.c_ = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

Value Value::generator(List l) {
  Value v(std::move(l));
  v.generator_ = true;
  return v;
}

Value Value::markup(std::string s) {
  Value v(std::move(s));
  v.markup_ = true;
  return v;
}

Value Value::ns(Dict d) {
  Value v(std::move(d));
  v.type_ = Type::Namespace;
  return v;
}

template <class J>
static Value from_json_impl(const J& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return Value::none();
    case nlohmann::json::value_t::boolean:
      return Value(j.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return Value(static_cast<int64_t>(j.template get<uint64_t>()));
    case nlohmann::json::value_t::number_float:
      return Value(j.template get<double>());
    case nlohmann::json::value_t::string:
      return Value(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      List l;
      l.reserve(j.size());
      for (const auto& e : j) l.push_back(from_json_impl(e));
      return Value(std::move(l));
    }
    case nlohmann::json::value_t::object: {
      Dict d;
      for (auto it = j.begin(); it != j.end(); ++it) d.set(it.key(), from_json_impl(it.value()));
      return Value(std::move(d));
    }
    default:
      return Value::none();
  }
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  return from_json_impl(j);
}
Value Value::from_json(const nlohmann::json& j) {
  return from_json_impl(j);
}

double Value::to_double() const {
  if (type_ == Type::Float) return d_;
  return static_cast<double>(i_);
}

bool Value::truthy() const {
  switch (type_) {
    case Type::Undefined:
    case Type::None:
      return false;
    case Type::Bool:
      return b_;
    case Type::Int:
      return i_ != 0;
    case Type::Float:
      return d_ != 0.0;
    case Type::String:
      return !s_->empty();
    case Type::List:
      return generator_ || !l_->empty();
    case Type::Dict:
      return !m_->empty();
    case Type::Callable:
    case Type::Namespace:
      return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (type_) {
    case Type::Undefined:
      return "Undefined";
    case Type::None:
      return "NoneType";
    case Type::Bool:
      return "bool";
    case Type::Int:
      return "int";
    case Type::Float:
      return "float";
    case Type::String:
      return "str";
    case Type::List:
      return generator_ ? "generator" : tuple_ ? "tuple" : "list";
    case Type::Dict:
      return "dict";
    case Type::Callable:
      return "function";
    case Type::Namespace:
      return "Namespace";
  }
  return "object";
}

// ---------------------------------------------------------------------------------------------
// UTF-8

static size_t utf8_len_at(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  return std::min(n, s.size() - i);
}

std::vector<std::string_view> utf8_chars(std::string_view s) {
  std::vector<std::string_view> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_len_at(s, i);
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

static uint32_t decode_cp(std::string_view ch) {
  const auto c0 = static_cast<unsigned char>(ch[0]);
  if (ch.size() == 1) return c0;
  uint32_t cp = ch.size() == 2 ? (c0 & 0x1F) : ch.size() == 3 ? (c0 & 0x0F) : (c0 & 0x07);
  for (size_t i = 1; i < ch.size(); ++i)
    cp = (cp << 6) | (static_cast<unsigned char>(ch[i]) & 0x3F);
  return cp;
}

// ---------------------------------------------------------------------------------------------
// Formatting

std::string format_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  // Shortest round-trip digits in scientific form: "-d.ddde+XX".
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool neg = false;
  if (sci[0] == '-') {
    neg = true;
    sci.erase(0, 1);
  }
  const size_t epos = sci.find('e');
  std::string digits = sci.substr(0, epos);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp = std::stoi(sci.substr(epos + 1));
  std::string out;
  if (exp >= -4 && exp < 16) {
    // Python repr: fixed notation when -4 <= exponent < 16.
    if (exp >= 0) {
      if (static_cast<int>(digits.size()) <= exp + 1) {
        out = digits + std::string(static_cast<size_t>(exp + 1) - digits.size(), '0') + ".0";
      } else {
        out = digits.substr(0, static_cast<size_t>(exp + 1)) + "." +
              digits.substr(static_cast<size_t>(exp + 1));
      }
    } else {
      out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    }
    return neg ? "-" + out : out;
  }
  out = digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char eb[16];
  std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  out += eb;
  return neg ? "-" + out : out;
}

static void append_hex(std::string& out, const char* prefix, uint32_t cp, int width) {
  char b[16];
  std::snprintf(b, sizeof b, "%s%0*x", prefix, width, cp);
  out += b;
}

static std::string py_repr_string(const std::string& s) {
  const bool has_sq = s.find('\'') != std::string::npos;
  const bool has_dq = s.find('"') != std::string::npos;
  const char q = (has_sq && !has_dq) ? '"' : '\'';
  std::string out(1, q);
  for (auto ch : utf8_chars(s)) {
    const uint32_t cp = decode_cp(ch);
    if (cp == '\\')
      out += "\\\\";
    else if (cp == static_cast<uint32_t>(q))
      out += std::string("\\") + q;
    else if (cp == '\n')
      out += "\\n";
    else if (cp == '\r')
      out += "\\r";
    else if (cp == '\t')
      out += "\\t";
    else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0xa0) || cp == 0xad)
      append_hex(out, "\\x", cp, 2);
    else if ((cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
             (cp >= 0x205f && cp <= 0x206f) || cp == 0x3000 || cp == 0xfeff || cp == 0x1680)
      append_hex(out, "\\u", cp, 4);
    else
      out += ch;
  }
  out += q;
  return out;
}

std::string Value::str() const {
  switch (type_) {
    case Type::Undefined:
      return "";
    case Type::String:
      return *s_;
    default:
      return repr();
  }
}

std::string Value::repr() const {
  switch (type_) {
    case Type::Undefined:
      return "Undefined";
    case Type::None:
      return "None";
    case Type::Bool:
      return b_ ? "True" : "False";
    case Type::Int:
      return std::to_string(i_);
    case Type::Float:
      return format_float(d_);
    case Type::String:
      return py_repr_string(*s_);
    case Type::List: {
      if (generator_) return "<generator object>";
      std::string out(tuple_ ? "(" : "[");
      for (size_t i = 0; i < l_->size(); ++i) {
        if (i) out += ", ";
        out += (*l_)[i].repr();
      }
      if (tuple_ && l_->size() == 1) out += ",";
      out += tuple_ ? ")" : "]";
      return out;
    }
    case Type::Dict:
    case Type::Namespace: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : m_->items()) {
        if (!first) out += ", ";
        first = false;
        out += py_repr_string(k) + ": " + v.repr();
      }
      out += "}";
      return type_ == Type::Namespace ? "<Namespace " + out + ">" : out;
    }
    case Type::Callable:
      return "<function " + c_->name + ">";
  }
  return "";
}

static void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (auto ch : utf8_chars(s)) {
    const uint32_t cp = decode_cp(ch);
    switch (cp) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (cp < 0x20) {
          append_hex(out, "\\u", cp, 4);
        } else if (ensure_ascii && cp >= 0x80) {
          if (cp >= 0x10000) {
            const uint32_t v = cp - 0x10000;
            append_hex(out, "\\u", 0xD800 + (v >> 10), 4);
            append_hex(out, "\\u", 0xDC00 + (v & 0x3FF), 4);
          } else {
            append_hex(out, "\\u", cp, 4);
          }
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

namespace {
struct JsonFmt {
  int indent;
  bool sort_keys, ensure_ascii;
  std::string item_sep, key_sep;
};
}  // namespace

static void to_json_impl(const Value& v, std::string& out, int level, const JsonFmt& f) {
  const int indent = f.indent;
  const bool ensure_ascii = f.ensure_ascii;
  auto newline = [&](int lvl) {
    out += '\n';
    out.append(static_cast<size_t>(indent * lvl), ' ');
  };
  switch (v.type()) {
    case Value::Type::None:
      out += "null";
      return;
    case Value::Type::Bool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Value::Type::Int:
      out += std::to_string(v.as_int());
      return;
    case Value::Type::Float: {
      const double d = v.as_float();
      if (std::isnan(d))
        out += "NaN";
      else if (std::isinf(d))
        out += d > 0 ? "Infinity" : "-Infinity";
      else
        out += format_float(d);
      return;
    }
    case Value::Type::String:
      json_string(out, v.as_string(), ensure_ascii);
      return;
    case Value::Type::List: {
      if (v.is_generator())
        throw std::invalid_argument("Object of type generator is not JSON serializable");
      const auto& l = v.as_list();
      if (l.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < l.size(); ++i) {
        if (i) out += f.item_sep;
        if (indent >= 0) newline(level + 1);
        to_json_impl(l[i], out, level + 1, f);
      }
      if (indent >= 0) newline(level);
      out += ']';
      return;
    }
    case Value::Type::Dict: {
      const auto& d = v.as_dict();
      if (d.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : d.items()) items.push_back(&kv);
      if (f.sort_keys)
        std::stable_sort(items.begin(), items.end(),
                         [](auto* a, auto* b) { return a->first < b->first; });
      out += '{';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += f.item_sep;
        if (indent >= 0) newline(level + 1);
        json_string(out, items[i]->first, ensure_ascii);
        out += f.key_sep;
        to_json_impl(items[i]->second, out, level + 1, f);
      }
      if (indent >= 0) newline(level);
      out += '}';
      return;
    }
    default:
      throw std::invalid_argument("Object of type " + v.type_name() + " is not JSON serializable");
  }
}

std::string Value::to_json(int indent, bool sort_keys, bool ensure_ascii,
                           const std::string* item_sep, const std::string* key_sep) const {
  JsonFmt f{indent, sort_keys, ensure_ascii, item_sep ? *item_sep : (indent >= 0 ? "," : ", "),
            key_sep ? *key_sep : ": "};
  std::string out;
  to_json_impl(*this, out, 0, f);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Comparisons

bool equals(const Value& a, const Value& b) {
  using T = Value::Type;
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.to_double() == b.to_double();
    return a.as_int() == b.as_int();
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case T::Undefined:
    case T::None:
      return true;
    case T::String:
      return a.as_string() == b.as_string();
    case T::List: {
      if (a.is_tuple() != b.is_tuple()) return false;
      const auto &x = a.as_list(), &y = b.as_list();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!equals(x[i], y[i])) return false;
      return true;
    }
    case T::Dict: {
      const auto &x = a.as_dict(), &y = b.as_dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.items()) {
        const Value* o = y.find(k);
        if (!o || !equals(v, *o)) return false;
      }
      return true;
    }
    case T::Namespace:
      return &a.as_dict() == &b.as_dict();
    case T::Callable:
      return &a.as_callable() == &b.as_callable();
    default:
      return false;
  }
}

bool less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.to_double() < b.to_double();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();
  if (a.is_list() && b.is_list()) {
    const auto &x = a.as_list(), &y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equals(x[i], y[i])) return less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  throw std::invalid_argument("'<' not supported between instances of '" + a.type_name() +
                              "' and '" + b.type_name() + "'");
}

}  // namespace ohm::jinja
