// Python str semantics the builtins share: strip/split/splitlines/replace/title/capitalize as
// CPython computes them, printf-style `%` and str.format, HTML escaping, argument coercion.
#include <algorithm>
#include <cstdio>

#include "builtins.h"

namespace ohm::jinja {

namespace {

uint32_t cp_of(std::string_view ch) {
  const auto c0 = static_cast<unsigned char>(ch[0]);
  if (ch.size() == 1) return c0;
  uint32_t cp = ch.size() == 2 ? (c0 & 0x1F) : ch.size() == 3 ? (c0 & 0x0F) : (c0 & 0x07);
  for (size_t i = 1; i < ch.size(); ++i)
    cp = (cp << 6) | (static_cast<unsigned char>(ch[i]) & 0x3F);
  return cp;
}

bool is_linebreak(uint32_t c) {
  return c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d || c == 0x1e ||
         c == 0x85 || c == 0x2028 || c == 0x2029;
}

}  // namespace

// str.isspace() for one code point.
bool py_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
         c == 0x205f || c == 0x3000;
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

}  // namespace ohm::jinja
