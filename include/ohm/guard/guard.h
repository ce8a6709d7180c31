// Content filtering (docs/safety.md): a Llama Guard-format classifier model and a rules layer,
// for the prompt, the response, or both.
//
//   ohm::guard::ContentFilter f({.model = "llama-guard-3-1b", .rules = "rules.json"});
//   auto d = f.check_prompt({{"user", "How do I ..."}});
//   if (!d.allowed) ... d.categories  // {"S1", "S10"}
//
// The guard model renders the conversation with its own chat template (Llama Guard 3's puts the
// MLCommons S1-S14 taxonomy in the prompt and asks about the last turn), generates greedily, and
// its output is parsed: "safe" allows; "unsafe" with a second line of comma-separated codes
// blocks with those codes; anything else is malformed and blocks (fail closed) unless
// fail_closed is false. The rules layer is a JSON file of keyword and regex lists per category
// (docs/safety.md): it runs first and blocks on any match, with or without a guard model.
// Decisions carry codes only; the text is never kept or logged here.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ohm::guard {

// The MLCommons hazard taxonomy as Llama Guard 3 lists it: {"S1", "Violent Crimes"}, ...
const std::vector<std::pair<std::string, std::string>>& llama_guard_categories();
// The name of a code ("S10" -> "Hate"); the code itself when unknown.
std::string category_name(const std::string& code);

struct Decision {
  bool allowed = true;
  std::vector<std::string> categories;  // codes, in the order found (blocked decisions)
  std::string source;                   // "guard", "rules", or "" (nothing checked)
  bool malformed = false;               // the guard's output was neither form
};

// Parses a guard model's output (leading/trailing whitespace ignored, case-insensitive verdict).
Decision parse_guard_output(const std::string& text, bool fail_closed = true);

struct Turn {
  std::string role;  // "user" or "assistant" (others are dropped for the guard)
  std::string content;
};

// The turns a Llama Guard template accepts: system and tool turns dropped, leading assistant
// turns dropped, consecutive turns of one role joined with a blank line.
std::vector<Turn> guard_conversation(const std::vector<Turn>& turns);

// Keyword and regex lists per category (a JSON file: docs/safety.md "Rules file").
class Rules {
 public:
  Rules();
  ~Rules();
  Rules(Rules&&) noexcept;
  Rules& operator=(Rules&&) noexcept;
  // InvalidArgument naming the file and the entry at fault (bad JSON, an unknown field, a regex
  // that does not compile).
  static Rules load(const std::string& path);
  static Rules parse(const std::string& json_text, const std::string& origin);
  // Blocked with every category that matches, else allowed (source "rules").
  Decision check(std::string_view text) const;
  size_t size() const;  // keywords + patterns

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct GuardOptions {
  std::string model;  // a Llama Guard-format model (directory, .gguf, Hub id); empty: none
  std::string rules;  // a rules file; empty: none
  bool check_prompt = true, check_response = true;
  bool fail_closed = true;  // a malformed guard output blocks
  int threads = 0;
  int64_t max_new_tokens = 16;
  // Tests: the guard model's output is forced to this text (its tokens, then EOS) through a
  // logits constraint; the model still runs on the rendered prompt.
  std::string forced_output;
};

class ContentFilter {
 public:
  explicit ContentFilter(GuardOptions o);
  ~ContentFilter();
  bool checks_prompt() const { return opt_.check_prompt; }
  bool checks_response() const { return opt_.check_response; }
  bool has_model() const;
  const GuardOptions& options() const { return opt_; }

  // The guard prompt of a conversation (guard_conversation applied), as the guard model's chat
  // template renders it (transformers' apply_chat_template(tokenize=False)).
  std::string render(const std::vector<Turn>& turns) const;
  // The conversation up to its last user turn.
  Decision check_prompt(const std::vector<Turn>& turns);
  // The conversation plus the response as the last assistant turn.
  Decision check_response(std::vector<Turn> turns, const std::string& response);
  // What the guard model generated for a conversation (decoded, special tokens skipped).
  std::string classify_raw(const std::vector<Turn>& turns);

 private:
  Decision check(const std::vector<Turn>& turns, const std::string& text_for_rules);
  struct Model;
  GuardOptions opt_;
  Rules rules_;
  std::unique_ptr<Model> model_;
  std::mutex mu_;  // one guard forward at a time
};

}  // namespace ohm::guard
