// Structured output (ohm/generation/grammar.h): JSON-schema grammars against real vocabularies.
// Random walks that sample only allowed tokens must always end in text that parses and validates
// (a small validator for the supported subset is below); the mask never allows EOS before the
// output is complete and never forbids every token while it is incomplete.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "ohm/core/error.h"
#include "ohm/generation/generate.h"
#include "ohm/generation/grammar.h"
#include "ohm/models/causal_lm.h"
#include "ohm/tokenizers/tokenizer.h"
#include "test_util.h"

using namespace ohm;
using namespace ohm::generation;
using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

namespace {

// ---------------------------------------------------------------- validator (the subset)
bool validate(const json& v, const ojson& s, const ojson& root, int depth = 0);

bool type_ok(const json& v, const std::string& t) {
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "integer") return v.is_number_integer();
  if (t == "number") return v.is_number();
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  return false;
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool validate(const json& v, const ojson& s, const ojson& root, int depth) {
  if (depth > 200) return false;
  if (s.is_boolean()) return s.get<bool>();
  if (s.contains("nullable") && s["nullable"].get<bool>() && v.is_null()) return true;
  if (s.contains("$ref")) {
    std::string ref = s["$ref"];
    return validate(v, root.at(ojson::json_pointer(ref.substr(1))), root, depth + 1);
  }
  if (s.contains("allOf"))
    for (const auto& x : s["allOf"])
      if (!validate(v, x, root, depth + 1)) return false;
  for (const char* k : {"anyOf", "oneOf"})
    if (s.contains(k)) {
      bool any = false;
      for (const auto& x : s[k]) any = any || validate(v, x, root, depth + 1);
      if (!any) return false;
    }
  if (s.contains("enum")) {
    bool any = false;
    for (const auto& x : s["enum"]) any = any || json::parse(x.dump()) == v;
    if (!any) return false;
  }
  if (s.contains("const") && json::parse(s["const"].dump()) != v) return false;
  if (s.contains("type")) {
    bool any = false;
    if (s["type"].is_string()) {
      any = type_ok(v, s["type"]);
    } else {
      for (const auto& t : s["type"]) any = any || type_ok(v, t);
    }
    if (!any) return false;
  }
  if (v.is_object()) {
    std::set<std::string> named;
    if (s.contains("properties"))
      for (auto it = s["properties"].begin(); it != s["properties"].end(); ++it) {
        named.insert(it.key());
        if (v.contains(it.key()) && !validate(v[it.key()], it.value(), root, depth + 1))
          return false;
      }
    if (s.contains("required"))
      for (const auto& r : s["required"])
        if (!v.contains(r.get<std::string>())) return false;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (named.count(it.key())) continue;
      if (s.contains("required") &&
          std::find(s["required"].begin(), s["required"].end(), it.key()) != s["required"].end())
        continue;
      if (!s.contains("additionalProperties")) {
        if (s.contains("properties") || s.contains("type")) return false;  // strict default
        continue;
      }
      if (!validate(*it, s["additionalProperties"], root, depth + 1)) return false;
    }
  }
  if (v.is_array()) {
    size_t np = s.contains("prefixItems") ? s["prefixItems"].size() : 0;
    for (size_t i = 0; i < v.size(); ++i) {
      if (i < np) {
        if (!validate(v[i], s["prefixItems"][i], root, depth + 1)) return false;
      } else if (s.contains("items")) {
        if (!validate(v[i], s["items"], root, depth + 1)) return false;
      } else if (np > 0) {
        return false;
      }
    }
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return false;
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return false;
  }
  if (v.is_string()) {
    std::string str = v.get<std::string>();
    size_t n = utf8_length(str);
    if (s.contains("minLength") && n < s["minLength"].get<size_t>()) return false;
    if (s.contains("maxLength") && n > s["maxLength"].get<size_t>()) return false;
    if (s.contains("pattern") &&
        !std::regex_search(str, std::regex(s["pattern"].get<std::string>())))
      return false;
    if (s.contains("format")) {
      static const std::map<std::string, std::string> f = {
          {"date", R"(^\d{4}-\d\d-\d\d$)"},
          {"date-time", R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$)"},
          {"uuid", R"(^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$)"},
          {"email", R"(^[^@\s]+@[^@\s]+\.[^@\s]+$)"}};
      if (!std::regex_search(str, std::regex(f.at(s["format"].get<std::string>())))) return false;
    }
  }
  if (v.is_number()) {
    double x = v.get<double>();
    if (s.contains("minimum") && x < s["minimum"].get<double>()) return false;
    if (s.contains("maximum") && x > s["maximum"].get<double>()) return false;
    if (s.contains("exclusiveMinimum") && x <= s["exclusiveMinimum"].get<double>()) return false;
    if (s.contains("exclusiveMaximum") && x >= s["exclusiveMaximum"].get<double>()) return false;
  }
  return true;
}

