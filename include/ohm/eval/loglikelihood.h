// The loglikelihood engine of `ohm eval`: lm-evaluation-harness's request types on token ids,
// with its HF backend's numbers (lm_eval/models/huggingface.py, _loglikelihood_tokens).
//
// A request is (context tokens, continuation tokens). As lm-eval does, the model input is
// (context + continuation)[-(max_length + 1):][:-1] (left truncation to the model's length) and
// the last len(continuation) positions are scored: the sum of the log-softmax of each
// continuation token, and is_greedy when every continuation token is the argmax at its position.
//
// Speed: requests whose (truncated) context is the same are computed together: the context's
// KV is computed once, in blocks of a paged pool that every continuation's sequence points at
// (HellaSwag's 4 endings, MMLU's choices); the tokens of the context's last, partly filled
// block are recomputed per continuation (fewer than block_tokens). Contexts are batched as one
// ragged step (no padding), their continuations as a second step, longest first, and the
// matmuls run on the model's thread pool. Each row's numbers are those of one forward() of the
// whole sequence (CausalLM::forward_paged), so batching does not change results.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "ohm/core/token_id.h"

namespace ohm {
class CausalLM;
}

namespace ohm::eval {

struct LLRequest {
  std::vector<TokenId> context;       // at least one token
  std::vector<TokenId> continuation;  // 1 .. max_length tokens
};

struct LLResult {
  double logprob = 0;  // natural log
  bool is_greedy = false;
};

struct LLOptions {
  int64_t max_length = 0;          // 0: the model's max_position_embeddings (else 2048)
  int64_t batch_size = 16;         // requests per step (at least one context group)
  int64_t max_step_tokens = 8192;  // soft cap on the tokens of one step
  int64_t block_tokens = 16;       // KV block size (power of two)
  // Called after each batch with (requests done, total).
  std::function<void(int64_t, int64_t)> progress;
};

// InvalidArgument naming the request index for an empty context or continuation, or a
// continuation longer than max_length.
std::vector<LLResult> loglikelihood_tokens(CausalLM& model, const std::vector<LLRequest>& reqs,
                                           const LLOptions& opt = {});

// lm-eval's loglikelihood_rolling windows (utils.get_rolling_token_windows with context_len 1,
// then make_disjoint_window): every token of `tokens` is predicted once, the first from
// `prefix_token`, later windows left-filled with earlier tokens up to max_length. The sum of
// the windows' logprobs is the document's loglikelihood.
std::vector<LLRequest> rolling_windows(const std::vector<TokenId>& tokens, TokenId prefix_token,
                                       int64_t max_length);

// Greedy generation for generate_until (lm-eval's HF backend calls model.generate with
// do_sample=False): per context, tokens are appended until one of `eos` is produced (kept in
// the output), max_new tokens are made, or stop(i, generated) says the text holds a stop
// sequence. Each context runs alone (batch 1), so no padding changes its numbers.
std::vector<std::vector<TokenId>> generate_greedy(
    CausalLM& model, const std::vector<std::vector<TokenId>>& contexts, int64_t max_new,
    const std::vector<TokenId>& eos,
    const std::function<bool(size_t, const std::vector<TokenId>&)>& stop,
    const std::function<void(int64_t, int64_t)>& progress = {});

// The context length lm-eval's HF backend uses for `model`: max_position_embeddings, else 2048.
int64_t default_max_length(const CausalLM& model);

}  // namespace ohm::eval
