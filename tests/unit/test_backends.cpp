// The backend seam: a Context sends each op to its backend when the backend supports it and to
// the CPU backend otherwise; models run every op and keep the KV cache through it.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <vector>

#include "ohm/backends/context.h"
#include "ohm/core/error.h"
#include "ohm/core/half.h"
#include "ohm/formats/safetensors.h"
#include "ohm/models/causal_lm.h"
#include "test_util.h"

namespace ohm {
namespace {

using backends::Op;

// Host memory, counted.
class CountingAllocator final : public backends::Allocator {
 public:
  backends::Device device() const override { return backends::Device::Cpu; }
  void* allocate(size_t bytes) override {
    live += static_cast<int64_t>(bytes);
    ++allocations;
    return backends::cpu().allocator().allocate(bytes);
  }
  void deallocate(void* p, size_t bytes) noexcept override {
    live -= static_cast<int64_t>(bytes);
    backends::cpu().allocator().deallocate(p, bytes);
  }
  std::atomic<int64_t> live{0}, allocations{0};
};

// A "device" that runs the ops it claims through the CPU backend and counts them.
class CountingBackend final : public backends::Backend {
 public:
  // supported(op, dtype) decides what this backend claims.
  explicit CountingBackend(std::function<bool(Op, DType)> supported)
      : supported_(std::move(supported)) {}
  std::string_view name() const override { return "counting"; }
  backends::Device device() const override { return backends::Device::Cpu; }
  backends::Allocator& allocator() override { return alloc; }
  bool supports(Op op, DType dtype) const override { return supported_(op, dtype); }
  int64_t calls(Op op) const { return calls_[static_cast<size_t>(op)]; }

  void matmul(const backends::Context& c, const float* x, int64_t M, int64_t K,
              const kernels::Matrix& w, const float* bias, float* y) const override {
    count(Op::Matmul);
    backends::cpu().matmul(c, x, M, K, w, bias, y);
  }
  void rms_norm(const backends::Context& c, const float* x, int64_t rows, int64_t n, const float* w,
                float o, float eps, float* y) const override {
    count(Op::RmsNorm);
    backends::cpu().rms_norm(c, x, rows, n, w, o, eps, y);
  }
  void layer_norm(const backends::Context& c, const float* x, int64_t rows, int64_t n,
                  const float* w, const float* b, float eps, float* y) const override {
    count(Op::LayerNorm);
    backends::cpu().layer_norm(c, x, rows, n, w, b, eps, y);
  }
  void softmax(const backends::Context& c, float* x, int64_t rows, int64_t n) const override {
    count(Op::Softmax);
    backends::cpu().softmax(c, x, rows, n);
  }
  void activate(const backends::Context& c, kernels::Activation a, const float* x, float* y,
                int64_t n) const override {
    count(Op::Activation);
    backends::cpu().activate(c, a, x, y, n);
  }
  void add(const backends::Context& c, const float* a, const float* b, float* y,
           int64_t n) const override {
    count(Op::Add);
    backends::cpu().add(c, a, b, y, n);
  }
  void mul(const backends::Context& c, const float* a, const float* b, float* y,
           int64_t n) const override {
    count(Op::Mul);
    backends::cpu().mul(c, a, b, y, n);
  }
  void axpy(const backends::Context& c, float s, const float* x, float* y,
            int64_t n) const override {
    count(Op::Axpy);
    backends::cpu().axpy(c, s, x, y, n);
  }
  void scale(const backends::Context& c, float* x, float s, int64_t n) const override {
    count(Op::Scale);
    backends::cpu().scale(c, x, s, n);
  }
  void fill(const backends::Context& c, float* x, float v, int64_t n) const override {
    count(Op::Fill);
    backends::cpu().fill(c, x, v, n);
  }
  void rope(const backends::Context& c, bool il, float* x, int64_t n_tok, int64_t stride,
            int64_t nh, int64_t hd, int64_t rot, const float* cs, const float* sn) const override {
    count(Op::Rope);
    backends::cpu().rope(c, il, x, n_tok, stride, nh, hd, rot, cs, sn);
  }
  void embedding(const backends::Context& c, const kernels::Matrix& t, const int64_t* ids,
                 int64_t n, float* out) const override {
    count(Op::Embedding);
    backends::cpu().embedding(c, t, ids, n, out);
  }
  void add_rows(const backends::Context& c, const kernels::Matrix& t, const int32_t* idx, int64_t n,
                float* y) const override {
    count(Op::AddRows);
    backends::cpu().add_rows(c, t, idx, n, y);
  }
  void copy_2d(const backends::Context& c, float* d, int64_t ds, const float* s, int64_t ss,
               int64_t rows, int64_t cols) const override {
    count(Op::Copy2D);
    backends::cpu().copy_2d(c, d, ds, s, ss, rows, cols);
  }
  void attention(const backends::Context& c, const kernels::AttentionArgs& a) const override {
    count(Op::Attention);
    backends::cpu().attention(c, a);
  }

