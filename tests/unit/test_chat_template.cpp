// Chat templates: every template in ../shared/data/chat-templates/*.jinja and every chat_template
// in ../shared/data/tokenizers/*/tokenizer_config.json renders byte-identically to transformers
// (references in tests/fixtures/chat_templates/chat_cases.json, made by
// scripts/make_chat_template_fixtures.py); conversations a template rejects must fail in ohm too.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "ohm/chat/chat_template.h"
#include "ohm/cli/cli.h"
#include "test_util.h"

namespace {

using ohm::chat::ChatOptions;
using ohm::chat::ChatTemplate;
using ohm::chat::ojson;
namespace fs = std::filesystem;

const ojson& chat_fixture() {
  static const ojson j = ojson::parse(ohm::test::read_file(
      (ohm::test::fixtures_dir() / "chat_templates" / "chat_cases.json").string()));
  return j;
}

class ChatTemplateParity : public ::testing::TestWithParam<size_t> {};

TEST_P(ChatTemplateParity, MatchesTransformers) {
  const ojson& t = chat_fixture()["templates"][GetParam()];
  const fs::path path = ohm::test::shared_data_dir() / t["path"].get<std::string>();
  OHM_REQUIRE_SHARED(fs::exists(path), path);
  const ChatTemplate ct = t["kind"] == "jinja" ? ChatTemplate::from_string(
                                                     ohm::test::read_file(path.string()),
                                                     t["special_tokens"], path.filename().string())
                                               : ChatTemplate::load(path.string());
  if (t["kind"] != "jinja") {
    // The special tokens ohm derives from tokenizer_config.json are the ones transformers passed
    // (transformers may add class defaults that the config does not name, e.g. Gemma's mask_token).
    for (auto it = ct.special_tokens().begin(); it != ct.special_tokens().end(); ++it)
      EXPECT_EQ(t["special_tokens"].value(it.key(), ""), it.value().get<std::string>()) << it.key();
  }
  size_t rendered = 0, raised = 0, total = 0;
  for (const auto& c : t["cases"]) {
    SCOPED_TRACE(t["path"].get<std::string>() + " / " + c["name"].get<std::string>());
    ++total;
    ChatOptions opt;
    opt.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    if (!c["tools"].is_null()) opt.tools = c["tools"];
    opt.extra = t["extra"];
    if (c.contains("output")) {
      try {
        const std::string out = ct.apply(c["messages"], opt);
        EXPECT_EQ(out, c["output"].get<std::string>());
        if (out == c["output"].get<std::string>()) ++rendered;
      } catch (const std::exception& e) {
        ADD_FAILURE() << "threw: " << e.what();
      }
    } else {
      const std::string expected = c["error"].get<std::string>();
      try {
        const std::string out = ct.apply(c["messages"], opt);
        ADD_FAILURE() << "transformers raised '" << expected << "' but ohm rendered:\n" << out;
      } catch (const ohm::jinja::TemplateError& e) {
        if (c.value("raised", false)) {
          EXPECT_TRUE(e.raised()) << e.what();
          EXPECT_EQ("TemplateError: " + e.message(), expected);
        }
        ++raised;
      }
    }
  }
  std::printf("[ parity ] %-70s %zu/%zu rendered identically, %zu raised as in transformers\n",
              t["path"].get<std::string>().c_str(), rendered, total - raised, raised);
  EXPECT_GE(total, 10u);
}

std::vector<size_t> template_indices() {
  std::vector<size_t> v(chat_fixture()["templates"].size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = i;
  return v;
}

std::string test_name(const ::testing::TestParamInfo<size_t>& info) {
  std::string p = chat_fixture()["templates"][info.param]["path"].get<std::string>();
  std::string n;
  for (char ch : p) n += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Shared, ChatTemplateParity, ::testing::ValuesIn(template_indices()),
                         test_name);

TEST(ChatTemplate, CoversEverySharedTemplate) {
  const fs::path shared = ohm::test::shared_data_dir();
  OHM_REQUIRE_SHARED(fs::exists(shared / "chat-templates"), shared / "chat-templates");
  std::set<std::string> covered;
  for (const auto& t : chat_fixture()["templates"]) covered.insert(t["path"].get<std::string>());
  for (const auto& e : fs::directory_iterator(shared / "chat-templates")) {
    if (e.path().extension() == ".jinja") {
      EXPECT_TRUE(covered.count("chat-templates/" + e.path().filename().string())) << e.path();
    }
  }
  for (const auto& e : fs::directory_iterator(shared / "tokenizers")) {
    const fs::path cfg = e.path() / "tokenizer_config.json";
    if (!fs::exists(cfg)) continue;
    const ojson j = ojson::parse(ohm::test::read_file(cfg.string()));
    if (j.contains("chat_template") && !j["chat_template"].is_null()) {
      EXPECT_TRUE(
          covered.count("tokenizers/" + e.path().filename().string() + "/tokenizer_config.json"))
          << cfg;
    }
  }
}

TEST(ChatTemplate, NamedTemplatesAndSelection) {
  const ojson cfg = {{"bos_token", {{"__type", "AddedToken"}, {"content", "<s>"}}},
                     {"eos_token", "</s>"},
                     {"pad_token", nullptr},
                     {"image_token", "<img>"},
                     {"chat_template",
                      {{{"name", "default"},
                        {"template", "D{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"}},
                       {{"name", "tool_use"}, {"template", "T{{ tools|length }}{{ image_token }}"}},
                       {{"name", "rag"}, {"template", "R{{ documents[0].title }}"}}}}};
  const ChatTemplate ct = ChatTemplate::from_tokenizer_config(cfg);
  EXPECT_EQ(ct.names(), (std::vector<std::string>{"default", "tool_use", "rag"}));
  EXPECT_FALSE(ct.special_tokens().contains("pad_token"));
  const ojson msgs = ojson::parse(R"([{"role": "user", "content": "hi"}])");
  EXPECT_EQ(ct.apply(msgs), "D<s>hi</s>");
  ChatOptions opt;
  opt.tools = ojson::array({ojson::object()});
  EXPECT_EQ(ct.apply(msgs, opt), "T1<img>");
  ChatOptions rag;
  rag.template_name = "rag";
  rag.documents = ojson::parse(R"([{"title": "doc"}])");
  EXPECT_EQ(ct.apply(msgs, rag), "Rdoc");
  rag.template_name = "nope";
  EXPECT_THROW(ct.apply(msgs, rag), ohm::NotFoundError);
}

TEST(ChatTemplate, MessagesAreNormalizedAsTransformersDoes) {
  const auto ct = ChatTemplate::from_string(
      "{% for m in messages %}{{ m|tojson }};{% endfor %}{{ tools }}|{{ add_generation_prompt }}");
  const ojson msgs =
      ojson::parse(R"([{"role": "assistant", "content": null, "reasoning": "why", "x": 1}])");
  EXPECT_EQ(
      ct.apply(msgs),
      R"({"thinking": "why", "role": "assistant", "reasoning": "why", "x": 1, "reasoning_content": "why"};None|False)");
  EXPECT_THROW(ct.apply(ojson::array()), ohm::InvalidArgument);
}

TEST(ChatTemplate, MissingTemplateIsNotFound) {
  EXPECT_THROW(ChatTemplate::from_tokenizer_config(ojson{{"bos_token", "<s>"}}),
               ohm::NotFoundError);
}

TEST(ChatTemplate, LoadsModelDirectoryAndJinjaFile) {
  ohm::test::TempDir dir;
  ohm::test::write_file(dir.file("tokenizer_config.json"),
                        R"({"eos_token": "<e>", "chat_template": "config{{ eos_token }}"})");
  EXPECT_EQ(ChatTemplate::load(dir.file("tokenizer_config.json"))
                .apply(ojson::parse(R"([{"role":"user","content":"x"}])")),
            "config<e>");
  ohm::test::write_file(dir.file("chat_template.jinja"), "file{{ eos_token }}\n");
  EXPECT_EQ(ChatTemplate::load(dir.file("tokenizer_config.json"))
                .apply(ojson::parse(R"([{"role":"user","content":"x"}])")),
            "file<e>");
}

int run_cli(std::vector<std::string> args, std::string& out) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  ::testing::internal::CaptureStdout();
  const int rc = ohm::cli::run(static_cast<int>(argv.size()), argv.data());
  out = ::testing::internal::GetCapturedStdout();
  return rc;
}

TEST(ChatTemplateCli, RendersQwen3) {
  const fs::path cfg =
      ohm::test::shared_data_dir() / "tokenizers" / "qwen3" / "tokenizer_config.json";
  OHM_REQUIRE_SHARED(fs::exists(cfg), cfg);
  // The reference: the fixture's qwen3 "system_user_gen" case.
  std::string expected;
  ojson messages;
  for (const auto& t : chat_fixture()["templates"])
    if (t["path"] == "tokenizers/qwen3/tokenizer_config.json")
      for (const auto& c : t["cases"])
        if (c["name"] == "tools_system_user_gen") {
          expected = c["output"].get<std::string>();
          messages = ojson{{"messages", c["messages"]}, {"tools", c["tools"]}};
        }
  ASSERT_FALSE(expected.empty());
  ohm::test::TempDir dir;
  ohm::test::write_file(dir.file("m.json"), messages.dump());
  std::string out;
  EXPECT_EQ(run_cli({"ohm", "chat-template", cfg.string(), "--messages", dir.file("m.json"),
                     "--add-generation-prompt"},
                    out),
            0);
  EXPECT_EQ(out, expected);
  // tools from a separate file give the same prompt
  ohm::test::write_file(dir.file("msgs.json"), messages["messages"].dump());
  ohm::test::write_file(dir.file("tools.json"), messages["tools"].dump());
  EXPECT_EQ(run_cli({"ohm", "chat-template", cfg.string(), "--messages", dir.file("msgs.json"),
                     "--tools", dir.file("tools.json"), "--add-generation-prompt"},
                    out),
            0);
  EXPECT_EQ(out, expected);
}

// --batch: every qwen3 case of the fixture (transformers' output, or its raise_exception) in one
// file gives one answer a line, in order: the same text, or {"error"} with transformers' message.
// A line that is not a conversation is an error naming the file and the line.
TEST(ChatTemplateCli, BatchAnswersEachLine) {
  const fs::path cfg =
      ohm::test::shared_data_dir() / "tokenizers" / "qwen3" / "tokenizer_config.json";
  OHM_REQUIRE_SHARED(fs::exists(cfg), cfg);
  std::vector<ojson> cases;
  std::string lines;
  for (const auto& t : chat_fixture()["templates"])
    if (t["path"] == "tokenizers/qwen3/tokenizer_config.json")
      for (const auto& c : t["cases"]) {
        cases.push_back(c);
        lines += ojson{{"messages", c["messages"]},
                       {"tools", c["tools"]},
                       {"add_generation_prompt", c["add_generation_prompt"]}}
                     .dump() +
                 "\n";
      }
  ASSERT_GE(cases.size(), 10u);
  ohm::test::TempDir dir;
  ohm::test::write_file(dir.file("in.jsonl"), lines);
  std::string out;
  ASSERT_EQ(run_cli({"ohm", "chat-template", cfg.string(), "--batch", dir.file("in.jsonl")}, out),
            0);
  std::istringstream ss(out);
  size_t i = 0, errors = 0;
  for (std::string line; std::getline(ss, line); ++i) {
    ASSERT_LT(i, cases.size());
    const ojson got = ojson::parse(line);
    if (cases[i].contains("output")) {
      EXPECT_EQ(got.value("text", "<none>"), cases[i]["output"].get<std::string>()) << i;
    } else {
      ++errors;
      ASSERT_TRUE(got.contains("error")) << i << ": " << line;
      if (cases[i].value("raised", false)) {
        EXPECT_NE(got["error"].get<std::string>().find(
                      cases[i]["error"].get<std::string>().substr(sizeof("TemplateError: ") - 1)),
                  std::string::npos)
            << got["error"];
      }
    }
  }
  EXPECT_EQ(i, cases.size());
  EXPECT_GE(errors, 1u);  // the fixture has refusals: they must come back as {"error"}
  ohm::test::write_file(dir.file("bad.jsonl"), lines + "[1, 2]\n");
  EXPECT_EQ(run_cli({"ohm", "chat-template", cfg.string(), "--batch", dir.file("bad.jsonl")}, out),
            1);
}

TEST(ChatTemplateCli, ErrorsExitNonZero) {
  ohm::test::TempDir dir;
  ohm::test::write_file(dir.file("tokenizer_config.json"),
                        R"({"chat_template": "{{ raise_exception('no system') }}"})");
  ohm::test::write_file(dir.file("m.json"), R"([{"role": "system", "content": "x"}])");
  std::string out;
  EXPECT_EQ(run_cli({"ohm", "chat-template", dir.file("tokenizer_config.json"), "--messages",
                     dir.file("m.json")},
                    out),
            1);
  EXPECT_EQ(run_cli({"ohm", "chat-template", dir.file("tokenizer_config.json")}, out), 2);
}

}  // namespace
