// The speculative decoding loop shared by generate() and Session (see
// ohm/generation/speculative.h for the semantics).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "decode.h"
#include "ohm/generation/speculative.h"
#include "ohm/nn/kv_cache.h"

namespace ohm::generation::detail {

// A model, its KV cache and the tokens whose K/V the cache holds (in order from the start).
struct CachedModel {
  CausalLM& model;
  nn::KVCache& cache;
  std::vector<TokenId>& held;
};

struct SpecLoop {
  const GenerationConfig& g;
  const LogitsProcessorList& procs;
  std::mt19937_64& rng;
  const StoppingCriteria& stopping;
  SpeculativeOptions so;
  const std::atomic<bool>* cancel = nullptr;
  std::function<bool(TokenId)> on_token;  // streaming; false cancels
  bool keep_logprobs = true, keep_scores = false;
};

struct SpecStats {
  int64_t drafted = 0, accepted = 0;
  int64_t reused = 0;  // tokens of row.seq whose K/V were already in the target's cache
  double prefill_seconds = 0, decode_seconds = 0;
};

// InvalidArgument for options that do not fit `model` (negative counts, both prompt lookup and
// a draft, a draft whose vocabulary size differs).
void check_speculative(const CausalLM& model, const SpeculativeOptions& so);

// Generates after row.seq (its first row.prompt_len tokens are the prompt) into `row` until a
// stopping criterion, stopping.max_length or cancellation. Each cache is first rolled back to
// the longest prefix of its held tokens that row.seq shares (a chat session's reuse). On
// return every cache holds row.seq but its last token (the next call computes that one's K/V).
SpecStats speculative_decode(CachedModel& target, CachedModel* draft, SampleStrategy::Row& row,
                             const SpecLoop& opt);

}  // namespace ohm::generation::detail
