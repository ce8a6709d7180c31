#include "ohm/eval/harness.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <unordered_map>

#include "data.h"
#include "ohm/core/error.h"
#include "ohm/jinja/template.h"
#include "ohm/jinja/value.h"
#include "ohm/models/causal_lm.h"
#include "py_random.h"
#include "yaml_json.h"

#ifndef OHM_EVAL_TASKS_SOURCE_DIR
#define OHM_EVAL_TASKS_SOURCE_DIR ""
#endif

namespace ohm::eval {
namespace {

using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(ErrorContext().file(path), "cannot read the file");
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// A YAML file with its `include:` chain merged (the including file's keys win).
json load_with_includes(const std::string& path, int depth = 0) {
  if (depth > 8)
    throw FormatError(ErrorContext().file(path).key("include"), "includes nest too deeply");
  json j = parse_yaml(read_text_file(path), path);
  if (!j.is_object()) throw FormatError(ErrorContext().file(path), "a task file must be a mapping");
  if (j.contains("include")) {
    if (!j["include"].is_string())
      throw FormatError(ErrorContext().file(path).key("include"), "must be a file name");
    const fs::path inc = fs::path(path).parent_path() / j["include"].get<std::string>();
    if (!fs::exists(inc))
      throw NotFoundError(ErrorContext().file(path).key("include"),
                          "included file " + inc.string() + " not found");
    json base = load_with_includes(inc.string(), depth + 1);
    for (auto& [k, v] : j.items())
      if (k != "include") base[k] = v;
    return base;
  }
  return j;
}

std::vector<std::string> as_list(const json& v) {
  std::vector<std::string> out;
  if (v.is_string())
    out.push_back(v.get<std::string>());
  else if (v.is_array())
    for (const auto& x : v)
      if (x.is_string()) out.push_back(x.get<std::string>());
  return out;
}

// ---- Python string helpers ----

// Decodes the code point ending at `end` (UTF-8); returns its start.
size_t prev_cp(const std::string& s, size_t end, uint32_t& cp) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + i);
  const size_t n = end - i;
  if (n == 1)
    cp = p[0];
  else if (n == 2)
    cp = ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
  else if (n == 3)
    cp = ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
  else
    cp = ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
  return i;
}

// Python's str.isspace for one code point.
bool py_isspace(uint32_t c) {
  return (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Python str.strip(): whitespace code points removed at both ends.
std::string py_strip(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e) {
    uint32_t cp = 0;
    const size_t start = prev_cp(s, e, cp);
    if (!py_isspace(cp)) break;
    e = start;
  }
  while (b < e) {
    const auto c0 = static_cast<unsigned char>(s[b]);
    const size_t n = std::min<size_t>(c0 < 0x80 ? 1 : c0 < 0xE0 ? 2 : c0 < 0xF0 ? 3 : 4, e - b);
    uint32_t cp = 0;
    prev_cp(s, b + n, cp);
    if (!py_isspace(cp)) break;
    b += n;
  }
  return s.substr(b, e - b);
}

// Python len(): code points.
int64_t py_len(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

// ast.literal_eval of a rendered Python list of str / int / float / bool / None (what a
// `{{[a, b]}}` doc_to_choice renders to).
class PyLiteral {
 public:
  explicit PyLiteral(const std::string& s) : s_(s) {}
  std::optional<json> parse() {
    try {
      json v = value();
      ws();
      if (i_ != s_.size()) return std::nullopt;
      return v;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

 private:
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t')) ++i_;
  }
  json value() {
    ws();
    if (i_ >= s_.size()) throw std::runtime_error("end");
    const char c = s_[i_];
    if (c == '[' || c == '(') {
      const char close = c == '[' ? ']' : ')';
      ++i_;
      json a = json::array();
      ws();
      if (i_ < s_.size() && s_[i_] == close) {
        ++i_;
        return a;
      }
      for (;;) {
        a.push_back(value());
        ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          ws();
          if (i_ < s_.size() && s_[i_] == close) {
            ++i_;
            return a;
          }
          continue;
        }
        if (i_ < s_.size() && s_[i_] == close) {
          ++i_;
          return a;
        }
        throw std::runtime_error("list");
      }
    }
    if (c == '\'' || c == '"') return str();
    size_t j = i_;
    while (j < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[j])) || s_[j] == '.' ||
                             s_[j] == '-' || s_[j] == '+'))
      ++j;
    const std::string tok = s_.substr(i_, j - i_);
    i_ = j;
    if (tok == "None") return nullptr;
    if (tok == "True") return true;
    if (tok == "False") return false;
    size_t used = 0;
    if (tok.find_first_of(".eE") == std::string::npos) {
      const long long v = std::stoll(tok, &used);
      if (used == tok.size()) return v;
    }
    const double d = std::stod(tok, &used);
    if (used != tok.size()) throw std::runtime_error("number");
    return d;
  }
  json str() {
    const char q = s_[i_++];
    std::string out;
    while (i_ < s_.size() && s_[i_] != q) {
      char c = s_[i_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) throw std::runtime_error("escape");
      c = s_[i_++];
      auto hex = [&](int n) {
        uint32_t v =
            static_cast<uint32_t>(std::stoul(s_.substr(i_, static_cast<size_t>(n)), nullptr, 16));
        i_ += static_cast<size_t>(n);
        return v;
      };
      uint32_t cp = 0;
      switch (c) {
        case 'n':
          out += '\n';
          continue;
        case 't':
          out += '\t';
          continue;
        case 'r':
          out += '\r';
          continue;
        case '\\':
          out += '\\';
          continue;
        case '\'':
          out += '\'';
          continue;
        case '"':
          out += '"';
          continue;
        case 'x':
          cp = hex(2);
          break;
        case 'u':
          cp = hex(4);
          break;
        case 'U':
          cp = hex(8);
          break;
        default:
          out += '\\';
          out += c;
          continue;
      }
      if (cp < 0x80)
        out += static_cast<char>(cp);
      else if (cp < 0x800) {
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
    }
    if (i_ >= s_.size()) throw std::runtime_error("string");
    ++i_;
    return out;
  }
  const std::string& s_;
  size_t i_ = 0;
};

// The variables a template reads (identifiers in {{ }} / {% %} not after '.', '|' or 'is'),
// less those it assigns itself ({% set x = ... %}, {% for x in ... %}).
std::set<std::string> template_fields(const std::string& src) {
  static const std::set<std::string> skip = {
      "true", "false", "none",  "True", "False",     "None", "and",    "or",
      "not",  "in",    "is",    "if",   "else",      "for",  "endfor", "endif",
      "set",  "loop",  "range", "dict", "namespace", "elif"};
  std::set<std::string> out, local;
  size_t i = 0;
  while ((i = src.find('{', i)) != std::string::npos) {
    if (i + 1 >= src.size() || (src[i + 1] != '{' && src[i + 1] != '%')) {
      ++i;
      continue;
    }
    const std::string close = src[i + 1] == '{' ? "}}" : "%}";
    const size_t end = src.find(close, i + 2);
    if (end == std::string::npos) break;
    const std::string e = src.substr(i + 2, end - i - 2);
    char prev = 0;
    std::string prev_id;
    for (size_t k = 0; k < e.size();) {
      const char c = e[k];
      if (c == '\'' || c == '"') {
        const size_t q = e.find(c, k + 1);
        k = q == std::string::npos ? e.size() : q + 1;
        prev = 'x';
        continue;
      }
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t j = k;
        while (j < e.size() && (std::isalnum(static_cast<unsigned char>(e[j])) || e[j] == '_')) ++j;
        const std::string id = e.substr(k, j - k);
        if (prev_id == "set" || prev_id == "for")
          local.insert(id);
        else if (prev != '.' && prev != '|' && !skip.count(id))
          out.insert(id);
        prev = id == "is" ? '|' : 'x';
        prev_id = id;
        k = j;
        continue;
      }
      if (!std::isspace(static_cast<unsigned char>(c))) {
        prev = c;
        prev_id.clear();
      }
      ++k;
    }
    i = end + 2;
  }
  for (const auto& l : local) out.erase(l);
  return out;
}

// str.replace for every occurrence, left to right.
std::string replace_all(std::string s, const std::string& a, const std::string& b) {
  for (size_t i = 0; (i = s.find(a, i)) != std::string::npos; i += b.size())
    s.replace(i, a.size(), b);
  return s;
}

// Whether the code point starting at s[i] is Python-regex whitespace (\s); its length in n.
bool space_at(const std::string& s, size_t i, size_t& n) {
  const auto c = static_cast<unsigned char>(s[i]);
  n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
  n = std::min(n, s.size() - i);
  uint32_t cp = 0;
  prev_cp(s, i + n, cp);
  return py_isspace(cp);
}

