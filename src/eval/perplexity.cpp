#include "ohm/eval/perplexity.h"

#include <chrono>
#include <cmath>

#include "ohm/core/error.h"
#include "ohm/models/causal_lm.h"

namespace ohm::eval {

PerplexityResult perplexity(CausalLM& model, const std::vector<TokenId>& tokens,
                            const PerplexityOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t n_ctx = opt.n_ctx;
  if (n_ctx < 4) throw InvalidArgument(ErrorContext().key("n_ctx"), "must be >= 4");
  const int64_t n_tok = static_cast<int64_t>(tokens.size());
  int64_t n_chunks = n_tok / n_ctx;
  if (opt.max_chunks) n_chunks = std::min(n_chunks, *opt.max_chunks);
  if (n_chunks < 1)
    throw InvalidArgument(ErrorContext().key("n_ctx"),
                          "the text has " + std::to_string(n_tok) + " tokens; one chunk needs " +
                              std::to_string(n_ctx) + " (use a longer text or a smaller context)");
  const int64_t V = model.vocab_size(), first = n_ctx / 2;
  PerplexityResult r;
  r.n_ctx = n_ctx;
  double nll = 0, nll2 = 0;
  Tensor ids = Tensor::empty(DType::I64, {1, n_ctx});
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t start = c * n_ctx;
    int64_t* p = ids.mutable_data<int64_t>();
    for (int64_t t = 0; t < n_ctx; ++t) p[t] = tokens[static_cast<size_t>(start + t)];
    if (opt.bos_id) p[0] = *opt.bos_id;
    auto cache = model.make_cache(1, n_ctx);
    const Tensor logits = model.forward(ids, Tensor(), Tensor(), cache);  // [1, n_ctx, V]
    const float* lg = logits.data<float>();
    for (int64_t i = first; i < n_ctx - 1; ++i) {
      const float* row = lg + i * V;
      float mx = row[0];
      for (int64_t v = 1; v < V; ++v) mx = std::max(mx, row[v]);
      double sum_exp = 0;
      for (int64_t v = 0; v < V; ++v) sum_exp += std::exp(row[v] - mx);
      const int64_t target = tokens[static_cast<size_t>(start + i + 1)];
      const double x = -(static_cast<double>(row[target] - mx) - std::log(sum_exp));
      nll += x;
      nll2 += x * x;
      ++r.tokens_scored;
    }
    r.chunk_ppl.push_back(std::exp(nll / static_cast<double>(r.tokens_scored)));
    if (opt.on_chunk) opt.on_chunk(c + 1, r.chunk_ppl.back());
  }
  r.chunks = n_chunks;
  const double n = static_cast<double>(r.tokens_scored);
  r.nll = nll / n;
  r.ppl = std::exp(r.nll);
  // llama.cpp: nll2 = nll2/N - nll^2; err = sqrt(nll2 / (N-1)) * ppl (when N > 1)
  const double var = nll2 / n - r.nll * r.nll;
  r.ppl_err = n > 1 && var > 0 ? std::sqrt(var / (n - 1)) * r.ppl : 0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace ohm::eval
