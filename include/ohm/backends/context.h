// The execution context nn/ and models/ run in: a backend (device, allocator, ops), the CPU
// backend it falls back to per op, and the thread pool (CPU) a step runs on. One per model.
#pragma once

#include <array>

#include "ohm/backends/backend.h"
#include "ohm/core/thread_pool.h"

namespace ohm::backends {

class Context {
 public:
  // `backend` runs what it supports (Backend::supports); everything else runs on the CPU backend.
  explicit Context(ThreadPool& pool, Backend& backend = cpu());

  ThreadPool& pool() const { return *pool_; }
  Backend& backend() const { return *backend_; }
  Device device() const { return backend_->device(); }
  Allocator& allocator() const { return backend_->allocator(); }
  // The backend that runs `op` for `dtype` here.
  const Backend& backend_for(Op op, DType dtype = DType::F32) const {
    return *table_[static_cast<size_t>(op)][static_cast<size_t>(dtype)];
  }

  // ---- ops (see Backend) -------------------------------------------------------------------
  void matmul(const float* x, int64_t M, int64_t K, const kernels::Matrix& w, const float* bias,
              float* y) const {
    backend_for(Op::Matmul, w.dtype).matmul(*this, x, M, K, w, bias, y);
  }
  void rms_norm(const float* x, int64_t rows, int64_t n, const float* w, float w_offset, float eps,
                float* y) const {
    backend_for(Op::RmsNorm).rms_norm(*this, x, rows, n, w, w_offset, eps, y);
  }
  void layer_norm(const float* x, int64_t rows, int64_t n, const float* w, const float* b,
                  float eps, float* y) const {
    backend_for(Op::LayerNorm).layer_norm(*this, x, rows, n, w, b, eps, y);
  }
  void softmax(float* x, int64_t rows, int64_t n) const {
    backend_for(Op::Softmax).softmax(*this, x, rows, n);
  }
  void activate(kernels::Activation act, const float* x, float* y, int64_t n) const {
    backend_for(Op::Activation).activate(*this, act, x, y, n);
  }
  void add(const float* a, const float* b, float* y, int64_t n) const {
    backend_for(Op::Add).add(*this, a, b, y, n);
  }
  void mul(const float* a, const float* b, float* y, int64_t n) const {
    backend_for(Op::Mul).mul(*this, a, b, y, n);
  }
  void axpy(float s, const float* x, float* y, int64_t n) const {
    backend_for(Op::Axpy).axpy(*this, s, x, y, n);
  }
  void scale(float* x, float s, int64_t n) const { backend_for(Op::Scale).scale(*this, x, s, n); }
  void fill(float* x, float v, int64_t n) const { backend_for(Op::Fill).fill(*this, x, v, n); }
  void rope(bool interleaved, float* x, int64_t n_tok, int64_t x_stride, int64_t n_head,
            int64_t head_dim, int64_t rot_dim, const float* cos, const float* sin) const {
    backend_for(Op::Rope).rope(*this, interleaved, x, n_tok, x_stride, n_head, head_dim, rot_dim,
                               cos, sin);
  }
  void embedding(const kernels::Matrix& table, const int64_t* ids, int64_t n, float* out) const {
    backend_for(Op::Embedding, table.dtype).embedding(*this, table, ids, n, out);
  }
  void add_rows(const kernels::Matrix& table, const int32_t* idx, int64_t n, float* y) const {
    backend_for(Op::AddRows, table.dtype).add_rows(*this, table, idx, n, y);
  }
  void copy_2d(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows,
               int64_t cols) const {
    backend_for(Op::Copy2D).copy_2d(*this, dst, dst_stride, src, src_stride, rows, cols);
  }
  void attention(const kernels::AttentionArgs& a) const {
    backend_for(Op::Attention).attention(*this, a);
  }

 private:
  ThreadPool* pool_;
  Backend* backend_;
  std::array<std::array<const Backend*, static_cast<size_t>(DType::Count_)>,
             static_cast<size_t>(Op::kCount)>
      table_{};
};

}  // namespace ohm::backends