// re.sub(OPEN \s*([^CLOSE]*?)\s* CLOSE, OPEN \1 CLOSE): each OPEN and the next CLOSE after it,
// the whitespace inside them dropped at both ends.
std::string tighten(const std::string& s, char open, char close) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] != open) {
      out += s[i++];
      continue;
    }
    const size_t j = s.find(close, i + 1);
    if (j == std::string::npos) {
      out += s.substr(i);
      break;
    }
    size_t a = i + 1, b = j, n = 0;
    while (a < b && space_at(s, a, n)) a += n;
    while (b > a) {
      uint32_t cp = 0;
      const size_t p = prev_cp(s, b, cp);
      if (!py_isspace(cp)) break;
      b = p;
    }
    out += open;
    out += s.substr(a, b - a);
    out += close;
    i = j + 1;
  }
  return out;
}

// lm-eval tasks/wikitext/preprocess_wikitext.py: wikitext_detokenizer.
std::string wikitext_detokenize(std::string s) {
  s = replace_all(s, "s '", "s'");
  for (size_t i = 0; (i = s.find("/' ", i)) != std::string::npos;) {
    if (i + 4 < s.size() && s[i + 3] >= '0' && s[i + 3] <= '9' && s[i + 4] == '/') {
      s.replace(i, 5, "/'[0-9]/");
      i += 8;
    } else {
      ++i;
    }
  }
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  for (const auto& [a, b] : Pairs{{" @-@ ", "-"},
                                  {" @,@ ", ","},
                                  {" @.@ ", "."},
                                  {" : ", ": "},
                                  {" ; ", "; "},
                                  {" . ", ". "},
                                  {" ! ", "! "},
                                  {" ? ", "? "},
                                  {" , ", ", "}})
    s = replace_all(s, a, b);
  s = tighten(s, '(', ')');
  s = tighten(s, '[', ']');
  s = tighten(s, '{', '}');
  s = tighten(s, '"', '"');
  s = tighten(s, '\'', '\'');
  for (const auto& [a, b] : Pairs{{"= = = =", "===="},
                                  {"= = =", "==="},
                                  {"= =", "=="},
                                  {" \u00b0 ", "\u00b0"},
                                  {" \n", "\n"},
                                  {"\n ", "\n"},
                                  {" N ", " 1 "},
                                  {" 's", "'s"}})
    s = replace_all(s, a, b);
  return s;
}

// len(re.split(r"\s+", s)).
int64_t py_split_len(const std::string& s) {
  int64_t n = 1;
  bool in_sep = false;
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    const bool sp = space_at(s, i, len);
    if (sp && !in_sep) ++n;
    in_sep = sp;
    i += len;
  }
  return n;
}

// A Python `re` pattern as std::regex (ECMAScript): `\` before a punctuation character becomes
// a \xHH escape (ECMAScript refuses some, e.g. `\,`), and a leading `(?s)` makes `.` (outside
// brackets) match newlines too. Enough for lm-eval's filters and regexes_to_ignore.
std::regex py_regex(const std::string& pat, const std::string& where) {
  std::string p = pat, out;
  bool dotall = false;
  if (p.rfind("(?s)", 0) == 0) {
    dotall = true;
    p = p.substr(4);
  }
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const auto n = static_cast<unsigned char>(p[i + 1]);
      if (!std::isalnum(n) && n < 0x80) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", n);
        out += buf;
      } else {
        out += c;
        out += p[i + 1];
      }
      ++i;
      continue;
    }
    if (c == '[') in_class = true;
    if (c == ']') in_class = false;
    if (c == '.' && dotall && !in_class) {
      out += "[\\s\\S]";
      continue;
    }
    out += c;
  }
  try {
    return std::regex(out, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw FormatError(ErrorContext().key(where),
                      "regex '" + pat + "' is not supported: " + std::string(e.what()));
  }
}

// re.findall then lm-eval's RegexFilter: the group_select-th match (negative from the end);
// with several groups the first non-empty one; stripped; the fallback when nothing matches.
std::string regex_filter(const std::string& text, const std::regex& re, int64_t group_select,
                         const std::string& fallback) {
  std::vector<std::smatch> ms;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
       ++it)
    ms.push_back(*it);
  if (ms.empty()) return fallback;
  const int64_t n = static_cast<int64_t>(ms.size());
  const int64_t k = group_select < 0 ? n + group_select : group_select;
  if (k < 0 || k >= n) return fallback;
  const auto& m = ms[static_cast<size_t>(k)];
  std::string r;
  if (m.size() <= 1) {
    r = m.str(0);
  } else if (m.size() == 2) {
    r = m.str(1);
  } else {
    bool found = false;
    for (size_t g = 1; g < m.size(); ++g)
      if (m[g].matched && m[g].length() > 0) {
        r = m.str(g);
        found = true;
        break;
      }
    if (!found) return fallback;
  }
  const auto b = r.find_first_not_of(" \t\n\r\f\v");
  if (b == std::string::npos) return "";
  return r.substr(b, r.find_last_not_of(" \t\n\r\f\v") - b + 1);
}

struct GenFilter {
  std::string name;
  struct Step {
    std::regex re;
    int64_t group_select = 0;
    std::string fallback = "[invalid]";
  };
  std::vector<Step> steps;  // regex steps (take_first is a no-op for one response)
};

struct ExactMatch {
  std::vector<std::regex> ignore;
  bool ignore_case = false, ignore_punctuation = false;
  double score(std::string pred, std::string ref) const {
    for (const auto& re : ignore) {
      pred = std::regex_replace(pred, re, "");
      ref = std::regex_replace(ref, re, "");
    }
    auto fold = [&](std::string& s) {
      if (ignore_case)
        for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (ignore_punctuation)
        s.erase(std::remove_if(s.begin(), s.end(),
                               [](char c) { return std::ispunct(static_cast<unsigned char>(c)); }),
                s.end());
    };
    fold(pred);
    fold(ref);
    return pred == ref ? 1.0 : 0.0;
  }
};

// ---- the task ----

struct Doc {
  json doc;
  std::string file;
  int64_t row = 0;
};

