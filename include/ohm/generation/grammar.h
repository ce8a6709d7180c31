// Structured output: grammars (JSON schema, JSON object, literals, regex; composed by sequence and
// choice) compiled to a byte-level pushdown automaton, and per-request matchers that turn the
// automaton's state into a token mask for the model's vocabulary (constrained decoding).
//
//   auto vocab = TokenBytes::from_tokenizer(tok);              // once per tokenizer
//   auto g = Grammar::json_schema(schema);                     // once per schema (or _cached)
//   GrammarMatcher m(g, vocab);                                // once per request
//   for (;;) {
//     m.fill_mask(allowed, eos_ids);                           // allowed[id] = 0 or 1
//     apply_mask(logits, vocab_size, allowed);                 // disallowed logits -> -inf
//     TokenId t = sample(logits);
//     if (is_eos(t)) break;                                    // allowed only when complete
//     m.accept(t);
//   }
//
// The language works on the bytes the tokens decode to, so a token may span grammar pieces
// (`"}` closes a string and an object) and UTF-8 sequences may be split across tokens. The
// supported JSON-schema subset, the whitespace rule and the number/format semantics are
// documented in docs/serving.md ("Structured output").
//
// Thread safety: TokenBytes and Grammar are immutable and may be shared across threads; a
// GrammarMatcher belongs to one request (one thread at a time).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ohm/core/token_id.h"
#include "ohm/generation/logits_process.h"

namespace ohm::tokenizers {
class Tokenizer;
}

namespace ohm::generation {

namespace grammar_detail {
struct Vocab;    // token bytes, byte trie and per-state string tables
struct Program;  // the compiled automaton
struct Expr;
struct Rule;
}  // namespace grammar_detail

// What each token id contributes to the decoded text, as bytes: byte-level BPE (GPT-2 alphabet)
// mapped back to bytes, SentencePiece "▁" as a space and <0xNN> byte-fallback pieces as the
// byte, other vocabularies as the token's UTF-8 text. Special/control tokens (and ids with no
// token) are marked and never allowed inside a grammar.
class TokenBytes {
 public:
  static std::shared_ptr<const TokenBytes> from_tokenizer(const tokenizers::Tokenizer& tok);
  // Explicit bytes per id (tests, custom vocabularies); `special[i]` marks control tokens
  // (empty = none). An empty byte string is never allowed.
  static std::shared_ptr<const TokenBytes> from_strings(std::vector<std::string> bytes,
                                                        std::vector<bool> special = {});

  size_t vocab_size() const;
  std::string_view bytes(TokenId id) const;  // "" for out-of-range ids
  bool is_special(TokenId id) const;

  const grammar_detail::Vocab& detail() const { return *v_; }
  ~TokenBytes();
  explicit TokenBytes(std::unique_ptr<grammar_detail::Vocab> v);

 private:
  std::unique_ptr<grammar_detail::Vocab> v_;
};

struct JsonGrammarOptions {
  // Whitespace allowed at each place JSON allows it (after '{', '[', ',', ':' and before ':',
  // ',', '}', ']'): at most one line break ("\n" or "\r\n") followed by at most this many
  // spaces/tabs. 0 = compact JSON (no whitespace).
  int max_whitespace = 20;
};

// A grammar over bytes. Cheap to copy (shares the compiled automaton).
class Grammar {
 public:
  // InvalidArgument naming the keyword and the JSON pointer of what is unsupported or invalid.
  // Properties are generated in schema order: nlohmann::json keeps object keys sorted, so pass
  // an ordered_json (or the text, below) to keep the schema's own order.
  static Grammar json_schema(const nlohmann::ordered_json& schema,
                             const JsonGrammarOptions& opt = {});
  static Grammar json_schema(const nlohmann::json& schema, const JsonGrammarOptions& opt = {});
  // The same, parsed from JSON text and cached by that text (thread-safe, bounded LRU): what a
  // server calls per request.
  static Grammar json_schema_cached(std::string_view schema_text,
                                    const JsonGrammarOptions& opt = {});
  static Grammar any_json_object(const JsonGrammarOptions& opt = {});  // json_object
  static Grammar any_json(const JsonGrammarOptions& opt = {});         // any JSON value
  static Grammar literal(std::string text);
  // A regular expression (the subset documented for `pattern`) over raw UTF-8 text, anchored
  // at both ends.
  static Grammar regex(std::string_view pattern);
  static Grammar sequence(const std::vector<Grammar>& parts);
  static Grammar choice(const std::vector<Grammar>& alternatives);

  size_t num_states() const;  // automaton size, for diagnostics
  const grammar_detail::Program& program() const { return *prog_; }

  Grammar();
  ~Grammar();
  Grammar(const Grammar&);
  Grammar& operator=(const Grammar&);

 private:
  friend struct GrammarAccess;
  std::shared_ptr<const grammar_detail::Expr> root_;
  std::vector<std::shared_ptr<grammar_detail::Rule>> rules_;  // owns every rule root_ reaches
  std::shared_ptr<const grammar_detail::Program> prog_;
};

// The state of one output against a grammar.
class GrammarMatcher {
 public:
  GrammarMatcher(const Grammar& g, std::shared_ptr<const TokenBytes> vocab);
  ~GrammarMatcher();
  GrammarMatcher(GrammarMatcher&&) noexcept;
  GrammarMatcher& operator=(GrammarMatcher&&) noexcept;

  // allowed (resized to the vocabulary size) [id] = 1 when token id keeps the output a prefix
  // of some string of the language; the eos ids are allowed exactly when the output so far is
  // complete. Never all zero while the output is incomplete.
  void fill_mask(std::vector<uint8_t>& allowed, const std::vector<TokenId>& eos_ids);
  // Consumes a token: false (state unchanged) if it is not allowed. A special token (EOS) is
  // accepted exactly when complete() and ends the output (nothing is allowed after it).
  bool accept(TokenId id);
  // Consumes raw bytes (e.g. a forced prefix): false (state unchanged) if not allowed.
  bool accept_bytes(std::string_view bytes);
  bool complete() const;      // the output is a whole string of the language
  bool can_continue() const;  // more bytes are possible
  bool terminated() const;    // an accepted special token ended the output

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// A grammar as a logits processor for one sequence (GenerateOptions::constraint): each call
// first accepts the tokens generated since the previous call, then masks the scores. Stateful
// (apply is const only to fit the interface): one sequence, one generation at a time.
class GrammarLogitsProcessor : public LogitsProcessor {
 public:
  GrammarLogitsProcessor(const Grammar& g, std::shared_ptr<const TokenBytes> vocab,
                         std::vector<TokenId> eos_ids);
  void apply(std::span<const TokenId> seq, int64_t prompt_len,
             std::span<float> scores) const override;
  std::string name() const override { return "grammar"; }

 private:
  mutable GrammarMatcher m_;
  mutable size_t consumed_ = 0;  // generated tokens already accepted
  mutable std::vector<uint8_t> allowed_;
  std::shared_ptr<const TokenBytes> vocab_;
  std::vector<TokenId> eos_;
};

// Sets logits[i] = -inf where allowed[i] == 0 (i < vocab; ids past allowed.size() too).
void apply_mask(float* logits, int64_t vocab, const std::vector<uint8_t>& allowed);

}  // namespace ohm::generation
