// The KV cache: contiguous per sequence, one slot per token (padding slots included, marked
// invalid), f32. Layout per layer: K and V each [batch, capacity, kv_dim] with
// kv_dim = n_kv_head * head_dim. Storage grows geometrically (never per token once warm).
//
// Sliding-window models keep every slot but attention reads only the last `window` of them
// (kernels::AttentionArgs::window), so a window model costs O(window) per token.
#pragma once

#include <cstdint>
#include <vector>

namespace ohm::nn {

class KVCache {
 public:
  KVCache() = default;
  KVCache(int64_t n_layer, int64_t batch, int64_t kv_dim, int64_t capacity_hint = 0);

  int64_t n_layer() const { return n_layer_; }
  int64_t batch() const { return batch_; }
  int64_t kv_dim() const { return kv_dim_; }
  int64_t size() const { return size_; }  // slots used per sequence
  int64_t capacity() const { return capacity_; }

  // Opens T new slots per sequence; `valid` [batch, T] (null: all valid) and `pos` [batch, T]
  // are recorded per slot. Returns the index of the first new slot.
  int64_t append(int64_t T, const uint8_t* valid, const int32_t* pos);
  // Drops the last n slots (e.g. to undo a step).
  void truncate(int64_t new_size);
  void reset() { size_ = 0; }
  // Beam search: row b takes the contents of row src_rows[b] (rows may repeat). O(batch *
  // size * kv_dim) copies through one scratch buffer.
  void reorder(const std::vector<int64_t>& src_rows);

  float* k(int64_t layer, int64_t b) { return k_[layer].data() + b * capacity_ * kv_dim_; }
  float* v(int64_t layer, int64_t b) { return v_[layer].data() + b * capacity_ * kv_dim_; }
  const uint8_t* valid(int64_t b) const { return valid_.data() + b * capacity_; }
  const int32_t* pos(int64_t b) const { return pos_.data() + b * capacity_; }

 private:
  void grow(int64_t need);
  int64_t n_layer_ = 0, batch_ = 0, kv_dim_ = 0, size_ = 0, capacity_ = 0;
  std::vector<std::vector<float>> k_, v_;
  std::vector<uint8_t> valid_;
  std::vector<int32_t> pos_;
};

}  // namespace ohm::nn