class Task {
 public:
  Task(std::string name, json cfg, std::string file, const std::string& data_dir)
      : name_(std::move(name)), cfg_(std::move(cfg)), file_(std::move(file)), data_dir_(data_dir) {
    output_type_ = cfg_.value("output_type", "multiple_choice");
    if (output_type_ != "multiple_choice" && output_type_ != "loglikelihood" &&
        output_type_ != "loglikelihood_rolling" && output_type_ != "generate_until")
      throw UnsupportedError(ErrorContext().file(file_).key("output_type"),
                             "task " + name_ + ": output_type '" + output_type_ +
                                 "' is not supported (multiple_choice, loglikelihood, "
                                 "loglikelihood_rolling, generate_until)");
    if (cfg_.contains("process_docs")) {
      const json& p = cfg_["process_docs"];
      if (p.is_object() && p.contains("!tag"))
        throw UnsupportedError(ErrorContext().file(file_).key("process_docs"),
                               "task " + name_ + ": Python functions (" +
                                   p["!tag"].get<std::string>() +
                                   ") are not supported; use a built-in: hellaswag, "
                                   "wikitext, winogrande");
      process_docs_ = p.is_string() ? p.get<std::string>() : "";
      if (process_docs_ != "hellaswag" && process_docs_ != "wikitext" &&
          process_docs_ != "winogrande")
        throw UnsupportedError(ErrorContext().file(file_).key("process_docs"),
                               "task " + name_ + ": unknown built-in '" + process_docs_ +
                                   "' (hellaswag, wikitext, winogrande)");
    }
    if (cfg_.contains("process_results")) {
      const json& p = cfg_["process_results"];
      if (p.is_object() && p.contains("!tag"))
        throw UnsupportedError(ErrorContext().file(file_).key("process_results"),
                               "task " + name_ + ": Python functions (" +
                                   p["!tag"].get<std::string>() +
                                   ") are not supported; use a built-in: truthfulqa_mc2");
      process_results_ = p.is_string() ? p.get<std::string>() : "";
      if (process_results_ != "truthfulqa_mc2")
        throw UnsupportedError(
            ErrorContext().file(file_).key("process_results"),
            "task " + name_ + ": unknown built-in '" + process_results_ + "' (truthfulqa_mc2)");
      if (output_type_ != "multiple_choice")
        throw UnsupportedError(ErrorContext().file(file_).key("process_results"),
                               "task " + name_ + ": truthfulqa_mc2 needs multiple_choice");
    }
    for (const char* k : {"doc_to_text", "doc_to_target", "doc_to_choice", "description"})
      if (cfg_.contains(k) && cfg_[k].is_object())
        throw UnsupportedError(ErrorContext().file(file_).key(k),
                               "task " + name_ + ": Python functions are not supported here");
    if (!cfg_.contains("doc_to_text") &&
        (output_type_ == "multiple_choice" || output_type_ == "loglikelihood"))
      throw FormatError(ErrorContext().file(file_).key("doc_to_text"),
                        "task " + name_ + " needs doc_to_text");
    if (cfg_.contains("metric_list")) {
      if (!cfg_["metric_list"].is_array())
        throw FormatError(ErrorContext().file(file_).key("metric_list"), "must be a list");
      for (const auto& m : cfg_["metric_list"]) {
        if (!m.is_object() || !m.contains("metric") || !m["metric"].is_string())
          throw FormatError(ErrorContext().file(file_).key("metric_list"),
                            "each entry needs metric: NAME");
        metrics_.push_back(m["metric"].get<std::string>());
      }
    } else if (output_type_ == "multiple_choice") {
      metrics_ = {"acc", "acc_norm"};
    } else if (output_type_ == "generate_until") {
      metrics_ = {"exact_match"};
    } else if (output_type_ == "loglikelihood") {
      metrics_ = {"perplexity", "acc"};
    } else {
      metrics_ = {"word_perplexity", "byte_perplexity", "bits_per_byte"};
    }
    static const std::set<std::string> mc = {"acc", "acc_norm", "acc_bytes"},
                                       roll = {"word_perplexity", "byte_perplexity",
                                               "bits_per_byte"};
    static const std::set<std::string> gen = {"exact_match"}, ll = {"perplexity", "acc"};
    for (const auto& m : metrics_)
      if (!(output_type_ == "multiple_choice"  ? mc
            : output_type_ == "generate_until" ? gen
            : output_type_ == "loglikelihood"  ? ll
                                               : roll)
               .count(m))
        throw UnsupportedError(
            ErrorContext().file(file_).key("metric_list"),
            "task " + name_ + ": metric '" + m + "' is not supported for " + output_type_);
    target_delimiter_ = cfg_.value("target_delimiter", " ");
    fewshot_delimiter_ = cfg_.value("fewshot_delimiter", "\n\n");
    if (cfg_.contains("fewshot_config") && cfg_["fewshot_config"].is_object())
      sampler_ = cfg_["fewshot_config"].value("sampler", "default");
    if (sampler_ != "default" && sampler_ != "first_n")
      throw UnsupportedError(
          ErrorContext().file(file_).key("fewshot_config.sampler"),
          "task " + name_ + ": sampler '" + sampler_ + "' is not supported (default, first_n)");
    if (output_type_ == "generate_until") parse_generation();
  }

  // generate_until: generation_kwargs, filter_list and exact_match's options.
  void parse_generation() {
    const json g = cfg_.value("generation_kwargs", json::object());
    if (!g.is_object())
      throw FormatError(ErrorContext().file(file_).key("generation_kwargs"), "must be a mapping");
    if (g.value("do_sample", false) && g.value("temperature", 0.0) != 0.0)
      throw UnsupportedError(ErrorContext().file(file_).key("generation_kwargs.do_sample"),
                             "task " + name_ + ": only greedy generation is supported");
    if (g.contains("until")) until_ = as_list(g["until"]);
    for (const char* k : {"max_gen_toks", "max_new_tokens", "max_tokens"})
      if (g.contains(k)) {
        max_gen_toks_ = g[k].get<int64_t>();
        break;
      }
    if (cfg_.contains("filter_list")) {
      for (const auto& f : cfg_["filter_list"]) {
        GenFilter gf;
        gf.name = f.value("name", "none");
        for (const auto& st : f.value("filter", json::array())) {
          const std::string fn = st.value("function", "");
          if (fn == "take_first") continue;
          if (fn != "regex")
            throw UnsupportedError(ErrorContext().file(file_).key("filter_list"),
                                   "task " + name_ + ": filter function '" + fn +
                                       "' is not supported (regex, take_first)");
          GenFilter::Step step;
          step.re = py_regex(st.value("regex_pattern", std::string("#### (\\-?[0-9\\.\\,]+)")),
                             "filter_list." + gf.name);
          step.group_select = st.value("group_select", int64_t{0});
          step.fallback = st.value("fallback", std::string("[invalid]"));
          gf.steps.push_back(std::move(step));
        }
        filters_.push_back(std::move(gf));
      }
    } else {
      filters_.push_back({"none", {}});
    }
    for (const auto& m : cfg_.value("metric_list", json::array()))
      if (m.value("metric", "") == "exact_match") {
        em_.ignore_case = m.value("ignore_case", false);
        em_.ignore_punctuation = m.value("ignore_punctuation", false);
        for (const auto& r : m.value("regexes_to_ignore", json::array()))
          em_.ignore.push_back(py_regex(r.get<std::string>(), "regexes_to_ignore"));
      }
  }
  const std::vector<std::string>& until() const { return until_; }
  int64_t max_gen_toks() const { return max_gen_toks_; }
  const std::vector<GenFilter>& filters() const { return filters_; }
  const ExactMatch& exact_match() const { return em_; }

  const std::string& name() const { return name_; }
  const json& config() const { return cfg_; }
  const std::string& output_type() const { return output_type_; }
  const std::vector<std::string>& metrics() const { return metrics_; }
  const std::string& target_delimiter() const { return target_delimiter_; }

  std::optional<std::string> split_key(const char* k) const {
    if (cfg_.contains(k) && cfg_[k].is_string()) return cfg_[k].get<std::string>();
    return std::nullopt;
  }
  // lm-eval: the test split when there is one, else validation.
  std::string eval_split() const {
    if (auto s = split_key("test_split")) return *s;
    if (auto s = split_key("validation_split")) return *s;
    throw FormatError(ErrorContext().file(file_),
                      "task " + name_ + " names neither test_split nor validation_split");
  }
  std::string fewshot_split() const {
    if (auto s = split_key("fewshot_split")) return *s;
    if (auto s = split_key("training_split")) return *s;
    if (auto s = split_key("validation_split")) return *s;
    return eval_split();
  }
  // lm-eval passes the evaluated doc to the sampler (to leave it out) when fewshot_split equals
  // test_split, both possibly unset.
  bool fewshot_excludes_doc() const {
    return split_key("fewshot_split") == split_key("test_split");
  }

  // The split's documents (process_docs applied to the first max_docs only).
  std::vector<Doc> docs(const std::string& split, size_t max_docs = SIZE_MAX,
                        int64_t* total = nullptr) const {
    if (!cfg_.contains("data_files") || !cfg_["data_files"].is_object())
      throw FormatError(ErrorContext().file(file_).key("data_files"),
                        "task " + name_ + " lists no data_files");
    if (!cfg_["data_files"].contains(split))
      throw NotFoundError(ErrorContext().file(file_).key("data_files"),
                          "task " + name_ + " has no data file for split '" + split + "'");
    std::vector<Doc> out;
    auto rows = load_split(cfg_["data_files"][split], data_dir_, name_ + "/" + split);
    if (total) *total = static_cast<int64_t>(rows.size());
    for (auto& r : rows) {
      if (out.size() >= max_docs) break;
      Doc d{std::move(r.doc), std::move(r.file), r.row};
      if (process_docs_ == "hellaswag") d.doc = hellaswag(d);
      if (process_docs_ == "winogrande") d.doc = winogrande(d);
      if (process_docs_ == "wikitext") {
        if (!d.doc.contains("page") || !d.doc["page"].is_string())
          throw_row(d, "process_docs", "the row has no text field 'page' (wikitext needs it)");
        d.doc["detokenized"] = wikitext_detokenize(d.doc["page"].get<std::string>());
      }
      out.push_back(std::move(d));
    }
    return out;
  }

