// Python str, dict and list methods as attributes of template values (`s.strip()`,
// `d.items()`, `l.index(x)`...): each returns a callable bound to its object.
#include <algorithm>
#include <cmath>
#include <optional>

#include "builtins.h"

namespace ohm::jinja {

namespace {

Value method(const Value& self, const std::string& name,
             std::function<Value(const Value&, Args&)> fn) {
  return Value::callable(name, [self, fn = std::move(fn)](Args& a) { return fn(self, a); });
}

}  // namespace

Value string_method(const Value& obj, const std::string& name) {
  auto m = [&](std::function<Value(const std::string&, Args&)> f) {
    return method(obj, name, [f = std::move(f)](const Value& self, Args& a) {
      Value r = f(self.as_string(), a);
      // Markup's str methods return Markup.
      if (self.is_markup() && r.is_string()) return Value::markup(r.as_string());
      return r;
    });
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const bool l = name != "rstrip", r = name != "lstrip";
    return m([l, r](const std::string& x, Args& a) {
      return Value(py_strip(x, a.get(0, "chars"), l, r));
    });
  }
  if (name == "upper") return m([](const std::string& x, Args&) { return Value(ascii_upper(x)); });
  if (name == "lower") return m([](const std::string& x, Args&) { return Value(ascii_lower(x)); });
  if (name == "title") return m([](const std::string& x, Args&) { return Value(py_title(x)); });
  if (name == "capitalize")
    return m([](const std::string& x, Args&) { return Value(py_capitalize(x)); });
  if (name == "swapcase")
    return m([](const std::string& x, Args&) {
      std::string o = x;
      for (auto& c : o)
        c = std::islower(static_cast<unsigned char>(c)) ? static_cast<char>(std::toupper(c))
                                                        : static_cast<char>(std::tolower(c));
      return Value(o);
    });
  if (name == "split" || name == "rsplit")
    return m([](const std::string& x, Args& a) {
      return Value(py_split(x, a.get(0, "sep"), to_int_arg(a.get(1, "maxsplit"), -1)));
    });
  if (name == "splitlines")
    return m([](const std::string& x, Args& a) {
      List l;
      for (auto& p : py_splitlines(x, to_bool_arg(a.get(0, "keepends"), false))) l.emplace_back(p);
      return Value(std::move(l));
    });
  if (name == "startswith" || name == "endswith") {
    const bool start = name == "startswith";
    return m([start](const std::string& x, Args& a) {
      const Value* p = a.get(0, "prefix");
      if (!p) throw EvalError("startswith() takes at least 1 argument");
      std::vector<Value> cands =
          p->is_tuple() || p->is_list() ? p->as_list() : std::vector<Value>{*p};
      for (const auto& c : cands) {
        if (!c.is_string()) throw EvalError("startswith first arg must be str or a tuple of str");
        const std::string& t = c.as_string();
        if (t.size() <= x.size() && (start ? x.compare(0, t.size(), t) == 0
                                           : x.compare(x.size() - t.size(), t.size(), t) == 0))
          return Value(true);
      }
      return Value(false);
    });
  }
  if (name == "replace")
    return m([](const std::string& x, Args& a) {
      const Value* o = a.get(0, "old");
      const Value* n = a.get(1, "new");
      if (!o || !n || !o->is_string() || !n->is_string())
        throw EvalError("replace() arguments must be str");
      return Value(
          py_replace(x, o->as_string(), n->as_string(), to_int_arg(a.get(2, "count"), -1)));
    });
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    return m([name](const std::string& x, Args& a) {
      const Value* sub = a.get(0, "sub");
      if (!sub || !sub->is_string()) throw EvalError("must be str");
      const std::string& t = sub->as_string();
      if (name == "count") {
        if (t.empty()) return Value(static_cast<int64_t>(utf8_length(x) + 1));
        int64_t n = 0;
        for (size_t p = x.find(t); p != std::string::npos; p = x.find(t, p + t.size())) ++n;
        return Value(n);
      }
      const size_t p = (name == "find" || name == "index") ? x.find(t) : x.rfind(t);
      if (p == std::string::npos) {
        if (name == "index" || name == "rindex") throw EvalError("substring not found");
        return Value(int64_t{-1});
      }
      return Value(static_cast<int64_t>(utf8_length(std::string_view(x).substr(0, p))));
    });
  }
  if (name == "join")
    return m([](const std::string& x, Args& a) {
      const Value* it = a.get(0, "iterable");
      if (!it) throw EvalError("join() takes exactly one argument");
      std::string out;
      bool first = true;
      for (const auto& v : iterate(*it)) {
        if (!v.is_string())
          throw EvalError("sequence item: expected str instance, " + v.type_name() + " found");
        if (!first) out += x;
        first = false;
        out += v.as_string();
      }
      return Value(out);
    });
  if (name == "format")
    return m([](const std::string& x, Args& a) { return Value(brace_format(x, a)); });
  if (name == "isdigit" || name == "isnumeric" || name == "isdecimal" || name == "isalpha" ||
      name == "isalnum" || name == "isspace" || name == "isupper" || name == "islower") {
    return m([name](const std::string& x, Args&) {
      if (x.empty()) return Value(false);
      bool cased = false;
      for (unsigned char c : x) {
        const bool alpha = is_alpha(static_cast<char>(c)), digit = is_digit(static_cast<char>(c));
        if (name == "isdigit" || name == "isnumeric" || name == "isdecimal") {
          if (!digit) return Value(false);
        } else if (name == "isalpha") {
          if (!alpha) return Value(false);
        } else if (name == "isalnum") {
          if (!alpha && !digit) return Value(false);
        } else if (name == "isspace") {
          if (!py_space(c)) return Value(false);
        } else if (name == "isupper") {
          if (std::islower(c)) return Value(false);
          cased = cased || std::isupper(c);
        } else if (name == "islower") {
          if (std::isupper(c)) return Value(false);
          cased = cased || std::islower(c);
        }
      }
      if (name == "isupper" || name == "islower") return Value(cased);
      return Value(true);
    });
  }
  if (name == "zfill" || name == "ljust" || name == "rjust" || name == "center") {
    return m([name](const std::string& x, Args& a) {
      const int64_t w = to_int_arg(a.get(0, "width"), 0);
      const Value* f = a.get(1, "fillchar");
      const std::string fill = f && f->is_string() ? f->as_string() : (name == "zfill" ? "0" : " ");
      const int64_t len = static_cast<int64_t>(utf8_length(x));
      if (w <= len) return Value(x);
      const size_t pad = static_cast<size_t>(w - len);
      std::string p;
      if (name == "ljust") {
        p = x;
        for (size_t i = 0; i < pad; ++i) p += fill;
      } else if (name == "center") {
        const size_t left = pad / 2 + (pad & static_cast<size_t>(w) & 1);
        for (size_t i = 0; i < left; ++i) p += fill;
        p += x;
        for (size_t i = 0; i < pad - left; ++i) p += fill;
      } else {
        std::string body = x;
        std::string sign;
        if (name == "zfill" && !body.empty() && (body[0] == '-' || body[0] == '+')) {
          sign = body.substr(0, 1);
          body = body.substr(1);
        }
        p = sign;
        for (size_t i = 0; i < pad; ++i) p += fill;
        p += body;
      }
      return Value(p);
    });
  }
  if (name == "partition" || name == "rpartition") {
    return m([name](const std::string& x, Args& a) {
      const Value* sep = a.get(0, "sep");
      if (!sep || !sep->is_string()) throw EvalError("must be str");
      const size_t p = name == "partition" ? x.find(sep->as_string()) : x.rfind(sep->as_string());
      if (p == std::string::npos)
        return name == "partition" ? Value(List{Value(x), Value(""), Value("")}, true)
                                   : Value(List{Value(""), Value(""), Value(x)}, true);
      return Value(List{Value(x.substr(0, p)), *sep, Value(x.substr(p + sep->as_string().size()))},
                   true);
    });
  }
  return Value::undefined("'str object' has no attribute '" + name + "'");
}