// ---------------------------------------------------------------- vocabularies
struct NamedVocab {
  std::string name;
  std::shared_ptr<const TokenBytes> vocab;
  std::vector<TokenId> eos;
  std::vector<uint8_t> kind;  // per id: 0 special, 1 closer ('"', '}', ']'), 2 one byte, 3 other
};

std::shared_ptr<const TokenBytes> load_vocab(const std::string& path) {
  static std::map<std::string, std::shared_ptr<const TokenBytes>> cache;
  auto it = cache.find(path);
  if (it != cache.end()) return it->second;
  auto tok = tokenizers::Tokenizer::from_file(path);
  auto v = TokenBytes::from_tokenizer(tok);
  cache[path] = v;
  return v;
}

std::vector<NamedVocab> vocabs() {
  std::vector<NamedVocab> out;
  auto demo = test::source_dir() / "models" / "ohm-demo" / "tokenizer.json";
  out.push_back({"ohm-demo", load_vocab(demo.string()), {}});
  auto shared = test::shared_data_dir() / "tokenizers";
  for (auto [name, file] : std::vector<std::pair<std::string, std::string>>{
           {"gpt2", "gpt2/tokenizer.json"},
           {"llama3", "llama3/tokenizer.json.gz"},
           {"mistral", "mistral-7b-v0.1/tokenizer.json"}}) {
    auto p = shared / file;
    if (std::filesystem::exists(p)) out.push_back({name, load_vocab(p.string()), {}});
  }
  for (auto& v : out) {
    // An EOS stand-in: the first special id (every real vocabulary has one).
    for (size_t i = 0; i < v.vocab->vocab_size(); ++i)
      if (v.vocab->is_special(static_cast<TokenId>(i))) {
        v.eos.push_back(static_cast<TokenId>(i));
        break;
      }
    if (v.eos.empty()) v.eos.push_back(static_cast<TokenId>(v.vocab->vocab_size()));
    v.kind.resize(v.vocab->vocab_size());
    for (size_t i = 0; i < v.kind.size(); ++i) {
      auto id = static_cast<TokenId>(i);
      std::string_view b = v.vocab->bytes(id);
      v.kind[i] = v.vocab->is_special(id)                             ? 0
                  : b.find_first_of("\"}]") != std::string_view::npos ? 1
                  : b.size() == 1                                     ? 2
                                                                      : 3;
    }
  }
  return out;
}

// One random walk: samples allowed tokens (drifting towards closing tokens) until EOS.
// Returns the text, or nullopt when it ran out of steps. Checks the mask invariants per step.
std::optional<std::string> walk(const Grammar& g, const NamedVocab& nv, std::mt19937& rng,
                                int max_steps = 400) {
  GrammarMatcher m(g, nv.vocab);
  std::vector<uint8_t> allowed;
  std::string text;
  std::vector<TokenId> cand, closers, shorts;
  for (int step = 0; step < max_steps; ++step) {
    m.fill_mask(allowed, nv.eos);
    bool eos_ok = allowed[nv.eos[0]] != 0;
    EXPECT_EQ(eos_ok, m.complete()) << nv.name << ": EOS mask vs complete() at '" << text << "'";
    cand.clear();
    closers.clear();
    shorts.clear();
    for (size_t i = 0; i < allowed.size(); ++i) {
      if (!allowed[i] || nv.kind[i] == 0) continue;
      auto id = static_cast<TokenId>(i);
      cand.push_back(id);
      if (nv.kind[i] == 1) closers.push_back(id);
      if (nv.kind[i] == 2) shorts.push_back(id);
    }
    if (!m.complete()) {
      EXPECT_FALSE(cand.empty()) << nv.name << ": dead end after '" << text << "'";
      if (cand.empty()) return std::nullopt;
    }
    if (m.complete() && (cand.empty() || std::uniform_real_distribution<>(0, 1)(rng) < 0.4)) {
      EXPECT_TRUE(m.accept(nv.eos[0]));
      EXPECT_TRUE(m.terminated());
      return text;
    }
    // Drift towards closing: closers ('"', '}', ']'), else often short tokens (so that
    // patterns and formats can complete), else any allowed token.
    double p_close = std::min(0.9, step / 15.0), r = std::uniform_real_distribution<>(0, 1)(rng);
    const auto& pool = (!closers.empty() && r < p_close)            ? closers
                       : (!shorts.empty() && r < 0.5 + p_close / 2) ? shorts
                                                                    : cand;
    TokenId t = pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng)];
    // A few disallowed tokens must be refused.
    for (int k = 0; k < 3; ++k) {
      auto r =
          static_cast<TokenId>(std::uniform_int_distribution<size_t>(0, allowed.size() - 1)(rng));
      if (!allowed[r] && !nv.vocab->is_special(r)) {
        EXPECT_FALSE(m.accept(r)) << nv.name << ": accepted a masked token after '" << text << "'";
      }
    }
    EXPECT_TRUE(m.accept(t)) << nv.name << ": refused an allowed token after '" << text << "'";
    text += nv.vocab->bytes(t);
  }
  return std::nullopt;
}

