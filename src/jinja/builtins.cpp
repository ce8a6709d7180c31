// Builtins: attribute/item access, operators, Python str/dict/list methods, Jinja2 filters and
// tests, and the globals transformers installs (raise_exception, strftime_now, namespace, dict).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <optional>

#include "interp.h"

namespace ohm::jinja {

namespace {

// ---------------------------------------------------------------------------------------------
// Small helpers

uint32_t cp_of(std::string_view ch) {
  const auto c0 = static_cast<unsigned char>(ch[0]);
  if (ch.size() == 1) return c0;
  uint32_t cp = ch.size() == 2 ? (c0 & 0x1F) : ch.size() == 3 ? (c0 & 0x0F) : (c0 & 0x07);
  for (size_t i = 1; i < ch.size(); ++i)
    cp = (cp << 6) | (static_cast<unsigned char>(ch[i]) & 0x3F);
  return cp;
}

// str.isspace() for one code point.
bool py_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
         c == 0x205f || c == 0x3000;
}

bool is_linebreak(uint32_t c) {
  return c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d || c == 0x1e ||
         c == 0x85 || c == 0x2028 || c == 0x2029;
}

std::string py_strip(const std::string& s, const Value* chars, bool left, bool right) {
  auto cs = utf8_chars(s);
  std::vector<std::string_view> set;
  const bool custom = chars && !chars->is_none() && !chars->is_undefined();
  if (custom) {
    if (!chars->is_string()) throw EvalError("strip arg must be None or str");
    set = utf8_chars(chars->as_string());
  }
  auto strip_it = [&](std::string_view ch) {
    if (custom) return std::find(set.begin(), set.end(), ch) != set.end();
    return py_space(cp_of(ch));
  };
  size_t b = 0, e = cs.size();
  if (left)
    while (b < e && strip_it(cs[b])) ++b;
  if (right)
    while (e > b && strip_it(cs[e - 1])) --e;
  std::string out;
  for (size_t i = b; i < e; ++i) out += cs[i];
  return out;
}

std::string ascii_upper(std::string s) {
  for (auto& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  return s;
}
std::string ascii_lower(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return s;
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::string py_capitalize(const std::string& s) {
  std::string out = ascii_lower(s);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 32);
  return out;
}

// str.title(): a letter following a non-letter is upper-cased, other letters lower-cased.
std::string py_title(const std::string& s) {
  std::string out = s;
  bool prev_cased = false;
  for (auto& c : out) {
    if (is_alpha(c)) {
      c = prev_cased ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
                     : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      prev_cased = true;
    } else {
      prev_cased = static_cast<unsigned char>(c) >= 0x80 && prev_cased;
    }
  }
  return out;
}

// Jinja's |title: capitalize each chunk split on [-\s({[<]+.
std::string jinja_title(const std::string& s) {
  std::string out;
  bool at_start = true;
  for (char c : s) {
    const bool sep = c == '-' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
                     c == '\v' || c == '(' || c == '{' || c == '[' || c == '<';
    if (sep) {
      out += c;
      at_start = true;
    } else if (at_start) {
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      at_start = false;
    } else {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& rep,
                       int64_t count) {
  std::string out;
  if (old.empty()) {
    auto cs = utf8_chars(s);
    int64_t n = 0;
    for (size_t i = 0; i <= cs.size(); ++i) {
      if (count < 0 || n < count) {
        out += rep;
        ++n;
      }
      if (i < cs.size()) out += cs[i];
    }
    return out;
  }
  size_t pos = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    const size_t f = s.find(old, pos);
    if (f == std::string::npos) break;
    out.append(s, pos, f - pos);
    out += rep;
    pos = f + old.size();
    ++n;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

std::vector<Value> py_split(const std::string& s, const Value* sep, int64_t maxsplit) {
  std::vector<Value> out;
  if (!sep || sep->is_none()) {
    auto cs = utf8_chars(s);
    size_t i = 0;
    int64_t n = 0;
    while (true) {
      while (i < cs.size() && py_space(cp_of(cs[i]))) ++i;
      if (i >= cs.size()) break;
      if (maxsplit >= 0 && n >= maxsplit) {
        std::string rest;
        for (size_t k = i; k < cs.size(); ++k) rest += cs[k];
        // Python keeps the remainder with trailing whitespace stripped only when splitting ends.
        out.emplace_back(py_strip(rest, nullptr, false, true));
        break;
      }
      std::string word;
      while (i < cs.size() && !py_space(cp_of(cs[i]))) word += cs[i++];
      out.emplace_back(word);
      ++n;
    }
    return out;
  }
  if (!sep->is_string()) throw EvalError("must be str or None, not " + sep->type_name());
  const std::string& d = sep->as_string();
  if (d.empty()) throw EvalError("empty separator");
  size_t pos = 0;
  int64_t n = 0;
  while (maxsplit < 0 || n < maxsplit) {
    const size_t f = s.find(d, pos);
    if (f == std::string::npos) break;
    out.emplace_back(s.substr(pos, f - pos));
    pos = f + d.size();
    ++n;
  }
  out.emplace_back(s.substr(pos));
  return out;
}

std::vector<std::string> py_splitlines(const std::string& s, bool keepends) {
  std::vector<std::string> out;
  auto cs = utf8_chars(s);
  std::string cur;
  for (size_t i = 0; i < cs.size(); ++i) {
    const uint32_t c = cp_of(cs[i]);
    if (is_linebreak(c)) {
      std::string end(cs[i]);
      if (c == '\r' && i + 1 < cs.size() && cs[i + 1] == "\n") {
        end += "\n";
        ++i;
      }
      if (keepends) cur += end;
      out.push_back(cur);
      cur.clear();
    } else {
      cur += cs[i];
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

int64_t to_int_arg(const Value* v, int64_t dflt) {
  if (!v || v->is_none() || v->is_undefined()) return dflt;
  if (v->is_bool() || v->is_int()) return v->as_int();
  if (v->is_float()) return static_cast<int64_t>(v->as_float());
  throw EvalError("'" + v->type_name() + "' object cannot be interpreted as an integer");
}

bool to_bool_arg(const Value* v, bool dflt) {
  return v ? v->truthy() : dflt;
}

// printf-style "fmt % args" (str % tuple / value).
std::string percent_format(const std::string& fmt, const Value& argv) {
  std::vector<Value> args;
  const Dict* named = nullptr;
  if (argv.is_tuple())
    args = argv.as_list();
  else if (argv.is_dict())
    named = &argv.as_dict();
  else
    args.push_back(argv);
  std::string out;
  size_t ai = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) throw EvalError("incomplete format");
    if (fmt[i] == '%') {
      out += '%';
      continue;
    }
    const Value* arg = nullptr;
    if (fmt[i] == '(' && named) {
      const size_t e = fmt.find(')', i);
      if (e == std::string::npos) throw EvalError("incomplete format key");
      arg = named->find(fmt.substr(i + 1, e - i - 1));
      if (!arg) throw EvalError("format key not found");
      i = e + 1;
    }
    std::string spec = "%";
    while (i < fmt.size() && std::string("-+ #0123456789.").find(fmt[i]) != std::string::npos)
      spec += fmt[i++];
    if (i >= fmt.size()) throw EvalError("incomplete format");
    const char conv = fmt[i];
    if (!arg) {
      if (ai >= args.size()) throw EvalError("not enough arguments for format string");
      arg = &args[ai++];
    }
    char buf[512];
    if (conv == 's' || conv == 'r') {
      const std::string sv = conv == 's' ? arg->str() : arg->repr();
      std::snprintf(buf, sizeof buf, (spec + "s").c_str(), sv.c_str());
      out += spec == "%" ? sv : std::string(buf);
    } else if (conv == 'd' || conv == 'i') {
      if (!arg->is_number()) throw EvalError("%d format: a real number is required");
      std::snprintf(buf, sizeof buf, (spec + "lld").c_str(),
                    static_cast<long long>(arg->is_float() ? static_cast<int64_t>(arg->as_float())
                                                           : arg->as_int()));
      out += buf;
    } else if (conv == 'f' || conv == 'F' || conv == 'e' || conv == 'g' || conv == 'E' ||
               conv == 'G') {
      if (!arg->is_number()) throw EvalError("must be real number");
      std::snprintf(buf, sizeof buf, (spec + conv).c_str(), arg->to_double());
      out += buf;
    } else if (conv == 'x' || conv == 'X' || conv == 'o') {
      std::snprintf(buf, sizeof buf, (spec + "ll" + conv).c_str(),
                    static_cast<long long>(arg->as_int()));
      out += buf;
    } else {
      throw EvalError(std::string("unsupported format character '") + conv + "'");
    }
  }
  return out;
}

// str.format with {} / {0} / {name} fields (format specs for strings/numbers are minimal).
std::string brace_format(const std::string& fmt, const Args& args) {
  std::string out;
  size_t auto_idx = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    const char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out += '}';
      ++i;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t e = fmt.find('}', i);
    if (e == std::string::npos) throw EvalError("Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, e - i - 1);
    const size_t colon = field.find(':');
    if (colon != std::string::npos) field = field.substr(0, colon);
    const Value* v = nullptr;
    if (field.empty()) {
      if (auto_idx >= args.pos.size()) throw EvalError("Replacement index out of range");
      v = &args.pos[auto_idx++];
    } else if (is_digit(field[0])) {
      const size_t k = std::stoul(field);
      if (k >= args.pos.size()) throw EvalError("Replacement index out of range");
      v = &args.pos[k];
    } else {
      for (const auto& [k, val] : args.kw)
        if (k == field) v = &val;
      if (!v) throw EvalError("KeyError: '" + field + "'");
    }
    out += v->str();
    i = e;
  }
  return out;
}

Value method(const Value& self, const std::string& name,
             std::function<Value(const Value&, Args&)> fn) {
  return Value::callable(name, [self, fn = std::move(fn)](Args& a) { return fn(self, a); });
}

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

// Jinja's make_attrgetter: "a.b.0" walks attributes/items.
Value attr_path(const Value& v, const Value& attribute) {
  if (!attribute.is_string()) return get_item(v, attribute);
  Value cur = v;
  const std::string path = attribute.as_string();
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

std::string strftime_now(const std::string& fmt) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[512];
  const size_t n = std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
  return std::string(buf, n);
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&#34;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Access

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

// ---------------------------------------------------------------------------------------------
// Globals

Value make_global(const std::string& name) {
  if (name == "range")
    return Value::callable("range", [](Args& a) {
      int64_t start = 0, stop, step = 1;
      if (a.pos.size() == 1) {
        stop = to_int_arg(&a.pos[0], 0);
      } else if (a.pos.size() >= 2) {
        start = to_int_arg(&a.pos[0], 0);
        stop = to_int_arg(&a.pos[1], 0);
        if (a.pos.size() >= 3) step = to_int_arg(&a.pos[2], 1);
      } else {
        throw EvalError("range expected at least 1 argument, got 0");
      }
      if (step == 0) throw EvalError("range() arg 3 must not be zero");
      List l;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        l.emplace_back(i);
        if (l.size() > 100000)
          throw EvalError(
              "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
      }
      return Value(std::move(l));
    });
  if (name == "dict" || name == "namespace") {
    const bool ns = name == "namespace";
    return Value::callable(name, [ns](Args& a) {
      Dict d;
      for (const auto& p : a.pos) {
        if (p.is_mapping()) {
          for (const auto& [k, v] : p.as_dict().items()) d.set(k, v);
        } else {
          for (const auto& item : iterate(p)) {
            auto kv = iterate(item);
            if (kv.size() != 2)
              throw EvalError("dictionary update sequence element has wrong length");
            d.set(kv[0].str(), kv[1]);
          }
        }
      }
      for (const auto& [k, v] : a.kw) {
        if (ns && !k.empty() && k[0] == '_')
          throw EvalError(
              "Chat templates cannot store underscore-prefixed attributes on a namespace, but got "
              "'" +
              k + "'. Please rename the attribute.");
        d.set(k, v);
      }
      return ns ? Value::ns(std::move(d)) : Value(std::move(d));
    });
  }
  if (name == "raise_exception")
    return Value::callable("raise_exception", [](Args& a) -> Value {
      const Value* m = a.get(0, "message");
      throw RaisedError(m ? m->str() : std::string());
    });
  if (name == "strftime_now")
    return Value::callable("strftime_now", [](Args& a) {
      const Value* f = a.get(0, "format");
      if (!f) throw EvalError("strftime_now() missing 1 required positional argument: 'format'");
      return Value(strftime_now(f->str()));
    });
  return Value();
}

// ---------------------------------------------------------------------------------------------
// Filters

Value filter_builtin(Interp& in, const std::string& name, const Value& v, Args& a, bool& found) {
  found = true;
  // soft_str(): string filters keep a Markup a Markup.
  auto keep_markup = [](const Value& src, Value out) {
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

// ---------------------------------------------------------------------------------------------
// Tests

bool test_builtin(Interp& /*in*/, const std::string& name, const Value& v, Args& a, bool& found) {
  found = true;
  const Value* arg = a.get(0, "other");
  auto need = [&]() -> const Value& {
    if (!arg) throw EvalError("test '" + name + "' requires an argument");
    return *arg;
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (name == "sequence") return (v.is_list() && !v.is_generator()) || v.is_dict() || v.is_string();
  if (name == "callable") return v.is_callable();
  if (name == "escaped") return false;
  if (name == "sameas") {
    const Value& o = need();
    if (v.is_none() || v.is_bool() || v.is_undefined()) return v.type() == o.type() && equals(v, o);
    return v.type() == o.type() && equals(v, o);
  }
  if (name == "lower") return v.is_string() && ascii_lower(v.as_string()) == v.as_string();
  if (name == "upper") return v.is_string() && ascii_upper(v.as_string()) == v.as_string();
  if (name == "odd" || name == "even") {
    if (!v.is_number() || v.is_float()) throw EvalError("odd/even requires an integer");
    const int64_t r = ((v.as_int() % 2) + 2) % 2;
    return name == "odd" ? r == 1 : r == 0;
  }
  if (name == "divisibleby") {
    const Value& n = need();
    const int64_t d = to_int_arg(&n, 1);
    if (d == 0) throw EvalError("integer division or modulo by zero");
    return to_int_arg(&v, 0) % d == 0;
  }
  if (name == "equalto" || name == "eq" || name == "==") return equals(v, need());
  if (name == "ne" || name == "!=") return !equals(v, need());
  if (name == "lt" || name == "lessthan" || name == "<") return less(v, need());
  if (name == "le" || name == "<=") return !less(need(), v);
  if (name == "gt" || name == "greaterthan" || name == ">") return less(need(), v);
  if (name == "ge" || name == ">=") return !less(v, need());
  if (name == "in") return contains(need(), v);
  if (name == "filter" || name == "test") {
    static const char* filters[] = {
        "trim",   "length",  "count",   "tojson", "items",     "selectattr", "rejectattr",
        "select", "reject",  "map",     "join",   "upper",     "lower",      "capitalize",
        "title",  "replace", "default", "d",      "first",     "last",       "string",
        "safe",   "int",     "float",   "list",   "dictsort",  "abs",        "round",
        "unique", "reverse", "sort",    "indent", "wordcount", "batch",      "center",
        "sum",    "min",     "max",     "attr",   "format",    "pprint",     "truncate",
        "escape", "e"};
    static const char* tests[] = {
        "defined", "undefined", "none",    "boolean",  "true",       "false",       "integer",
        "float",   "number",    "string",  "mapping",  "iterable",   "sequence",    "callable",
        "sameas",  "lower",     "upper",   "odd",      "even",       "divisibleby", "equalto",
        "eq",      "ne",        "lt",      "le",       "gt",         "ge",          "in",
        "filter",  "test",      "escaped", "lessthan", "greaterthan"};
    if (!v.is_string()) return false;
    if (name == "filter") {
      for (const char* f : filters)
        if (v.as_string() == f) return true;
    } else {
      for (const char* t : tests)
        if (v.as_string() == t) return true;
    }
    return false;
  }
  found = false;
  return false;
}

}  // namespace ohm::jinja