  // ---- lm-eval's doc_to_* ----
  std::string doc_to_text(const Doc& d) const {
    const json& t = cfg_["doc_to_text"];
    if (t.is_string() && d.doc.contains(t.get<std::string>())) {
      const json& v = d.doc[t.get<std::string>()];
      return v.is_string() ? v.get<std::string>() : v.dump();
    }
    if (!t.is_string())
      throw FormatError(ErrorContext().file(file_).key("doc_to_text"), "must be a string");
    return render(t.get<std::string>(), d, "doc_to_text");
  }
  // lm-eval's multiple-input tasks (winogrande): doc_to_text gives an integer, the gold index
  // into the choices, which are then the contexts (doc_to_target the shared continuation).
  std::optional<int64_t> doc_to_text_index(const Doc& d) const {
    const json& t = cfg_["doc_to_text"];
    if (t.is_number_integer()) return t.get<int64_t>();
    if (t.is_string() && d.doc.contains(t.get<std::string>()) &&
        d.doc[t.get<std::string>()].is_number_integer())
      return d.doc[t.get<std::string>()].get<int64_t>();
    return std::nullopt;
  }
  std::string description(const Doc& d) const {
    if (!cfg_.contains("description") || !cfg_["description"].is_string()) return "";
    const std::string s = cfg_["description"].get<std::string>();
    if (d.doc.contains(s) && d.doc[s].is_string()) return d.doc[s].get<std::string>();
    return render(s, d, "description");
  }
  std::vector<std::string> doc_to_choice(const Doc& d) const {
    if (!cfg_.contains("doc_to_choice"))
      throw FormatError(ErrorContext().file(file_).key("doc_to_choice"),
                        "task " + name_ + " (multiple_choice) needs doc_to_choice");
    const json& c = cfg_["doc_to_choice"];
    json list;
    if (c.is_array()) {
      list = c;
    } else if (c.is_object()) {
      list = json::array();
      for (const auto& [k, v] : c.items()) list.push_back(v);
    } else if (c.is_string() && d.doc.contains(c.get<std::string>())) {
      list = d.doc[c.get<std::string>()];
    } else if (c.is_string()) {
      const std::string s = render(c.get<std::string>(), d, "doc_to_choice");
      auto v = PyLiteral(s).parse();
      if (!v) throw_row(d, "doc_to_choice", "rendered '" + s + "', not a Python list");
      list = *v;
    }
    if (!list.is_array()) throw_row(d, "doc_to_choice", "is not a list of choices");
    std::vector<std::string> out;
    for (const auto& x : list) out.push_back(x.is_string() ? x.get<std::string>() : x.dump());
    return out;
  }
  // An index into the choices (multiple_choice) or a string (rolling: the text).
  json doc_to_target(const Doc& d, bool digits_as_index = true) const {
    if (!cfg_.contains("doc_to_target"))
      throw FormatError(ErrorContext().file(file_).key("doc_to_target"),
                        "task " + name_ + " needs doc_to_target");
    const json& t = cfg_["doc_to_target"];
    if (t.is_number_integer()) return t;
    if (!t.is_string())
      throw FormatError(ErrorContext().file(file_).key("doc_to_target"),
                        "must be a string or an integer");
    const std::string s = t.get<std::string>();
    json v;
    if (d.doc.contains(s)) {
      v = d.doc[s];
    } else {
      if (template_fields(s).empty() && s.find("{{") == std::string::npos)
        throw_row(d, "doc_to_target", "the row has no field '" + s + "'");
      v = render(s, d, "doc_to_target");
    }
    // A digit string is an index when there are choices (lm-eval does so for rendered
    // templates; CSV files hold every value as a string).
    if (v.is_string() && output_type_ == "multiple_choice" && digits_as_index) {
      const std::string x = v.get<std::string>();
      if (!x.empty() &&
          std::all_of(x.begin(), x.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
        return std::stoll(x);
    }
    return v;
  }

  [[noreturn]] void throw_row(const Doc& d, const std::string& key, const std::string& msg) const {
    throw FormatError(ErrorContext().file(d.file).key(key),
                      "task " + name_ + ", row " + std::to_string(d.row) + ": " + msg);
  }

 private:
  std::string render(const std::string& src, const Doc& d, const char* key) const {
    for (const auto& f : template_fields(src))
      if (!d.doc.contains(f))
        throw_row(d, key, "the row has no field '" + f + "' (" + key + " reads it)");
    auto it = cache_.find(src);
    if (it == cache_.end())
      // lm-eval's Jinja2 environment keeps a trailing newline; ohm's (transformers') drops one.
      it = cache_.emplace(src, jinja::Template::parse(src + "\n", name_ + ":" + key)).first;
    try {
      return it->second.render(d.doc);
    } catch (const Error& e) {
      throw_row(d, key, e.what());
    }
  }

  // lm-eval tasks/winogrande/preprocess_winogrande.py as fields: gold = doc_to_text (answer
  // "1"/"2" -> 0/1), contexts = doc_to_choice (the sentence up to the first "_" followed by
  // each option), continuation = doc_to_target (the text after "_", str.strip()ped).
  json winogrande(const Doc& d) const {
    for (const char* f : {"sentence", "option1", "option2", "answer"})
      if (!d.doc.contains(f) || !d.doc[f].is_string())
        throw_row(d, "process_docs",
                  std::string("the row has no text field '") + f + "' (winogrande needs it)");
    const std::string s = d.doc["sentence"].get<std::string>();
    const size_t idx = s.find('_');
    if (idx == std::string::npos) throw_row(d, "process_docs", "the sentence has no '_'");
    const std::string a = d.doc["answer"].get<std::string>();
    if (a != "1" && a != "2")
      throw_row(d, "process_docs", "answer must be \"1\" or \"2\", got \"" + a + "\"");
    json out = d.doc;
    out["gold"] = a == "1" ? 0 : 1;
    out["contexts"] = json::array({s.substr(0, idx) + d.doc["option1"].get<std::string>(),
                                   s.substr(0, idx) + d.doc["option2"].get<std::string>()});
    out["continuation"] = py_strip(s.substr(idx + 1));
    return out;
  }

  // lm-eval tasks/hellaswag/utils.py: process_docs.
  json hellaswag(const Doc& d) const {
    for (const char* f : {"activity_label", "ctx_a", "ctx_b", "endings", "label"})
      if (!d.doc.contains(f))
        throw_row(d, "process_docs",
                  std::string("the row has no field '") + f + "' (hellaswag needs it)");
    auto capitalize = [](std::string s) {
      // str.capitalize(): the first character upper-cased, the rest lower-cased (ASCII here;
      // HellaSwag's contexts are English).
      for (size_t i = 0; i < s.size(); ++i)
        s[i] = static_cast<char>(i == 0 ? std::toupper(static_cast<unsigned char>(s[i]))
                                        : std::tolower(static_cast<unsigned char>(s[i])));
      return s;
    };
    auto preprocess = [](std::string t) {
      // strip, " [title]" -> ". ", drop "[...]" (non-greedy), "  " -> " " (one pass).
      const auto b = t.find_first_not_of(" \t\n\r\f\v");
      const auto e = t.find_last_not_of(" \t\n\r\f\v");
      t = b == std::string::npos ? "" : t.substr(b, e - b + 1);
      std::string u;
      for (size_t i = 0; i < t.size();) {
        if (t.compare(i, 8, " [title]") == 0) {
          u += ". ";
          i += 8;
        } else {
          u += t[i++];
        }
      }
      std::string v;
      for (size_t i = 0; i < u.size();) {
        if (u[i] == '[') {
          const size_t close = u.find(']', i + 1);
          const size_t nl = u.find('\n', i + 1);
          if (close != std::string::npos && (nl == std::string::npos || nl > close)) {
            i = close + 1;
            continue;
          }
        }
        v += u[i++];
      }
      std::string w;
      for (size_t i = 0; i < v.size();) {
        if (v.compare(i, 2, "  ") == 0) {
          w += ' ';
          i += 2;
        } else {
          w += v[i++];
        }
      }
      return w;
    };
    const std::string ctx =
        d.doc["ctx_a"].get<std::string>() + " " + capitalize(d.doc["ctx_b"].get<std::string>());
    json out = d.doc;
    out["query"] = preprocess(d.doc["activity_label"].get<std::string>() + ": " + ctx);
    json choices = json::array();
    for (const auto& e : d.doc["endings"]) choices.push_back(preprocess(e.get<std::string>()));
    out["choices"] = choices;
    const json& lab = d.doc["label"];
    out["gold"] = lab.is_string() ? std::stoll(lab.get<std::string>()) : lab.get<int64_t>();
    return out;
  }

  std::string name_;
  json cfg_;
  std::string file_, data_dir_;
  std::string output_type_, process_docs_, process_results_, sampler_ = "default";
  std::string target_delimiter_, fewshot_delimiter_;
  std::vector<std::string> metrics_;
  std::vector<std::string> until_;
  int64_t max_gen_toks_ = 256;
  std::vector<GenFilter> filters_;
  ExactMatch em_;
  mutable std::unordered_map<std::string, jinja::Template> cache_;

 public:
  const std::string& sampler() const { return sampler_; }
  const std::string& process_results() const { return process_results_; }
  const std::string& fewshot_delimiter() const { return fewshot_delimiter_; }
  const std::string& file() const { return file_; }
};

// lm-eval's HF backend: tok_encode and _encode_pair.
std::vector<TokenId> tok_encode(const TextLM& lm, const std::string& s) {
  const bool starts_with_prefix =
      !lm.prefix_text.empty() && s.compare(0, lm.prefix_text.size(), lm.prefix_text) == 0;
  return lm.encode(s, !starts_with_prefix);
}

LLRequest encode_request(const TextLM& lm, std::string context, std::string continuation) {
  LLRequest r;
  if (context.empty()) {
    auto cont = lm.encode(continuation, false);
    if (!cont.empty() && cont[0] == lm.prefix_token) {
      r.context = {cont[0]};
      r.continuation.assign(cont.begin() + 1, cont.end());
    } else {
      r.context = {lm.prefix_token};
      r.continuation = std::move(cont);
    }
    return r;
  }
  // Trailing whitespace of the context moves to the continuation.
  size_t end = context.size();
  while (end > 0) {
    uint32_t cp = 0;
    const size_t start = prev_cp(context, end, cp);
    if (!py_isspace(cp)) break;
    end = start;
  }
  if (end < context.size()) {
    continuation = context.substr(end) + continuation;
    context.resize(end);
  }
  auto whole = tok_encode(lm, context + continuation);
  r.context = tok_encode(lm, context);
  const size_t n = std::min(r.context.size(), whole.size());
  r.continuation.assign(whole.begin() + static_cast<std::ptrdiff_t>(n), whole.end());
  return r;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

// lm-eval's bootstrap_stderr for the perplexity aggregation (metrics.py): iters / 1000 chunks,
// chunk i drawing 1000 resamples with random.Random(i).choices(xs, k=len(xs)), the statistic
// exp(-mean) of each, then the sample standard deviation of the statistics; Python's sums
// (left to right) throughout.
json bootstrap_perplexity_stderr(const std::vector<double>& xs, int64_t iters = 100000) {
  if (xs.empty()) return "N/A";
  const int64_t chunk = std::min<int64_t>(1000, iters);
  const double n = static_cast<double>(xs.size());
  std::vector<double> stats;
  stats.reserve(static_cast<size_t>(iters));
  for (int64_t i = 0; i < iters / chunk; ++i) {
    PyRandom rnd(static_cast<uint64_t>(i));
    for (int64_t r = 0; r < chunk; ++r) {
      double sum = 0;
      for (size_t k = 0; k < xs.size(); ++k)
        sum += xs[static_cast<size_t>(std::floor(rnd.random() * n))];
      stats.push_back(std::exp(-(sum / n)));
    }
  }
  if (stats.size() < 2) return "N/A";
  double mu = 0;
  for (double x : stats) mu += x;
  mu /= static_cast<double>(stats.size());
  double ss = 0;
  for (double x : stats) ss += (x - mu) * (x - mu);
  return std::sqrt(ss / static_cast<double>(stats.size() - 1));
}

json stderr_of(const std::vector<double>& v) {
  if (v.size() < 2) return "N/A";
  const double mu = mean(v);
  double ss = 0;
  for (double x : v) ss += (x - mu) * (x - mu);
  return std::sqrt(ss / static_cast<double>(v.size() - 1)) /
         std::sqrt(static_cast<double>(v.size()));
}

// Per task: its docs, requests and per-doc metric values.
struct TaskRun {
  std::unique_ptr<Task> task;
  std::vector<Doc> docs;
  int64_t n_original = 0;
  int num_fewshot = 0;
  std::vector<std::string> contexts;              // per doc
  std::vector<std::vector<std::string>> choices;  // per doc (multiple_choice)
  std::vector<json> targets;                      // per doc (multiple_choice: the gold index)
  std::vector<json> logged_targets;               // per doc, when not targets (winogrande)
  bool multiple_input = false;                    // contexts vary, continuation shared
  std::vector<std::vector<size_t>> req_index;     // per doc: indices into all requests
  std::vector<std::vector<std::pair<std::string, std::string>>> args;  // per doc
  std::map<std::string, std::vector<double>> values;                   // metric -> per doc
  std::vector<double> ll_sum;                                          // rolling: per doc
  std::vector<double> words, bytes;                                    // rolling: per doc
  std::vector<size_t> gen_index;                                       // generate_until: per doc
  std::vector<std::string> generated;                                  // generate_until: per doc
};

}  // namespace

// ---------------- registry ----------------

TaskRegistry TaskRegistry::load(const std::vector<std::string>& dirs) {
  TaskRegistry r;
  for (const auto& dir : dirs) {
    if (dir.empty()) continue;
    if (!fs::is_directory(dir))
      throw NotFoundError(ErrorContext().file(dir), "task directory not found");
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file() && e.path().extension() == ".yaml") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& p : files) {
      const std::string path = p.string();
      json j = load_with_includes(path);
      if (j.contains("group")) {
        Group g;
        if (!j["group"].is_string())
          throw FormatError(ErrorContext().file(path).key("group"), "must be a name");
        g.name = j["group"].get<std::string>();
        g.alias = j.value("group_alias", g.name);
        g.file = path;
        if (!j.contains("task"))
          throw FormatError(ErrorContext().file(path).key("task"), "a group lists its tasks");
        g.members = as_list(j["task"]);
        if (j.contains("aggregate_metric_list"))
          for (const auto& m : j["aggregate_metric_list"]) {
            if (!m.is_object() || !m.contains("metric"))
              throw FormatError(ErrorContext().file(path).key("aggregate_metric_list"),
                                "each entry needs metric: NAME");
            g.aggregate_metrics.push_back(m["metric"].get<std::string>());
            g.weight_by_size = m.value("weight_by_size", true);
          }
        if (j.contains("metadata") && j["metadata"].is_object())
          g.version = j["metadata"].value("version", json(nullptr));
        r.groups_[g.name] = std::move(g);
        continue;
      }
      if (!j.contains("task") || !j["task"].is_string())
        throw FormatError(ErrorContext().file(path).key("task"),
                          "a task file needs task: NAME (or group: NAME with task: [...])");
      const std::string name = j["task"].get<std::string>();
      for (const auto& tag : as_list(j.value("tag", json(nullptr)))) {
        Group& g = r.groups_[tag];
        if (g.name.empty()) {
          g.name = g.alias = tag;
          g.is_tag = true;
          g.file = path;
        }
        if (g.is_tag && std::find(g.members.begin(), g.members.end(), name) == g.members.end())
          g.members.push_back(name);
      }
      r.tasks_[name] = std::move(j);
      r.files_[name] = path;
    }
  }
  return r;
}

