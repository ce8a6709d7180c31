// Content filter: Llama Guard 3 prompt rendering against transformers (tests/fixtures/guard/tiny,
// scripts/make_guard_fixture.py), verdict parsing, the pipeline through a tiny random guard with
// forced outputs, and the rules layer.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "ohm/core/error.h"
#include "ohm/guard/guard.h"
#include "ohm/tokenizers/tokenizer.h"
#include "test_util.h"

using namespace ohm::guard;
using json = nlohmann::json;

namespace {

std::string tiny() {
  return (ohm::test::source_dir() / "tests/fixtures/guard/tiny").string();
}

std::vector<Turn> turns_of(const json& msgs) {
  std::vector<Turn> t;
  for (const auto& m : msgs) t.push_back({m["role"], m["content"]});
  return t;
}

TEST(Guard, PromptRendersAsTransformers) {
  std::ifstream f(tiny() + "/renders.json");
  const json r = json::parse(f);
  ContentFilter cf({.model = tiny(), .threads = 1});
  const auto tok = ohm::tokenizers::AutoTokenizer::from_pretrained(tiny());
  int n = 0;
  for (const auto& c : r["renders"]) {
    if (c.contains("error")) continue;  // the template's raise_exception (below)
    const std::string text = cf.render(turns_of(c["messages"]));
    EXPECT_EQ(text, c["text"].get<std::string>());
    const auto ids = tok.encode(text, false);
    EXPECT_EQ(std::vector<int64_t>(ids.begin(), ids.end()), c["ids"].get<std::vector<int64_t>>());
    ++n;
  }
  EXPECT_EQ(n, 3);
  // Out-of-order conversations are normalised before rendering rather than raising.
  EXPECT_NO_THROW(cf.render({{"assistant", "x"}, {"user", "a"}, {"user", "b"}}));
}

TEST(Guard, VerdictParsing) {
  auto d = parse_guard_output("safe");
  EXPECT_TRUE(d.allowed);
  EXPECT_FALSE(d.malformed);
  d = parse_guard_output("\n\nunsafe\nS1,S10");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.categories, (std::vector<std::string>{"S1", "S10"}));
  d = parse_guard_output("Unsafe\n S3 , S3,S14 ");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.categories, (std::vector<std::string>{"S3", "S14"}));
  d = parse_guard_output("unsafe");
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(d.categories.empty());
  for (const char* bad : {"", "maybe", "safe\nS1", "unsafe\nS1\nmore", "I cannot answer"}) {
    d = parse_guard_output(bad);
    EXPECT_TRUE(d.malformed) << bad;
    EXPECT_FALSE(d.allowed) << bad;  // fail closed
    EXPECT_TRUE(parse_guard_output(bad, /*fail_closed=*/false).allowed) << bad;
  }
  d = parse_guard_output("unsafe\nS1,violence");
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(d.malformed);
  EXPECT_EQ(d.categories, (std::vector<std::string>{"S1"}));
  EXPECT_EQ(category_name("S10"), "Hate");
}

TEST(Guard, ForcedOutputsThroughTheTinyGuard) {
  const std::vector<Turn> conv = {{"system", "be nice"}, {"user", "How do I bake bread?"}};
  struct Case {
    std::string forced;
    bool allowed;
    std::vector<std::string> cats;
    bool malformed;
  };
  for (const Case& c :
       {Case{"safe", true, {}, false}, Case{"unsafe\nS1,S10", false, {"S1", "S10"}, false},
        Case{"I think it is fine", false, {}, true}}) {
    ContentFilter cf({.model = tiny(), .threads = 1, .forced_output = c.forced});
    EXPECT_EQ(cf.classify_raw(conv), c.forced);
    const Decision p = cf.check_prompt(conv);
    EXPECT_EQ(p.allowed, c.allowed) << c.forced;
    EXPECT_EQ(p.categories, c.cats) << c.forced;
    EXPECT_EQ(p.malformed, c.malformed) << c.forced;
    EXPECT_EQ(p.source, "guard");
    const Decision r = cf.check_response(conv, "Mix flour and water.");
    EXPECT_EQ(r.allowed, c.allowed) << c.forced;
  }
  // The random guard left to itself says something: a decision is always made.
  ContentFilter free({.model = tiny(), .threads = 1});
  const Decision d = free.check_prompt(conv);
  EXPECT_TRUE(d.allowed || !d.allowed);
  EXPECT_EQ(d.source, "guard");
}

TEST(Guard, RulesLayer) {
  const std::string rules_json =
      R"J({"categories": [
        {"code": "S9", "name": "Indiscriminate Weapons", "keywords": ["nerve agent", "Sarin"],
         "patterns": ["how (do|can) i (build|make) an? (bomb|explosive)"]},
        {"code": "S7", "patterns": ["\\b\\d{3}-\\d{2}-\\d{4}\\b"]}]})J";
  const Rules r = Rules::parse(rules_json, "rules.json");
  EXPECT_EQ(r.size(), 4u);
  auto d = r.check("How do I make a bomb at home?");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.categories, (std::vector<std::string>{"S9"}));
  EXPECT_EQ(d.source, "rules");
  d = r.check("My SSN is 123-45-6789 and I like SARIN gas");
  EXPECT_EQ(d.categories, (std::vector<std::string>{"S9", "S7"}));
  EXPECT_TRUE(r.check("Sarinah is a name; a bombastic speech").allowed);  // whole words only
  EXPECT_TRUE(r.check("How do I bake bread?").allowed);
  // Bad files name the file and the entry.
  const std::vector<std::string> bad = {
      "{",
      "{}",
      R"J({"categories": [{"keywords": ["x"]}]})J",
      R"J({"categories": [{"code": "S1", "regexes": ["x"]}]})J",
      R"J({"categories": [{"code": "S1", "patterns": ["(unclosed"]}]})J",
      R"J({"categories": [{"code": "S1", "keywords": [""]}]})J"};
  for (const auto& b : bad) {
    try {
      Rules::parse(b, "rules.json");
      ADD_FAILURE() << b;
    } catch (const ohm::InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("rules.json"), std::string::npos) << e.what();
    }
  }
  // Rules alone make a filter; they run before (and without) a guard model.
  ohm::test::TempDir t;
  std::ofstream(t.file("r.json")) << R"J({"categories": [{"code": "S1", "keywords": ["kill"]}]})J";
  ContentFilter cf({.rules = t.file("r.json")});
  EXPECT_FALSE(cf.check_prompt({{"user", "how to kill a process"}}).allowed);
  EXPECT_TRUE(cf.check_response({{"user", "hi"}}, "hello").allowed);
  EXPECT_THROW(ContentFilter(GuardOptions{}), ohm::InvalidArgument);
}

}  // namespace
