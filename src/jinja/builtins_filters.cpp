// Jinja2's builtin filters (`|tojson`, `|map`, `|selectattr`, `|join`...).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "builtins.h"

namespace ohm::jinja {

namespace {

// Jinja's make_attrgetter: "a.b.0" walks attributes/items.
Value attr_path(const Value& v, const Value& attribute) {
  if (!attribute.is_string()) return get_item(v, attribute);
  Value cur = v;
  const std::string& path = attribute.as_string();
  size_t pos = 0;
  while (true) {
    const size_t dot = path.find('.', pos);
    const std::string part =
        path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (cur.is_undefined()) throw EvalError(cur.undefined_hint());
    if (!part.empty() && std::all_of(part.begin(), part.end(), is_digit))
      cur = get_item(cur, Value(static_cast<int64_t>(std::stoll(part))));
    else
      cur = get_item(cur, Value(part));
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return cur;
}

Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(ascii_lower(v.as_string()));
  return v;
}

double round_half_even(double x) {
  return std::nearbyint(x);
}

}  // namespace

Value filter_builtin(Interp& in, const std::string& name, const Value& v, Args& a, bool& found) {
  found = true;
  // soft_str(): string filters keep a Markup a Markup.
  auto keep_markup = [](const Value& src, const Value& out) {
    return src.is_markup() ? Value::markup(out.as_string()) : out;
  };
  auto str_of = [](const Value& x) { return x.str(); };
  if (name == "trim")
    return keep_markup(v, Value(py_strip(str_of(v), a.get(0, "chars"), true, true)));
  if (name == "length" || name == "count") return Value(length(v));
  if (name == "tojson") {
    // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
    const Value* ea = a.get(0, "ensure_ascii");
    const Value* ind = a.get(1, "indent");
    const Value* sep = a.get(2, "separators");
    const Value* sk = a.get(3, "sort_keys");
    int indent = -1;
    if (ind && !ind->is_none()) indent = static_cast<int>(to_int_arg(ind, 0));
    std::string item_sep, key_sep;
    const bool has_sep = sep && !sep->is_none();
    if (has_sep) {
      auto parts = iterate(*sep);
      if (parts.size() != 2) throw EvalError("separators must be a (item, key) pair");
      item_sep = parts[0].str();
      key_sep = parts[1].str();
    }
    if (v.is_undefined()) throw EvalError("Object of type Undefined is not JSON serializable");
    return Value(v.to_json(indent, to_bool_arg(sk, false), to_bool_arg(ea, false),
                           has_sep ? &item_sep : nullptr, has_sep ? &key_sep : nullptr));
  }
  if (name == "items") {
    if (v.is_undefined()) return Value(List{});
    if (!v.is_mapping()) throw EvalError("Can only get item pairs from a mapping.");
    List l;
    for (const auto& [k, x] : v.as_dict().items()) l.emplace_back(List{Value(k), x}, true);
    return Value::generator(std::move(l));
  }
  if (name == "selectattr" || name == "rejectattr" || name == "select" || name == "reject") {
    const bool attr = name == "selectattr" || name == "rejectattr";
    const bool keep_if = name == "selectattr" || name == "select";
    size_t i = 0;
    Value attribute;
    if (attr) {
      if (a.pos.empty()) throw EvalError(name + "() missing attribute");
      attribute = a.pos[i++];
    }
    std::string test;
    if (i < a.pos.size()) test = a.pos[i++].str();
    Args targs;
    targs.pos.assign(a.pos.begin() + static_cast<std::ptrdiff_t>(i), a.pos.end());
    targs.kw = a.kw;
    List out;
    if (!v.truthy()) return Value::generator({});  // jinja: `if value:` before iterating
    for (const auto& item : iterate(v)) {
      const Value x = attr ? attr_path(item, attribute) : item;
      Args ta = targs;
      const bool r = test.empty() ? x.truthy() : in.apply_test(test, x, ta);
      if (r == keep_if) out.push_back(item);
    }
    return Value::generator(std::move(out));
  }
  if (name == "map") {
    List out;
    if (!v.truthy()) return Value::generator({});  // jinja: `if value:` before iterating
    const Value* attribute = nullptr;
    const Value* dflt = nullptr;
    for (const auto& [k, x] : a.kw) {
      if (k == "attribute") attribute = &x;
      if (k == "default") dflt = &x;
    }
    if (attribute) {
      for (const auto& item : iterate(v)) {
        Value x = attr_path(item, *attribute);
        if (x.is_undefined() && dflt) x = *dflt;
        out.push_back(x);
      }
      return Value::generator(std::move(out));
    }
    if (a.pos.empty()) throw EvalError("map requires a filter argument");
    const std::string f = a.pos[0].str();
    Args fa;
    fa.pos.assign(a.pos.begin() + 1, a.pos.end());
    fa.kw = a.kw;
    for (const auto& item : iterate(v)) {
      Args x = fa;
      out.push_back(in.apply_filter(f, item, x, nullptr));
    }
    return Value::generator(std::move(out));
  }
  if (name == "join") {
    const Value* d = a.get(0, "d");
    const Value* attribute = a.get(1, "attribute");
    const std::string sep = d ? d->str() : "";
    std::string out;
    bool first = true;
    for (const auto& item : iterate(v)) {
      if (!first) out += sep;
      first = false;
      out += (attribute && !attribute->is_none() ? attr_path(item, *attribute) : item).str();
    }
    return Value(out);
  }
  if (name == "upper") return keep_markup(v, Value(ascii_upper(str_of(v))));
  if (name == "lower") return keep_markup(v, Value(ascii_lower(str_of(v))));
  if (name == "capitalize") return keep_markup(v, Value(py_capitalize(str_of(v))));
  if (name == "title") return keep_markup(v, Value(jinja_title(str_of(v))));
  if (name == "replace") {
    const Value* o = a.get(0, "old");
    const Value* n = a.get(1, "new");
    if (!o || !n) throw EvalError("replace() missing arguments");
    return Value(py_replace(str_of(v), o->str(), n->str(), to_int_arg(a.get(2, "count"), -1)));
  }
  if (name == "default" || name == "d") {
    const Value* d = a.get(0, "default_value");
    const bool boolean = to_bool_arg(a.get(1, "boolean"), false);
    if (v.is_undefined() || (boolean && !v.truthy())) return d ? *d : Value("");
    return v;
  }
  if (name == "first") {
    auto items = iterate(v);
    if (items.empty()) return Value::undefined("No first item, sequence was empty.");
    return items.front();
  }
  if (name == "last") {
    if (v.is_generator()) throw EvalError("'generator' object is not reversible");
    auto items = iterate(v);
    if (items.empty()) return Value::undefined("No last item, sequence was empty.");
    return items.back();
  }
  if (name == "string") return Value(str_of(v));
  if (name == "safe") return v.is_markup() ? v : Value::markup(str_of(v));
  if (name == "escape" || name == "e" || name == "forceescape") {
    if (v.is_markup() && name != "forceescape") return v;
    return Value::markup(html_escape(str_of(v)));
  }
  if (name == "int") {
    const int64_t dflt = to_int_arg(a.get(0, "default"), 0);
    if (v.is_bool() || v.is_int()) return Value(v.as_int());
    if (v.is_float()) return Value(static_cast<int64_t>(v.as_float()));
    if (v.is_string()) {
      const std::string s = py_strip(v.as_string(), nullptr, true, true);
      try {
        size_t used = 0;
        const long long x =
            std::stoll(s, &used, static_cast<int>(to_int_arg(a.get(1, "base"), 10)));
        if (used == s.size()) return Value(static_cast<int64_t>(x));
      } catch (const std::exception&) {
      }
      try {
        size_t used = 0;
        const double x = std::stod(s, &used);
        if (used == s.size() && std::isfinite(x)) return Value(static_cast<int64_t>(x));
      } catch (const std::exception&) {
      }
      return Value(dflt);
    }
    if (v.is_undefined()) throw EvalError(v.undefined_hint());
    return Value(dflt);
  }
  if (name == "float") {
    const Value* d = a.get(0, "default");
    const double dflt = d && d->is_number() ? d->to_double() : 0.0;
    if (v.is_number()) return Value(v.to_double());
    if (v.is_string()) {
      const std::string s = py_strip(v.as_string(), nullptr, true, true);
      try {
        size_t used = 0;
        const double x = std::stod(s, &used);
        if (used == s.size()) return Value(x);
      } catch (const std::exception&) {
      }
    }
    if (v.is_undefined()) throw EvalError(v.undefined_hint());
    return Value(dflt);
  }
  if (name == "list") return Value(iterate(v));
  if (name == "dictsort") {
    if (!v.is_mapping()) throw EvalError("dictsort expects a mapping");
    const bool cs = to_bool_arg(a.get(0, "case_sensitive"), false);
    const Value* by = a.get(1, "by");
    const bool by_value = by && by->str() == "value";
    const bool rev = to_bool_arg(a.get(2, "reverse"), false);
    List items;
    for (const auto& [k, x] : v.as_dict().items()) items.emplace_back(List{Value(k), x}, true);
    std::stable_sort(items.begin(), items.end(), [&](const Value& p, const Value& q) {
      const Value& kp = p.as_list()[by_value ? 1 : 0];
      const Value& kq = q.as_list()[by_value ? 1 : 0];
      return rev ? less(sort_key(kq, cs), sort_key(kp, cs))
                 : less(sort_key(kp, cs), sort_key(kq, cs));
    });
    return Value(std::move(items));
  }
  if (name == "abs") {
    if (v.is_float()) return Value(std::fabs(v.as_float()));
    if (v.is_number()) return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
    throw EvalError("bad operand type for abs(): '" + v.type_name() + "'");
  }
  if (name == "round") {
    const int64_t prec = to_int_arg(a.get(0, "precision"), 0);
    const Value* m = a.get(1, "method");
    const std::string method = m ? m->str() : "common";
    if (!v.is_number()) throw EvalError("round() requires a number");
    const double scale = std::pow(10.0, static_cast<double>(prec));
    const double x = v.to_double() * scale;
    double r;
    if (method == "common")
      r = round_half_even(x);
    else if (method == "ceil")
      r = std::ceil(x);
    else if (method == "floor")
      r = std::floor(x);
    else
      throw EvalError("method must be 'common', 'ceil' or 'floor'");
    if (method == "common" && !v.is_float()) return Value(v.as_int());
    return Value(r / scale);
  }
  if (name == "unique") {
    const bool cs = to_bool_arg(a.get(0, "case_sensitive"), false);
    const Value* attribute = a.get(1, "attribute");
    List out;
    std::vector<Value> seen;
    for (const auto& item : iterate(v)) {
      const Value key =
          sort_key(attribute && !attribute->is_none() ? attr_path(item, *attribute) : item, cs);
      bool dup = false;
      for (const auto& s : seen) dup = dup || equals(s, key);
      if (!dup) {
        seen.push_back(key);
        out.push_back(item);
      }
    }
    return Value::generator(std::move(out));
  }
  if (name == "reverse") {
    if (v.is_string()) {
      auto cs = utf8_chars(v.as_string());
      std::string out;
      for (size_t i = cs.size(); i > 0; --i) out += cs[i - 1];
      return Value(out);
    }
    auto items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::generator(std::move(items));
  }
  if (name == "sort") {
    const bool rev = to_bool_arg(a.get(0, "reverse"), false);
    const bool cs = to_bool_arg(a.get(1, "case_sensitive"), false);
    const Value* attribute = a.get(2, "attribute");
    auto items = iterate(v);
    auto key = [&](const Value& x) {
      return sort_key(attribute && !attribute->is_none() ? attr_path(x, *attribute) : x, cs);
    };
    std::stable_sort(items.begin(), items.end(), [&](const Value& p, const Value& q) {
      return rev ? less(key(q), key(p)) : less(key(p), key(q));
    });
    return Value(std::move(items));
  }
  if (name == "indent") {
    const Value* w = a.get(0, "width");
    const std::string ind = w && w->is_string()
                                ? w->as_string()
                                : std::string(static_cast<size_t>(to_int_arg(w, 4)), ' ');
    const bool first = to_bool_arg(a.get(1, "first"), false);
    const bool blank = to_bool_arg(a.get(2, "blank"), false);
    const std::string s = str_of(v) + "\n";
    auto lines = py_splitlines(s, false);
    std::string rv;
    if (blank) {
      for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + ind : "") + lines[i];
    } else {
      rv = lines.empty() ? "" : lines[0];
      for (size_t i = 1; i < lines.size(); ++i)
        rv += "\n" + (lines[i].empty() ? "" : ind + lines[i]);
    }
    if (first) rv = ind + rv;
    return Value(rv);
  }
  if (name == "wordcount") {
    int64_t n = 0;
    bool in_word = false;
    for (unsigned char c : str_of(v)) {
      const bool w = std::isalnum(c) || c == '_' || c >= 0x80;
      if (w && !in_word) ++n;
      in_word = w;
    }
    return Value(n);
  }
  if (name == "batch") {
    const int64_t n = to_int_arg(a.get(0, "linecount"), 1);
    if (n <= 0) throw EvalError("batch size must be positive");
    const Value* fill = a.get(1, "fill_with");
    List out, cur;
    for (const auto& item : iterate(v)) {
      cur.push_back(item);
      if (static_cast<int64_t>(cur.size()) == n) {
        out.emplace_back(std::move(cur));
        cur.clear();
      }
    }
    if (!cur.empty()) {
      if (fill && !fill->is_none())
        while (static_cast<int64_t>(cur.size()) < n) cur.push_back(*fill);
      out.emplace_back(std::move(cur));
    }
    return Value::generator(std::move(out));
  }
  if (name == "center") {
    Value m = string_method(Value(str_of(v)), "center");
    Args ca;
    ca.pos.emplace_back(to_int_arg(a.get(0, "width"), 80));
    return m.as_callable().fn(ca);
  }
  if (name == "sum") {
    const Value* attribute = a.get(0, "attribute");
    const Value* start = a.get(1, "start");
    Value acc = start ? *start : Value(int64_t{0});
    for (const auto& item : iterate(v))
      acc = binary_op("+", acc,
                      attribute && !attribute->is_none() ? attr_path(item, *attribute) : item);
    return acc;
  }
  if (name == "min" || name == "max") {
    const bool cs = to_bool_arg(a.get(0, "case_sensitive"), false);
    const Value* attribute = a.get(1, "attribute");
    auto items = iterate(v);
    if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
    auto key = [&](const Value& x) {
      return sort_key(attribute && !attribute->is_none() ? attr_path(x, *attribute) : x, cs);
    };
    Value best = items[0];
    for (size_t i = 1; i < items.size(); ++i) {
      const bool better =
          name == "min" ? less(key(items[i]), key(best)) : less(key(best), key(items[i]));
      if (better) best = items[i];
    }
    return best;
  }
  if (name == "attr") {
    const Value* n = a.get(0, "name");
    if (!n) throw EvalError("attr() missing name");
    return get_attr(v, n->str());
  }
  if (name == "format") {
    if (!a.kw.empty()) {
      Dict d;
      for (const auto& [k, x] : a.kw) d.set(k, x);
      return Value(percent_format(str_of(v), Value(std::move(d))));
    }
    return Value(percent_format(str_of(v), Value(a.pos, true)));
  }
  if (name == "pprint") return Value(v.repr());
  if (name == "truncate") {
    const int64_t len = to_int_arg(a.get(0, "length"), 255);
    const bool killwords = to_bool_arg(a.get(1, "killwords"), false);
    const Value* e = a.get(2, "end");
    const std::string end = e ? e->str() : "...";
    const int64_t leeway = to_int_arg(a.get(3, "leeway"), 5);
    const std::string s = str_of(v);
    auto cs = utf8_chars(s);
    const int64_t n = static_cast<int64_t>(cs.size());
    if (n <= len + leeway) return Value(s);
    const int64_t keep = std::max<int64_t>(0, len - static_cast<int64_t>(utf8_length(end)));
    std::string head;
    for (int64_t i = 0; i < keep; ++i) head += cs[static_cast<size_t>(i)];
    if (killwords) return Value(head + end);
    const size_t sp = head.rfind(' ');
    return Value((sp == std::string::npos ? std::string() : head.substr(0, sp)) + end);
  }
  found = false;
  return Value();
}

}  // namespace ohm::jinja
