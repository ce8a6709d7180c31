// JSON schema -> grammar expressions, and the regex subset used by `pattern`, `format` and
// Grammar::regex. The supported subset is documented in docs/serving.md ("Structured output").
#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "grammar_internal.h"
#include "ohm/core/error.h"

namespace ohm::generation::grammar_detail {

using ojson = nlohmann::ordered_json;

namespace {

// ---------------------------------------------------------------- code point sets -> UTF-8
using CpRanges = std::vector<std::pair<uint32_t, uint32_t>>;
constexpr uint32_t kMaxCp = 0x10FFFF;

CpRanges normalize(CpRanges r) {
  std::sort(r.begin(), r.end());
  CpRanges out;
  for (auto [lo, hi] : r) {
    if (!out.empty() && lo <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, hi);
    } else {
      out.emplace_back(lo, hi);
    }
  }
  return out;
}
CpRanges negate(const CpRanges& r0) {
  CpRanges r = normalize(r0), out;
  uint32_t next = 0;
  for (auto [lo, hi] : r) {
    if (lo > next) out.emplace_back(next, lo - 1);
    next = hi + 1;
  }
  if (next <= kMaxCp) out.emplace_back(next, kMaxCp);
  return out;
}
CpRanges subtract(const CpRanges& a, const CpRanges& b) {
  CpRanges nb = negate(b), out;
  for (auto [lo, hi] : normalize(a))
    for (auto [l2, h2] : nb) {
      uint32_t l = std::max(lo, l2), h = std::min(hi, h2);
      if (l <= h) out.emplace_back(l, h);
    }
  return normalize(out);
}

std::string utf8(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

// The UTF-8 encodings of [lo, hi] as byte-range sequences (surrogates excluded).
void utf8_split(uint32_t lo, uint32_t hi, std::vector<ExprP>& out) {
  if (lo > hi) return;
  if (lo <= 0xDFFF && hi >= 0xD800) {
    if (lo < 0xD800) utf8_split(lo, 0xD7FF, out);
    if (hi > 0xDFFF) utf8_split(0xE000, hi, out);
    return;
  }
  for (uint32_t b : {0x7Fu, 0x7FFu, 0xFFFFu})
    if (lo <= b && hi > b) {
      utf8_split(lo, b, out);
      utf8_split(b + 1, hi, out);
      return;
    }
  if (hi < 0x80) {
    out.push_back(e_bytes({{static_cast<uint8_t>(lo), static_cast<uint8_t>(hi)}}));
    return;
  }
  const int n = lo < 0x800 ? 2 : lo < 0x10000 ? 3 : 4;
  for (int i = 1; i < n; ++i) {
    uint32_t m = (1u << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        utf8_split(lo, lo | m, out);
        utf8_split((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        utf8_split(lo, (hi & ~m) - 1, out);
        utf8_split(hi & ~m, hi, out);
        return;
      }
    }
  }
  std::string a = utf8(lo), b = utf8(hi);
  std::vector<ExprP> seq;
  for (size_t j = 0; j < a.size(); ++j)
    seq.push_back(e_bytes({{static_cast<uint8_t>(a[j]), static_cast<uint8_t>(b[j])}}));
  out.push_back(e_seq(std::move(seq)));
}

// A code point set as text: raw UTF-8, or inside a JSON string ('"', '\' and controls escaped).
ExprP cp_set(const CpRanges& set, bool json) {
  std::vector<ExprP> alts;
  CpRanges raw = normalize(set);
  if (json) {
    CpRanges esc = {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}};
    for (auto [lo, hi] : normalize(set))
      for (auto [l2, h2] : esc)
        for (uint32_t c = std::max(lo, l2); c <= std::min(hi, h2); ++c) {
          static const char* kShort = "btn\0fr";  // 8..13 (\v has none)
          if (c == '"') {
            alts.push_back(e_lit("\\\""));
          } else if (c == '\\') {
            alts.push_back(e_lit("\\\\"));
          } else if (c >= 8 && c <= 13 && c != 11) {
            alts.push_back(e_lit(std::string("\\") + kShort[c - 8]));
          } else {
            static const char* hex = "0123456789abcdef";
            alts.push_back(e_lit(std::string("\\u00") + hex[c >> 4] + hex[c & 15]));
          }
        }
    raw = subtract(raw, esc);
  }
  for (auto [lo, hi] : raw) utf8_split(lo, hi, alts);
  if (alts.empty()) return nullptr;
  return e_alt(std::move(alts));
}

// ---------------------------------------------------------------- regex subset
struct RegexParser {
  std::string_view s;
  size_t i = 0;
  bool json;
  std::string where;
  int depth = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw InvalidArgument(where + ": " + what + " at offset " + std::to_string(i) + " of regex '" +
                          std::string(s) + "'");
  }
  bool eof() const { return i >= s.size(); }
  uint32_t read_cp() {
    auto c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : 3;
    if (n > 0 && i + n >= s.size()) fail("bad UTF-8");
    uint32_t cp = n == 0 ? c : c & (0x7Fu >> (n + 1));
    for (int k = 1; k <= n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    i += n + 1;
    return cp;
  }
  static CpRanges cls_digit() { return {{'0', '9'}}; }
  static CpRanges cls_word() { return {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}; }
  static CpRanges cls_space() { return {{'\t', '\r'}, {' ', ' '}}; }
  uint32_t hex(int n) {
    uint32_t v = 0;
    for (int k = 0; k < n; ++k) {
      if (eof() || !std::isxdigit(static_cast<unsigned char>(s[i]))) fail("bad hex escape");
      char c = s[i++];
      v = v * 16 + (c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
    }
    return v;
  }
  // After '\': a class (returns true and fills `set`) or a single code point.
  bool escape(CpRanges& set, uint32_t& cp, bool in_class) {
    if (eof()) fail("trailing backslash");
    char c = s[i++];
    switch (c) {
      case 'd':
        set = cls_digit();
        return true;
      case 'D':
        set = negate(cls_digit());
        return true;
      case 'w':
        set = cls_word();
        return true;
      case 'W':
        set = negate(cls_word());
        return true;
      case 's':
        set = cls_space();
        return true;
      case 'S':
        set = negate(cls_space());
        return true;
      case 'n':
        cp = '\n';
        return false;
      case 't':
        cp = '\t';
        return false;
      case 'r':
        cp = '\r';
        return false;
      case 'f':
        cp = '\f';
        return false;
      case 'v':
        cp = '\v';
        return false;
      case '0':
        cp = 0;
        return false;
      case 'x':
        cp = hex(2);
        return false;
      case 'u':
        cp = hex(4);
        return false;
      case 'b':
        if (in_class) {
          cp = '\b';
          return false;
        }
        [[fallthrough]];
      default:
        if (std::isalnum(static_cast<unsigned char>(c))) {
          --i;
          fail(std::string("unsupported escape '\\") + c + "'");
        }
        --i;
        cp = read_cp();
        return false;
    }
  }
  CpRanges parse_class() {  // after '['
    bool neg = false;
    if (!eof() && s[i] == '^') {
      neg = true;
      ++i;
    }
    CpRanges set;
    bool first = true;
    while (true) {
      if (eof()) fail("unterminated character class");
      if (s[i] == ']' && !first) {
        ++i;
        break;
      }
      first = false;
      CpRanges sub;
      uint32_t lo = 0;
      if (s[i] == '\\') {
        ++i;
        if (escape(sub, lo, true)) {
          set.insert(set.end(), sub.begin(), sub.end());
          continue;
        }
      } else if (s[i] == '[' && i + 1 < s.size() && s[i + 1] == ':') {
        fail("POSIX classes are not supported");
      } else {
        lo = read_cp();
      }
      uint32_t hi = lo;
      if (i + 1 < s.size() && s[i] == '-' && s[i + 1] != ']') {
        ++i;
        if (s[i] == '\\') {
          ++i;
          if (escape(sub, hi, true)) fail("class escape as a range end");
        } else {
          hi = read_cp();
        }
        if (hi < lo) fail("range out of order");
      }
      set.emplace_back(lo, hi);
    }
    set = normalize(set);
    return neg ? negate(set) : set;
  }
  ExprP set_expr(const CpRanges& set) {
    ExprP e = cp_set(set, json);
    if (!e) fail("empty character class");
    return e;
  }
  ExprP parse_atom() {
    char c = s[i];
    if (c == '(') {
      ++i;
      if (i < s.size() && s[i] == '?') {
        if (i + 1 < s.size() && s[i + 1] == ':') {
          i += 2;
        } else if (i + 2 < s.size() && s[i + 1] == '<' && s[i + 2] != '=' && s[i + 2] != '!') {
          size_t close = s.find('>', i);
          if (close == std::string_view::npos) fail("unterminated group name");
          i = close + 1;
        } else {
          fail("lookaround and inline flags are not supported");
        }
      }
      ++depth;
      ExprP e = parse_alt();
      --depth;
      if (eof() || s[i] != ')') fail("missing ')'");
      ++i;
      return e;
    }
    if (c == '[') {
      ++i;
      return set_expr(parse_class());
    }
    if (c == '.') {
      ++i;
      return set_expr(negate({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}));
    }
    if (c == '\\') {
      ++i;
      if (!eof() && (s[i] == 'b' || s[i] == 'B')) fail("word boundaries are not supported");
      if (!eof() && s[i] >= '1' && s[i] <= '9') fail("backreferences are not supported");
      CpRanges set;
      uint32_t cp = 0;
      if (escape(set, cp, false)) return set_expr(set);
      return set_expr({{cp, cp}});
    }
    if (c == '*' || c == '+' || c == '?' || c == '{') fail("nothing to repeat");
    uint32_t cp = read_cp();
    return set_expr({{cp, cp}});
  }
  int64_t number() {
    if (eof() || !std::isdigit(static_cast<unsigned char>(s[i]))) fail("bad repetition count");
    int64_t v = 0;
    while (!eof() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      v = v * 10 + (s[i++] - '0');
      if (v > 1000) fail("repetition count over 1000");
    }
    return v;
  }
  ExprP parse_repeat() {
    ExprP e = parse_atom();
    while (!eof()) {
      char c = s[i];
      int64_t lo, hi;
      if (c == '*') {
        lo = 0, hi = -1, ++i;
      } else if (c == '+') {
        lo = 1, hi = -1, ++i;
      } else if (c == '?') {
        lo = 0, hi = 1, ++i;
      } else if (c == '{' && i + 1 < s.size() &&
                 std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
        ++i;
        lo = number();
        hi = lo;
        if (!eof() && s[i] == ',') {
          ++i;
          hi = (!eof() && s[i] == '}') ? -1 : number();
        }
        if (eof() || s[i] != '}') fail("missing '}'");
        ++i;
        if (hi >= 0 && hi < lo) fail("repetition {n,m} with m < n");
      } else {
        break;
      }
      if (!eof() && s[i] == '?') ++i;  // lazy: same language
      e = e_rep(e, lo, hi);
    }
    return e;
  }
  ExprP any_text() { return e_rep(set_expr({{0, kMaxCp}}), 0, -1); }
  ExprP parse_concat() {
    std::vector<ExprP> items;
    bool start_anchor = false, end_anchor = false;
    if (!eof() && s[i] == '^') {
      if (depth > 0) fail("'^' inside a group is not supported");
      start_anchor = true;
      ++i;
    }
    while (!eof() && s[i] != '|' && s[i] != ')') {
      if (s[i] == '$') {
        ++i;
        if (depth > 0 || (!eof() && s[i] != '|')) fail("'$' is only supported at the end");
        end_anchor = true;
        break;
      }
      if (s[i] == '^') fail("'^' is only supported at the start");
      items.push_back(parse_repeat());
    }
    if (depth == 0 && !anchored) {
      if (!start_anchor) items.insert(items.begin(), any_text());
      // In a JSON string the closing quote is part of the expression: an unanchored end is any
      // string body (the fast string lexeme), an anchored one the quote itself.
      if (json) {
        items.push_back(end_anchor ? e_lit("\"") : e_str({}));
      } else if (!end_anchor) {
        items.push_back(any_text());
      }
    }
    return e_seq(std::move(items));
  }
  ExprP parse_alt() {
    std::vector<ExprP> alts{parse_concat()};
    while (!eof() && s[i] == '|') {
      ++i;
      alts.push_back(parse_concat());
    }
    return e_alt(std::move(alts));
  }
  bool anchored = false;  // Grammar::regex: always a full match
};

// ---------------------------------------------------------------- JSON schema
const std::set<std::string>& annotations() {
  static const std::set<std::string> k = {"title",    "description", "$schema",  "$id",
                                          "$comment", "default",     "examples", "deprecated",
                                          "readOnly", "writeOnly",   "$defs",    "definitions"};
  return k;
}
const std::map<std::string, std::string>& typed_keywords() {
  static const std::map<std::string, std::string> k = {
      {"properties", "object"}, {"required", "object"},         {"additionalProperties", "object"},
      {"items", "array"},       {"prefixItems", "array"},       {"minItems", "array"},
      {"maxItems", "array"},    {"minLength", "string"},        {"maxLength", "string"},
      {"pattern", "string"},    {"format", "string"},           {"minimum", "number"},
      {"maximum", "number"},    {"exclusiveMinimum", "number"}, {"exclusiveMaximum", "number"}};
  return k;
}
const std::set<std::string>& general_keywords() {
  static const std::set<std::string> k = {"type",  "enum",  "const", "anyOf",
                                          "oneOf", "allOf", "$ref",  "nullable"};
  return k;
}

std::string esc_ptr(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

const std::map<std::string, std::string>& formats() {
  static const std::map<std::string, std::string> f = {
      {"date", R"(^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$)"},
      {"time", R"(^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$)"},
      {"date-time",
       R"(^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$)"},
      {"uuid", R"(^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$)"},
      {"email",
       R"(^[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$)"},
      {"ipv4", R"(^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$)"},
  };
  return f;
}

struct SchemaCompiler {
  const ojson& root;
  JsonGrammarOptions opt;
  RuleSet& rs;
  std::map<std::string, Rule*> refs;
  Rule* any = nullptr;

  [[noreturn]] void fail(const std::string& ptr, const std::string& what) const {
    throw InvalidArgument("json schema: " + (ptr.empty() ? std::string("(root)") : ptr) + ": " +
                          what);
  }
  // At most one line break, then at most max_whitespace spaces/tabs (indentation): enough for
  // pretty-printed JSON, and no runs of blank lines.
  ExprP ws() const {
    if (opt.max_whitespace == 0) return e_empty();
    return e_seq({e_opt(e_seq({e_opt(e_lit("\r")), e_lit("\n")})),
                  e_rep(e_bytes({{'\t', '\t'}, {' ', ' '}}), 0, opt.max_whitespace)});
  }
  ExprP sep(char c) const { return e_seq({ws(), e_lit(std::string(1, c)), ws()}); }
  ExprP any_string() const { return e_seq({e_lit("\""), e_str({})}); }
  ExprP any_number() const {
    NumSpec n;
    n.ilo = -static_cast<i128>(9'999'999'999'999'999'999ull);
    n.ihi = static_cast<i128>(9'999'999'999'999'999'999ull);
    n.max_int_digits = 19;
    return e_num(n);
  }
  ExprP any_value() {
    if (!any) {
      any = rs.add("any");
      ExprP v = e_ref(any);
      ExprP kv = e_seq({any_string(), sep(':'), v});
      ExprP obj = e_seq({e_lit("{"), ws(), e_opt(e_seq({kv, e_rep(e_seq({sep(','), kv}), 0, -1)})),
                         ws(), e_lit("}")});
      ExprP arr = e_seq({e_lit("["), ws(), e_opt(e_seq({v, e_rep(e_seq({sep(','), v}), 0, -1)})),
                         ws(), e_lit("]")});
      any->body = e_alt(
          {obj, arr, any_string(), any_number(), e_lit("true"), e_lit("false"), e_lit("null")});
    }
    return e_ref(any);
  }
  ExprP any_object() {
    ExprP kv = e_seq({any_string(), sep(':'), any_value()});
    return e_seq({e_lit("{"), ws(), e_opt(e_seq({kv, e_rep(e_seq({sep(','), kv}), 0, -1)})), ws(),
                  e_lit("}")});
  }

  // A subschema as a rule (shared by every place that references it).
  Rule* rule_for(const ojson& s, const std::string& ptr) {
    Rule* r = rs.add(ptr);
    r->body = compile(s, ptr);
    return r;
  }
  Rule* ref_rule(const std::string& ref, const std::string& ptr) {
    auto it = refs.find(ref);
    if (it != refs.end()) return it->second;
    if (ref.empty() || ref[0] != '#')
      fail(ptr + "/$ref", "only local references (\"#...\") are supported, not '" + ref + "'");
    const ojson* target = nullptr;
    try {
      target = &root.at(ojson::json_pointer(ref.substr(1)));
    } catch (const nlohmann::json::exception&) {
      fail(ptr + "/$ref", "reference '" + ref + "' does not resolve");
    }
    Rule* r = rs.add(ref);
    refs.emplace(ref, r);
    r->body = compile(*target, ref.substr(1));
    return r;
  }

  static uint64_t get_count(const ojson& s, const char* key, const std::string& ptr,
                            const SchemaCompiler& c) {
    const ojson& v = s.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
      c.fail(ptr + "/" + key, "must be a non-negative integer");
    return v.get<uint64_t>();
  }

  ExprP compile(const ojson& s, const std::string& ptr) {
    if (s.is_boolean()) {
      if (s.get<bool>()) return any_value();
      fail(ptr, "schema 'false' allows no value");
    }
    if (!s.is_object()) fail(ptr, "a schema must be an object or a boolean");
    ojson rest = s;
    if (s.contains("nullable")) {
      const ojson& n = s["nullable"];
      if (!n.is_boolean()) fail(ptr + "/nullable", "must be a boolean");
      rest.erase("nullable");
      if (n.get<bool>()) return e_alt({compile_inner(rest, ptr), e_lit("null")});
    }
    return compile_inner(rest, ptr);
  }

  ExprP compile_inner(const ojson& s, const std::string& ptr) {
    std::vector<std::string> constraints;
    for (auto it = s.begin(); it != s.end(); ++it)
      if (!annotations().count(it.key())) constraints.push_back(it.key());
    auto only = [&](const std::string& main, std::initializer_list<const char*> allowed) {
      for (const auto& k : constraints) {
        if (k == main) continue;
        bool ok = false;
        for (const char* a : allowed) ok = ok || k == a;
        if (!ok)
          fail(ptr + "/" + esc_ptr(k),
               "keyword '" + k + "' alongside '" + main + "' is not supported");
      }
    };
    for (const auto& k : constraints)
      if (!general_keywords().count(k) && !typed_keywords().count(k))
        fail(ptr + "/" + esc_ptr(k), "unsupported keyword '" + k + "'");

    if (s.contains("$ref")) {
      only("$ref", {});
      if (!s["$ref"].is_string()) fail(ptr + "/$ref", "must be a string");
      return e_ref(ref_rule(s["$ref"].get<std::string>(), ptr));
    }
    if (s.contains("allOf")) {
      only("allOf", {});
      const ojson& a = s["allOf"];
      if (!a.is_array() || a.size() != 1)
        fail(ptr + "/allOf", "only an allOf of exactly one schema is supported");
      return compile(a[0], ptr + "/allOf/0");
    }
    for (const char* k : {"anyOf", "oneOf"})
      if (s.contains(k)) {
        only(k, {});
        const ojson& a = s[k];
        if (!a.is_array() || a.empty()) fail(ptr + "/" + k, "must be a non-empty array");
        std::vector<ExprP> alts;
        for (size_t i = 0; i < a.size(); ++i)
          alts.push_back(compile(a[i], ptr + "/" + k + "/" + std::to_string(i)));
        return e_alt(std::move(alts));
      }

    // Types: given, or implied by the keywords.
    std::vector<std::string> types;
    if (s.contains("type")) {
      const ojson& t = s["type"];
      if (t.is_string()) {
        types.push_back(t.get<std::string>());
      } else if (t.is_array() && !t.empty()) {
        for (const auto& x : t) {
          if (!x.is_string()) fail(ptr + "/type", "must be a string or an array of strings");
          types.push_back(x.get<std::string>());
        }
      } else {
        fail(ptr + "/type", "must be a string or a non-empty array of strings");
      }
      for (const auto& t2 : types)
        if (t2 != "object" && t2 != "array" && t2 != "string" && t2 != "number" &&
            t2 != "integer" && t2 != "boolean" && t2 != "null")
          fail(ptr + "/type", "unknown type '" + t2 + "'");
    }

    if (s.contains("enum") || s.contains("const")) {
      const char* k = s.contains("enum") ? "enum" : "const";
      only(k, {"type"});
      std::vector<ojson> values;
      if (std::string(k) == "enum") {
        if (!s["enum"].is_array() || s["enum"].empty())
          fail(ptr + "/enum", "must be a non-empty array");
        for (const auto& v : s["enum"]) values.push_back(v);
      } else {
        values.push_back(s["const"]);
      }
      std::vector<ExprP> alts;
      for (const auto& v : values) {
        if (!types.empty()) {
          bool ok = false;
          for (const auto& t : types)
            ok = ok || (t == "object" && v.is_object()) || (t == "array" && v.is_array()) ||
                 (t == "string" && v.is_string()) || (t == "number" && v.is_number()) ||
                 (t == "integer" && v.is_number_integer()) || (t == "boolean" && v.is_boolean()) ||
                 (t == "null" && v.is_null());
          if (!ok) continue;
        }
        alts.push_back(e_lit(v.dump()));
      }
      if (alts.empty()) fail(ptr + "/" + k, "no value matches 'type'");
      return e_alt(std::move(alts));
    }

    if (types.empty()) {
      std::set<std::string> implied;
      for (const auto& k : constraints) {
        auto it = typed_keywords().find(k);
        if (it != typed_keywords().end()) implied.insert(it->second);
      }
      if (implied.size() > 1)
        fail(ptr, "keywords for several types without 'type' are not supported");
      if (implied.empty()) return any_value();
      types.push_back(*implied.begin());
    }
    // Every type-specific keyword must apply to one of the types.
    for (const auto& k : constraints) {
      auto it = typed_keywords().find(k);
      if (it == typed_keywords().end()) continue;
      bool ok = false;
      for (const auto& t : types)
        ok = ok || t == it->second || (it->second == "number" && t == "integer");
      if (!ok) fail(ptr + "/" + esc_ptr(k), "keyword '" + k + "' does not apply to the type");
    }
    std::vector<ExprP> alts;
    for (const auto& t : types) alts.push_back(compile_type(s, t, ptr));
    return e_alt(std::move(alts));
  }

  ExprP compile_type(const ojson& s, const std::string& t, const std::string& ptr) {
    if (t == "null") return e_lit("null");
    if (t == "boolean") return e_alt({e_lit("true"), e_lit("false")});
    if (t == "integer" || t == "number") return compile_number(s, t == "integer", ptr);
    if (t == "string") return compile_string(s, ptr);
    if (t == "array") return compile_array(s, ptr);
    return compile_object(s, ptr);
  }

  ExprP compile_number(const ojson& s, bool integer, const std::string& ptr) {
    NumSpec n;
    n.integer = integer;
    constexpr long double kBig = 9'999'999'999'999'999'999.0L;
    for (const char* k : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}) {
      if (!s.contains(k)) continue;
      const ojson& v = s[k];
      std::string key = k;
      bool excl = key.rfind("exclusive", 0) == 0;
      bool is_min = key.find("inimum") != std::string::npos;
      if (excl && v.is_boolean()) {  // draft 4: a flag on minimum/maximum
        if (is_min) {
          n.lo_excl = v.get<bool>();
        } else {
          n.hi_excl = v.get<bool>();
        }
        continue;
      }
      if (!v.is_number()) fail(ptr + "/" + key, "must be a number");
      long double x = v.get<double>();
      if (!std::isfinite(static_cast<double>(x))) fail(ptr + "/" + key, "must be finite");
      if (std::fabs(x) > kBig) fail(ptr + "/" + key, "must be within +-1e19");
      n.bounded = true;
      if (is_min) {
        if (x > n.lo || (x == n.lo && excl)) {
          n.lo = x;
          n.lo_excl = excl;
        }
      } else {
        if (x < n.hi || (x == n.hi && excl)) {
          n.hi = x;
          n.hi_excl = excl;
        }
      }
    }
    n.max_int_digits = 19;
    long double lo = std::max(n.lo, -kBig), hi = std::min(n.hi, kBig);
    long double ilo = n.lo_excl && n.lo == lo ? std::floor(lo) + 1 : std::ceil(lo);
    long double ihi = n.hi_excl && n.hi == hi ? std::ceil(hi) - 1 : std::floor(hi);
    n.ilo = static_cast<i128>(ilo);
    n.ihi = static_cast<i128>(ihi);
    if (integer) {  // integers stay within int64 (what JSON parsers read as integers)
      n.ilo = std::max<i128>(n.ilo, -static_cast<i128>(9'223'372'036'854'775'807LL));
      n.ihi = std::min<i128>(n.ihi, static_cast<i128>(9'223'372'036'854'775'807LL));
    }
    if (!n.bounded) n.max_int_digits = integer ? 18 : 19;  // an unbounded integer fits int64
    if (n.ilo > n.ihi)
      fail(ptr, std::string("no ") + (integer ? "integer" : "number with an integer part") +
                    " satisfies the minimum/maximum bounds (numbers are constrained on their "
                    "integer part; see docs/serving.md)");
    return e_num(n);
  }

  ExprP compile_string(const ojson& s, const std::string& ptr) {
    const bool has_len = s.contains("minLength") || s.contains("maxLength");
    if (s.contains("pattern") || s.contains("format")) {
      if (s.contains("pattern") && s.contains("format"))
        fail(ptr + "/format", "'format' together with 'pattern' is not supported");
      const char* k = s.contains("pattern") ? "pattern" : "format";
      if (has_len)
        fail(ptr + "/" + (s.contains("minLength") ? "minLength" : "maxLength"),
             std::string("length bounds together with '") + k + "' are not supported");
      if (!s[k].is_string()) fail(ptr + "/" + k, "must be a string");
      std::string re = s[k].get<std::string>();
      if (std::string(k) == "format") {
        auto it = formats().find(re);
        if (it == formats().end()) fail(ptr + "/format", "unsupported format '" + re + "'");
        re = it->second;
      }
      return e_seq({e_lit("\""), regex_expr(re, true, "json schema: " + ptr + "/" + k)});
    }
    StrSpec sp;
    if (s.contains("minLength")) sp.min_len = get_count(s, "minLength", ptr, *this);
    if (s.contains("maxLength")) sp.max_len = get_count(s, "maxLength", ptr, *this);
    if (sp.min_len > sp.max_len) fail(ptr + "/minLength", "is greater than maxLength");
    return e_seq({e_lit("\""), e_str(sp)});
  }

  ExprP compile_array(const ojson& s, const std::string& ptr) {
    std::vector<ExprP> prefix;
    if (s.contains("prefixItems")) {
      const ojson& p = s["prefixItems"];
      if (!p.is_array()) fail(ptr + "/prefixItems", "must be an array");
      for (size_t i = 0; i < p.size(); ++i) {
        std::string q = ptr + "/prefixItems/" + std::to_string(i);
        prefix.push_back(e_ref(rule_for(p[i], q)));
      }
    }
    ExprP item;  // null: no items past the prefix
    if (s.contains("items")) {
      const ojson& it = s["items"];
      if (it.is_array()) fail(ptr + "/items", "an array of schemas (use prefixItems)");
      if (!(it.is_boolean() && !it.get<bool>())) item = e_ref(rule_for(it, ptr + "/items"));
    } else if (prefix.empty()) {
      item = any_value();
    }
    uint64_t minc = s.contains("minItems") ? get_count(s, "minItems", ptr, *this) : 0;
    int64_t maxc = -1;
    if (s.contains("maxItems")) {
      uint64_t m = get_count(s, "maxItems", ptr, *this);
      maxc = static_cast<int64_t>(std::min<uint64_t>(m, 1u << 20));
    }
    if (!item) {
      int64_t p = static_cast<int64_t>(prefix.size());
      maxc = maxc < 0 ? p : std::min(maxc, p);
    }
    if (maxc >= 0 && static_cast<int64_t>(minc) > maxc)
      fail(ptr + "/minItems", "no array length satisfies minItems/maxItems/items");
    if (minc > 100000) fail(ptr + "/minItems", "over 100000 is not supported");
    const auto k = static_cast<int64_t>(
        std::min<size_t>(prefix.size(), maxc < 0 ? prefix.size() : static_cast<size_t>(maxc)));
    const auto mn = static_cast<int64_t>(minc);
    // Elements at index >= k come from `item`; each after the first is preceded by ','.
    auto items_from = [&](int64_t i, bool first) -> ExprP {  // elements i.. (all `item`)
      if (!item || (maxc >= 0 && i >= maxc)) return e_empty();
      int64_t lo = std::max<int64_t>(0, mn - i), hi = maxc < 0 ? -1 : maxc - i;
      ExprP one = first ? item : e_seq({sep(','), item});
      if (!first) return e_rep(e_seq({sep(','), item}), lo, hi);
      ExprP rest =
          e_rep(e_seq({sep(','), item}), std::max<int64_t>(0, lo - 1), hi < 0 ? -1 : hi - 1);
      ExprP all = e_seq({one, rest});
      return lo >= 1 ? all : e_opt(all);
    };
    ExprP tail = items_from(k, k == 0);
    for (int64_t i = k - 1; i >= 0; --i) {
      ExprP el = i == 0 ? prefix[0] : e_seq({sep(','), prefix[i]});
      ExprP e = e_seq({el, tail});
      tail = i < mn ? e : e_opt(e);
    }
    return e_seq({e_lit("["), ws(), tail, ws(), e_lit("]")});
  }

  ExprP compile_object(const ojson& s, const std::string& ptr) {
    struct Prop {
      std::string name;
      ExprP value;
      bool required = false;
    };
    std::vector<Prop> props;
    if (s.contains("properties")) {
      const ojson& p = s["properties"];
      if (!p.is_object()) fail(ptr + "/properties", "must be an object");
      for (auto it = p.begin(); it != p.end(); ++it) {
        std::string q = ptr + "/properties/" + esc_ptr(it.key());
        props.push_back({it.key(), e_ref(rule_for(it.value(), q)), false});
      }
    }
    if (s.contains("required")) {
      const ojson& r = s["required"];
      if (!r.is_array()) fail(ptr + "/required", "must be an array of strings");
      for (size_t i = 0; i < r.size(); ++i) {
        if (!r[i].is_string()) fail(ptr + "/required/" + std::to_string(i), "must be a string");
        std::string name = r[i].get<std::string>();
        auto it =
            std::find_if(props.begin(), props.end(), [&](const Prop& p) { return p.name == name; });
        if (it == props.end()) {
          const ojson* ap =
              s.contains("additionalProperties") ? &s["additionalProperties"] : nullptr;
          if (ap && ap->is_boolean() && !ap->get<bool>())
            fail(ptr + "/required/" + std::to_string(i),
                 "required property '" + name +
                     "' is not in 'properties' and additionalProperties is false");
          props.push_back({name, any_value(), true});
        } else {
          it->required = true;
        }
      }
    }
    ExprP extra;  // the value schema of additional properties; null = none
    if (s.contains("additionalProperties")) {
      const ojson& a = s["additionalProperties"];
      if (!(a.is_boolean() && !a.get<bool>()))
        extra = e_ref(rule_for(a, ptr + "/additionalProperties"));
    }
    ExprP extra_kv = extra ? e_seq({any_string(), sep(':'), extra}) : nullptr;

    const size_t n = props.size();
    // rest[i][e]: properties i.. in order, `e` = something was already written (so ',' first).
    std::vector<std::array<Rule*, 2>> rest(n + 1, {nullptr, nullptr});
    std::function<ExprP(size_t, int)> get = [&](size_t i, int e) -> ExprP {
      if (rest[i][e]) return e_ref(rest[i][e]);
      Rule* r = rs.add(ptr + " properties[" + std::to_string(i) + "]");
      rest[i][e] = r;
      if (i == n) {
        if (!extra_kv) {
          r->body = e_empty();
        } else if (e) {
          r->body = e_rep(e_seq({sep(','), extra_kv}), 0, -1);
        } else {
          r->body = e_opt(e_seq({extra_kv, e_rep(e_seq({sep(','), extra_kv}), 0, -1)}));
        }
        return e_ref(r);
      }
      const Prop& p = props[i];
      ExprP key = e_lit(ojson(p.name).dump());
      ExprP with = e_seq({e ? sep(',') : e_empty(), key, sep(':'), p.value, get(i + 1, 1)});
      r->body = p.required ? with : e_alt({with, get(i + 1, e)});
      return e_ref(r);
    };
    return e_seq({e_lit("{"), ws(), get(0, 0), ws(), e_lit("}")});
  }
};

}  // namespace

ExprP regex_expr(std::string_view pattern, bool json_escaped, const std::string& where) {
  RegexParser p{pattern, 0, json_escaped, where};
  p.anchored = !json_escaped;
  ExprP e = p.parse_alt();
  if (!p.eof()) p.fail("unbalanced ')'");
  return e;
}

ExprP json_schema_expr(const ojson& schema, const JsonGrammarOptions& opt, RuleSet& rs) {
  if (opt.max_whitespace < 0 || opt.max_whitespace > 64)
    throw InvalidArgument("JsonGrammarOptions::max_whitespace must be within 0..64");
  SchemaCompiler c{schema, opt, rs, {}, nullptr};
  return c.compile(schema, "");
}

ExprP any_json_expr(const JsonGrammarOptions& opt, RuleSet& rs, bool object_only) {
  static const ojson kEmpty = ojson::object();
  SchemaCompiler c{kEmpty, opt, rs, {}, nullptr};
  return object_only ? c.any_object() : c.any_value();
}

}  // namespace ohm::generation::grammar_detail