void check_schema(const std::string& schema_text, int walks_per_vocab = 12, int min_done = 4) {
  ojson schema = ojson::parse(schema_text);
  Grammar g = Grammar::json_schema(schema);
  std::mt19937 rng(1234);
  for (const auto& nv : vocabs()) {
    int done = 0;
    for (int w = 0; w < walks_per_vocab; ++w) {
      auto text = walk(g, nv, rng);
      if (::testing::Test::HasFailure()) return;
      if (!text) continue;
      ++done;
      json v;
      ASSERT_NO_THROW(v = json::parse(*text)) << nv.name << ": not JSON: " << *text;
      EXPECT_TRUE(validate(v, schema, schema))
          << nv.name << ": does not validate: " << *text << "\nschema: " << schema_text;
    }
    EXPECT_GE(done, min_done) << nv.name << ": too many walks did not finish";
  }
}

}  // namespace

// ---------------------------------------------------------------- random walks
TEST(Grammar, WalkObjectWithOptionalProperties) {
  check_schema(R"({"type":"object","properties":{
      "name":{"type":"string","maxLength":12},
      "age":{"type":"integer","minimum":0,"maximum":150},
      "score":{"type":"number"},
      "ok":{"type":"boolean"},
      "tags":{"type":"array","items":{"type":"string","maxLength":5},"maxItems":3},
      "note":{"type":["string","null"],"maxLength":4}},
    "required":["name","age"]})");
}

TEST(Grammar, WalkAdversarial) {
  check_schema(R"({"type":"string","maxLength":0})");
  check_schema(R"({"enum":["only"]})");
  check_schema(R"({"const":{"a":[1,2,{"b":null}]}})");
  check_schema(R"({"type":"array","items":{"type":"array","items":{"type":"array",
      "items":{"type":"integer","minimum":-3,"maximum":3},"maxItems":2},"maxItems":2},
      "minItems":1,"maxItems":3})");
  check_schema(R"({"type":"array","items":{"type":"boolean"},"minItems":3,"maxItems":3})");
  check_schema(R"({"type":"string","minLength":3,"maxLength":3})");
  check_schema(R"({"type":"object","properties":{}})");
}

TEST(Grammar, WalkRecursiveRef) {
  check_schema(R"({"$ref":"#/$defs/node","$defs":{"node":{"type":"object",
      "properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"},
      "maxItems":2}},"required":["v"]}}})",
               12, 1);
  check_schema(R"({"type":"object","properties":{"next":{"anyOf":[{"$ref":"#"},{"type":"null"}]},
      "x":{"type":"string","enum":["a","b"]}},"required":["next","x"]})",
               12, 1);
}

TEST(Grammar, WalkFormatsPatternsAndUnions) {
  check_schema(R"({"type":"object","properties":{
      "d":{"type":"string","format":"date"},
      "t":{"type":"string","format":"date-time"},
      "u":{"type":"string","format":"uuid"},
      "e":{"type":"string","format":"email"},
      "p":{"type":"string","pattern":"^[A-Z]{2}-\\d{3,4}$"},
      "q":{"type":"string","pattern":"^ab+c"}},
    "required":["d","t","u","e","p","q"]})",
               4, 1);
  check_schema(R"({"anyOf":[{"type":"integer","minimum":10,"maximum":20},
      {"type":"object","properties":{"k":{"type":"number","minimum":-1,"maximum":1}},"required":["k"]},
      {"type":"array","prefixItems":[{"type":"string"},{"type":"null"}]}]})");
  check_schema(R"({"type":"object","additionalProperties":{"type":"integer"}})");
}

