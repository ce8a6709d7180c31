// generate() with transformers' GenerationMixin semantics: greedy, multinomial sampling and
// beam search over a CausalLM with its KV cache, driven by a GenerationConfig (defaults from
// generation_config.json, overridden field by field by the caller).
//
//   auto model = ohm::load_causal_lm(dir);
//   ohm::generation::GenerateOptions opt;
//   opt.config = ohm::load_generation_config(dir + "/generation_config.json");
//   opt.config.max_new_tokens = 32;
//   auto out = ohm::generation::generate(*model, {prompt_ids}, opt);
//   out.sequences[0]   // prompt + generated ids
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ohm/core/token_id.h"
#include "ohm/formats/config.h"
#include "ohm/generation/speculative.h"

namespace ohm {
class CausalLM;
}

namespace ohm::generation {

class LogitsProcessor;

struct GenerateOptions {
  GenerationConfig config;
  // Seed of the sampling RNG (std::mt19937_64); nullopt: config.seed, else 0. Sampling is
  // reproducible run to run for a given seed.
  std::optional<uint64_t> seed;
  // Called for every generated token of every returned sequence (not for beam search, whose
  // tokens are only final at the end). Return false to stop generating (cancellation).
  std::function<bool(int64_t sequence, TokenId token)> on_token;
  // Checked before every step; set it from another thread to cancel.
  const std::atomic<bool>* cancel = nullptr;
  // Stop criterion on one sequence's generated ids (e.g. stop strings, which need a
  // tokenizer: see stop_strings_criterion). Return true to finish that sequence.
  std::function<bool(const std::vector<TokenId>& generated)> stop;
  // Keep the processed scores of every step (vocab floats per step and sequence).
  bool output_scores = false;
  // Applied to the scores before the configuration's processors: e.g. a GrammarLogitsProcessor
  // for structured output (ohm/generation/grammar.h). Stateful, so for one sequence: one
  // prompt, num_return_sequences 1, no beam search.
  std::shared_ptr<const LogitsProcessor> constraint;
  // Speculative decoding (prompt lookup or a draft model; ohm/generation/speculative.h): one
  // sequence (one prompt, num_return_sequences 1, no beam search, no constraint).
  SpeculativeOptions speculative;
};

enum class FinishReason { Eos, Length, Stop, Cancelled };
const char* to_string(FinishReason r);

struct GenerateOutput {
  // One entry per returned sequence: num_return_sequences per prompt, in prompt order.
  std::vector<std::vector<TokenId>> sequences;  // prompt (unpadded) + generated
  std::vector<int64_t> prompt_lengths;
  std::vector<FinishReason> finish_reasons;
  // Log-probability (log_softmax of the processed scores) of each generated token.
  std::vector<std::vector<float>> token_logprobs;
  // Beam search: the final sequence scores (sum of log-probs / generated_len^length_penalty).
  std::vector<float> sequences_scores;
  // output_scores: [sequence][step][vocab] processed scores (for beams: the beam's step scores).
  std::vector<std::vector<std::vector<float>>> scores;
  // Timings.
  double prefill_seconds = 0, decode_seconds = 0;
  int64_t prompt_tokens = 0, generated_tokens = 0;
  // Speculative decoding: candidate tokens proposed and the ones the model accepted (the
  // acceptance rate is accepted / drafted; every step adds one token of the model's own).
  int64_t drafted_tokens = 0, accepted_tokens = 0;

  // out[i]: sequence i (as transformers' generate output rows).
  const std::vector<TokenId>& operator[](size_t i) const { return sequences.at(i); }
  size_t size() const { return sequences.size(); }
};

// Runs generation for a batch of prompts (left-padded internally). Throws InvalidArgument for
// inconsistent settings (e.g. greedy with num_return_sequences > 1, as transformers does).
GenerateOutput generate(CausalLM& model, const std::vector<std::vector<TokenId>>& prompts,
                        const GenerateOptions& opt);

// Greedy decoding of one sequence through generate() (do_sample=false, no logits processors):
// the prompt followed by up to max_new_tokens ids, stopping after a token in eos_token_ids;
// max_new_tokens <= 0 returns the prompt.
std::vector<TokenId> greedy_generate(CausalLM& model, const std::vector<TokenId>& input_ids,
                                     int64_t max_new_tokens,
                                     const std::vector<TokenId>& eos_token_ids = {});

// A single-sequence generation session that keeps its KV cache between calls (chat): each call
// reuses the longest prefix of the new context that is already in the cache and only runs
// the model on the rest.
class Session {
 public:
  Session(CausalLM& model, GenerationConfig config, uint64_t seed = 0);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Makes the context `context` (e.g. the whole rendered conversation) and generates after it
  // with the session's config; on_token/stop/cancel as in GenerateOptions. Returns the
  // generated ids (the context then includes them).
  std::vector<TokenId> generate(const std::vector<TokenId>& context,
                                const std::function<bool(TokenId token)>& on_token = {},
                                const std::function<bool(const std::vector<TokenId>&)>& stop = {},
                                const std::atomic<bool>* cancel = nullptr);

  const std::vector<TokenId>& tokens() const { return tokens_; }  // tokens in the KV cache
  int64_t reused_last() const { return reused_; }  // cached tokens reused by the last call
  FinishReason finish_reason() const { return reason_; }
  GenerationConfig& config() { return config_; }
  // Speculative decoding for the following calls (as GenerateOptions::speculative; a draft
  // model keeps its own KV cache in the session). InvalidArgument for a draft whose
  // vocabulary size differs from the model's.
  void set_speculative(const SpeculativeOptions& s);
  int64_t drafted_last() const { return drafted_; }    // candidates proposed in the last call
  int64_t accepted_last() const { return accepted_; }  // of which accepted

 private:
  struct State;
  CausalLM& model_;
  GenerationConfig config_;
  std::unique_ptr<State> st_;
  std::vector<TokenId> tokens_;  // tokens whose K/V are in the cache, in order
  int64_t reused_ = 0, drafted_ = 0, accepted_ = 0;
  SpeculativeOptions spec_;
  FinishReason reason_ = FinishReason::Length;
};

// A stop criterion for stop strings: `decode` turns generated ids into text; the sequence
// stops when one of `stops` ends within its last token (transformers' StopStringCriteria).
std::function<bool(const std::vector<TokenId>&)> stop_strings_criterion(
    std::vector<std::string> stops, std::function<std::string(const std::vector<TokenId>&)> decode);

}  // namespace ohm::generation
