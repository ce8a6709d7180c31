// `ohm chat-template MODEL --messages FILE.json [--add-generation-prompt] [--tools FILE.json]
//  [--template NAME] [--var KEY=VALUE]...`: prints the prompt the model's chat template renders,
// byte for byte as transformers' apply_chat_template(..., tokenize=False) would.
// `ohm chat-template MODEL --batch FILE.jsonl`: one conversation a line
// ({"messages", "tools", "documents", "add_generation_prompt", "extra": {more variables}}) -> one
// line {"text"} or {"error"}.
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "common.h"
#include "ohm/chat/chat_template.h"
#include "ohm/cli/cli.h"
#include "ohm/core/error.h"

namespace ohm::cli {

namespace {

struct ChatTemplateOptions {
  std::string model;
  std::string batch;
  std::string messages;
  std::string tools;
  std::string template_name;
  std::vector<std::string> vars;
  bool add_generation_prompt = false;
};

chat::ojson read_json_arg(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw IoError(ErrorContext().file(path), std::string("cannot open the ") + what + " file");
  std::ostringstream ss;
  ss << in.rdbuf();
  try {
    return chat::ojson::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(ErrorContext().file(path), std::string("invalid JSON: ") + e.what());
  }
}

// --batch: the errors a template raises (raise_exception, bad input) become {"error": ...} lines,
// so a caller can check that ohm refuses what transformers refuses.
int run_batch(const ChatTemplateOptions& o) {
  const auto ct = chat::ChatTemplate::load(o.model);
  std::ifstream fin;
  std::istream* in = &std::cin;
  if (o.batch != "-") {
    fin.open(o.batch, std::ios::binary);
    if (!fin) throw IoError(ErrorContext().file(o.batch), "cannot open the --batch file");
    in = &fin;
  }
  std::string line;
  size_t line_no = 0;
  while (std::getline(*in, line)) {
    ++line_no;
    if (line.empty() || line == "\r") continue;
    chat::ojson doc;
    try {
      doc = chat::ojson::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(ErrorContext().file(o.batch).note("line", std::to_string(line_no)),
                        std::string("invalid JSON: ") + e.what());
    }
    if (!doc.is_object() || !doc.contains("messages"))
      throw FormatError(ErrorContext().file(o.batch).note("line", std::to_string(line_no)),
                        "expected an object with \"messages\"");
    chat::ChatOptions opt;
    opt.template_name = o.template_name;
    if (doc.contains("add_generation_prompt") && doc["add_generation_prompt"].is_boolean())
      opt.add_generation_prompt = doc["add_generation_prompt"].get<bool>();
    if (doc.contains("tools") && !doc["tools"].is_null()) opt.tools = doc["tools"];
    if (doc.contains("documents") && !doc["documents"].is_null()) opt.documents = doc["documents"];
    if (doc.contains("extra") && doc["extra"].is_object()) opt.extra = doc["extra"];
    chat::ojson out;
    try {
      out["text"] = ct.apply(doc["messages"], opt);
    } catch (const std::exception& e) {
      out = chat::ojson{{"error", e.what()}};
    }
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  }
  std::cout.flush();
  return 0;
}

int run_chat_template(const ChatTemplateOptions& o) {
  if (!o.batch.empty()) return run_batch(o);
  if (o.messages.empty()) throw UsageError("give --messages FILE.json (or --batch FILE.jsonl)");
  const auto ct = chat::ChatTemplate::load(o.model);
  chat::ojson doc = read_json_arg(o.messages, "messages");
  chat::ChatOptions opt;
  opt.add_generation_prompt = o.add_generation_prompt;
  opt.template_name = o.template_name;
  chat::ojson messages = doc;
  // Either a list of messages or {"messages": [...], "tools": [...], "documents": [...]}.
  if (doc.is_object()) {
    if (!doc.contains("messages"))
      throw FormatError(ErrorContext().file(o.messages).key("messages"),
                        "expected a list of messages or an object with \"messages\"");
    messages = doc["messages"];
    if (doc.contains("tools") && !doc["tools"].is_null()) opt.tools = doc["tools"];
    if (doc.contains("documents") && !doc["documents"].is_null()) opt.documents = doc["documents"];
  }
  if (!o.tools.empty()) {
    chat::ojson t = read_json_arg(o.tools, "tools");
    if (t.is_object() && t.contains("tools")) t = t["tools"];
    if (!t.is_array()) throw FormatError(ErrorContext().file(o.tools), "tools must be a JSON list");
    opt.tools = t;
  }
  for (const auto& kv : o.vars) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      throw InvalidArgument(ErrorContext().note("--var", kv), "expected KEY=VALUE");
    const std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    try {
      opt.extra[key] = chat::ojson::parse(value);
    } catch (const nlohmann::json::exception&) {
      opt.extra[key] = value;  // not JSON: a plain string
    }
  }
  std::cout << ct.apply(messages, opt);
  std::cout.flush();
  return 0;
}

const Register reg("chat-template", [](CLI::App& app) {
  auto opt = std::make_shared<ChatTemplateOptions>();
  auto* cmd = app.add_subcommand(
      "chat-template",
      "Render a conversation with the model's chat template (as transformers does)");
  cmd->add_option("model", opt->model,
                  "Model directory or Hub id (its tokenizer_config.json / chat_template.jinja), "
                  "or a tokenizer_config.json path")
      ->required();
  auto* m =
      cmd->add_option("--messages", opt->messages,
                      "JSON file: a list of messages, or {\"messages\": [...], \"tools\": [...]}");
  cmd->add_option("--batch", opt->batch,
                  "JSONL ('-': stdin), a line {\"messages\", \"tools\", \"documents\", "
                  "\"add_generation_prompt\", \"extra\"} -> a line {\"text\"} or {\"error\"}")
      ->excludes(m);
  cmd->add_flag("--add-generation-prompt", opt->add_generation_prompt,
                "Append the header that starts the assistant's reply");
  cmd->add_option("--tools", opt->tools, "JSON file with a list of tool (function) schemas");
  cmd->add_option("--template", opt->template_name,
                  "Named template for configs with several (e.g. tool_use, rag)");
  cmd->add_option("--var", opt->vars,
                  "Extra template variable KEY=VALUE (VALUE parsed as JSON when it is JSON), "
                  "e.g. --var date_string='26 Jul 2024'");
  return Command{cmd, [opt] { return run_chat_template(*opt); }};
});

}  // namespace

}  // namespace ohm::cli