std::optional<Value> dict_method(const Value& obj, const std::string& name) {
  if (name == "items")
    return method(obj, name, [](const Value& self, Args&) {
      List l;
      for (const auto& [k, v] : self.as_dict().items()) l.emplace_back(List{Value(k), v}, true);
      return Value(std::move(l));
    });
  if (name == "keys")
    return method(obj, name, [](const Value& self, Args&) {
      List l;
      for (const auto& kv : self.as_dict().items()) l.emplace_back(kv.first);
      return Value(std::move(l));
    });
  if (name == "values")
    return method(obj, name, [](const Value& self, Args&) {
      List l;
      for (const auto& kv : self.as_dict().items()) l.push_back(kv.second);
      return Value(std::move(l));
    });
  if (name == "get")
    return method(obj, name, [](const Value& self, Args& a) {
      const Value* k = a.get(0, "key");
      if (!k) throw EvalError("get expected at least 1 argument, got 0");
      const Value* d = a.get(1, "default");
      if (k->is_string())
        if (const Value* v = self.as_dict().find(k->as_string())) return *v;
      return d ? *d : Value::none();
    });
  if (name == "copy")
    return method(obj, name, [](const Value& self, Args&) { return Value(Dict(self.as_dict())); });
  if (name == "update" || name == "pop" || name == "popitem" || name == "setdefault" ||
      name == "clear")
    return Value::undefined("access to attribute '" + name + "' of 'dict' object is unsafe.");
  return std::nullopt;
}

Value list_method(const Value& obj, const std::string& name) {
  if (name == "index")
    return method(obj, name, [](const Value& self, Args& a) {
      const Value* x = a.get(0, "value");
      if (!x) throw EvalError("index expected at least 1 argument");
      const auto& l = self.as_list();
      for (size_t i = 0; i < l.size(); ++i)
        if (equals(l[i], *x)) return Value(static_cast<int64_t>(i));
      throw EvalError(x->repr() + " is not in list");
    });
  if (name == "count")
    return method(obj, name, [](const Value& self, Args& a) {
      const Value* x = a.get(0, "value");
      if (!x) throw EvalError("count() takes exactly one argument");
      int64_t n = 0;
      for (const auto& v : self.as_list()) n += equals(v, *x) ? 1 : 0;
      return Value(n);
    });
  if (name == "append" || name == "extend" || name == "insert" || name == "pop" ||
      name == "remove" || name == "clear" || name == "sort" || name == "reverse")
    return Value::undefined("access to attribute '" + name + "' of 'list' object is unsafe.");
  return Value::undefined("'list object' has no attribute '" + name + "'");
}

}  // namespace ohm::jinja
