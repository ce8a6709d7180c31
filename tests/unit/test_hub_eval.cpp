// Evaluation results on the Hub: lm-eval results as model-index entries (eval/model_index.h),
// merged into a model card's YAML front matter without touching the rest (hub/card.h
// merge_model_index), read back as the Hub's flat result rows (eval_results_from_card) and
// stored with the repo (repos.eval_json, migrated into older data dirs).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <string>

#include "ohm/core/error.h"
#include "ohm/eval/model_index.h"
#include "ohm/hub/card.h"
#include "ohm/hub/hash.h"
#include "ohm/hub/metadata.h"

using namespace ohm::hub;
using nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

ojson lm_eval_results() {
  return ojson::parse(R"({
    "results": {
      "arc_easy": {"alias": "arc_easy", "acc,none": 0.25, "acc_stderr,none": 0.1,
                   "acc_norm,none": 0.5, "acc_norm_stderr,none": 0.125},
      "gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.0,
                "exact_match_stderr,strict-match": "N/A", "exact_match,flexible-extract": 1e-05},
      "mmlu_anatomy": {"alias": "  - anatomy", "acc,none": 0.75},
      "empty": {"alias": "empty", "sample_len": 3}
    },
    "configs": {"arc_easy": {"dataset_name": "ARC-Easy", "test_split": "test"},
                "gsm8k": {"dataset_name": "main", "validation_split": "test"}},
    "n-shot": {"arc_easy": 0, "gsm8k": 5}
  })");
}

json entry(const std::string& task, const std::string& metric, double v) {
  return {{"task", {{"type", "text-generation"}, {"name", "Text Generation"}}},
          {"dataset", {{"name", task}, {"type", task}}},
          {"metrics", {{{"type", metric}, {"value", v}, {"name", metric}, {"verified", false}}}}};
}

}  // namespace

TEST(HubEval, LmEvalResultsBecomeModelIndexEntries) {
  const json e = ohm::eval::model_index_results(lm_eval_results());
  ASSERT_EQ(e.size(), 3u);  // "empty" has no numeric metric
  EXPECT_EQ(e[0]["task"]["type"], "text-generation");
  EXPECT_EQ(e[0]["dataset"], json::parse(R"({"name": "arc_easy", "type": "arc_easy",
      "config": "ARC-Easy", "split": "test", "args": {"num_few_shot": 0}})"));
  ASSERT_EQ(e[0]["metrics"].size(), 2u);
  EXPECT_EQ(e[0]["metrics"][0], json::parse(R"({"type": "acc", "value": 0.25, "name": "acc",
      "verified": false, "stderr": 0.1})"));
  // a filter is the metric's config; a non-numeric stderr is left out
  EXPECT_EQ(e[1]["dataset"]["split"], "test");
  EXPECT_EQ(e[1]["metrics"][0]["config"], "strict-match");
  EXPECT_EQ(e[1]["metrics"][0]["name"], "exact_match (strict-match)");
  EXPECT_FALSE(e[1]["metrics"][0].contains("stderr"));
  EXPECT_EQ(e[2]["dataset"]["name"], "anatomy");  // lm-eval's indented alias
  EXPECT_THROW(ohm::eval::model_index_results(ojson::object()), ohm::FormatError);
}

