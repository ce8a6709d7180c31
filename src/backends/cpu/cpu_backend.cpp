// The CPU backend: ohm::kernels (scalar reference, AVX2, AVX-512 tables, chosen by cpuid) on the
// context's thread pool, over host memory. Supports every op; the fallback of every other backend.
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "ohm/backends/context.h"

namespace ohm::backends {
namespace {

class HostAllocator final : public Allocator {
 public:
  Device device() const override { return Device::Cpu; }
  void* allocate(size_t bytes) override {
    // 64-byte aligned (AVX-512 loads); aligned_alloc needs a multiple of the alignment.
    const size_t n = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, n == 0 ? 64 : n);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void deallocate(void* p, size_t bytes) noexcept override {
    (void)bytes;
    std::free(p);
  }
};

class CpuBackend final : public Backend {
 public:
  std::string_view name() const override { return "cpu"; }
  Device device() const override { return Device::Cpu; }
  Allocator& allocator() override { return alloc_; }
  bool supports(Op op, DType dtype) const override {
    (void)op;
    (void)dtype;
    return true;  // every op; kernels report a dtype they cannot run by name
  }

  void matmul(const Context& ctx, const float* x, int64_t M, int64_t K, const kernels::Matrix& w,
              const float* bias, float* y) const override {
    kernels::matmul(x, M, K, w, bias, y, ctx.pool());
  }
  void rms_norm(const Context& ctx, const float* x, int64_t rows, int64_t n, const float* w,
                float w_offset, float eps, float* y) const override {
    kernels::rms_norm(x, rows, n, w, w_offset, eps, y, ctx.pool());
  }
  void layer_norm(const Context& ctx, const float* x, int64_t rows, int64_t n, const float* w,
                  const float* b, float eps, float* y) const override {
    kernels::layer_norm(x, rows, n, w, b, eps, y, ctx.pool());
  }
  void softmax(const Context&, float* x, int64_t rows, int64_t n) const override {
    kernels::softmax(x, rows, n);
  }
  void activate(const Context&, kernels::Activation act, const float* x, float* y,
                int64_t n) const override {
    kernels::activate(act, x, y, n);
  }
  void add(const Context&, const float* a, const float* b, float* y, int64_t n) const override {
    kernels::add(a, b, y, n);
  }
  void mul(const Context&, const float* a, const float* b, float* y, int64_t n) const override {
    kernels::mul(a, b, y, n);
  }
  void axpy(const Context&, float s, const float* x, float* y, int64_t n) const override {
    kernels::axpy(s, x, y, n);
  }
  void scale(const Context&, float* x, float s, int64_t n) const override {
    for (int64_t i = 0; i < n; ++i) x[i] *= s;
  }
  void fill(const Context&, float* x, float v, int64_t n) const override {
    for (int64_t i = 0; i < n; ++i) x[i] = v;
  }
  void rope(const Context&, bool interleaved, float* x, int64_t n_tok, int64_t x_stride,
            int64_t n_head, int64_t head_dim, int64_t rot_dim, const float* cos,
            const float* sin) const override {
    (interleaved ? kernels::rope_interleaved : kernels::rope)(x, n_tok, x_stride, n_head, head_dim,
                                                              rot_dim, cos, sin);
  }
  void embedding(const Context&, const kernels::Matrix& table, const int64_t* ids, int64_t n,
                 float* out) const override {
    kernels::embedding(table, ids, n, out);
  }
  void add_rows(const Context&, const kernels::Matrix& table, const int32_t* idx, int64_t n,
                float* y) const override {
    thread_local std::vector<float> row;
    row.resize(static_cast<size_t>(table.cols));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t id = idx[i];
      kernels::embedding(table, &id, 1, row.data());  // checks the index
      kernels::add(y + i * table.cols, row.data(), y + i * table.cols, table.cols);
    }
  }
  void copy_2d(const Context&, float* dst, int64_t dst_stride, const float* src, int64_t src_stride,
               int64_t rows, int64_t cols) const override {
    if (dst_stride == cols && src_stride == cols) {
      std::memcpy(dst, src, static_cast<size_t>(rows * cols) * sizeof(float));
      return;
    }
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(dst + r * dst_stride, src + r * src_stride, static_cast<size_t>(cols) * 4);
  }
  void attention(const Context& ctx, const kernels::AttentionArgs& a) const override {
    kernels::attention(a, ctx.pool());
  }

 private:
  HostAllocator alloc_;
};

}  // namespace

Backend& cpu() {
  static CpuBackend b;
  return b;
}

}  // namespace ohm::backends