bool TaskRegistry::has(const std::string& name) const {
  return tasks_.count(name) || groups_.count(name);
}
std::vector<std::string> TaskRegistry::task_names() const {
  std::vector<std::string> v;
  for (const auto& [k, _] : tasks_) v.push_back(k);
  return v;
}
std::vector<std::string> TaskRegistry::group_names() const {
  std::vector<std::string> v;
  for (const auto& [k, _] : groups_) v.push_back(k);
  return v;
}
const nlohmann::ordered_json& TaskRegistry::task_config(const std::string& name) const {
  auto it = tasks_.find(name);
  if (it == tasks_.end()) throw NotFoundError(ErrorContext().key(name), "unknown task");
  return it->second;
}
const std::string& TaskRegistry::task_file(const std::string& name) const {
  return files_.at(name);
}
const TaskRegistry::Group* TaskRegistry::group(const std::string& name) const {
  auto it = groups_.find(name);
  return it == groups_.end() ? nullptr : &it->second;
}

std::string builtin_task_dir() {
  if (const char* e = std::getenv("OHM_EVAL_TASKS"); e && *e) return e;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const fs::path& p : {exe.parent_path() / ".." / "share" / "ohm" / "eval-tasks",
                              exe.parent_path() / "eval-tasks"})
      if (fs::is_directory(p)) return fs::weakly_canonical(p).string();
  }
  return OHM_EVAL_TASKS_SOURCE_DIR;
}

// ---------------- evaluate ----------------