  CountingAllocator alloc;

 private:
  void count(Op op) const { ++calls_[static_cast<size_t>(op)]; }
  std::function<bool(Op, DType)> supported_;
  mutable std::array<std::atomic<int64_t>, static_cast<size_t>(Op::kCount)> calls_{};
};

TEST(Backends, ContextFallsBackToTheCpuPerOpAndDtype) {
  // Claims add, and matmul for f32 weights only.
  CountingBackend dev(
      [](Op op, DType dt) { return op == Op::Add || (op == Op::Matmul && dt == DType::F32); });
  ThreadPool pool(1);
  backends::Context ctx(pool, dev);
  EXPECT_EQ(&ctx.backend_for(Op::Add), &dev);
  EXPECT_EQ(&ctx.backend_for(Op::Mul), &backends::cpu());
  EXPECT_EQ(&ctx.backend_for(Op::Matmul, DType::F32), &dev);
  EXPECT_EQ(&ctx.backend_for(Op::Matmul, DType::F16), &backends::cpu());

  std::vector<float> a = {1, 2, 3}, b = {4, 5, 6}, y(3);
  ctx.add(a.data(), b.data(), y.data(), 3);
  EXPECT_EQ(y, (std::vector<float>{5, 7, 9}));
  ctx.mul(a.data(), b.data(), y.data(), 3);
  EXPECT_EQ(y, (std::vector<float>{4, 10, 18}));
  EXPECT_EQ(dev.calls(Op::Add), 1);
  EXPECT_EQ(dev.calls(Op::Mul), 0);  // ran on the CPU

  // W [2, 3] in f32 and f16: y = x @ W^T on the device and on the CPU respectively.
  std::vector<float> w32 = {1, 0, 0, 0, 1, 1};
  std::vector<uint16_t> w16;
  for (float v : w32) w16.push_back(f32_to_f16(v));
  kernels::Matrix m32{DType::F32, reinterpret_cast<const uint8_t*>(w32.data()), 2, 3, 12};
  kernels::Matrix m16{DType::F16, reinterpret_cast<const uint8_t*>(w16.data()), 2, 3, 6};
  std::vector<float> out(2);
  ctx.matmul(a.data(), 1, 3, m32, nullptr, out.data());
  EXPECT_EQ(out, (std::vector<float>{1, 5}));
  ctx.matmul(a.data(), 1, 3, m16, nullptr, out.data());
  EXPECT_EQ(out, (std::vector<float>{1, 5}));
  EXPECT_EQ(dev.calls(Op::Matmul), 1);
}

TEST(Backends, ModelRunsEveryOpAndItsKvCacheThroughTheBackend) {
  const std::string dir = (test::fixtures_dir() / "models" / "qwen3" / "f32").string();
  OHM_REQUIRE_FIXTURE(std::filesystem::exists(dir), dir);
  CountingBackend dev([](Op, DType) { return true; });
  auto on_cpu = load_causal_lm(dir, {.threads = 1});
  auto on_dev = load_causal_lm(dir, {.backend = &dev, .threads = 1});
  EXPECT_EQ(&on_dev->context().backend(), &dev);

  const auto ref = safetensors::SafetensorsFile::open(dir + "/reference.safetensors");
  const Tensor ids = ref.tensor("prompt_len7.input_ids");
  Tensor a, b;
  {
    auto c1 = on_cpu->make_cache(1);
    auto c2 = on_dev->make_cache(1);
    EXPECT_EQ(dev.alloc.live, 0);  // nothing until the first step
    a = on_cpu->forward(ids, {}, {}, c1);
    b = on_dev->forward(ids, {}, {}, c2);
    EXPECT_GT(dev.alloc.live, 0);  // K and V of both layers live in the device's memory
  }
  EXPECT_EQ(dev.alloc.live, 0);  // and are given back with the cache
  ASSERT_EQ(a.shape(), b.shape());
  for (uint64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.data<float>()[i], b.data<float>()[i]) << i;
  for (Op op : {Op::Matmul, Op::RmsNorm, Op::Activation, Op::Mul, Op::Add, Op::Rope, Op::Embedding,
                Op::Copy2D, Op::Attention})
    EXPECT_GT(dev.calls(op), 0) << backends::op_name(op);
}

TEST(Backends, UnknownDeviceMapNamesTheBackends) {
  EXPECT_EQ(backends::backend_names(), std::vector<std::string>{"cpu"});
  EXPECT_EQ(&backends::backend_for("auto"), &backends::cpu());
  try {
    backends::backend_for("cuda");
    FAIL() << "no error";
  } catch (const UnsupportedError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("device_map"), std::string::npos) << m;
    EXPECT_NE(m.find("'cuda'"), std::string::npos) << m;
    EXPECT_NE(m.find("cpu"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace ohm
