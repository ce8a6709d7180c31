// Chat templates: render a model's `chat_template` the way transformers'
// `tokenizer.apply_chat_template(messages, tools=..., add_generation_prompt=..., tokenize=False)`
// does, byte for byte.
//
//   auto ct = ohm::chat::ChatTemplate::load("models/qwen3");          // dir or
//   tokenizer_config.json ohm::chat::ChatOptions opt; opt.add_generation_prompt = true; std::string
//   prompt = ct.apply(messages_json, opt);
//
// The template comes from tokenizer_config.json's `chat_template` (a string, or a list of
// {name, template}) or a `chat_template.jinja` file beside it (which wins, as in transformers).
// Template variables, as transformers passes them: messages (None-valued keys dropped, reasoning
// aliased to `reasoning_content` and `thinking`), tools (or None), documents (or None),
// add_generation_prompt, every named special token of the tokenizer config (bos_token,
// eos_token, unk_token, pad_token, ... and any other "*_token" string), then `extra`.
#pragma once

#include <nlohmann/json.hpp>  // the full header: ChatOptions and ChatTemplate hold JSON values
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ohm/jinja/template.h"

namespace ohm::chat {

using ojson = nlohmann::ordered_json;

struct ChatOptions {
  bool add_generation_prompt = false;
  std::optional<ojson> tools;      // a list of JSON schemas; nullopt: the template sees None
  std::optional<ojson> documents;  // nullopt: None
  ojson extra = ojson::object();   // more template variables (they override special tokens)
  std::string template_name;       // for multi-template configs; empty: tool_use/default
};

class ChatTemplate {
 public:
  // From a parsed tokenizer_config.json; `origin` names it in errors.
  static ChatTemplate from_tokenizer_config(const ojson& config,
                                            const std::string& origin = "tokenizer_config.json");
  // MODEL: a model directory or Hub id (ohm::resolve_model), or a tokenizer_config.json path.
  static ChatTemplate load(const std::string& model);
  // One template string with the given special tokens ({"bos_token": "<s>", ...}).
  static ChatTemplate from_string(const std::string& source, ojson special_tokens = ojson::object(),
                                  const std::string& name = "chat_template");

  std::string apply(const ojson& messages, const ChatOptions& opt = {}) const;

  // Template names: {"default"} for a single template.
  std::vector<std::string> names() const;
  const std::string& source(const std::string& name = "") const;
  const ojson& special_tokens() const { return special_tokens_; }

  // The special-token variables transformers passes for this tokenizer config.
  static ojson special_tokens_of(const ojson& config);

 private:
  struct Entry {
    std::string name;
    std::string source;
    jinja::Template compiled;
  };
  const Entry& select(const std::string& name, bool has_tools) const;

  std::vector<Entry> templates_;
  bool multi_ = false;
  ojson special_tokens_ = ojson::object();
};

}  // namespace ohm::chat