TEST(Grammar, WalkAnyJsonObjectAndToolCalls) {
  std::mt19937 rng(7);
  Grammar obj = Grammar::any_json_object();
  for (const auto& nv : vocabs())
    for (int w = 0; w < 6; ++w) {
      auto text = walk(obj, nv, rng);
      if (HasFailure()) return;
      if (!text) continue;
      json v;
      ASSERT_NO_THROW(v = json::parse(*text)) << nv.name << ": " << *text;
      EXPECT_TRUE(v.is_object());
    }
  auto tool = [](const std::string& name, const std::string& params) {
    ojson s = ojson::parse(R"({"type":"object","properties":{"name":{"const":")" + name +
                           R"("},"arguments":)" + params + R"(},"required":["name","arguments"]})");
    return Grammar::sequence({Grammar::literal("<tool_call>\n"), Grammar::json_schema(s),
                              Grammar::literal("\n</tool_call>")});
  };
  Grammar calls = Grammar::choice(
      {tool("get_weather", R"({"type":"object","properties":{"city":{"type":"string"}},
           "required":["city"]})"),
       tool("add", R"({"type":"object","properties":{"a":{"type":"integer"},
           "b":{"type":"integer"}},"required":["a","b"]})")});
  for (const auto& nv : vocabs())
    for (int w = 0; w < 6; ++w) {
      auto text = walk(calls, nv, rng);
      if (HasFailure()) return;
      if (!text) continue;
      ASSERT_EQ(text->rfind("<tool_call>\n", 0), 0u) << *text;
      ASSERT_GE(text->size(), 26u);
      ASSERT_EQ(text->substr(text->size() - 13), "\n</tool_call>") << *text;
      json v;
      ASSERT_NO_THROW(v = json::parse(text->substr(12, text->size() - 25))) << *text;
      ASSERT_TRUE(v["name"] == "get_weather" || v["name"] == "add") << *text;
      if (v["name"] == "add") {
        EXPECT_TRUE(v["arguments"]["a"].is_number_integer()) << *text;
      }
    }
}

// ---------------------------------------------------------------- exact behaviour
namespace {
std::shared_ptr<const TokenBytes> byte_vocab() {
  std::vector<std::string> t;
  for (int b = 0; b < 256; ++b) t.push_back(std::string(1, static_cast<char>(b)));
  for (const char* s : {"\"}", "{\"", "\": ", "\", \"", "true", "12", ".5", "\"\xC3", "\xA9\""})
    t.push_back(s);
  t.push_back("<eos>");
  std::vector<bool> special(t.size(), false);
  special.back() = true;
  return TokenBytes::from_strings(t, special);
}
bool accepts(const Grammar& g, std::string_view text, bool need_complete = true) {
  GrammarMatcher m(g, byte_vocab());
  return m.accept_bytes(text) && (!need_complete || m.complete());
}
}  // namespace