TEST(HubEval, MergeKeepsTheRestOfTheCard) {
  const std::string front = "# a comment\nlicense: apache-2.0\ntags:\n- a\n- b   # kept\n";
  const std::string tail_keys = "\n# trailing comment\npipeline_tag: text-generation\n";
  const std::string body = "\n# Title\n\nBody with --- and `code`.\n";
  const std::string old_mi =
      "model-index:\n- name: m\n  results:\n  - task: {type: text-generation}\n"
      "    dataset: {type: arc_easy, name: ARC}\n"
      "    metrics:\n    - {type: acc, value: 0.1}\n    - {type: acc_norm, value: 0.2}\n"
      "  - task: {type: text-generation}\n    dataset: {type: piqa, name: PIQA}\n"
      "    metrics:\n    - {type: acc, value: 0.7}\n";
  const std::string readme = "---\n" + front + old_mi + tail_keys + "---" + body;
  const json incoming =
      json::array({entry("arc_easy", "acc", 0.5), entry("hellaswag", "acc", 0.3)});
  const std::string out = merge_model_index(readme, "m", incoming);
  // untouched: the lines before and after the block and the body
  EXPECT_EQ(out.substr(0, 4 + front.size()), "---\n" + front);
  EXPECT_NE(out.find(tail_keys + "---" + body), std::string::npos) << out;
  EXPECT_TRUE(out.ends_with("---" + body));
  const ModelCard c = parse_model_card(out);
  ASSERT_TRUE(c.error.empty()) << c.error;
  EXPECT_EQ(c.data["license"], "apache-2.0");
  EXPECT_EQ(c.data["tags"], json({"a", "b"}));
  const json rows = eval_results_from_card(c.data);
  // arc_easy acc replaced, acc_norm kept, piqa kept, hellaswag appended
  ASSERT_EQ(rows.size(), 4u) << rows.dump(1);
  EXPECT_EQ(rows[0]["dataset"]["type"], "arc_easy");
  EXPECT_EQ(rows[0]["metric"]["type"], "acc");
  EXPECT_EQ(rows[0]["value"], 0.5);
  EXPECT_EQ(rows[1]["metric"]["type"], "acc_norm");
  EXPECT_EQ(rows[1]["value"], 0.2);
  EXPECT_EQ(rows[2]["dataset"]["type"], "piqa");
  EXPECT_EQ(rows[3]["dataset"]["type"], "hellaswag");
  // merging the same results again changes nothing
  EXPECT_EQ(merge_model_index(out, "m", incoming), out);
}

TEST(HubEval, MergeIntoACardWithoutMetadata) {
  const json one = json::array({entry("piqa", "acc", 0.625)});
  std::string out = merge_model_index("", "demo", one);
  EXPECT_TRUE(out.starts_with("---\nmodel-index:\n- name: \"demo\"\n")) << out;
  EXPECT_NE(out.find("# demo"), std::string::npos);
  EXPECT_EQ(eval_results_from_card(parse_model_card(out).data)[0]["value"], 0.625);
  out = merge_model_index("# Just markdown\n", "demo", one);
  EXPECT_TRUE(out.ends_with("---\n# Just markdown\n")) << out;
  // a new model-index key goes after the others
  out = merge_model_index("---\nlicense: mit\n---\nx\n", "demo", one);
  EXPECT_TRUE(out.starts_with("---\nlicense: mit\nmodel-index:\n")) << out;
}

TEST(HubEval, MergeRefusesWhatItCannotRewrite) {
  const json one = json::array({entry("piqa", "acc", 0.5)});
  try {
    merge_model_index("---\nlicense: [unclosed\n---\n", "m", one);
    FAIL() << "no error";
  } catch (const ohm::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("README.md"), std::string::npos) << e.what();
  }
  EXPECT_THROW(merge_model_index("---\n{license: mit, model-index: []}\n---\n", "m", one),
               ohm::FormatError);
  EXPECT_THROW(merge_model_index("---\nmodel-index: 3\n---\n", "m", one), ohm::FormatError);
  EXPECT_THROW(merge_model_index("---\n- a\n---\n", "m", one), ohm::FormatError);
}

TEST(HubEval, YamlOfHostileStringsAndFloatsReadsBack) {
  const json v = {{"k",
                   {"<script>alert(1)</script>", "a: b # c", "\"q\" 'q'", "line\nbreak",
                    "tab\tdel\x7f", "\xc2\x85nel", "yes", "null", "1.5", "", "ünïcode ✓"}},
                  {"yes", 1e-05},
                  {"2", 1e20},
                  {"f", {0.1, -2.5, 3.0, 1.0e-300}},
                  {"n", {nullptr, true, 7}},
                  {"e", {json::object(), json::array()}}};
  const std::string y = json_to_yaml(v);
  EXPECT_EQ(yaml_to_json(y), v) << y;
  EXPECT_NE(y.find("1.0e-05"), std::string::npos) << y;  // PyYAML needs the '.'
  EXPECT_NE(y.find("1.0e+20"), std::string::npos) << y;
}

