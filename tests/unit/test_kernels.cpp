// Table-driven kernel tests: every op of the active kernel table against a straightforward
// double-precision loop, over odd shapes (tails, one row, sizes that are not a multiple of any
// block or vector width) and every weight dtype. Outputs carry guard sentinels past the end to
// catch out-of-bounds writes. Adding an op = adding one entry to cases().
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ohm/core/error.h"
#include "ohm/core/half.h"
#include "ohm/kernels/kernels.h"
#include "ohm/nn/rope.h"
#include "ohm/quant/dequant.h"

namespace ohm::kernels {
namespace {

constexpr float kGuard = 12345.678f;

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// An output buffer of n floats followed by guard values.
struct Out {
  explicit Out(size_t n) : n(n), v(n + 16, kGuard) {}
  float* data() { return v.data(); }
  bool guards_intact() const {
    for (size_t i = n; i < v.size(); ++i)
      if (v[i] != kGuard) return false;
    return true;
  }
  size_t n;
  std::vector<float> v;
};

// Random weights [rows, cols] of dtype t with sane block scales; returns bytes and the f32
// values (via the dequantization oracle).
struct WeightData {
  std::vector<uint8_t> bytes;
  std::vector<float> f32;
  Matrix m;
};

WeightData make_weights(DType t, int64_t rows, int64_t cols, uint32_t seed) {
  WeightData w;
  const size_t rb = static_cast<size_t>(*row_bytes(t, static_cast<uint64_t>(cols)));
  w.bytes.resize(rb * rows);
  std::mt19937 g(seed);
  const auto src = randn(static_cast<size_t>(rows * cols), seed, 0.5f);
  if (t == DType::F32) {
    std::memcpy(w.bytes.data(), src.data(), w.bytes.size());
  } else if (t == DType::F16 || t == DType::BF16) {
    for (size_t i = 0; i < src.size(); ++i) {
      const uint16_t h = t == DType::F16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
      std::memcpy(w.bytes.data() + 2 * i, &h, 2);
    }
  } else {
    for (auto& b : w.bytes) b = static_cast<uint8_t>(g());
    // Overwrite the f16 scale fields with small finite values.
    const size_t bs = traits(t).type_size;
    auto put = [&](size_t off, float v) {
      const uint16_t h = f32_to_f16(v);
      std::memcpy(&w.bytes[off], &h, 2);
    };
    for (size_t blk = 0; blk < w.bytes.size() / bs; ++blk) {
      const size_t o = blk * bs;
      const float d = 0.001f + 0.01f * static_cast<float>(g() % 100) / 100.0f;
      switch (t) {
        case DType::Q4_0:
        case DType::Q5_0:
        case DType::Q8_0:
          put(o, d);
          break;
        case DType::Q4_1:
        case DType::Q5_1:
        case DType::Q8_1:
        case DType::Q4_K:
        case DType::Q5_K:
          put(o, d);
          put(o + 2, d);
          break;
        case DType::Q2_K:
          put(o + bs - 4, d);
          put(o + bs - 2, d);
          break;
        case DType::Q3_K:
        case DType::Q6_K:
          put(o + bs - 2, d);
          break;
        default:
          break;
      }
    }
  }
  w.f32.resize(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    quant::dequantize_row(t, w.bytes.data() + r * rb, w.f32.data() + r * cols, cols);
  w.m = Matrix{t, w.bytes.data(), rows, cols, rb};
  return w;
}

struct Case {
  std::string name;
  std::function<void()> run;
};

ThreadPool& pool3() {
  static ThreadPool p(3);
  return p;
}

void expect_close(const std::vector<double>& want, const float* got, double rtol, double atol,
                  const std::string& what) {
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_LE(std::fabs(got[i] - want[i]), atol + rtol * std::fabs(want[i]))
        << what << " at " << i << ": got " << got[i] << " want " << want[i];
}

std::vector<Case> cases() {
  std::vector<Case> cs;
  // ---- matmul: every weight dtype x odd shapes, with and without bias, 1 and 3 threads
  const std::vector<DType> dtypes = {
      DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
      DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};
  for (DType t : dtypes) {
    const int64_t bs = traits(t).block_size;
    std::vector<std::array<int64_t, 3>> shapes;  // M, K, N
    if (bs == 1)
      shapes = {{1, 1, 1}, {1, 7, 3}, {3, 33, 17}, {5, 100, 1}, {2, 257, 9}};
    else
      shapes = {{1, bs, 1}, {3, bs, 5}, {2, 3 * bs, 7}, {1, 2 * bs, 33}};
    for (const auto& shape : shapes)
      for (bool bias : {false, true}) {
        // Plain copies: a lambda may not capture structured bindings before C++20 (clang-14).
        const int64_t M = shape[0], K = shape[1], N = shape[2];
        cs.push_back(
            {"matmul_" + std::string(name(t)) + "_" + std::to_string(M) + "x" + std::to_string(K) +
                 "x" + std::to_string(N) + (bias ? "_bias" : ""),
             [=] {
               const auto w = make_weights(t, N, K, static_cast<uint32_t>(M * 131 + K + N));
               const auto x = randn(static_cast<size_t>(M * K), 7);
               const auto b = randn(static_cast<size_t>(N), 9);
               std::vector<double> want(static_cast<size_t>(M * N));
               // S: the largest partial sum plus the largest product. Each of the K f32
               // additions and products rounds by at most u * S; as a random walk they stay
               // within 3.27 * 2u * sqrt(K) * S but with probability 1e-9 (Hoeffding), where
               // the worst case (all of one sign) grows with K.
               double S = 0, pmax = 0;
               for (int64_t m = 0; m < M; ++m)
                 for (int64_t n = 0; n < N; ++n) {
                   double s = bias ? b[n] : 0.0;
                   for (int64_t k = 0; k < K; ++k) {
                     const double p = static_cast<double>(x[m * K + k]) * w.f32[n * K + k];
                     s += p;
                     S = std::max(S, std::fabs(s));
                     pmax = std::max(pmax, std::fabs(p));
                   }
                   want[m * N + n] = s;
                 }
               const double atol =
                   3.2723 * 2 * 0x1p-24 * std::sqrt(static_cast<double>(K)) * (S + pmax) + 1e-6;
               for (ThreadPool* p : {&pool3()}) {
                 Out y(static_cast<size_t>(M * N));
                 matmul(x.data(), M, K, w.m, bias ? b.data() : nullptr, y.data(), *p);
                 expect_close(want, y.data(), 1e-5, atol, "matmul");
                 EXPECT_TRUE(y.guards_intact());
               }
               ThreadPool one(1);
               Out y1(static_cast<size_t>(M * N));
               matmul(x.data(), M, K, w.m, bias ? b.data() : nullptr, y1.data(), one);
               expect_close(want, y1.data(), 1e-5, atol, "matmul 1 thread");
             }});
      }
  }
  // ---- norms, softmax, activations, elementwise
  for (int64_t n : {1, 7, 64, 129}) {
    for (int64_t rows : {1, 3}) {
      const std::string sfx = "_" + std::to_string(rows) + "x" + std::to_string(n);
      for (float off : {0.0f, 1.0f})
        cs.push_back({"rms_norm" + sfx + (off != 0 ? "_gemma" : ""), [=] {
                        const auto x = randn(static_cast<size_t>(rows * n), 1);
                        const auto w = randn(static_cast<size_t>(n), 2);
                        std::vector<double> want(x.size());
                        for (int64_t r = 0; r < rows; ++r) {
                          double ss = 0;
                          for (int64_t i = 0; i < n; ++i) ss += double(x[r * n + i]) * x[r * n + i];
                          const double inv = 1.0 / std::sqrt(ss / double(n) + 1e-6);
                          for (int64_t i = 0; i < n; ++i)
                            want[r * n + i] = x[r * n + i] * inv * (double(w[i]) + off);
                        }
                        Out y(x.size());
                        rms_norm(x.data(), rows, n, w.data(), off, 1e-6f, y.data(), pool3());
                        expect_close(want, y.data(), 1e-5, 1e-6, "rms_norm");
                        EXPECT_TRUE(y.guards_intact());
                      }});
      for (bool with_bias : {false, true})
        cs.push_back({"layer_norm" + sfx + (with_bias ? "_bias" : ""), [=] {
                        const auto x = randn(static_cast<size_t>(rows * n), 3, 2.0f);
                        const auto w = randn(static_cast<size_t>(n), 4);
                        const auto b = randn(static_cast<size_t>(n), 5);
                        std::vector<double> want(x.size());
                        for (int64_t r = 0; r < rows; ++r) {
                          double mean = 0, var = 0;
                          for (int64_t i = 0; i < n; ++i) mean += x[r * n + i];
                          mean /= double(n);
                          for (int64_t i = 0; i < n; ++i)
                            var += (x[r * n + i] - mean) * (x[r * n + i] - mean);
                          var /= double(n);
                          for (int64_t i = 0; i < n; ++i)
                            want[r * n + i] = (x[r * n + i] - mean) / std::sqrt(var + 1e-5) * w[i] +
                                              (with_bias ? b[i] : 0.0);
                        }
                        Out y(x.size());
                        layer_norm(x.data(), rows, n, w.data(), with_bias ? b.data() : nullptr,
                                   1e-5f, y.data(), pool3());
                        expect_close(want, y.data(), 1e-5, 1e-5, "layer_norm");
                        EXPECT_TRUE(y.guards_intact());
                      }});
      cs.push_back({"softmax" + sfx, [=] {
                      auto x = randn(static_cast<size_t>(rows * n), 6, 5.0f);
                      std::vector<double> want(x.size());
                      for (int64_t r = 0; r < rows; ++r) {
                        double mx = -1e300, s = 0;
                        for (int64_t i = 0; i < n; ++i) mx = std::max(mx, double(x[r * n + i]));
                        for (int64_t i = 0; i < n; ++i) s += std::exp(x[r * n + i] - mx);
                        for (int64_t i = 0; i < n; ++i)
                          want[r * n + i] = std::exp(x[r * n + i] - mx) / s;
                      }
                      softmax(x.data(), rows, n);
                      expect_close(want, x.data(), 1e-5, 1e-7, "softmax");
                    }});
    }
    const std::string sfx = "_" + std::to_string(n);
    using F = std::function<double(double)>;
    const std::vector<std::tuple<std::string, Activation, F>> acts = {
        {"silu", Activation::Silu, [](double v) { return v / (1 + std::exp(-v)); }},
        {"gelu", Activation::Gelu,
         [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }},
        {"gelu_tanh", Activation::GeluTanh,
         [](double v) {
           return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
         }},
        {"relu", Activation::Relu, [](double v) { return v > 0 ? v : 0.0; }}};
    for (const auto& entry : acts) {
      const auto& [nm_ref, act_ref, f_ref] = entry;
      const std::string nm = nm_ref;   // copies: lambdas may not capture structured bindings
      const Activation act = act_ref;  // (clang-14)
      const F f = f_ref;
      cs.push_back({nm + sfx, [=] {
                      const auto x = randn(static_cast<size_t>(n), 8, 3.0f);
                      std::vector<double> want(x.size());
                      for (size_t i = 0; i < x.size(); ++i) want[i] = f(x[i]);
                      Out y(x.size());
                      activate(act, x.data(), y.data(), n);
                      expect_close(want, y.data(), 1e-5, 1e-6, nm);
                      EXPECT_TRUE(y.guards_intact());
                    }});
    }
    cs.push_back({"add_mul_axpy_dot" + sfx, [=] {
                    const auto a = randn(static_cast<size_t>(n), 10),
                               b = randn(static_cast<size_t>(n), 11);
                    std::vector<double> wa(a.size()), wm(a.size()), wx(a.size());
                    double wd = 0, mag = 0;
                    for (size_t i = 0; i < a.size(); ++i) {
                      wa[i] = double(a[i]) + b[i];
                      wm[i] = double(a[i]) * b[i];
                      wx[i] = b[i] + 0.5 * double(a[i]);
                      wd += double(a[i]) * b[i];
                      mag += std::fabs(double(a[i]) * b[i]);
                    }
                    Out y(a.size());
                    add(a.data(), b.data(), y.data(), n);
                    expect_close(wa, y.data(), 1e-6, 1e-7, "add");
                    mul(a.data(), b.data(), y.data(), n);
                    expect_close(wm, y.data(), 1e-6, 1e-7, "mul");
                    std::copy(b.begin(), b.end(), y.data());
                    axpy(0.5f, a.data(), y.data(), n);
                    expect_close(wx, y.data(), 1e-6, 1e-7, "axpy");
                    EXPECT_TRUE(y.guards_intact());
                    EXPECT_NEAR(dot(a.data(), b.data(), n), wd, 1e-6 * mag + 1e-7);
                  }});
  }
  // ---- rope: full and partial rotary, several heads, odd token counts
  for (const auto& shape : std::vector<std::array<int64_t, 4>>{
           {1, 1, 2, 2}, {3, 2, 16, 16}, {5, 3, 10, 6}, {2, 4, 64, 32}}) {
    const int64_t n_tok = shape[0], n_head = shape[1], hd = shape[2], rot = shape[3];
    cs.push_back({"rope_" + std::to_string(n_tok) + "x" + std::to_string(n_head) + "x" +
                      std::to_string(hd) + "_rot" + std::to_string(rot),
                  [=] {
                    auto x = randn(static_cast<size_t>(n_tok * n_head * hd), 12);
                    const int64_t half = rot / 2;
                    std::vector<float> cs(static_cast<size_t>(n_tok * half)), sn(cs.size());
                    for (int64_t t = 0; t < n_tok; ++t)
                      for (int64_t i = 0; i < half; ++i) {
                        const double f = (t + 3) * std::pow(10000.0, -2.0 * i / rot);
                        cs[t * half + i] = static_cast<float>(std::cos(f));
                        sn[t * half + i] = static_cast<float>(std::sin(f));
                      }
                    std::vector<double> want(x.begin(), x.end());
                    for (int64_t t = 0; t < n_tok; ++t)
                      for (int64_t h = 0; h < n_head; ++h)
                        for (int64_t i = 0; i < half; ++i) {
                          const int64_t o = (t * n_head + h) * hd;
                          const double x1 = x[o + i], x2 = x[o + i + half];
                          want[o + i] = x1 * cs[t * half + i] - x2 * sn[t * half + i];
                          want[o + i + half] = x2 * cs[t * half + i] + x1 * sn[t * half + i];
                        }
                    rope(x.data(), n_tok, n_head * hd, n_head, hd, rot, cs.data(), sn.data());
                    expect_close(want, x.data(), 1e-5, 1e-6, "rope");
                  }});
  }
  // ---- embedding over plain and quantized tables
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_K}) {
    cs.push_back({"embedding_" + std::string(name(t)), [=] {
                    const int64_t cols = traits(t).block_size == 1 ? 7 : traits(t).block_size;
                    const auto w = make_weights(t, 11, cols, 13);
                    const std::vector<int64_t> ids = {0, 10, 3, 3};
                    Out y(ids.size() * cols);
                    embedding(w.m, ids.data(), 4, y.data());
                    std::vector<double> want;
                    for (int64_t id : ids)
                      for (int64_t c = 0; c < cols; ++c) want.push_back(w.f32[id * cols + c]);
                    expect_close(want, y.data(), 0, 0, "embedding");
                    EXPECT_TRUE(y.guards_intact());
                    const int64_t bad = 11;
                    EXPECT_THROW(embedding(w.m, &bad, 1, y.data()), InvalidArgument);
                  }});
  }
  // ---- attention: GQA, padding, sliding window, ALiBi, chunked queries
  struct A {
    int64_t T, S, nh, nkv, hd, window;
    bool pad, alibi;
  };
  for (A p : std::vector<A>{{1, 1, 1, 1, 4, 0, false, false},
                            {5, 5, 4, 2, 8, 0, false, false},
                            {3, 9, 6, 3, 5, 0, true, false},
                            {7, 20, 4, 1, 16, 4, true, false},
                            {2, 6, 3, 3, 4, 0, false, true},
                            // the tiled path: several query tiles and key blocks, causal tiles,
                            // head sizes off the vector width, KV splits for long decode (some
                            // of them past the window)
                            {70, 200, 8, 2, 64, 0, true, false},
                            {33, 300, 4, 4, 80, 50, true, true},
                            {1, 3000, 8, 2, 64, 0, false, false},
                            {3, 2100, 8, 1, 20, 100, true, true}}) {
    cs.push_back({"attention_T" + std::to_string(p.T) + "_S" + std::to_string(p.S) + "_h" +
                      std::to_string(p.nh) + "_kv" + std::to_string(p.nkv) + "_w" +
                      std::to_string(p.window) + (p.pad ? "_pad" : "") + (p.alibi ? "_alibi" : ""),
                  [=] {
                    const auto q = randn(static_cast<size_t>(p.T * p.nh * p.hd), 20);
                    const auto k = randn(static_cast<size_t>(p.S * p.nkv * p.hd), 21);
                    const auto v = randn(static_cast<size_t>(p.S * p.nkv * p.hd), 22);
                    std::vector<uint8_t> valid(static_cast<size_t>(p.S), 1);
                    if (p.pad) valid[0] = valid[2] = 0;
                    std::vector<int32_t> pos(static_cast<size_t>(p.S));
                    for (int64_t s = 0; s < p.S; ++s) pos[s] = static_cast<int32_t>(s);
                    std::vector<float> slopes;
                    for (int64_t h = 0; h < p.nh; ++h) slopes.push_back(0.5f / float(h + 1));
                    const float scale = 1.0f / std::sqrt(float(p.hd));
                    const int64_t q_start = p.S - p.T;
                    std::vector<double> want(static_cast<size_t>(p.T * p.nh * p.hd), 0.0);
                    for (int64_t t = 0; t < p.T; ++t)
                      for (int64_t h = 0; h < p.nh; ++h) {
                        const int64_t g = h / (p.nh / p.nkv), i = q_start + t;
                        std::vector<double> sc;
                        std::vector<int64_t> js;
                        for (int64_t j = 0; j <= i; ++j) {
                          if (!valid[j] || (p.window > 0 && i - j >= p.window)) continue;
                          double s = 0;
                          for (int64_t d = 0; d < p.hd; ++d)
                            s += double(q[(t * p.nh + h) * p.hd + d]) *
                                 k[(j * p.nkv + g) * p.hd + d];
                          if (p.alibi) s += slopes[h] * double(pos[j]);
                          sc.push_back(s * scale);
                          js.push_back(j);
                        }
                        if (sc.empty()) continue;
                        double mx = -1e300, sum = 0;
                        for (double s : sc) mx = std::max(mx, s);
                        for (double& s : sc) sum += (s = std::exp(s - mx));
                        for (size_t u = 0; u < js.size(); ++u)
                          for (int64_t d = 0; d < p.hd; ++d)
                            want[(t * p.nh + h) * p.hd + d] +=
                                sc[u] / sum * v[(js[u] * p.nkv + g) * p.hd + d];
                      }
                    Out out(want.size());
                    AttentionArgs a;
                    a.q = q.data();
                    a.q_stride = p.nh * p.hd;
                    a.k = k.data();
                    a.v = v.data();
                    a.kv_stride = p.nkv * p.hd;
                    a.kv_valid = valid.data();
                    a.kv_pos = pos.data();
                    a.out = out.data();
                    a.out_stride = p.nh * p.hd;
                    a.T = p.T;
                    a.S = p.S;
                    a.q_start = q_start;
                    a.n_head = p.nh;
                    a.n_kv_head = p.nkv;
                    a.head_dim = p.hd;
                    a.scale = scale;
                    a.window = p.window;
                    a.alibi_slopes = p.alibi ? slopes.data() : nullptr;
                    attention(a, pool3());
                    expect_close(want, out.data(), 1e-5, 1e-5, "attention");
                    EXPECT_TRUE(out.guards_intact());
                  }});
  }
  return cs;
}

class KernelCase : public ::testing::TestWithParam<Case> {};

TEST_P(KernelCase, MatchesDoubleReference) {
  // The scalar reference table is the oracle; the SIMD tables are checked against it (with
  // their stated tolerances, e.g. int8 activation rounding) in test_kernels_simd.cpp.
  const KernelTable* prev = set_active(&reference());
  GetParam().run();
  set_active(prev);
}

INSTANTIATE_TEST_SUITE_P(Ops, KernelCase, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

TEST(Kernels, TableIsComplete) {
  const KernelTable& t = reference();
  for (DType d :
       {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K})
    EXPECT_NE(t.matmul[static_cast<int>(d)], nullptr) << name(d);
  EXPECT_TRUE(t.rms_norm && t.layer_norm && t.softmax && t.silu && t.gelu && t.gelu_tanh &&
              t.relu && t.add && t.mul && t.axpy && t.dot && t.rope);
}

TEST(Kernels, ShapeErrors) {
  const auto w = make_weights(DType::F32, 3, 4, 1);
  std::vector<float> x(5), y(3);
  EXPECT_THROW(matmul(x.data(), 1, 5, w.m, nullptr, y.data(), pool3()), ShapeError);
  EXPECT_THROW(activation_from_name("swiglu_xyz"), UnsupportedError);
  EXPECT_NO_THROW(matrix_view(Tensor::empty(DType::Q8_0, {2, 64})));
  EXPECT_THROW(matrix_view(Tensor::empty(DType::F32, {2, 3, 4})), InvalidArgument);
}

TEST(Rope, InvFreqVariants) {
  DecoderConfig c;
  c.head_dim = 16;
  c.rope_theta = 10000.0;
  c.max_position_embeddings = 64;
  const nn::Rope plain(c);
  ASSERT_EQ(plain.rot_dim(), 16);
  const auto base = plain.inv_freq(10);
  EXPECT_FLOAT_EQ(base[0], 1.0f);
  EXPECT_NEAR(base[1], std::pow(10000.0, -2.0 / 16), 1e-7);

  RopeScaling lin;
  lin.rope_type = "linear";
  lin.factor = 4.0;
  c.rope_scaling = lin;
  EXPECT_NEAR(nn::Rope(c).inv_freq(10)[1], base[1] / 4.0, 1e-8);

  RopeScaling dyn;
  dyn.rope_type = "dynamic";
  dyn.factor = 2.0;
  c.rope_scaling = dyn;
  const nn::Rope d(c);
  EXPECT_EQ(d.inv_freq(64), base);         // within max_position_embeddings: unchanged
  EXPECT_LT(d.inv_freq(128)[1], base[1]);  // beyond: larger base, lower frequencies

  RopeScaling l3;
  l3.rope_type = "llama3";
  l3.factor = 8.0;
  l3.low_freq_factor = 1.0;
  l3.high_freq_factor = 4.0;
  l3.original_max_position_embeddings = 32;
  c.rope_scaling = l3;
  const auto f3 = nn::Rope(c).inv_freq(10);
  EXPECT_FLOAT_EQ(f3[0], base[0]);          // high frequency: untouched
  EXPECT_NEAR(f3[7], base[7] / 8.0, 1e-9);  // low frequency: divided by factor

  RopeScaling yarn;
  yarn.rope_type = "yarn";
  yarn.factor = 4.0;
  yarn.original_max_position_embeddings = 32;
  c.rope_scaling = yarn;
  const nn::Rope y(c);
  EXPECT_NEAR(y.attention_scaling(), 0.1 * std::log(4.0) + 1.0, 1e-6);
  EXPECT_FLOAT_EQ(y.inv_freq(10)[0], base[0]);

  RopeScaling lr;
  lr.rope_type = "longrope";
  lr.short_factor = std::vector<double>(8, 1.0);
  lr.long_factor = std::vector<double>(8, 2.0);
  lr.original_max_position_embeddings = 32;
  c.rope_scaling = lr;
  const nn::Rope r(c);
  EXPECT_NEAR(r.inv_freq(32)[1], base[1], 1e-9);
  EXPECT_NEAR(r.inv_freq(33)[1], base[1] / 2.0, 1e-9);
  EXPECT_NEAR(r.attention_scaling(), std::sqrt(1 + std::log(2.0) / std::log(32.0)), 1e-6);

  c.partial_rotary_factor = 0.5;
  c.rope_scaling.reset();
  EXPECT_EQ(nn::Rope(c).rot_dim(), 8);
}

// Matrix::fine_acts: the Q4_0 / Q8_0 SIMD kernels quantize activations to int8 blocks; the
// residual pass brings the result to within a small fraction of that rounding of the exact
// product, on every path (decode, small M, the batched qgemm). The reference table, which
// already uses f32 activations, gives the same result with and without it.
TEST(Kernels, FineActivations) {
  const int64_t K = 256, N = 64;
  for (DType t : {DType::Q4_0, DType::Q8_0})
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
      const KernelTable* table = table_for(isa);
      if (!table) continue;
      const KernelTable* prev = set_active(table);
      for (int64_t M : {1, 3, 40}) {
        auto w = make_weights(t, N, K, static_cast<uint32_t>(M + 5));
        const auto x = randn(static_cast<size_t>(M * K), 11);
        double scale = 0, err_int8 = 0, err_fine = 0;
        std::vector<float> y8(static_cast<size_t>(M * N)), yf(y8.size());
        matmul(x.data(), M, K, w.m, nullptr, y8.data(), pool3());
        w.m.fine_acts = true;
        matmul(x.data(), M, K, w.m, nullptr, yf.data(), pool3());
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) {
            double s = 0;
            for (int64_t k = 0; k < K; ++k)
              s += static_cast<double>(x[m * K + k]) * w.f32[n * K + k];
            const size_t i = static_cast<size_t>(m * N + n);
            scale = std::max(scale, std::fabs(s));
            err_int8 = std::max(err_int8, std::fabs(y8[i] - s));
            err_fine = std::max(err_fine, std::fabs(yf[i] - s));
          }
        const std::string what =
            std::string(name(t)) + " " + isa_name(isa) + " M=" + std::to_string(M);
        if (isa == Isa::Scalar) {
          EXPECT_EQ(y8, yf) << what;
        } else {
          EXPECT_GT(err_int8, 1e-4 * scale) << what;  // the int8 path does round
          EXPECT_LT(err_fine, err_int8 / 20) << what;
        }
        EXPECT_LT(err_fine, 1e-4 * scale) << what;
        std::printf("[measure] fine_acts %s: max error / max |y| %.2e (int8 activations %.2e)\n",
                    what.c_str(), err_fine / scale, err_int8 / scale);
      }
      set_active(prev);
    }
}

