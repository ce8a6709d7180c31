// Perplexity the way llama.cpp's llama-perplexity computes it, so figures compare directly:
// the token stream is cut into non-overlapping chunks of n_ctx tokens; each chunk runs from an
// empty KV cache with its first token replaced by BOS (when the tokenizer adds one); only the
// second half of each chunk is scored (positions n_ctx/2 .. n_ctx-2 predict the next token),
// so every scored token has at least n_ctx/2 tokens of context. Log-softmax: max in f32, sum of
// exp in f64, as llama.cpp does.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "ohm/core/token_id.h"

namespace ohm {
class CausalLM;
}

namespace ohm::eval {

struct PerplexityOptions {
  int64_t n_ctx = 512;
  std::optional<int64_t> max_chunks;  // nullopt: every full chunk
  std::optional<TokenId> bos_id;      // replace the first token of each chunk (llama.cpp add_bos)
  // Called after each chunk with (chunks done, running perplexity).
  std::function<void(int64_t, double)> on_chunk;
};

struct PerplexityResult {
  double ppl = 0;      // exp(mean NLL)
  double ppl_err = 0;  // llama.cpp's +/- (delta method on the NLL's standard error)
  double nll = 0;      // mean NLL, nats/token
  int64_t tokens_scored = 0, chunks = 0, n_ctx = 0;
  std::vector<double> chunk_ppl;  // running perplexity after each chunk
  double seconds = 0;
};

// InvalidArgument naming n_ctx when the text is shorter than one chunk (llama-perplexity wants
// two chunks; one is enough here).
PerplexityResult perplexity(CausalLM& model, const std::vector<TokenId>& tokens,
                            const PerplexityOptions& opt);

}  // namespace ohm::eval