TEST(Grammar, StringsEscapesAndUtf8) {
  Grammar g = Grammar::json_schema(json::parse(R"({"type":"string"})"));
  EXPECT_TRUE(accepts(g, R"("a\"b\\c\n\u00e9\u20AC")"));
  EXPECT_TRUE(accepts(g, "\"caf\xC3\xA9 \xF0\x9F\x98\x80\""));
  EXPECT_FALSE(accepts(g, "\"a\nb\"", false));          // raw control character
  EXPECT_FALSE(accepts(g, "\"\xC3\"", false));          // truncated UTF-8
  EXPECT_FALSE(accepts(g, "\"\xED\xA0\x80\"", false));  // UTF-8 surrogate
  EXPECT_FALSE(accepts(g, "\"\xC0\xAF\"", false));      // overlong
  EXPECT_FALSE(accepts(g, R"("\ud800")", false));       // lone surrogate escape
  EXPECT_FALSE(accepts(g, R"("\x")", false));
  // UTF-8 split across tokens: '"\xC3' then '\xA9"'.
  auto v = byte_vocab();
  GrammarMatcher m(g, v);
  TokenId open = static_cast<TokenId>(256 + 7), close = static_cast<TokenId>(256 + 8);
  EXPECT_EQ(v->bytes(open), "\"\xC3");
  std::vector<uint8_t> allowed;
  m.fill_mask(allowed, {});
  EXPECT_TRUE(allowed[open]);
  ASSERT_TRUE(m.accept(open));
  m.fill_mask(allowed, {});
  EXPECT_TRUE(allowed[close]);
  EXPECT_FALSE(allowed['"']);  // would end inside the UTF-8 sequence
  EXPECT_FALSE(m.accept('"'));
  ASSERT_TRUE(m.accept(close));
  EXPECT_TRUE(m.complete());
  EXPECT_FALSE(m.can_continue());

  Grammar len =
      Grammar::json_schema(json::parse(R"({"type":"string","minLength":2,"maxLength":3})"));
  EXPECT_FALSE(accepts(len, "\"a\"", false));
  EXPECT_TRUE(accepts(len, "\"ab\""));
  EXPECT_TRUE(accepts(len, "\"a\xC3\xA9\\n\""));  // 3 characters
  EXPECT_FALSE(accepts(len, "\"abcd", false));
}

TEST(Grammar, NumbersAndBounds) {
  Grammar i = Grammar::json_schema(json::parse(R"({"type":"integer","minimum":-5,"maximum":12})"));
  for (int x = -40; x <= 40; ++x) EXPECT_EQ(accepts(i, std::to_string(x)), x >= -5 && x <= 12) << x;
  EXPECT_FALSE(accepts(i, "012", false));
  EXPECT_FALSE(accepts(i, "1.5", false));
  EXPECT_FALSE(accepts(i, "-0", false));
  EXPECT_FALSE(accepts(i, "1e1", false));
  Grammar ex = Grammar::json_schema(
      json::parse(R"({"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":3})"));
  EXPECT_FALSE(accepts(ex, "0"));
  EXPECT_TRUE(accepts(ex, "1"));
  EXPECT_TRUE(accepts(ex, "2"));
  EXPECT_FALSE(accepts(ex, "3"));
  Grammar n = Grammar::json_schema(json::parse(R"({"type":"number","minimum":0,"maximum":1})"));
  EXPECT_TRUE(accepts(n, "0.25"));
  EXPECT_TRUE(accepts(n, "1"));
  EXPECT_TRUE(accepts(n, "0"));
  EXPECT_FALSE(accepts(n, "1.5", false));
  EXPECT_FALSE(accepts(n, "-0.5", false));
  EXPECT_FALSE(accepts(n, "2", false));
  EXPECT_FALSE(accepts(n, "1e-3", false));  // no exponent with bounds
  Grammar any = Grammar::json_schema(json::parse(R"({"type":"number"})"));
  EXPECT_TRUE(accepts(any, "-12.5e+10"));
  EXPECT_TRUE(accepts(any, "0.001"));
  EXPECT_FALSE(accepts(any, "1.", true));
  EXPECT_FALSE(accepts(any, "+1", false));
  EXPECT_FALSE(accepts(any, "1e999", false));  // at most 2 exponent digits: always finite
  EXPECT_THROW(Grammar::json_schema(json::parse(R"({"type":"integer","minimum":3,"maximum":2})")),
               InvalidArgument);
}

TEST(Grammar, ObjectsOrderWhitespaceAndAdditional) {
  ojson s = ojson::parse(R"({"type":"object","properties":{"b":{"type":"integer"},
      "a":{"type":"boolean"}},"required":["a"]})");
  Grammar g = Grammar::json_schema(s);
  EXPECT_TRUE(accepts(g, R"({"b": 1, "a": true})"));
  EXPECT_TRUE(accepts(g, R"({"a":false})"));
  EXPECT_TRUE(accepts(g, "{\n  \"b\" : 2 ,\n  \"a\" : true\n}"));
  EXPECT_FALSE(accepts(g, R"({"a": true, "b": 1})", false));  // schema order
  EXPECT_FALSE(accepts(g, R"({"b": 1})", true));              // "a" is required
  EXPECT_FALSE(accepts(g, R"({"a": true, "c": 1})", false));  // no additionalProperties
  EXPECT_FALSE(accepts(g, R"({"a": true,})", false));
  // Whitespace is bounded: one line break, then 20 spaces/tabs, not 21.
  EXPECT_TRUE(accepts(g, "{" + std::string(20, ' '), false));
  EXPECT_FALSE(accepts(g, "{" + std::string(21, ' '), false));
  EXPECT_TRUE(accepts(g, "{\r\n\t" + std::string(19, ' '), false));
  EXPECT_FALSE(accepts(g, "{\n\n", false));
  EXPECT_FALSE(accepts(g, "{ \n", false));
  Grammar compact = Grammar::json_schema(s, JsonGrammarOptions{0});
  EXPECT_FALSE(accepts(compact, R"({"a": true})", false));
  EXPECT_TRUE(accepts(compact, R"({"a":true})"));

  Grammar extra = Grammar::json_schema(json::parse(
      R"({"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":{"type":"string"}})"));
  EXPECT_TRUE(accepts(extra, R"({"a": 1, "x": "y", "z": ""})"));
  EXPECT_TRUE(accepts(extra, R"({"x": "y"})"));
  EXPECT_FALSE(accepts(extra, R"({"a": 1, "x": 2})", false));
  // Tokens spanning pieces: '{"' then '": ' then '"}'.
  GrammarMatcher m(Grammar::json_schema(json::parse(R"({"type":"object","properties":{
      "k":{"type":"string"}},"required":["k"]})")),
                   byte_vocab());
  EXPECT_TRUE(m.accept(256 + 1));  // {"
  EXPECT_TRUE(m.accept('k'));
  EXPECT_TRUE(m.accept(256 + 2));  // ":<space>
  EXPECT_TRUE(m.accept('"'));
  EXPECT_TRUE(m.accept('v'));
  EXPECT_FALSE(m.complete());
  EXPECT_FALSE(m.accept(256 + 9));  // <eos> before completion
  EXPECT_TRUE(m.accept(256 + 0));   // "}
  EXPECT_TRUE(m.complete());
  EXPECT_TRUE(m.accept(256 + 9));
  EXPECT_TRUE(m.terminated());
}