// The fused fine-activation kernels (KernelTable::matmul_fine; Q4_0 / Q8_0), AVX2 bit for bit
// against a scalar model of its contract (simd_matvec_q32.h): two int8 digits per activation,
// q1 = round(t), q2 = round(254 t) - 254 q1 with t = x * 127 / amax over each block of 32, the
// exact int32 block dot S = sum w (254 q1 + q2), then per group of eight blocks lane j of an f32
// accumulator takes fma(float(S), wd * d, acc) with d = amax / 127 / 254, the eight lanes summed
// as hsum8f does, then the blocks past the last group one fma at a time. Every M (decode, the
// transposed M > 1 path) and threaded front end give the same bits; and the result agrees with
// the two-pass residual path (the front end without matmul_fine) within a fraction of either's
// error. AVX-512 (another summation order) equals the exact value of the same digits within f32
// rounding.
TEST(Kernels, FineActivationsFused) {
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    const KernelTable* avx2 = table_for(isa);
    if (!avx2) continue;
    KernelTable two_pass = *avx2;  // the front end's second-pass fallback
    for (auto& f : two_pass.matmul_fine) f = nullptr;
    for (DType t : {DType::Q4_0, DType::Q8_0}) {
      ASSERT_NE(avx2->matmul_fine[static_cast<int>(t)], nullptr) << name(t) << " " << isa_name(isa);
      for (int64_t K : {96, 256, 544, 2048})
        for (int64_t M : {1, 2, 5, 17}) {
          const int64_t N = 37, nb = K / 32;
          const size_t bsz = t == DType::Q4_0 ? 18 : 34;
          auto w = make_weights(t, N, K, static_cast<uint32_t>(3 * M + K));
          auto x = randn(static_cast<size_t>(M * K), static_cast<uint32_t>(M + K), 2.0f);
          for (int64_t k = 0; k < 32; ++k) x[k] = 0.0f;  // an all-zero block (amax 0)
          if (K > 64) x[40] = 1e6f;                      // one outlier: a block of tiny digits
          w.m.fine_acts = true;
          std::vector<float> y(static_cast<size_t>(M * N)), y2(y.size()), want(y.size());
          std::vector<double> exact(y.size()), mag(y.size());
          const KernelTable* prev = set_active(avx2);
          matmul(x.data(), M, K, w.m, nullptr, y.data(), pool3());
          set_active(&two_pass);
          matmul(x.data(), M, K, w.m, nullptr, y2.data(), pool3());
          set_active(prev);
          // The model of the contract.
          std::vector<int32_t> S(static_cast<size_t>(nb));
          // AVX-512 adds the weight offset (8 or 128) x the activation sum in f32 apart from the
          // unsigned dot (qg_gemm), so its rounding scales with both: U = sum of their sizes.
          std::vector<double> U(static_cast<size_t>(nb));
          std::vector<float> dd(static_cast<size_t>(nb));
          double worst = 0, scale = 0;
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
              const uint8_t* row = w.m.row(n);
              for (int64_t b = 0; b < nb; ++b) {
                const float* xb = x.data() + m * K + b * 32;
                float amax = 0;
                for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(xb[i]));
                const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
                dd[static_cast<size_t>(b)] = amax / 127.0f / 254.0f;
                const uint8_t* blk = row + b * static_cast<int64_t>(bsz);
                int64_t s = 0, u = 0, fsum = 0;
                const int off = t == DType::Q4_0 ? 8 : 128;
                for (int i = 0; i < 32; ++i) {
                  const float ti = xb[i] * id;
                  const float t254 = ti * 254.0f;
                  const auto q1 = static_cast<int64_t>(std::nearbyint(ti));
                  const auto q2 = static_cast<int64_t>(std::nearbyint(t254)) - 254 * q1;
                  ASSERT_LE(std::llabs(q2), 127);
                  const int wq = t == DType::Q4_0
                                     ? (i < 16 ? (blk[2 + i] & 15) : (blk[2 + i - 16] >> 4)) - 8
                                     : static_cast<int8_t>(blk[2 + i]);
                  s += wq * (254 * q1 + q2);
                  u += (wq + off) * std::llabs(254 * q1 + q2);
                  fsum += 254 * q1 + q2;
                }
                S[static_cast<size_t>(b)] = static_cast<int32_t>(s);
                U[static_cast<size_t>(b)] = static_cast<double>(u + off * std::llabs(fsum));
              }
              auto wd = [&](int64_t b) {
                uint16_t h;
                std::memcpy(&h, row + b * static_cast<int64_t>(bsz), 2);
                return f16_to_f32(h);
              };
              double e = 0, a = 0;
              for (int64_t b = 0; b < nb; ++b) {
                const double v = static_cast<double>(S[static_cast<size_t>(b)]) * wd(b) *
                                 dd[static_cast<size_t>(b)];
                e += v;
                a += std::fabs(wd(b) * dd[static_cast<size_t>(b)]) * U[static_cast<size_t>(b)];
              }
              exact[static_cast<size_t>(m * N + n)] = e;
              mag[static_cast<size_t>(m * N + n)] = a;
              float acc[8] = {};
              int64_t g = 0;
              for (; g + 8 <= nb; g += 8)
                for (int j = 0; j < 8; ++j)
                  acc[j] = std::fma(static_cast<float>(S[static_cast<size_t>(g + j)]),
                                    wd(g + j) * dd[static_cast<size_t>(g + j)], acc[j]);
              const float h0 = acc[0] + acc[4], h1 = acc[1] + acc[5], h2 = acc[2] + acc[6],
                          h3 = acc[3] + acc[7];
              float r = (h0 + h2) + (h1 + h3);
              for (; g < nb; ++g)
                r = std::fma(static_cast<float>(S[static_cast<size_t>(g)]),
                             wd(g) * dd[static_cast<size_t>(g)], r);
              want[static_cast<size_t>(m * N + n)] = r;
              const size_t i = static_cast<size_t>(m * N + n);
              scale = std::max(scale, static_cast<double>(std::fabs(y2[i])));
              worst = std::max(worst, static_cast<double>(std::fabs(y[i] - y2[i])));
            }
          const std::string what = std::string(name(t)) + " " + isa_name(isa) +
                                   " K=" + std::to_string(K) + " M=" + std::to_string(M);
          for (size_t i = 0; i < y.size(); ++i) {
            if (isa == Isa::Avx2) {
              ASSERT_EQ(y[i], want[i])
                  << what << " at " << i << " (" << y[i] << " vs " << want[i] << ")";
            }
            ASSERT_LE(std::fabs(y[i] - exact[i]), 2e-6 * mag[i] + 1e-30) << what << " at " << i;
          }
          EXPECT_LT(worst, 5e-4 * scale) << what;  // the outlier block dominates both
          std::printf("[measure] fused vs two-pass %s: max |diff| / max |y| %.2e\n", what.c_str(),
                      worst / scale);
        }
    }
  }
}

}  // namespace
}  // namespace ohm::kernels
