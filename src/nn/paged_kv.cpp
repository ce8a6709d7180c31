#include "ohm/nn/paged_kv.h"

#include "ohm/core/error.h"

namespace ohm::nn {

PagedKVPool::PagedKVPool(const backends::Context& ctx, int64_t n_layer, int64_t kv_dim,
                         int64_t n_blocks, int64_t block_tokens)
    : ctx_(&ctx),
      n_layer_(n_layer),
      kv_dim_(kv_dim),
      n_blocks_(n_blocks),
      block_tokens_(block_tokens) {
  if (n_layer <= 0 || kv_dim <= 0 || n_blocks <= 0)
    throw InvalidArgument(ErrorContext().op("PagedKVPool"),
                          "n_layer, kv_dim and n_blocks must be > 0");
  if (block_tokens <= 0 || (block_tokens & (block_tokens - 1)) != 0)
    throw InvalidArgument(
        ErrorContext().op("PagedKVPool"),
        "block_tokens must be a power of two, got " + std::to_string(block_tokens));
  const auto n = static_cast<size_t>(n_blocks * block_tokens * kv_dim);
  for (int64_t l = 0; l < n_layer; ++l) {
    // Not filled: a slot is written before any query reads it, and untouched pages stay out of
    // the resident set, so memory grows with the blocks in use.
    k_.emplace_back(ctx.allocator(), n);
    v_.emplace_back(ctx.allocator(), n);
  }
}

}  // namespace ohm::nn