nlohmann::ordered_json evaluate(TextLM& lm, const TaskRegistry& reg, const EvalOptions& opt) {
  if (!lm.model) throw InvalidArgument(ErrorContext().key("model"), "no model");
  if (opt.limit && *opt.limit < 1)
    throw InvalidArgument(
        ErrorContext().key("limit"),
        "must be at least 1 (the number of documents per task), got " + std::to_string(*opt.limit));
  if (opt.num_fewshot && *opt.num_fewshot < 0)
    throw InvalidArgument(ErrorContext().key("num_fewshot"), "must be >= 0");
  if (opt.tasks.empty()) throw InvalidArgument(ErrorContext().key("tasks"), "no task given");
  if (lm.max_length <= 0) lm.max_length = default_max_length(*lm.model);

  // Expand the names into leaf tasks, remembering the group tree (name -> members, depth).
  std::vector<std::string> leaves;
  std::vector<std::pair<std::string, int>> report_order;  // (name, depth) for groups and tasks
  std::map<std::string, std::vector<std::string>> group_leaves;  // group -> its leaf tasks
  std::map<std::string, std::vector<std::string>> group_members;
  std::function<void(const std::string&, int, std::vector<std::string>&)> expand =
      [&](const std::string& n, int depth, std::vector<std::string>& acc) {
        if (depth > 16) throw FormatError(ErrorContext().key(n), "groups nest too deeply");
        if (const auto* g = reg.group(n)) {
          std::vector<std::string> mine;
          if (!g->is_tag) report_order.emplace_back(n, depth);
          for (const auto& m : g->members) {
            if (!reg.has(m))
              throw NotFoundError(ErrorContext().file(g->file).key("task"),
                                  "group " + n + " lists unknown task '" + m + "'");
            expand(m, g->is_tag ? depth : depth + 1, mine);
          }
          if (!g->is_tag) {
            group_leaves[n] = mine;
            group_members[n] = g->members;
          }
          acc.insert(acc.end(), mine.begin(), mine.end());
          return;
        }
        if (!reg.has(n)) {
          std::string hint;
          for (const auto& t : reg.task_names())
            if (t.find(n) != std::string::npos || n.find(t) != std::string::npos)
              hint += (hint.empty() ? "" : ", ") + t;
          throw NotFoundError(
              ErrorContext().key("tasks"),
              "unknown task '" + n + "'" +
                  (hint.empty() ? std::string() : " (did you mean: " + hint + "?)") +
                  "; `ohm eval --list-tasks` lists them");
        }
        report_order.emplace_back(n, depth);
        acc.push_back(n);
      };
  for (const auto& n : opt.tasks) expand(n, 0, leaves);
  {
    std::vector<std::string> uniq;
    for (const auto& l : leaves)
      if (std::find(uniq.begin(), uniq.end(), l) == uniq.end()) uniq.push_back(l);
    leaves = uniq;
  }

  // Build every task's requests.
  std::vector<TaskRun> runs;
  std::vector<LLRequest> all;
  std::vector<std::vector<TokenId>> gen_ctx;  // generate_until contexts (truncated)
  std::vector<std::vector<std::string>> gen_until;
  std::vector<int64_t> gen_max;
  for (const auto& name : leaves) {
    TaskRun run;
    run.task =
        std::make_unique<Task>(name, reg.task_config(name), reg.task_file(name), opt.data_dir);
    const Task& t = *run.task;
    run.num_fewshot = opt.num_fewshot ? *opt.num_fewshot : t.config().value("num_fewshot", 0);
    run.docs = t.docs(t.eval_split(), opt.limit ? static_cast<size_t>(*opt.limit) : SIZE_MAX,
                      &run.n_original);
    if (t.output_type() == "loglikelihood_rolling") {
      run.num_fewshot = 0;
      for (const auto& d : run.docs) {
        const json tgt = t.doc_to_target(d);
        const std::string text = tgt.is_string() ? tgt.get<std::string>() : tgt.dump();
        // lm-eval's wikitext counts words on the original page when it has one.
        std::string orig = text;
        if (t.config().contains("word_count_field") &&
            d.doc.contains(t.config()["word_count_field"].get<std::string>()))
          orig = d.doc[t.config()["word_count_field"].get<std::string>()].get<std::string>();
        const int64_t words = py_split_len(orig);
        run.words.push_back(static_cast<double>(words));
        run.bytes.push_back(static_cast<double>(orig.size()));
        const auto toks = tok_encode(lm, text);
        std::vector<size_t> idx;
        for (auto& w : rolling_windows(toks, lm.prefix_token, lm.max_length)) {
          idx.push_back(all.size());
          all.push_back(std::move(w));
        }
        run.req_index.push_back(std::move(idx));
        run.contexts.push_back("");
        run.targets.push_back(text);
        run.args.push_back({{text, ""}});
      }
      runs.push_back(std::move(run));
      continue;
    }
    // Few-shot pool and sampler state (one generator per task, seeded once, as lm-eval does).
    std::vector<Doc> pool;
    if (run.num_fewshot > 0) pool = t.docs(t.fewshot_split());
    PyRandom rnd(opt.fewshot_seed);
    // lm-eval decides on the first document: an integer doc_to_text makes a multiple-input
    // task (winogrande).
    run.multiple_input = t.output_type() == "multiple_choice" && !run.docs.empty() &&
                         t.doc_to_text_index(run.docs[0]).has_value();
    for (const auto& d : run.docs) {
      std::string ctx = t.description(d);
      if (run.num_fewshot > 0) {
        const auto n = static_cast<size_t>(run.num_fewshot);
        const bool excl = t.fewshot_excludes_doc();
        std::vector<const Doc*> shots;
        if (t.sampler() == "first_n") {
          for (const auto& p : pool)
            if (!excl || p.doc != d.doc) shots.push_back(&p);
          if (shots.size() < n)
            throw InvalidArgument(ErrorContext().file(t.file()).key("num_fewshot"),
                                  "task " + name + ": " + std::to_string(n) +
                                      " few-shot examples asked, the split has " +
                                      std::to_string(shots.size()));
          shots.resize(n);
        } else {
          const size_t k = excl ? n + 1 : n;
          if (k > pool.size())
            throw InvalidArgument(ErrorContext().file(t.file()).key("num_fewshot"),
                                  "task " + name + ": " + std::to_string(n) +
                                      " few-shot examples asked, the split has " +
                                      std::to_string(pool.size()));
          for (size_t i : rnd.sample(pool.size(), k))
            if (!excl || pool[i].doc != d.doc) shots.push_back(&pool[i]);
          if (shots.size() > n) shots.resize(n);
          if (shots.size() < n) {
            std::vector<const Doc*> rest;
            for (const auto& p : pool)
              if (p.doc != d.doc) rest.push_back(&p);
            shots.clear();
            for (size_t i : rnd.sample(rest.size(), n)) shots.push_back(rest[i]);
          }
        }
        for (const Doc* s : shots) {
          std::string q;
          json a;
          if (run.multiple_input) {
            // The example's context with its gold choice, then its continuation.
            const auto ch = t.doc_to_choice(*s);
            const auto gi = t.doc_to_text_index(*s);
            if (!gi || *gi < 0 || *gi >= static_cast<int64_t>(ch.size()))
              t.throw_row(*s, "doc_to_text", "is not an index into the choices");
            q = ch[static_cast<size_t>(*gi)];
            a = t.doc_to_target(*s, false);
          } else {
            q = t.doc_to_text(*s);
            a = t.doc_to_target(*s);
          }
          std::string ans;
          if (a.is_number_integer()) {
            const auto ch = t.doc_to_choice(*s);
            const auto i = a.get<int64_t>();
            if (i < 0 || i >= static_cast<int64_t>(ch.size()))
              t.throw_row(*s, "doc_to_target",
                          "gold index " + std::to_string(i) + " is out of range");
            ans = ch[static_cast<size_t>(i)];
          } else if (a.is_array() && !a.empty()) {
            ans = a[0].is_string() ? a[0].get<std::string>() : a[0].dump();
          } else {
            ans = a.is_string() ? a.get<std::string>() : a.dump();
          }
          ctx += q + t.target_delimiter() + ans + t.fewshot_delimiter();
        }
      }
      if (run.multiple_input) {
        // Partial evaluation: one context per choice, the continuation shared.
        const auto choices = t.doc_to_choice(d);
        const auto gi = t.doc_to_text_index(d);
        if (!gi || *gi < 0 || *gi >= static_cast<int64_t>(choices.size()))
          t.throw_row(d, "doc_to_text", "is not an index into the choices");
        const json tgt = t.doc_to_target(d, false);
        const std::string cont =
            t.target_delimiter() + (tgt.is_string() ? tgt.get<std::string>() : tgt.dump());
        std::vector<size_t> idx;
        std::vector<std::pair<std::string, std::string>> args;
        for (const auto& c : choices) {
          idx.push_back(all.size());
          args.emplace_back(ctx + c, cont);
          all.push_back(encode_request(lm, ctx + c, cont));
        }
        run.contexts.push_back(ctx);
        run.choices.push_back(choices);
        run.targets.push_back(*gi);
        run.logged_targets.push_back(tgt);
        run.req_index.push_back(std::move(idx));
        run.args.push_back(std::move(args));
        continue;
      }
      ctx += t.doc_to_text(d);
      if (t.output_type() == "loglikelihood") {
        // One request: the context and doc_to_target as it is (no target delimiter).
        const json tgt = t.doc_to_target(d);
        const std::string cont = tgt.is_string() ? tgt.get<std::string>() : tgt.dump();
        if (cont.empty()) t.throw_row(d, "doc_to_target", "the continuation is empty");
        run.req_index.push_back({all.size()});
        all.push_back(encode_request(lm, ctx, cont));
        run.contexts.push_back(ctx);
        run.targets.push_back(cont);
        run.args.push_back({{ctx, cont}});
        continue;
      }
      if (t.output_type() == "generate_until") {
        json target = t.doc_to_target(d);
        if (!target.is_string()) target = target.dump();
        std::vector<std::string> until = t.until();
        if (!lm.eos_text.empty() &&
            std::find(until.begin(), until.end(), lm.eos_text) == until.end())
          until.push_back(lm.eos_text);
        auto ids = tok_encode(lm, ctx);
        // lm-eval: the context keeps its last max_length - max_gen_toks tokens.
        const int64_t keep = lm.max_length - t.max_gen_toks();
        if (keep <= 0)
          throw InvalidArgument(
              ErrorContext().file(t.file()).key("max_gen_toks"),
              "task " + name + ": max_gen_toks " + std::to_string(t.max_gen_toks()) +
                  " leaves no room for the context in max_length " + std::to_string(lm.max_length));
        if (static_cast<int64_t>(ids.size()) > keep) ids.erase(ids.begin(), ids.end() - keep);
        run.gen_index.push_back(gen_ctx.size());
        gen_ctx.push_back(std::move(ids));
        gen_until.push_back(until);
        gen_max.push_back(lm.generation_max_new_tokens ? *lm.generation_max_new_tokens
                                                       : t.max_gen_toks());
        json kw = t.config().value("generation_kwargs", json::object());
        kw["until"] = until;
        run.contexts.push_back(ctx);
        run.targets.push_back(target);
        run.req_index.emplace_back();
        run.args.push_back({{ctx, kw.dump()}});
        continue;
      }
      auto choices = t.doc_to_choice(d);
      json target = t.doc_to_target(d);
      std::vector<size_t> idx;
      std::vector<std::pair<std::string, std::string>> args;
      for (const auto& c : choices) {
        idx.push_back(all.size());
        args.emplace_back(ctx, t.target_delimiter() + c);
        all.push_back(encode_request(lm, ctx, t.target_delimiter() + c));
      }
      if (target.is_string()) {
        auto it = std::find(choices.begin(), choices.end(), target.get<std::string>());
        if (it == choices.end())
          t.throw_row(d, "doc_to_target", "the target is not one of the choices");
        target = static_cast<int64_t>(it - choices.begin());
      }
      if (!target.is_number_integer() || target.get<int64_t>() < 0 ||
          target.get<int64_t>() >= static_cast<int64_t>(choices.size()))
        t.throw_row(d, "doc_to_target", "gold " + target.dump() + " is not a choice index");
      run.contexts.push_back(ctx);
      run.choices.push_back(std::move(choices));
      run.targets.push_back(target);
      run.req_index.push_back(std::move(idx));
      run.args.push_back(std::move(args));
    }
    runs.push_back(std::move(run));
  }

  LLOptions llo = opt.ll;
  llo.max_length = lm.max_length;
  if (opt.progress) llo.progress = opt.progress;
  const auto res =
      opt.loglikelihood ? opt.loglikelihood(all) : loglikelihood_tokens(*lm.model, all, llo);
  if (res.size() != all.size())
    throw InvalidArgument(ErrorContext().key("loglikelihood"),
                          "the engine returned " + std::to_string(res.size()) + " results for " +
                              std::to_string(all.size()) + " requests");
  // generate_until: greedy, per context, stopping at EOS, max_gen_toks or a stop sequence.
  std::vector<std::string> gen_text(gen_ctx.size());
  if (!gen_ctx.empty()) {
    if (!lm.decode)
      throw InvalidArgument(ErrorContext().key("decode"), "generate_until needs a decoder");
    int64_t max_new = 0;
    for (int64_t m : gen_max) max_new = std::max(max_new, m);
    const auto gens = generate_greedy(
        *lm.model, gen_ctx, max_new, lm.eos_ids,
        [&](size_t i, const std::vector<TokenId>& g) {
          if (static_cast<int64_t>(g.size()) >= gen_max[i]) return true;
          const std::string s = lm.decode(g);
          for (const auto& u : gen_until[i])
            if (!u.empty() && s.find(u) != std::string::npos) return true;
          return false;
        },
        opt.progress);
    for (size_t i = 0; i < gens.size(); ++i) {
      // Decoded, then cut at the first occurrence of each stop sequence in turn.
      std::string s = lm.decode(gens[i]);
      for (const auto& u : gen_until[i])
        if (!u.empty() && s.find(u) != std::string::npos) s.resize(s.find(u));
      gen_text[i] = s;
    }
  }

  json out = json::object();
  json results = json::object(), groups = json::object(), group_subtasks = json::object(),
       configs = json::object(), versions = json::object(), nshot = json::object(),
       hib = json::object(), nsamples = json::object(), samples = json::object();
  std::map<std::string, TaskRun*> by_name;
  for (auto& run : runs) {
    const Task& t = *run.task;
    by_name[t.name()] = &run;
    json task_samples = json::array();
    for (size_t i = 0; i < run.docs.size(); ++i) {
      json sample = json::object();
      if (t.output_type() == "loglikelihood_rolling") {
        double ll = 0;
        for (size_t r : run.req_index[i]) ll += res[r].logprob;
        run.ll_sum.push_back(ll);
        if (opt.log_samples) {
          sample["doc_id"] = i;
          sample["doc"] = run.docs[i].doc;
          sample["target"] = run.targets[i];
          sample["arguments"] = json::array({json::array({run.targets[i]})});
          sample["resps"] = json::array({json::array({ll})});
          sample["filtered_resps"] = json::array({ll});
          sample["filter"] = "none";
          sample["metrics"] = t.metrics();
          for (const auto& m : t.metrics())
            sample[m] = json::array({ll, m == "word_perplexity" ? run.words[i] : run.bytes[i]});
          task_samples.push_back(sample);
        }
        continue;
      }
      if (t.output_type() == "generate_until") {
        const std::string& text = gen_text[run.gen_index[i]];
        run.generated.push_back(text);
        const std::string ref = run.targets[i].get<std::string>();
        for (const auto& f : t.filters()) {
          std::string out = text;
          for (const auto& st : f.steps)
            out = regex_filter(out, st.re, st.group_select, st.fallback);
          const double em = t.exact_match().score(out, ref);
          run.values["exact_match," + f.name].push_back(em);
          if (opt.log_samples) {
            json smp = json::object();
            smp["doc_id"] = i;
            smp["doc"] = run.docs[i].doc;
            smp["target"] = ref;
            smp["arguments"] = json::array(
                {json::array({run.args[i][0].first, json::parse(run.args[i][0].second)})});
            smp["resps"] = json::array({json::array({text})});
            smp["filtered_resps"] = json::array({out});
            smp["filter"] = f.name;
            smp["metrics"] = json::array({"exact_match"});
            smp["exact_match"] = em;
            task_samples.push_back(smp);
          }
        }
        continue;
      }
      if (t.output_type() == "loglikelihood") {
        const auto& r = res[run.req_index[i][0]];
        std::map<std::string, double> v = {{"perplexity", r.logprob},
                                           {"acc", r.is_greedy ? 1.0 : 0.0}};
        for (const auto& m : t.metrics()) run.values[m].push_back(v[m]);
        if (opt.log_samples) {
          sample["doc_id"] = i;
          sample["doc"] = run.docs[i].doc;
          sample["target"] = run.targets[i];
          sample["arguments"] =
              json::array({json::array({run.args[i][0].first, run.args[i][0].second})});
          sample["resps"] = json::array({json::array({json::array({r.logprob, r.is_greedy})})});
          sample["filtered_resps"] = json::array({json::array({r.logprob, r.is_greedy})});
          sample["filter"] = "none";
          sample["metrics"] = t.metrics();
          for (const auto& m : t.metrics())
            sample[m] = m == "acc" ? json(r.is_greedy ? 1 : 0) : json(v[m]);
          task_samples.push_back(sample);
        }
        continue;
      }
      const auto& ch = run.choices[i];
      std::vector<double> lls;
      for (size_t r : run.req_index[i]) lls.push_back(res[r].logprob);
      auto argmax = [&](auto f) {
        size_t best = 0;
        for (size_t k = 1; k < lls.size(); ++k)
          if (f(k) > f(best)) best = k;
        return static_cast<int64_t>(best);
      };
      const int64_t gold = run.targets[i].get<int64_t>();
      const int64_t pred = argmax([&](size_t k) { return lls[k]; });
      const int64_t pred_norm =
          argmax([&](size_t k) { return lls[k] / static_cast<double>(py_len(ch[k])); });
      const int64_t pred_bytes =
          argmax([&](size_t k) { return lls[k] / static_cast<double>(ch[k].size()); });
      std::map<std::string, double> v = {{"acc", pred == gold ? 1.0 : 0.0},
                                         {"acc_norm", pred_norm == gold ? 1.0 : 0.0},
                                         {"acc_bytes", pred_bytes == gold ? 1.0 : 0.0}};
      if (t.process_results() == "truthfulqa_mc2") {
        // lm-eval's process_results_mc2: exp(LL) normalised over the choices, the mass of
        // those labelled 1 in mc2_targets.labels.
        const json& d = run.docs[i].doc;
        if (!d.contains("mc2_targets") || !d["mc2_targets"].is_object() ||
            !d["mc2_targets"].contains("labels") || !d["mc2_targets"]["labels"].is_array() ||
            d["mc2_targets"]["labels"].size() != lls.size())
          t.throw_row(run.docs[i], "process_results",
                      "mc2_targets.labels must list one 0/1 label per choice");
        double total = 0, mass = 0;
        std::vector<double> probs;
        for (double ll : lls) {
          probs.push_back(std::exp(ll));
          total += probs.back();
        }
        for (size_t k = 0; k < lls.size(); ++k)
          if (d["mc2_targets"]["labels"][k] == 1) mass += probs[k] / total;
        v["acc"] = mass;
      }
      for (const auto& m : t.metrics()) run.values[m].push_back(v[m]);
      if (opt.log_samples) {
        sample["doc_id"] = i;
        sample["doc"] = run.docs[i].doc;
        sample["target"] = run.multiple_input ? run.logged_targets[i] : json(gold);
        json a = json::array(), resps = json::array(), filtered = json::array();
        for (size_t k = 0; k < run.args[i].size(); ++k) {
          a.push_back(json::array({run.args[i][k].first, run.args[i][k].second}));
          const auto& r = res[run.req_index[i][k]];
          resps.push_back(json::array({json::array({r.logprob, r.is_greedy})}));
          filtered.push_back(json::array({r.logprob, r.is_greedy}));
        }
        sample["arguments"] = a;
        sample["resps"] = resps;
        sample["filtered_resps"] = filtered;
        sample["filter"] = "none";
        sample["metrics"] = t.metrics();
        for (const auto& m : t.metrics()) sample[m] = v[m];
        task_samples.push_back(sample);
      }
    }
    json r = json::object();
    r["name"] = t.name();
    r["alias"] = t.config().value("task_alias", t.name());
    r["sample_len"] = static_cast<int64_t>(run.docs.size());
    if (t.output_type() == "loglikelihood_rolling") {
      double ll = 0, w = 0, b = 0;
      for (size_t i = 0; i < run.ll_sum.size(); ++i) {
        ll += run.ll_sum[i];
        w += run.words[i];
        b += run.bytes[i];
      }
      for (const auto& m : t.metrics()) {
        double val = m == "word_perplexity"   ? std::exp(-ll / w)
                     : m == "byte_perplexity" ? std::exp(-ll / b)
                                              : -ll / (b * std::log(2.0));
        r[m + ",none"] = val;
        r[m + "_stderr,none"] = "N/A";
      }
    } else if (t.output_type() == "generate_until") {
      for (const auto& f : t.filters()) {
        const auto& v = run.values["exact_match," + f.name];
        r["exact_match," + f.name] = mean(v);
        r["exact_match_stderr," + f.name] = stderr_of(v);
      }
    } else {
      for (const auto& m : t.metrics()) {
        const auto& v = run.values[m];
        if (m == "perplexity") {
          r[m + ",none"] = std::exp(-mean(v));
          r[m + "_stderr,none"] = bootstrap_perplexity_stderr(v);
        } else {
          r[m + ",none"] = mean(v);
          r[m + "_stderr,none"] = stderr_of(v);
        }
      }
    }
    results[t.name()] = r;
    json c = t.config();
    c["num_fewshot"] = run.num_fewshot;
    c.erase("include");
    configs[t.name()] = c;
    versions[t.name()] = t.config().contains("metadata") && t.config()["metadata"].is_object()
                             ? t.config()["metadata"].value("version", json(nullptr))
                             : json(nullptr);
    nshot[t.name()] = run.num_fewshot;
    json h = json::object();
    for (const auto& m : t.metrics())
      h[m] = !(m == "word_perplexity" || m == "byte_perplexity" || m == "bits_per_byte" ||
               m == "perplexity");
    hib[t.name()] = h;
    nsamples[t.name()] = {{"original", run.n_original},
                          {"effective", static_cast<int64_t>(run.docs.size())}};
    if (opt.log_samples) samples[t.name()] = task_samples;
  }

  // Groups: size-weighted means of their leaf tasks, pooled standard errors (lm-eval's
  // aggregate_subtask_metrics / pooled_sample_stderr).
  json ordered_results = json::object();
  for (const auto& [name, depth_unused] : report_order) {
    (void)depth_unused;
    if (results.contains(name)) {
      ordered_results[name] = results[name];
      continue;
    }
    const auto* g = reg.group(name);
    if (!g) continue;
    json r = json::object();
    r["alias"] = g->alias;
    r["name"] = name;
    int64_t group_len = 0;
    for (const auto& leaf : group_leaves[name])
      group_len += static_cast<int64_t>(by_name[leaf]->docs.size());
    r["sample_len"] = group_len;
    json counts = json::object();
    for (const auto& m : g->aggregate_metrics) {
      double num = 0, den = 0, pooled = 0;
      int64_t n_tasks = 0;
      bool ok = true;
      for (const auto& leaf : group_leaves[name]) {
        const TaskRun* run = by_name[leaf];
        if (!run->values.count(m)) {
          ok = false;
          break;
        }
        const double size = static_cast<double>(run->docs.size());
        const double w = g->weight_by_size ? size : 1.0;
        num += mean(run->values.at(m)) * w;
        den += w;
        const json se = stderr_of(run->values.at(m));
        const double s = se.is_number() ? se.get<double>() : 0.0;
        pooled += (size - 1) * s * s * size;
        ++n_tasks;
      }
      if (!ok || den == 0) continue;
      double total = 0;
      for (const auto& leaf : group_leaves[name])
        total += static_cast<double>(by_name[leaf]->docs.size());
      r[m + ",none"] = num / den;
      const double var = pooled / (total - static_cast<double>(n_tasks));
      r[m + "_stderr,none"] =
          total > static_cast<double>(n_tasks) ? json(std::sqrt(var / total)) : json("N/A");
      counts[m + ",none"] = group_len;
    }
    r["sample_count"] = counts;
    ordered_results[name] = r;
    groups[name] = r;
    group_subtasks[name] = group_members[name];
    versions[name] = g->version;
    json h = json::object();
    for (const auto& m : g->aggregate_metrics) h[m] = true;
    hib[name] = h;
  }
  for (const auto& l : leaves)
    if (!group_subtasks.contains(l)) group_subtasks[l] = json::array();

  out["results"] = ordered_results;
  if (!groups.empty()) out["groups"] = groups;
  out["group_subtasks"] = group_subtasks;
  out["configs"] = configs;
  out["versions"] = versions;
  out["n-shot"] = nshot;
  out["higher_is_better"] = hib;
  out["n-samples"] = nsamples;
  json cfg = json::object();
  cfg["model"] = "ohm";
  cfg["model_args"] = lm.name;
  cfg["batch_size"] = opt.ll.batch_size;
  cfg["limit"] = opt.limit ? json(*opt.limit) : json(nullptr);
  cfg["fewshot_seed"] = opt.fewshot_seed;
  cfg["max_length"] = lm.max_length;
  out["config"] = cfg;
  if (opt.log_samples) out["samples"] = samples;
  return out;
}

}  // namespace ohm::eval