TEST(Grammar, ArraysAndPrefixItems) {
  Grammar g = Grammar::json_schema(json::parse(
      R"({"type":"array","prefixItems":[{"type":"integer"},{"type":"string"}],"minItems":1})"));
  EXPECT_TRUE(accepts(g, R"([1])"));
  EXPECT_TRUE(accepts(g, R"([1, "a"])"));
  EXPECT_FALSE(accepts(g, R"([])", false));
  EXPECT_FALSE(accepts(g, R"([1, "a", 2])", false));
  Grammar r = Grammar::json_schema(
      json::parse(R"({"type":"array","items":{"type":"null"},"minItems":2,"maxItems":3})"));
  EXPECT_FALSE(accepts(r, "[null]"));
  EXPECT_TRUE(accepts(r, "[null,null]"));
  EXPECT_TRUE(accepts(r, "[ null , null , null ]"));
  EXPECT_FALSE(accepts(r, "[null,null,null,", false));
}

TEST(Grammar, RegexSubset) {
  Grammar g = Grammar::regex(R"([a-c]+(x|yz)?\d{2}\.)");
  EXPECT_TRUE(accepts(g, "abcyz12."));
  EXPECT_TRUE(accepts(g, "a00."));
  EXPECT_FALSE(accepts(g, "d00.", false));
  EXPECT_FALSE(accepts(g, "a0.", false));
  Grammar u = Grammar::regex("[^a]é.");
  EXPECT_TRUE(accepts(u, "bé\xE2\x82\xAC"));
  EXPECT_FALSE(accepts(u, "aéx", false));
  // In a JSON string, pattern characters that JSON escapes appear escaped.
  Grammar q = Grammar::json_schema(json::parse(R"({"type":"string","pattern":"^a\"\\\\$"})"));
  EXPECT_TRUE(accepts(q, R"("a\"\\")"));
  EXPECT_FALSE(accepts(q, R"("a"\")", false));
  Grammar unanchored = Grammar::json_schema(json::parse(R"({"type":"string","pattern":"x"})"));
  EXPECT_TRUE(accepts(unanchored, R"("abxcd")"));
  EXPECT_FALSE(accepts(unanchored, R"("abcd")"));
  for (const char* bad : {"(?=a)", "a\\b", "(a)\\1", "a{2,1}", "[z-a]", "(a", "a^b", "\\p{L}"})
    EXPECT_THROW(Grammar::regex(bad), InvalidArgument) << bad;
}

TEST(Grammar, UnsupportedKeywordsNamePointer) {
  auto msg = [](const std::string& s) -> std::string {
    try {
      Grammar::json_schema(ojson::parse(s));
    } catch (const InvalidArgument& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_NE(msg(R"({"type":"object","properties":{"a":{"type":"integer","multipleOf":2}}})")
                .find("/properties/a/multipleOf"),
            std::string::npos);
  EXPECT_NE(msg(R"({"type":"array","items":{"type":"string","format":"hostname"}})")
                .find("/items/format"),
            std::string::npos);
  EXPECT_NE(msg(R"({"allOf":[{"type":"string"},{"maxLength":3}]})").find("/allOf"),
            std::string::npos);
  EXPECT_NE(msg(R"({"$ref":"#/$defs/missing"})").find("does not resolve"), std::string::npos);
  EXPECT_NE(msg(R"({"type":"string","minimum":3})").find("/minimum"), std::string::npos);
  EXPECT_NE(msg(R"({"type":"object","patternProperties":{}})").find("/patternProperties"),
            std::string::npos);
  EXPECT_NE(msg(R"J({"type":"string","pattern":"(?!x)"})J").find("/pattern"), std::string::npos);
  EXPECT_NE(msg(R"({"not":{}})").find("unsupported keyword 'not'"), std::string::npos);
  EXPECT_NE(
      msg(R"({"type":"object","required":["x"],"additionalProperties":false})").find("/required/0"),
      std::string::npos);
  // Annotations are fine.
  EXPECT_EQ(msg(R"({"title":"t","description":"d","type":"null","$comment":"c"})"), "(no error)");
}

TEST(Grammar, CachedByText) {
  std::string text = R"({"type":"object","properties":{"z":{"type":"null"},"a":{"type":"null"}},
      "required":["z","a"]})";
  Grammar a = Grammar::json_schema_cached(text);
  Grammar b = Grammar::json_schema_cached(text);
  EXPECT_EQ(&a.program(), &b.program());
  EXPECT_TRUE(accepts(a, R"({"z":null,"a":null})"));  // text order kept
  EXPECT_THROW(Grammar::json_schema_cached("{not json"), InvalidArgument);
}

TEST(Grammar, TokenBytesFromTokenizers) {
  auto shared = test::shared_data_dir() / "tokenizers";
  auto gpt2 = shared / "gpt2" / "tokenizer.json";
  auto mistral = shared / "mistral-7b-v0.1" / "tokenizer.json";
  auto llama3 = shared / "llama3" / "tokenizer.json.gz";
  OHM_REQUIRE_SHARED(std::filesystem::exists(gpt2) && std::filesystem::exists(mistral) &&
                         std::filesystem::exists(llama3),
                     "tokenizers gpt2, mistral-7b-v0.1, llama3");
  {
    auto tok = tokenizers::Tokenizer::from_file(gpt2.string());
    auto v = load_vocab(gpt2.string());
    EXPECT_EQ(v->bytes(*tok.token_to_id("Ġthe")), " the");
    EXPECT_EQ(v->bytes(*tok.token_to_id("Ċ")), "\n");
    EXPECT_TRUE(v->is_special(*tok.token_to_id("<|endoftext|>")));
  }
  {
    auto tok = tokenizers::Tokenizer::from_file(mistral.string());
    auto v = load_vocab(mistral.string());
    EXPECT_EQ(v->bytes(*tok.token_to_id("▁the")), " the");
    EXPECT_EQ(v->bytes(*tok.token_to_id("<0x0A>")), "\n");
    EXPECT_EQ(v->bytes(*tok.token_to_id("<0xC3>")), "\xC3");
    EXPECT_TRUE(v->is_special(*tok.token_to_id("</s>")));
  }
  {
    auto tok = tokenizers::Tokenizer::from_file(llama3.string());
    auto v = load_vocab(llama3.string());
    EXPECT_TRUE(v->is_special(*tok.token_to_id("<|eot_id|>")));
    // Every non-special token's bytes decode to what the tokenizer decodes (valid UTF-8 ones).
    for (TokenId id : {TokenId(100), TokenId(1000), TokenId(50000), TokenId(128000 - 1)}) {
      std::string b(v->bytes(id));
      if (tokenizers::is_valid_utf8(b)) {
        EXPECT_EQ(b, tok.decode({id})) << id;
      }
    }
  }
}

TEST(Grammar, MaskTimeIsReasonable) {
  // Not a benchmark (bench/bench_grammar.cpp is): a guard against pathological slowness.
  auto vs = vocabs();
  const auto& nv = vs.back();
  Grammar g = Grammar::json_schema(json::parse(R"({"type":"object","properties":{
      "a":{"type":"string"},"b":{"type":"array","items":{"type":"number"}}},"required":["a","b"]})"));
  GrammarMatcher m(g, nv.vocab);
  ASSERT_TRUE(m.accept_bytes(R"({"a": "hello wor)"));
  std::vector<uint8_t> allowed;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) m.fill_mask(allowed, nv.eos);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 5;
  EXPECT_LT(ms, 250.0) << nv.name;
}

TEST(Grammar, MaskAgreesWithAccept) {
  // The mask (trie walk, string tables, memo) against token-by-token acceptance from a fresh
  // matcher, for sampled ids at the first steps of random walks.
  auto vs = vocabs();
  const NamedVocab& nv = vs.front();  // ohm-demo (4096 tokens)
  std::mt19937 rng(99);
  for (
      const char* schema : {
          R"({"type":"object","properties":{"s":{"type":"string","maxLength":6},
               "n":{"type":"number","minimum":-2,"maximum":40}},"required":["s"]})",
          R"({"type":"array","items":{"anyOf":[{"type":"string","format":"date"},
               {"type":"integer"},{"type":"null"}]}})",
          R"({"type":"object","additionalProperties":{"type":"array","items":{"type":"boolean"}}})"}) {
    Grammar g = Grammar::json_schema(ojson::parse(schema));
    for (int w = 0; w < 3; ++w) {
      GrammarMatcher m(g, nv.vocab);
      std::string text;
      std::vector<uint8_t> allowed;
      for (int step = 0; step < 8; ++step) {
        m.fill_mask(allowed, nv.eos);
        std::vector<TokenId> cand;
        for (int k = 0; k < 300; ++k) {
          auto id = static_cast<TokenId>(
              std::uniform_int_distribution<size_t>(0, nv.vocab->vocab_size() - 1)(rng));
          if (nv.vocab->is_special(id)) continue;
          GrammarMatcher ref(g, nv.vocab);
          ASSERT_TRUE(ref.accept_bytes(text));
          EXPECT_EQ(ref.accept(id), allowed[id] != 0)
              << schema << "\nafter '" << text << "' token '" << nv.vocab->bytes(id) << "'";
          if (HasFailure()) return;
        }
        for (size_t i = 0; i < allowed.size(); ++i)
          if (allowed[i] && !nv.vocab->is_special(static_cast<TokenId>(i)))
            cand.push_back(static_cast<TokenId>(i));
        if (cand.empty()) break;
        TokenId t = cand[std::uniform_int_distribution<size_t>(0, cand.size() - 1)(rng)];
        ASSERT_TRUE(m.accept(t));
        text += nv.vocab->bytes(t);
      }
    }
  }
}

