// The backend seam: where the ops nn/ and models/ run live, and the memory they run on.
//
//   nn::Linear::forward(x, M, y, ctx)  ->  ctx.matmul(...)  ->  the context's backend, or the CPU
//                                                               backend when it lacks the op
//
// A backend is one folder under src/backends/ (src/backends/cpu/ is the worked example) and
// one line in src/backends/registry.cpp. It implements the ops below on buffers in its device's
// memory, allocates through its Allocator, and answers supports(op, dtype); a Context sends every
// op it does not support to the CPU backend (docs/architecture.md, "Backends";
// docs/contributing.md, "Add a backend"). The CPU backend runs ohm::kernels (scalar, AVX2 and
// AVX-512 tables chosen by cpuid) on the context's thread pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ohm/core/dtype.h"
#include "ohm/kernels/kernels.h"

namespace ohm::backends {

class Context;

enum class Device : uint8_t { Cpu, Cuda };
const char* device_name(Device d);

// The ops a backend may implement. supports(op, dtype): `dtype` is the weight dtype for Matmul,
// Embedding and AddRows (the table's), F32 for the others.
enum class Op : uint8_t {
  Matmul,
  RmsNorm,
  LayerNorm,
  Softmax,
  Activation,
  Add,
  Mul,
  Axpy,
  Scale,
  Fill,
  Rope,
  Embedding,
  AddRows,
  Copy2D,
  Attention,
  kCount
};
const char* op_name(Op op);

// Memory on one device (host memory for the CPU).
class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual Device device() const = 0;
  virtual void* allocate(size_t bytes) = 0;  // aligned for any op; never null (throws)
  virtual void deallocate(void* p, size_t bytes) noexcept = 0;
};

// An owned f32 array in an allocator's memory (the KV cache's storage).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Allocator& a, size_t n_floats);
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();
  float* data() const { return p_; }
  size_t size() const { return n_; }
  Allocator* allocator() const { return a_; }

 private:
  Allocator* a_ = nullptr;
  float* p_ = nullptr;
  size_t n_ = 0;
};

// Ops on one device. Pointers are in that device's memory; each op mirrors the ohm::kernels
// front end of the same name (include/ohm/kernels/kernels.h) and must give the same results
// within float rounding. The context passed in gives the thread pool (CPU) or stream (device).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual Device device() const = 0;
  virtual Allocator& allocator() = 0;
  // Whether this backend runs `op` for weights/tables of `dtype`.
  virtual bool supports(Op op, DType dtype) const = 0;

  virtual void matmul(const Context& ctx, const float* x, int64_t M, int64_t K,
                      const kernels::Matrix& w, const float* bias, float* y) const = 0;
  virtual void rms_norm(const Context& ctx, const float* x, int64_t rows, int64_t n, const float* w,
                        float w_offset, float eps, float* y) const = 0;
  virtual void layer_norm(const Context& ctx, const float* x, int64_t rows, int64_t n,
                          const float* w, const float* b, float eps, float* y) const = 0;
  virtual void softmax(const Context& ctx, float* x, int64_t rows, int64_t n) const = 0;
  virtual void activate(const Context& ctx, kernels::Activation act, const float* x, float* y,
                        int64_t n) const = 0;
  virtual void add(const Context& ctx, const float* a, const float* b, float* y,
                   int64_t n) const = 0;
  virtual void mul(const Context& ctx, const float* a, const float* b, float* y,
                   int64_t n) const = 0;
  // y += s * x
  virtual void axpy(const Context& ctx, float s, const float* x, float* y, int64_t n) const = 0;
  // x *= s
  virtual void scale(const Context& ctx, float* x, float s, int64_t n) const = 0;
  virtual void fill(const Context& ctx, float* x, float v, int64_t n) const = 0;
  virtual void rope(const Context& ctx, bool interleaved, float* x, int64_t n_tok, int64_t x_stride,
                    int64_t n_head, int64_t head_dim, int64_t rot_dim, const float* cos,
                    const float* sin) const = 0;
  virtual void embedding(const Context& ctx, const kernels::Matrix& table, const int64_t* ids,
                         int64_t n, float* out) const = 0;
  // y[i, :] += table.row(idx[i]) (learned position embeddings).
  virtual void add_rows(const Context& ctx, const kernels::Matrix& table, const int32_t* idx,
                        int64_t n, float* y) const = 0;
  // rows x cols floats from src (row stride src_stride) to dst (row stride dst_stride).
  virtual void copy_2d(const Context& ctx, float* dst, int64_t dst_stride, const float* src,
                       int64_t src_stride, int64_t rows, int64_t cols) const = 0;
  virtual void attention(const Context& ctx, const kernels::AttentionArgs& a) const = 0;
};

// The registered backends (src/backends/registry.cpp), by name ("cpu", ...).
std::vector<std::string> backend_names();
// The backend for a LoadOptions::device_map value ("cpu", "auto" = the best available, or a
// registered name); UnsupportedError naming the registered ones otherwise. Backends are
// process-wide singletons.
Backend& backend_for(std::string_view device_map);
// The CPU backend (every op, every dtype the kernels support).
Backend& cpu();

}  // namespace ohm::backends
