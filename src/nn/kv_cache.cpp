#include "ohm/nn/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "ohm/core/error.h"
#include "ohm/kernels/kernels.h"

namespace ohm::nn {

KVCache::KVCache(const backends::Context& ctx, int64_t n_layer, int64_t batch, int64_t kv_dim,
                 int64_t capacity_hint, DType kv_type)
    : ctx_(&ctx), n_layer_(n_layer), batch_(batch), kv_dim_(kv_dim), kv_type_(kv_type) {
  if (n_layer <= 0 || batch <= 0 || kv_dim <= 0)
    throw InvalidArgument(ErrorContext().op("KVCache"), "n_layer, batch and kv_dim must be > 0");
  row_bytes_ = kernels::kv_row_bytes(kv_type, kv_dim);  // checks the type
  slot_ = (row_bytes_ + 3) / 4;
  k_.resize(static_cast<size_t>(n_layer));
  v_.resize(static_cast<size_t>(n_layer));
  if (capacity_hint > 0) grow(capacity_hint);
}

KVCache::KVCache(PagedKVPool& pool, std::span<const PagedSeq> seqs)
    : ctx_(&pool.context()),
      pool_(&pool),
      seqs_(seqs),
      n_layer_(pool.n_layer()),
      batch_(1),
      kv_dim_(pool.kv_dim()),
      slot_(pool.kv_dim()),
      row_bytes_(pool.kv_dim() * 4) {}

void KVCache::grow(int64_t need) {
  if (need <= capacity_) return;
  // Grown in steps of a quarter (the first allocation is what is asked for): the cache holds
  // about what is used, and the copies of all regrowths sum to about 5x the final size.
  const int64_t cap =
      capacity_ == 0 ? need
                     : std::max<int64_t>(need, std::max<int64_t>(16, capacity_ + capacity_ / 4));
  auto regrow = [&](auto& vec, int64_t per_slot) {
    using T = typename std::decay_t<decltype(vec)>::value_type;
    std::vector<T> nv(static_cast<size_t>(batch_ * cap * per_slot), T{});
    for (int64_t b = 0; b < batch_ && capacity_ > 0; ++b)
      std::memcpy(nv.data() + b * cap * per_slot, vec.data() + b * capacity_ * per_slot,
                  static_cast<size_t>(size_ * per_slot) * sizeof(T));
    vec.swap(nv);
  };
  auto regrow_device = [&](backends::DeviceBuffer& buf) {
    backends::DeviceBuffer nb(ctx_->allocator(), static_cast<size_t>(batch_ * cap * slot_));
    ctx_->fill(nb.data(), 0.0f, batch_ * cap * slot_);
    if (capacity_ > 0 && size_ > 0)  // row b: [capacity, kv_dim] -> [cap, kv_dim]
      for (int64_t b = 0; b < batch_; ++b)
        ctx_->copy_2d(nb.data() + b * cap * slot_, slot_, buf.data() + b * capacity_ * slot_, slot_,
                      size_, slot_);
    buf = std::move(nb);
  };
  for (int64_t l = 0; l < n_layer_; ++l) {
    regrow_device(k_[l]);
    regrow_device(v_[l]);
  }
  regrow(valid_, 1);
  regrow(pos_, 1);
  capacity_ = cap;
}

int64_t KVCache::append(int64_t T, const uint8_t* valid, const int32_t* pos) {
  if (batch_ == 0) throw InvalidArgument(ErrorContext().op("KVCache"), "cache not initialised");
  // Window: once the storage is full, keep only what the next queries can see.
  if (window_ > 0 && size_ + T > capacity_ && size_ > window_ - 1)
    drop_front(size_ - (window_ - 1));
  const int64_t start = size_;
  grow(size_ + T);
  for (int64_t b = 0; b < batch_; ++b)
    for (int64_t t = 0; t < T; ++t) {
      valid_[b * capacity_ + start + t] = valid ? valid[b * T + t] : 1;
      pos_[b * capacity_ + start + t] =
          pos ? pos[b * T + t] : static_cast<int32_t>(dropped_ + start + t);
    }
  size_ += T;
  return start;
}

void KVCache::drop_front(int64_t n) {
  if (n <= 0) return;
  if (dropped_valid_.empty()) dropped_valid_.assign(static_cast<size_t>(batch_), 0);
  for (int64_t b = 0; b < batch_; ++b)
    for (int64_t j = 0; j < n; ++j) dropped_valid_[b] += valid_[b * capacity_ + j] ? 1 : 0;
  const int64_t keep = size_ - n;
  auto shift = [&](auto& vec, int64_t per_slot) {
    for (int64_t b = 0; b < batch_; ++b) {
      auto* row = vec.data() + b * capacity_ * per_slot;
      std::memmove(row, row + n * per_slot, static_cast<size_t>(keep * per_slot) * sizeof(*row));
    }
  };
  // Device rows move forward by n slots in chunks of n (source and destination never overlap).
  auto shift_device = [&](backends::DeviceBuffer& buf) {
    for (int64_t b = 0; b < batch_; ++b) {
      float* row = buf.data() + b * capacity_ * slot_;
      for (int64_t j = 0; j < keep; j += n)
        ctx_->copy_2d(row + j * slot_, slot_, row + (j + n) * slot_, slot_, std::min(n, keep - j),
                      slot_);
    }
  };
  for (int64_t l = 0; l < n_layer_; ++l) {
    shift_device(k_[l]);
    shift_device(v_[l]);
  }
  shift(valid_, 1);
  shift(pos_, 1);
  size_ = keep;
  dropped_ += n;
}

void KVCache::truncate(int64_t new_size) {
  if (new_size < 0 || new_size > size_)
    throw InvalidArgument(ErrorContext().op("KVCache::truncate"), "size out of range");
  size_ = new_size;
}

bool KVCache::rollback(int64_t tokens) {
  if (pool_)
    throw InvalidArgument(ErrorContext().op("KVCache::rollback"),
                          "a paged view is rolled back through its block table");
  if (tokens < 0 || tokens > dropped_ + size_)
    throw InvalidArgument(ErrorContext().op("KVCache::rollback"),
                          "position " + std::to_string(tokens) + " outside the " +
                              std::to_string(dropped_ + size_) + " tokens seen");
  const int64_t keep = tokens - dropped_;
  // The held slots are the contiguous range [dropped, dropped + size): the next query (at
  // `tokens`) sees [tokens - window + 1, tokens), which must still be held.
  if (keep < 0 || (dropped_ > 0 && keep < window_ - 1)) return false;
  size_ = keep;
  return true;
}

void KVCache::reorder(const std::vector<int64_t>& src_rows) {
  if (static_cast<int64_t>(src_rows.size()) != batch_)
    throw InvalidArgument(ErrorContext().op("KVCache::reorder"),
                          "expected one source row per cache row");
  for (int64_t r : src_rows)
    if (r < 0 || r >= batch_)
      throw InvalidArgument(ErrorContext().op("KVCache::reorder"), "source row out of range");
  bool identity = true;
  for (int64_t b = 0; b < batch_; ++b) identity &= src_rows[b] == b;
  if (identity || size_ == 0) return;
  auto permute = [&](auto& vec, int64_t per_slot) {
    using T = typename std::decay_t<decltype(vec)>::value_type;
    const size_t row = static_cast<size_t>(capacity_ * per_slot);
    const size_t used = static_cast<size_t>(size_ * per_slot);
    std::vector<T> old(vec.begin(), vec.begin() + static_cast<std::ptrdiff_t>(batch_ * row));
    for (int64_t b = 0; b < batch_; ++b)
      std::memcpy(vec.data() + b * row, old.data() + src_rows[b] * row, used * sizeof(T));
  };
  // One device scratch of the used slots of every row, then row b <- scratch row src_rows[b].
  backends::DeviceBuffer scratch(ctx_->allocator(), static_cast<size_t>(batch_ * size_ * slot_));
  auto permute_device = [&](backends::DeviceBuffer& buf) {
    for (int64_t b = 0; b < batch_; ++b)
      ctx_->copy_2d(scratch.data() + b * size_ * slot_, slot_, buf.data() + b * capacity_ * slot_,
                    slot_, size_, slot_);
    for (int64_t b = 0; b < batch_; ++b)
      ctx_->copy_2d(buf.data() + b * capacity_ * slot_, slot_,
                    scratch.data() + src_rows[b] * size_ * slot_, slot_, size_, slot_);
  };
  for (int64_t l = 0; l < n_layer_; ++l) {
    permute_device(k_[l]);
    permute_device(v_[l]);
  }
  permute(valid_, 1);
  permute(pos_, 1);
  if (!dropped_valid_.empty()) {
    const std::vector<int64_t> old = dropped_valid_;
    for (int64_t b = 0; b < batch_; ++b) dropped_valid_[b] = old[src_rows[b]];
  }
}

}  // namespace ohm::nn