TEST(Grammar, ConstrainsGenerateWithTheDemoModel) {
  // generate() with GenerateOptions::constraint: the ohm-demo model (a small story model that
  // has never seen JSON) writes schema-valid JSON, greedy and sampled.
  const auto dir = (test::source_dir() / "models" / "ohm-demo").string();
  auto tok = tokenizers::AutoTokenizer::from_pretrained(dir);
  auto model = load_causal_lm(dir, {.dtype = DType::F32});
  auto vocab = TokenBytes::from_tokenizer(tok.tokenizer());
  const std::string schema_text = R"({"type":"object","properties":{
      "name":{"type":"string","maxLength":10},"age":{"type":"integer","minimum":1,"maximum":99},
      "happy":{"type":"boolean"}},"required":["name","age","happy"]})";
  const ojson schema = ojson::parse(schema_text);
  const std::vector<TokenId> prompt = tok.encode("Once upon a time, there was a girl");
  for (bool sample : {false, true}) {
    generation::GenerateOptions opt;
    opt.config.max_new_tokens = 120;
    opt.config.eos_token_id = {0};
    opt.config.do_sample = sample;
    opt.seed = 5;
    // Compact JSON: this story model would spend its tokens on all the whitespace allowed.
    opt.constraint = std::make_shared<GrammarLogitsProcessor>(
        Grammar::json_schema(schema, JsonGrammarOptions{0}), vocab, std::vector<TokenId>{0});
    auto out = generation::generate(*model, {prompt}, opt);
    std::vector<TokenId> gen(out.sequences[0].begin() + out.prompt_lengths[0],
                             out.sequences[0].end());
    std::string text = tok.decode(gen, /*skip_special_tokens=*/true);
    if (out.finish_reasons[0] != generation::FinishReason::Eos) {
      std::string ids;
      for (auto t : gen) ids += std::to_string(t) + "'" + std::string(vocab->bytes(t)) + "' ";
      ADD_FAILURE() << "did not finish in 120 tokens: " << text << "\n" << ids;
      continue;
    }
    json v;
    ASSERT_NO_THROW(v = json::parse(text)) << text;
    EXPECT_TRUE(validate(v, schema, schema)) << text;
  }
  // One sequence only.
  generation::GenerateOptions opt;
  opt.config.num_return_sequences = 2;
  opt.config.do_sample = true;
  opt.constraint = std::make_shared<GrammarLogitsProcessor>(Grammar::any_json_object(), vocab,
                                                            std::vector<TokenId>{0});
  EXPECT_THROW(generation::generate(*model, {prompt}, opt), InvalidArgument);
}
