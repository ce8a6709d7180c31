// The KV cache: contiguous per sequence, one slot per token (padding slots included, marked
// invalid), stored as f32 (default), f16 or q8_0 (kv_type: each slot one row of kv_dim values in
// that type, ggml's Q8_0 blocks for q8_0, padded to whole floats: slot_floats()). Layout per
// layer: K and V each [batch, capacity, slot_floats] with kv_dim = n_kv_head * head_dim. Storage
// is allocated for what is asked (the capacity hint or the first append) and grows by a quarter
// (at least 16 slots) when full, never per token once warm.
//
// Sliding-window models (set_window, when every layer uses the window) drop slots no future query
// can see: when the storage is full, the last window - 1 slots move to the front, so memory stays
// O(window + step) and each token costs O(window) (kernels::AttentionArgs::window counts slots).
// size() then counts the slots held; dropped() the slots dropped from the front.
//
// K and V live in the context's device memory (its backend's Allocator) and move only through
// its copy op; the per-slot validity and positions (masks) stay on the host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ohm/backends/context.h"
#include "ohm/nn/paged_kv.h"

namespace ohm::nn {

class KVCache {
 public:
  KVCache() = default;
  // `ctx` (its allocator and copy op) must outlive the cache.
  // kv_type: F32, F16 or Q8_0 (kv_dim a multiple of 32); InvalidArgument otherwise.
  KVCache(const backends::Context& ctx, int64_t n_layer, int64_t batch, int64_t kv_dim,
          int64_t capacity_hint = 0, DType kv_type = DType::F32);
  // A paged view for one ragged step (CausalLM::forward_paged): batch 1 over the step's rows;
  // attend() writes each sequence's new K/V into its blocks of `pool` and attends through its
  // block table. `pool` and `seqs` must outlive the step.
  KVCache(PagedKVPool& pool, std::span<const PagedSeq> seqs);
  PagedKVPool* paged_pool() const { return pool_; }
  std::span<const PagedSeq> paged_seqs() const { return seqs_; }

  int64_t n_layer() const { return n_layer_; }
  int64_t batch() const { return batch_; }
  int64_t kv_dim() const { return kv_dim_; }
  DType kv_type() const { return kv_type_; }
  int64_t row_bytes() const { return row_bytes_; }  // bytes of one slot's kv_dim values
  int64_t slot_floats() const { return slot_; }     // a slot's stride in floats
  int64_t size() const { return size_; }            // slots held per sequence
  int64_t capacity() const { return capacity_; }
  // Sliding window (0: keep everything). Set before the first append.
  void set_window(int64_t window) { window_ = window; }
  int64_t window() const { return window_; }
  int64_t dropped() const { return dropped_; }  // slots dropped from the front (window)
  // Valid (non-padding) slots of row b among the dropped ones.
  int64_t dropped_valid(int64_t b) const {
    return dropped_valid_.empty() ? 0 : dropped_valid_[static_cast<std::size_t>(b)];
  }

  // Opens T new slots per sequence; `valid` [batch, T] (null: all valid) and `pos` [batch, T]
  // are recorded per slot. Returns the index of the first new slot.
  int64_t append(int64_t T, const uint8_t* valid, const int32_t* pos);
  // Keeps the first new_size held slots (e.g. to undo a step).
  void truncate(int64_t new_size);
  // Rolls the cache back to the first `tokens` tokens of its sequences (counting the slots a
  // sliding window dropped): speculative decoding's undo of rejected draft tokens, a chat
  // session's return to a shared prefix. Works the same for every kv_type (only the slot
  // count changes; the next append overwrites the slots). Returns false, changing nothing,
  // where a window has already dropped slots that a query at position `tokens` still sees
  // (tokens - window + 1 < dropped()): the caller must then reset() and recompute. Contiguous
  // caches only (InvalidArgument for a paged view); `tokens` past what is held is an error.
  bool rollback(int64_t tokens);
  void reset() {
    size_ = 0;
    dropped_ = 0;
    dropped_valid_.clear();
  }
  // Beam search: row b takes the contents of row src_rows[b] (rows may repeat). O(batch *
  // size * kv_dim) copies through one scratch buffer.
  void reorder(const std::vector<int64_t>& src_rows);

  // Device pointers to row b of a layer's K / V ([capacity, slot_floats]; f32 caches:
  // slot_floats == kv_dim; others hold row_bytes bytes of kv_type at the start of each slot).
  float* k(int64_t layer, int64_t b) { return k_[layer].data() + b * capacity_ * slot_; }
  float* v(int64_t layer, int64_t b) { return v_[layer].data() + b * capacity_ * slot_; }
  const uint8_t* valid(int64_t b) const { return valid_.data() + b * capacity_; }
  const int32_t* pos(int64_t b) const { return pos_.data() + b * capacity_; }

 private:
  void grow(int64_t need);
  void drop_front(int64_t n);
  const backends::Context* ctx_ = nullptr;
  PagedKVPool* pool_ = nullptr;
  std::span<const PagedSeq> seqs_;
  int64_t n_layer_ = 0, batch_ = 0, kv_dim_ = 0, size_ = 0, capacity_ = 0;
  DType kv_type_ = DType::F32;
  int64_t slot_ = 0, row_bytes_ = 0;
  int64_t window_ = 0, dropped_ = 0;
  std::vector<int64_t> dropped_valid_;
  std::vector<backends::DeviceBuffer> k_, v_;
  std::vector<uint8_t> valid_;
  std::vector<int32_t> pos_;
};

}  // namespace ohm::nn
