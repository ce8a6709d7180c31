// Paged KV storage for continuous batching (vLLM's PagedAttention layout on the CPU): a pool of
// fixed-size blocks shared by many sequences. Per layer, K and V are [n_blocks, block_tokens,
// kv_dim] in the context's device memory; a sequence owns a list of block ids (its block table)
// and slot j of the sequence is row j % block_tokens of block table[j / block_tokens]. Blocks
// are handed out and shared (prefix caching) by the caller (ohm::serve's block manager); the
// pool only stores them.
#pragma once

#include <cstdint>
#include <vector>

#include "ohm/backends/context.h"

namespace ohm::nn {

class PagedKVPool {
 public:
  // block_tokens must be a power of two; `ctx` must outlive the pool.
  PagedKVPool(const backends::Context& ctx, int64_t n_layer, int64_t kv_dim, int64_t n_blocks,
              int64_t block_tokens);

  int64_t n_layer() const { return n_layer_; }
  int64_t kv_dim() const { return kv_dim_; }
  int64_t n_blocks() const { return n_blocks_; }
  int64_t block_tokens() const { return block_tokens_; }
  // Bytes of K and V storage in all.
  uint64_t bytes() const {
    return static_cast<uint64_t>(2 * n_layer_ * n_blocks_ * block_tokens_ * kv_dim_) * 4;
  }

  float* k_block(int64_t layer, int64_t block) {
    return k_[static_cast<size_t>(layer)].data() + block * block_tokens_ * kv_dim_;
  }
  float* v_block(int64_t layer, int64_t block) {
    return v_[static_cast<size_t>(layer)].data() + block * block_tokens_ * kv_dim_;
  }
  const backends::Context& context() const { return *ctx_; }

 private:
  const backends::Context* ctx_;
  int64_t n_layer_, kv_dim_, n_blocks_, block_tokens_;
  std::vector<backends::DeviceBuffer> k_, v_;
};

// One sequence of a ragged step (CausalLM::forward_paged): its n_new tokens are rows
// [offset, offset + n_new) of the step and follow the n_past tokens already in its blocks;
// `blocks` (n_blocks ids) covers at least n_past + n_new slots.
struct PagedSeq {
  int64_t offset = 0, n_new = 0, n_past = 0;
  const int32_t* blocks = nullptr;
  int64_t n_blocks = 0;
  // The sequence length RoPE's dynamic / longrope frequencies are chosen for (Rope::tables);
  // 0: n_past + n_new, what one forward of this sequence alone would use.
  int64_t rope_len = 0;
};

}  // namespace ohm::nn