TEST(HubEval, CardRowsSkipMalformedEntries) {
  const json card = json::parse(R"({"model-index": [
    {"name": "m", "results": [
      {"task": {"type": "text-generation"}, "dataset": {"type": "piqa"},
       "metrics": [{"type": "acc", "value": 0.5}, {"type": "acc_norm", "value": "high"},
                   {"value": 1}, "x", {"type": "f1", "value": 0.25, "stderr": 0.01,
                   "verified": true, "config": "c"}]},
      {"task": {"name": "no type"}, "dataset": {"type": "x"}, "metrics": [{"type": "a", "value": 1}]},
      {"task": {"type": "t"}, "dataset": {"type": "y"}, "metrics": 3},
      "junk"]},
    "junk", {"results": "no"}]})");
  const json rows = eval_results_from_card(card);
  ASSERT_EQ(rows.size(), 2u) << rows.dump(1);
  EXPECT_EQ(rows[0]["dataset"]["name"], "piqa");  // name defaults to the type
  EXPECT_EQ(rows[0]["model"], "m");
  EXPECT_EQ(rows[1]["metric"]["config"], "c");
  EXPECT_EQ(rows[1]["stderr"], 0.01);
  EXPECT_EQ(rows[1]["verified"], true);
  EXPECT_TRUE(eval_results_from_card(json::object()).empty());
  EXPECT_TRUE(eval_results_from_card(json{{"model-index", "x"}}).empty());
}

// A data dir from before repos.eval_json: the column is added at start and filled from the
// stored cards of model repos (datasets keep none).
TEST(HubEval, OlderDataDirsGetTheirResultsAtStart) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("ohm-hub-eval-" + random_hex(6));
  fs::create_directories(dir);
  const std::string db_path = (dir / "hub.sqlite").string();
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
    const std::string card =
        R"({"license": "mit", "model-index": [{"name": "m", "results": [{"task": {"type": "t"},)"
        R"( "dataset": {"type": "piqa"}, "metrics": [{"type": "acc", "value": 0.5}]}]}]})";
    const std::string sql =
        "CREATE TABLE repos (id INTEGER PRIMARY KEY AUTOINCREMENT, type INTEGER NOT NULL, ns TEXT "
        "NOT NULL, name TEXT NOT NULL, private INTEGER NOT NULL DEFAULT 0, gated TEXT NOT NULL "
        "DEFAULT '', created_ms INTEGER NOT NULL, modified_ms INTEGER NOT NULL, downloads INTEGER "
        "NOT NULL DEFAULT 0, likes INTEGER NOT NULL DEFAULT 0, card_json TEXT NOT NULL DEFAULT "
        "'{}', tags_json TEXT NOT NULL DEFAULT '[]', pipeline_tag TEXT NOT NULL DEFAULT '', "
        "library_name TEXT NOT NULL DEFAULT '', UNIQUE (type, ns, name));"
        "INSERT INTO repos(type, ns, name, created_ms, modified_ms, card_json) VALUES (" +
        std::to_string(static_cast<int>(RepoType::Model)) + ", 'a', 'm', 1, 1, '" + card + "'), (" +
        std::to_string(static_cast<int>(RepoType::Dataset)) + ", 'a', 'd', 1, 1, '" + card +
        "'), (" + std::to_string(static_cast<int>(RepoType::Model)) +
        ", 'a', 'plain', 1, 1, '{}');";
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  {
    auto meta = open_sqlite_metadata(db_path);
    auto m = meta->get_repo(RepoType::Model, "a", "m");
    ASSERT_TRUE(m);
    const json rows = json::parse(m->eval_json);
    ASSERT_EQ(rows.size(), 1u) << m->eval_json;
    EXPECT_EQ(rows[0]["dataset"]["type"], "piqa");
    EXPECT_EQ(rows[0]["value"], 0.5);
    EXPECT_EQ(meta->get_repo(RepoType::Dataset, "a", "d")->eval_json, "[]");
    EXPECT_EQ(meta->get_repo(RepoType::Model, "a", "plain")->eval_json, "[]");
    // and a card update replaces them
    meta->update_repo_card(m->id, "{}", "[]", "", "", "[]");
    EXPECT_EQ(meta->get_repo(RepoType::Model, "a", "m")->eval_json, "[]");
  }
  fs::remove_all(dir);
}
