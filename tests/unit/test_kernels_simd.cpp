// Every SIMD kernel table entry against the scalar reference table (the oracle), table-driven
// over ops x weight dtypes x odd shapes (vector tails, one row, sizes that are not a multiple of
// the vector width or of the register tiles). Runs for each table this CPU supports.
//
// Stated tolerances (|simd - reference| <=). Rounding errors add up as a random walk: K
// independent errors, each at most e_k, sum to more than sqrt(ln(2/p)/2 * sum_k (2 e_k)^2) with
// probability below p (Hoeffding); p = 1e-9 gives the factor 3.27 below. The bounds grow with
// sqrt(K), not with K as the worst case (every error of the same sign) does:
//   f32/f16/bf16 matmul:  2 * 3.27 * 2u * sqrt(K) * S + 1e-6            (summation order, FMA)
//     u = 2^-24; S = max_k |s_k| + max_k |x_k w_k|, s_k the partial sums: each of the K additions
//     and products of either side (the reference's and the SIMD kernel's) rounds by at most u*S
//     + 3.27 * 2^-15 * sqrt(sum_k (x_k w_k)^2) on the AMX tables (amx_table): their f16/bf16 GEMM
//     splits each activation into two bf16 digits, |x - hi - lo| <= 2^-16 |x|
//   Q4_0/Q8_0/Q4_K/Q6_K matmul:  1.02 * min(sum_k |w_k| * amax_k / 254,
//                                           3.27 * sqrt(sum_k (w_k * amax_k / 127)^2))
//                                + the f32 term above
//     (the SIMD path quantizes activations to int8 per 32 (Q4_0/Q8_0) or 256 (K-quants) values,
//      as llama.cpp does: x_k is replaced by d * round(x_k / d), d = amax_k / 127, amax_k the
//      largest |x| of k's block, an error of at most d / 2 per value; the first form is the
//      worst case, the second the random walk, which is the smaller from K of about 64 on)
//     and, exactly: the matmul of the weights with the activations rounded that way (per 32 or
//     per 256 values, whichever the path uses), within the f32 term alone
//   dot: 1e-5 * sum_k |x_k y_k| + 1e-6
//   rms_norm, softmax, silu, rope, axpy, add, mul: 2e-6 relative + 1e-6 absolute
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "ohm/core/error.h"
#include "ohm/core/half.h"
#include "ohm/core/thread_pool.h"
#include "ohm/kernels/kernels.h"
#include "ohm/quant/dequant.h"

namespace ohm::kernels {
namespace {

constexpr double kU = 0x1p-24;         // f32 unit roundoff
constexpr double kHoeffding = 3.2723;  // sqrt(ln(2 / 1e-9) / 2)

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

struct WeightData {
  std::vector<uint8_t> bytes;
  std::vector<float> f32;
  Matrix m;
};

WeightData make_weights(DType t, int64_t rows, int64_t cols, uint32_t seed) {
  WeightData w;
  const size_t rb = static_cast<size_t>(*row_bytes(t, static_cast<uint64_t>(cols)));
  // Exactly the rows, in an allocation of their own: a kernel reading past the last row is a
  // heap-buffer-overflow under ASan. (Growing and shrinking the vector kept the capacity, so such
  // a read went unnoticed.)
  w.bytes = std::vector<uint8_t>(rb * static_cast<size_t>(rows));
  if (w.bytes.capacity() != w.bytes.size()) throw std::logic_error("weights are not exact");
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
        case DType::Q8_0:
          put(o, d);
          break;
        case DType::Q4_K:
          put(o, d);
          put(o + 2, d);
          break;
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

std::vector<const KernelTable*> simd_tables() {
  std::vector<const KernelTable*> v;
  for (Isa isa : {Isa::Avx2, Isa::Avx512})
    if (const KernelTable* t = table_for(isa)) v.push_back(t);
  return v;
}

// The AVX-512 table with AMX tile GEMMs (kernels::amx_table): on the emulated tile unit on every
// AVX-512 CPU, and on the hardware where this CPU and OS have AMX.
std::vector<const KernelTable*> amx_tables() {
  std::vector<const KernelTable*> v;
  for (bool emulated : {true, false})
    if (const KernelTable* t = amx_table(emulated)) v.push_back(t);
  return v;
}

// The tables the matmul test runs: the SIMD tables and the AMX tables.
std::vector<const KernelTable*> matmul_tables() {
  std::vector<const KernelTable*> v = simd_tables();
  for (const KernelTable* t : amx_tables()) v.push_back(t);
  return v;
}

std::string table_name(const KernelTable* kt) {
  return std::string(isa_name(kt->isa)) + (kt->tiles ? std::string(" +") + kt->tiles : "");
}

struct MatmulCase {
  DType dtype;
  int64_t M, K, N;
};

std::string case_name(const ::testing::TestParamInfo<MatmulCase>& i) {
  return std::string(name(i.param.dtype)) + "_" + std::to_string(i.param.M) + "x" +
         std::to_string(i.param.K) + "x" + std::to_string(i.param.N);
}

std::vector<MatmulCase> matmul_cases() {
  std::vector<MatmulCase> cs;
  for (DType t : {DType::F32, DType::F16, DType::BF16})
    for (int64_t M : {1, 2, 3, 5, 9})
      for (int64_t K : {1, 7, 16, 17, 64, 100, 257})
        for (int64_t N : {1, 4, 7, 13}) cs.push_back({t, M, K, N});
  // the batched f32/f16/bf16 path: a full 12-row tile plus a tail, several 32-wide panels (the
  // last one partial), K across the 256-wide panel slices with a tail that is not a multiple of 8
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    cs.push_back({t, 13, 300, 70});
    cs.push_back({t, 25, 17, 33});
    cs.push_back({t, 1, 2048, 300});  // decode through the front end's shared row queue
    // the AMX BF16 path (K a multiple of 32, M >= 8): one 16-row tile, a partial second one,
    // a 32-row block plus a tail; K across the 256-value slices
    cs.push_back({t, 9, 64, 33});
    cs.push_back({t, 17, 96, 18});
    cs.push_back({t, 40, 320, 70});
  }
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K}) {
    const int64_t bs = traits(t).block_size;
    for (int64_t M : {1, 3, 4, 5, 9})
      for (int64_t kb : {1, 2, 3, 9})
        for (int64_t N : {1, 7, 9, 17}) cs.push_back({t, M, kb * bs, N});
    // the batched path: several 32-wide panels (the last one partial), K longer than one
    // packed panel slice (16 chunks of 32)
    cs.push_back({t, 7, bs == 32 ? 17 * 32 : 3 * bs, 70});
    cs.push_back({t, 13, bs == 32 ? 33 * 32 : 2 * bs, 33});
    // the AMX INT8 path: a full 16-row tile, a second partial one, a 32-row block plus a tail
    cs.push_back({t, 16, bs == 32 ? 3 * 32 : bs, 40});
    cs.push_back({t, 17, bs == 32 ? 18 * 32 : 2 * bs, 33});
    cs.push_back({t, 40, bs == 32 ? 5 * 32 : bs, 70});
    // the decode path (M = 1): whole and partial 16-block scale chunks and 4-block groups with
    // 1-3 blocks left over, and row counts that split into four streams with rows left over
    for (int64_t kb : {4, 16, 23, 70})
      for (int64_t N : {4, 18, 70}) cs.push_back({t, 1, kb * bs, N});
    cs.push_back({t, 1, bs == 32 ? 70 * 32 : 9 * bs, 300});  // and the shared row queue
  }
  return cs;
}

class SimdMatmul : public ::testing::TestWithParam<MatmulCase> {};

// The activation rounding the block-quantized SIMD paths do (llama.cpp's): per block of B
// values, d = amax / 127, q = round-to-nearest-even(x * (127 / amax)), x -> d * q.
std::vector<double> int8_activations(const std::vector<float>& x, int64_t B) {
  std::vector<double> out(x.size());
  for (size_t b0 = 0; b0 < x.size(); b0 += static_cast<size_t>(B)) {
    float amax = 0;
    for (size_t j = b0; j < b0 + static_cast<size_t>(B); ++j)
      amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (size_t j = b0; j < b0 + static_cast<size_t>(B); ++j)
      out[j] = static_cast<double>(d) * std::nearbyint(x[j] * id);
  }
  return out;
}

// y = x_q * w^T in double for x_q = int8_activations(x, B), and the f32 tolerance of the
// matmul with x_q (the f32 term of the header, on x_q's partial sums).
void quantized_activation_reference(const std::vector<float>& x, const WeightData& w, int64_t M,
                                    int64_t K, int64_t N, int64_t B, std::vector<double>& want,
                                    std::vector<double>& tol) {
  const std::vector<double> xq = int8_activations(x, B);
  want.assign(static_cast<size_t>(M * N), 0.0);
  tol.assign(want.size(), 0.0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0, smax = 0, pmax = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double p = xq[m * K + k] * w.f32[n * K + k];
        s += p;
        smax = std::max(smax, std::fabs(s));
        pmax = std::max(pmax, std::fabs(p));
      }
      want[m * N + n] = s;
      tol[m * N + n] =
          2 * kHoeffding * 2 * kU * std::sqrt(static_cast<double>(K)) * (smax + pmax) + 1e-6;
    }
}

TEST_P(SimdMatmul, MatchesReference) {
  const auto [t, M, K, N] = GetParam();
  const auto w = make_weights(t, N, K, static_cast<uint32_t>(M * 131 + K * 7 + N));
  auto x = randn(static_cast<size_t>(M * K), static_cast<uint32_t>(K + 3));
  if (M > 1) x[static_cast<size_t>(K)] = 0;  // include an exact zero
  const bool quant = traits(t).is_quantized;
  const int64_t qb = (t == DType::Q4_0 || t == DType::Q8_0) ? 32 : 256;
  // the reference output and the stated bound
  std::vector<float> want(static_cast<size_t>(M * N)), tol(want.size()), tol_tiles(want.size());
  std::vector<float> scratch(static_cast<size_t>(K));
  reference().matmul[static_cast<int>(t)](x.data(), M, K, w.m, 0, N, want.data(), N,
                                          scratch.data());
  double old_tol = 0, new_tol = 0;  // sums over the outputs, for the [measure] line
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double mag = 0, qlin = 0, qvar = 0, s = 0, smax = 0, pmax = 0, p2 = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double wv = w.f32[n * K + k], p = x[m * K + k] * wv;
        mag += std::fabs(p);
        p2 += p * p;
        s += p;
        smax = std::max(smax, std::fabs(s));
        pmax = std::max(pmax, std::fabs(p));
        if (quant) {
          float amax = 0;
          const int64_t b0 = k / qb * qb;
          for (int64_t j = b0; j < b0 + qb; ++j) amax = std::max(amax, std::fabs(x[m * K + j]));
          qlin += std::fabs(wv) * amax / 254.0;
          qvar += (wv * amax / 127.0) * (wv * amax / 127.0);
        }
      }
      const double f32_term =
          2 * kHoeffding * 2 * kU * std::sqrt(static_cast<double>(K)) * (smax + pmax) + 1e-6;
      tol[m * N + n] =
          static_cast<float>(1.02 * std::min(qlin, kHoeffding * std::sqrt(qvar)) + f32_term);
      // the AMX BF16 path's two bf16 digits per activation: |x - hi - lo| <= 2^-16 |x|
      tol_tiles[m * N + n] =
          tol[m * N + n] + static_cast<float>(quant ? 0.0 : kHoeffding * 0x1p-15 * std::sqrt(p2));
      old_tol += 1.02 * qlin + 1e-5 * mag + 1e-6;  // the linear-in-K bound this replaced
      new_tol += tol[m * N + n];
    }
  double worst = 0;        // largest |simd - reference| / tolerance seen
  double worst_exact = 0;  // the same against the int8-activation matmul
  for (const KernelTable* kt : matmul_tables()) {
    SCOPED_TRACE(table_name(kt));
    auto fn = kt->matmul[static_cast<int>(t)];
    ASSERT_NE(fn, nullptr);
    const std::vector<float>& tl = kt->tiles ? tol_tiles : tol;
    // direct, full range, with guard values past the end
    std::vector<float> y(static_cast<size_t>(M * N) + 8, 777.0f);
    fn(x.data(), M, K, w.m, 0, N, y.data(), N, scratch.data());
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_LE(std::fabs(y[i] - want[i]), tl[i])
          << "at " << i << " got " << y[i] << " want " << want[i];
      worst = std::max<double>(worst, std::fabs(y[i] - want[i]) / tl[i]);
    }
    for (size_t i = want.size(); i < y.size(); ++i) ASSERT_EQ(y[i], 777.0f);
    if (quant) {
      // Exactly that rounding: the result equals the matmul with the int8-rounded activations
      // up to f32 summation order alone, for the block size the path uses (32 for Q4_0/Q8_0;
      // 256 for the K-quants, or 32 in the AVX-512 decode and batched paths). This catches
      // errors far below the activation-rounding tolerance above (a 2% error in Q4_K's
      // min term passes it).
      std::string misses;
      bool exact = false;
      const std::vector<int64_t> blocks =
          qb == 32 ? std::vector<int64_t>{32} : std::vector<int64_t>{256, 32};
      for (int64_t B : blocks) {
        if (exact) break;
        std::vector<double> wq, tq;
        quantized_activation_reference(x, w, M, K, N, B, wq, tq);
        double r = 0;
        size_t at = 0;
        for (size_t i = 0; i < wq.size(); ++i)
          if (std::fabs(y[i] - wq[i]) / tq[i] > r) {
            r = std::fabs(y[i] - wq[i]) / tq[i];
            at = i;
          }
        exact = r <= 1.0;
        if (exact) worst_exact = std::max(worst_exact, r);
        misses += " per " + std::to_string(B) + ": |err|/tol " + std::to_string(r) + " at " +
                  std::to_string(at) + " (got " + std::to_string(y[at]) + " want " +
                  std::to_string(wq[at]) + ")";
      }
      EXPECT_TRUE(exact) << "not the matmul with int8 activations;" << misses;
    }
    // through the front end with 2 threads (row split; at M = 1 and enough rows, static
    // shares plus the shared row queue)
    const KernelTable* prev = set_active(kt);
    ThreadPool pool(2);
    std::vector<float> y2(static_cast<size_t>(M * N));
    matmul(x.data(), M, K, w.m, nullptr, y2.data(), pool);
    set_active(prev);
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_EQ(y2[i], y[i]) << "threaded result differs at " << i;
  }
  std::printf(
      "[measure] simd matmul %s %lldx%lldx%lld: worst |err|/tol %.3f, tol %.3g of the "
      "linear-in-K bound; int8-activation matmul: worst |err|/tol %.3f\n",
      std::string(name(t)).c_str(), static_cast<long long>(M), static_cast<long long>(K),
      static_cast<long long>(N), worst, new_tol / old_tol, worst_exact);
}

INSTANTIATE_TEST_SUITE_P(Table, SimdMatmul, ::testing::ValuesIn(matmul_cases()), case_name);

// Batch invariance (the serving engine's contract, docs/serving.md): on a batch-invariant table
// (AVX2's; on AVX-512 CPUs kernels::batch_invariant_table()'s AVX-512 variant) a row of a matmul
// at M > 1 is bitwise the M = 1 result of that row alone, for every weight type with a SIMD entry
// (Q4_0 / Q8_0 plain and with fine activations, f32/f16/bf16, Q4_K, Q6_K) and every shape class
// of the batched paths: no full group of blocks (K = 4 x 32), groups only, groups plus a tail;
// weight-row counts off the row steps; M off the activation-row chunks, and past one chunk (the
// cached weight scales). Rows also see extreme values (a zero row, a row of one spike) so the
// int16 partial sums of the AVX2 kernels run near their bound.
std::vector<const KernelTable*> invariant_tables() {
  std::vector<const KernelTable*> r;
  if (const KernelTable* t = table_for(Isa::Avx2)) r.push_back(t);
  if (const KernelTable* t = table_for(Isa::Avx512)) {
    const KernelTable* prev = set_active(t);
    r.push_back(&batch_invariant_table());
    set_active(prev);
  }
  return r;
}

TEST(SimdMatmul, BatchInvariantTables) {
  const auto tables = invariant_tables();
  if (tables.empty()) GTEST_SKIP() << "this CPU has no SIMD table";
  if (const KernelTable* t = table_for(Isa::Avx512)) {
    ASSERT_NE(tables.back(), t) << "the AVX-512 table's batch-invariant variant is itself";
    EXPECT_EQ(tables.back()->isa, Isa::Avx512);
  }
  for (const KernelTable* kt : tables)
    for (DType t :
         {DType::Q4_0, DType::Q8_0, DType::F32, DType::F16, DType::BF16, DType::Q4_K, DType::Q6_K})
      for (bool fine : {false, true})
        for (int64_t kb : {1, 2, 3, 4, 8, 16, 23, 70})
          for (int64_t N : {1, 6, 18})
            for (int64_t M : {2, 3, 4, 5, 9, 17}) {
              const bool kquant = t == DType::Q4_K || t == DType::Q6_K;
              if (kquant && kb % 8 != 0) continue;
              auto fn = (fine ? kt->matmul_fine : kt->matmul)[static_cast<int>(t)];
              if (fine && fn == nullptr) continue;
              ASSERT_NE(fn, nullptr) << name(t);
              const int64_t K = kb * 32;
              SCOPED_TRACE(std::string(isa_name(kt->isa)) + " " + std::string(name(t)) +
                           (fine ? " fine" : "") + " M=" + std::to_string(M) +
                           " K=" + std::to_string(K) + " N=" + std::to_string(N));
              const auto w = make_weights(t, N, K, static_cast<uint32_t>(K * 7 + N + M));
              auto x = randn(static_cast<size_t>(M * K), static_cast<uint32_t>(K + M));
              for (int64_t k = 0; k < K; ++k) x[static_cast<size_t>(K + k)] = 0;  // row 1: zeros
              if (M > 2) {
                for (int64_t k = 0; k < K; ++k) x[static_cast<size_t>(2 * K + k)] = -1e-3f;
                x[static_cast<size_t>(2 * K + 5)] = -1e3f;  // row 2: one spike, the rest -127/...
              }
              std::vector<float> scratch(static_cast<size_t>(K));
              std::vector<float> yb(static_cast<size_t>(M * N), 777.0f);
              fn(x.data(), M, K, w.m, 0, N, yb.data(), N, scratch.data());
              for (int64_t m = 0; m < M; ++m) {
                std::vector<float> y1(static_cast<size_t>(N), 555.0f);
                fn(x.data() + m * K, 1, K, w.m, 0, N, y1.data(), N, scratch.data());
                for (int64_t n = 0; n < N; ++n)
                  ASSERT_EQ(std::bit_cast<uint32_t>(yb[static_cast<size_t>(m * N + n)]),
                            std::bit_cast<uint32_t>(y1[static_cast<size_t>(n)]))
                      << "row " << m << " col " << n << ": batched " << yb[m * N + n] << " alone "
                      << y1[n];
              }
            }
}

// The AVX-512 invariant table's M = 1 entries are the AVX-512 table's decode kernels: the same
// result bit for bit (so `ohm serve` and speculative decoding decode at `ohm bench` tg speed).
TEST(SimdMatmul, Avx512InvariantDecodesAsAvx512) {
  const KernelTable* a = table_for(Isa::Avx512);
  if (a == nullptr) GTEST_SKIP() << "this CPU has no AVX-512 table";
  const auto tables = invariant_tables();
  const KernelTable* inv = tables.back();
  for (DType t : {DType::Q4_0, DType::Q8_0})
    for (bool fine : {false, true})
      for (int64_t kb : {4, 23, 64}) {
        const int64_t K = kb * 32, N = 37;
        const auto w = make_weights(t, N, K, static_cast<uint32_t>(K + 3));
        const auto x = randn(static_cast<size_t>(K), static_cast<uint32_t>(K + 5));
        std::vector<float> scratch(static_cast<size_t>(K)), y0(N), y1(N);
        (fine ? a->matmul_fine : a->matmul)[static_cast<int>(t)](x.data(), 1, K, w.m, 0, N,
                                                                 y0.data(), N, scratch.data());
        (fine ? inv->matmul_fine : inv->matmul)[static_cast<int>(t)](x.data(), 1, K, w.m, 0, N,
                                                                     y1.data(), N, scratch.data());
        for (int64_t n = 0; n < N; ++n)
          ASSERT_EQ(std::bit_cast<uint32_t>(y0[n]), std::bit_cast<uint32_t>(y1[n]))
              << name(t) << (fine ? " fine" : "") << " K=" << K << " row " << n;
      }
}

// Batch invariance of a packed matmul: yb, the result of x (M x K) times pm plus bias at 2
// threads (p2), is bitwise the result with 1 and 3 threads, and each row computed alone (M = 1)
// is bitwise its row in yb. Stops at the first mismatch (ASSERT_NO_FATAL_FAILURE at the caller).
void expect_batch_invariant(const std::vector<float>& x, int64_t M, int64_t K, int64_t N,
                            const Matrix& pm, const std::vector<float>& bias,
                            const std::vector<float>& yb, ThreadPool& p1, ThreadPool& p2,
                            ThreadPool& p3) {
  for (ThreadPool* pool : {&p1, &p3}) {
    std::vector<float> yt(yb.size(), 555.0f);
    matmul(x.data(), M, K, pm, bias.data(), yt.data(), *pool);
    for (size_t i = 0; i < yb.size(); ++i)
      ASSERT_EQ(std::bit_cast<uint32_t>(yt[i]), std::bit_cast<uint32_t>(yb[i]))
          << pool->size() << " threads, at " << i << " (row " << i / static_cast<size_t>(N)
          << " col " << i % static_cast<size_t>(N) << ")";
  }
  for (int64_t m = 0; m < M; ++m) {
    std::vector<float> y1(static_cast<size_t>(N), 555.0f);
    matmul(x.data() + m * K, 1, K, pm, bias.data(), y1.data(), p2);
    for (int64_t n = 0; n < N; ++n)
      ASSERT_EQ(std::bit_cast<uint32_t>(yb[static_cast<size_t>(m * N + n)]),
                std::bit_cast<uint32_t>(y1[static_cast<size_t>(n)]))
          << "row " << m << " col " << n;
  }
}

// Packed weights (kernels::pack_weights; the AVX-512 invariant table packs Q4_0): through the
// front end, one panel kernel at every M, so a row at M > 1 is bitwise that row alone, with 1, 2
// or 3 threads (static panel shares and the shared counter), for feature counts off the 16-wide
// panels and block counts odd and even; and the result is the matmul with the activations
// rounded to int8 per 32 values (the int8-activation reference) within the f32 term, as every
// Q4_0 path. Rows with extreme values as in BatchInvariantTables; a bias is added.
TEST(SimdMatmul, PackedQ4_0IsBatchInvariantAndExact) {
  const KernelTable* a = table_for(Isa::Avx512);
  if (a == nullptr) GTEST_SKIP() << "this CPU has no AVX-512 table";
  const KernelTable* prev = set_active(a);
  const KernelTable* inv = &batch_invariant_table();
  set_active(inv);
  ASSERT_NE(inv->pack[static_cast<int>(DType::Q4_0)], nullptr);
  ThreadPool p1(1), p2(2), p3(3);
  for (int64_t kb : {1, 2, 3, 8, 23, 64})
    for (int64_t N : {1, 15, 16, 17, 70, 300})
      for (int64_t M : {1, 2, 7, 8, 9, 17}) {
        const int64_t K = kb * 32;
        SCOPED_TRACE("M=" + std::to_string(M) + " K=" + std::to_string(K) +
                     " N=" + std::to_string(N));
        auto w = make_weights(DType::Q4_0, N, K, static_cast<uint32_t>(K * 3 + N));
        const auto packed = pack_weights(w.m);
        ASSERT_NE(packed, nullptr);
        Matrix pm = w.m;
        attach(pm, *packed);
        EXPECT_EQ(pack_weights(pm), nullptr) << "packed twice";
        auto x = randn(static_cast<size_t>(M * K), static_cast<uint32_t>(K + M + N));
        if (M > 1)
          for (int64_t k = 0; k < K; ++k) x[static_cast<size_t>(K + k)] = 0;
        if (M > 2) {
          for (int64_t k = 0; k < K; ++k) x[static_cast<size_t>(2 * K + k)] = -1e-3f;
          x[static_cast<size_t>(2 * K + 5)] = -1e3f;
        }
        const auto bias = randn(static_cast<size_t>(N), 9);
        std::vector<double> want, tol;
        quantized_activation_reference(x, w, M, K, N, 32, want, tol);
        std::vector<float> yb(static_cast<size_t>(M * N), 777.0f);
        matmul(x.data(), M, K, pm, bias.data(), yb.data(), p2);
        for (size_t i = 0; i < want.size(); ++i)
          ASSERT_LE(std::fabs(yb[i] - bias[i % N] - want[i]),
                    tol[i] + 1e-6 * (std::fabs(bias[i % N]) + std::fabs(want[i])))
              << "at " << i << " got " << yb[i] - bias[i % N] << " want " << want[i];
        ASSERT_NO_FATAL_FAILURE(expect_batch_invariant(x, M, K, N, pm, bias, yb, p1, p2, p3));
      }
  // Another table active: the packed copy is not used (that table's own kernels run).
  {
    auto w = make_weights(DType::Q4_0, 40, 256, 5);
    const auto packed = pack_weights(w.m);
    Matrix pm = w.m;
    attach(pm, *packed);
    set_active(a);
    const auto x = randn(3 * 256, 6);
    std::vector<float> y0(3 * 40), y1(3 * 40);
    matmul(x.data(), 3, 256, w.m, nullptr, y0.data(), p2);
    matmul(x.data(), 3, 256, pm, nullptr, y1.data(), p2);
    EXPECT_EQ(y0, y1);
    EXPECT_EQ(pack_weights(w.m), nullptr) << "the plain AVX-512 table packs nothing";
  }
  set_active(prev);
}

// An HF GPTQ / AWQ int4 matrix as the loader repacks it (docs/quantization.md): Q4_0 for
// symmetric zeros (8), Q5_0 holding q - zero + 16 otherwise; one f16 scale and zero per `group`
// inputs. `dense` gets the exact weights scale * (q - zero).
struct Int4Groups {
  std::vector<uint8_t> bytes;
  Matrix m;
  std::vector<double> dense;
};

Int4Groups make_int4_groups(int64_t N, int64_t K, int64_t group, bool asym, uint32_t seed) {
  Int4Groups g;
  const DType dt = asym ? DType::Q5_0 : DType::Q4_0;
  const size_t bb = asym ? 22 : 18;
  const size_t rb = static_cast<size_t>(K / 32) * bb;
  g.bytes.assign(rb * static_cast<size_t>(N), 0);
  g.dense.assign(static_cast<size_t>(N * K), 0.0);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> q16(0, 15);
  std::uniform_real_distribution<float> sd(0.005f, 0.05f);
  for (int64_t n = 0; n < N; ++n) {
    uint16_t d = 0;
    int z = 8;
    for (int64_t c = 0; c < K / 32; ++c) {
      if ((c * 32) % group == 0) {
        d = f32_to_f16(sd(rng));
        if (asym) z = q16(rng);
      }
      uint8_t* b = g.bytes.data() + static_cast<size_t>(n) * rb + static_cast<size_t>(c) * bb;
      std::memcpy(b, &d, 2);
      uint32_t qh = 0;
      for (int j = 0; j < 32; ++j) {
        const int q = q16(rng);
        const int v = asym ? q - z + 16 : q;
        uint8_t* qs = b + (asym ? 6 : 2);
        qs[j % 16] |= static_cast<uint8_t>((v & 15) << (j < 16 ? 0 : 4));
        if (asym && (v & 16)) qh |= 1u << j;
        g.dense[static_cast<size_t>(n * K + c * 32 + j)] =
            static_cast<double>(f16_to_f32(d)) * (q - z);
      }
      if (asym) std::memcpy(b + 2, &qh, 4);
    }
  }
  g.m.dtype = dt;
  g.m.data = g.bytes.data();
  g.m.rows = N;
  g.m.cols = K;
  g.m.row_bytes = rb;
  g.m.fine_acts = true;
  return g;
}

TEST(SimdMatmul, PackedInt4GroupsFineActsExactAndBatchInvariant) {
  const KernelTable* a = table_for(Isa::Avx512);
  if (a == nullptr) GTEST_SKIP() << "this CPU has no AVX-512 table";
  const KernelTable* prev = set_active(a);
  const KernelTable* inv = &batch_invariant_table();
  ThreadPool p1(1), p2(2), p3(3);
  for (const KernelTable* kt : {a, inv})
    for (bool asym : {false, true})
      for (int64_t group : {32, 64, 128, -1})
        for (int64_t kb : {4, 8, 12})
          for (int64_t N : {1, 17, 70, 300})  // 300: 19 panels, the decode steps of 4
            for (int64_t M : {1, 2, 7, 8, 9, 13, 17, 64}) {
              set_active(kt);
              const int64_t K = kb * 32, gs = group < 0 ? K : group;
              if (N == 300 && M > 9) continue;
              if (K % gs != 0) continue;
              SCOPED_TRACE("table " + std::string(kt == inv ? "invariant" : "avx512") +
                           (asym ? " asym" : " sym") + " group=" + std::to_string(group) +
                           " M=" + std::to_string(M) + " K=" + std::to_string(K) +
                           " N=" + std::to_string(N));
              auto w = make_int4_groups(N, K, gs, asym, static_cast<uint32_t>(K + N + gs));
              const auto packed = pack_weights(w.m);
              ASSERT_NE(packed, nullptr);
              int32_t G;
              std::memcpy(&G, packed->data(), 4);
              EXPECT_EQ(G, gs % 128 == 0 && kb % 4 == 0 ? 4 : gs % 64 == 0 ? 2 : 1);
              Matrix pm = w.m;
              attach(pm, *packed);
              auto x = randn(static_cast<size_t>(M * K), static_cast<uint32_t>(K + M + N));
              if (M > 1)
                for (int64_t k = 0; k < K; ++k) x[static_cast<size_t>(K + k)] = 0;
              if (M > 2) {
                for (int64_t k = 0; k < K; ++k) x[static_cast<size_t>(2 * K + k)] = -1e-3f;
                x[static_cast<size_t>(2 * K + 5)] = -1e3f;
              }
              const auto bias = randn(static_cast<size_t>(N), 9);
              std::vector<float> yb(static_cast<size_t>(M * N), 777.0f);
              matmul(x.data(), M, K, pm, bias.data(), yb.data(), p2);
              // Against the exact product: each activation is off by at most half a step of
              // amax / 127 / 254 of its group (32 G values).
              for (int64_t m = 0; m < M; ++m)
                for (int64_t n = 0; n < N; ++n) {
                  double want = 0, tol = 0, mag = 0;
                  for (int64_t k0 = 0; k0 < K; k0 += 32 * G) {
                    double amax = 0;
                    for (int64_t k = k0; k < k0 + 32 * G; ++k)
                      amax = std::max(amax, std::fabs(double(x[static_cast<size_t>(m * K + k)])));
                    for (int64_t k = k0; k < k0 + 32 * G; ++k) {
                      const double wv = w.dense[static_cast<size_t>(n * K + k)];
                      want += wv * x[static_cast<size_t>(m * K + k)];
                      mag += std::fabs(wv * x[static_cast<size_t>(m * K + k)]);
                      tol += std::fabs(wv) * amax / (127.0 * 254.0) * 0.51;
                    }
                  }
                  const double got =
                      yb[static_cast<size_t>(m * N + n)] - bias[static_cast<size_t>(n)];
                  ASSERT_LE(std::fabs(got - want), tol + 2e-6 * mag + 1e-6 * std::fabs(bias[n]))
                      << "row " << m << " col " << n << " got " << got << " want " << want;
                }
              ASSERT_NO_FATAL_FAILURE(expect_batch_invariant(x, M, K, N, pm, bias, yb, p1, p2, p3));
            }
  // Not int4 groups: a Q5_0 block whose values span more than 16 steps has no zero that keeps
  // every q in [0, 15]; such a matrix is not packed (its own kernels run).
  {
    set_active(a);
    auto w = make_int4_groups(3, 64, 32, true, 3);
    uint32_t qh;
    std::memcpy(&qh, w.bytes.data() + 2, 4);
    w.bytes[6] = static_cast<uint8_t>((w.bytes[6] & 0xF0) | 0x0);  // value 0 (or 16) ...
    w.bytes[7] = static_cast<uint8_t>((w.bytes[7] & 0xF0) | 0xF);  // ... and 31 in one block
    qh = (qh & ~1u) | 2u;
    std::memcpy(w.bytes.data() + 2, &qh, 4);
    EXPECT_EQ(pack_weights(w.m), nullptr);
    w.m.fine_acts = false;
    EXPECT_EQ(pack_weights(w.m), nullptr) << "no fine activations: not these panels";
  }
  set_active(prev);
}

void expect_near_rel(const std::vector<float>& want, const std::vector<float>& got,
                     const char* what) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_LE(std::fabs(got[i] - want[i]), 2e-6 * std::fabs(want[i]) + 1e-6)
        << what << " at " << i << " got " << got[i] << " want " << want[i];
}

class SimdElementwise : public ::testing::TestWithParam<int64_t> {};

TEST_P(SimdElementwise, MatchesReference) {
  const int64_t n = GetParam();
  const KernelTable& r = reference();
  const auto a = randn(static_cast<size_t>(n), 1, 3.0f), b = randn(static_cast<size_t>(n), 2);
  for (const KernelTable* kt : simd_tables()) {
    SCOPED_TRACE(isa_name(kt->isa));
    std::vector<float> w1(a.size()), g1(a.size());
    for (float off : {0.0f, 1.0f}) {
      r.rms_norm(a.data(), b.data(), off, 1e-5f, w1.data(), n);
      kt->rms_norm(a.data(), b.data(), off, 1e-5f, g1.data(), n);
      expect_near_rel(w1, g1, "rms_norm");
    }
    r.rms_norm(a.data(), nullptr, 0, 1e-5f, w1.data(), n);
    kt->rms_norm(a.data(), nullptr, 0, 1e-5f, g1.data(), n);
    expect_near_rel(w1, g1, "rms_norm no weight");
    w1 = a, g1 = a;
    for (auto& v : w1) v *= 10;  // wide range for exp
    g1 = w1;
    r.softmax(w1.data(), n);
    kt->softmax(g1.data(), n);
    expect_near_rel(w1, g1, "softmax");
    std::vector<float> big(a.size());
    for (size_t i = 0; i < big.size(); ++i) big[i] = a[i] * 40.0f;  // saturating tails of silu
    r.silu(big.data(), w1.data(), n);
    kt->silu(big.data(), g1.data(), n);
    expect_near_rel(w1, g1, "silu");
    r.silu(a.data(), w1.data(), n);
    kt->silu(a.data(), g1.data(), n);
    expect_near_rel(w1, g1, "silu");
    r.add(a.data(), b.data(), w1.data(), n);
    kt->add(a.data(), b.data(), g1.data(), n);
    expect_near_rel(w1, g1, "add");
    r.mul(a.data(), b.data(), w1.data(), n);
    kt->mul(a.data(), b.data(), g1.data(), n);
    expect_near_rel(w1, g1, "mul");
    w1 = b, g1 = b;
    r.axpy(0.37f, a.data(), w1.data(), n);
    kt->axpy(0.37f, a.data(), g1.data(), n);
    expect_near_rel(w1, g1, "axpy");
    double mag = 0;
    for (int64_t i = 0; i < n; ++i) mag += std::fabs(a[i] * b[i]);
    EXPECT_NEAR(kt->dot(a.data(), b.data(), n), r.dot(a.data(), b.data(), n), 1e-5 * mag + 1e-6);
    // rope: n as head_dim*heads with a few rot_dim choices
    for (int64_t hd : {2, 6, 32, 64, 128}) {
      if (n % hd) continue;
      for (int64_t rot : {hd, hd / 2 - (hd / 2) % 2}) {
        if (rot <= 0 || rot % 2) continue;
        const auto cs = randn(static_cast<size_t>(rot / 2), 5),
                   sn = randn(static_cast<size_t>(rot / 2), 6);
        w1 = a, g1 = a;
        r.rope(w1.data(), n / hd, hd, rot, cs.data(), sn.data());
        kt->rope(g1.data(), n / hd, hd, rot, cs.data(), sn.data());
        expect_near_rel(w1, g1, "rope");
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, SimdElementwise,
                         ::testing::Values(1, 2, 7, 8, 15, 16, 17, 33, 64, 129, 384, 2048));

// attn_query: head sizes that take the register path (multiples of the vector width up to
// 8 vectors) and the generic one, windows that start past 0, masked keys (none, some, all) and
// ALiBi with and without positions. Tolerance: 1e-5 * (1 + max|v|) (vector exp, summation order).
TEST(SimdAttention, QueryMatchesReference) {
  std::mt19937 g(7);
  for (const KernelTable* kt : simd_tables()) {
    SCOPED_TRACE(isa_name(kt->isa));
    for (int64_t hd : {7, 8, 16, 32, 48, 64, 80, 96, 128, 160})
      for (int64_t S : {1, 5, 17, 70})
        for (int mask : {0, 1, 2})
          for (int alibi : {0, 1, 2}) {
            SCOPED_TRACE("hd " + std::to_string(hd) + " S " + std::to_string(S) + " mask " +
                         std::to_string(mask) + " alibi " + std::to_string(alibi));
            const int64_t stride = hd * 3 + 5;
            const auto q = randn(static_cast<size_t>(hd), static_cast<uint32_t>(hd + S));
            const auto k = randn(static_cast<size_t>(S * stride), static_cast<uint32_t>(S + 1));
            const auto v = randn(static_cast<size_t>(S * stride), static_cast<uint32_t>(S + 2));
            std::vector<uint8_t> valid(static_cast<size_t>(S), 1);
            if (mask == 1)
              for (auto& b : valid) b = static_cast<uint8_t>(g() % 3 != 0);
            if (mask == 2) std::fill(valid.begin(), valid.end(), 0);
            std::vector<int32_t> pos(static_cast<size_t>(S));
            for (int64_t j = 0; j < S; ++j) pos[j] = static_cast<int32_t>(2 * j + 1);
            AttnQuery a;
            a.q = q.data();
            a.k = k.data();
            a.v = v.data();
            a.kv_stride = stride;
            a.head_dim = hd;
            a.lo = S > 3 ? 2 : 0;
            a.hi = S - 1;
            a.kv_valid = mask ? valid.data() : nullptr;
            a.alibi = alibi != 0;
            a.alibi_slope = 0.25f;
            a.kv_pos = alibi == 2 ? pos.data() : nullptr;
            a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
            std::vector<float> sc(static_cast<size_t>(S)), want(static_cast<size_t>(hd), 9.0f),
                got(static_cast<size_t>(hd), 9.0f);
            reference().attn_query(a, sc.data(), want.data());
            kt->attn_query(a, sc.data(), got.data());
            float vmax = 0;
            for (float x : v) vmax = std::max(vmax, std::fabs(x));
            for (int64_t i = 0; i < hd; ++i)
              ASSERT_LE(std::fabs(got[i] - want[i]), 1e-5 * (1 + vmax))
                  << "at " << i << " got " << got[i] << " want " << want[i];
          }
  }
}

// attention() through each table's attn_tile (the tiled path: query tiles of a GQA group, key
// blocks, causal tiles, windows, padding, ALiBi, KV splits for long decode, paged K/V) against
// the reference table's per-query path. Tolerance as for attn_query: 1e-5 * (1 + max|v|).
TEST(SimdAttention, TiledMatchesReference) {
  struct C {
    int64_t T, S, nh, nkv, hd, window;
    bool pad, alibi, paged;
  };
  ThreadPool pool(3);
  for (const KernelTable* kt : simd_tables()) {
    SCOPED_TRACE(isa_name(kt->isa));
    for (C c : std::vector<C>{{4, 4, 4, 1, 8, 0, false, false, false},
                              {70, 200, 8, 2, 64, 0, true, false, false},
                              {70, 200, 8, 2, 64, 0, false, false, true},
                              {33, 300, 4, 4, 80, 50, true, true, false},
                              {17, 130, 2, 1, 7, 0, false, true, true},
                              {1, 3000, 8, 2, 64, 0, false, false, false},
                              {1, 3000, 32, 4, 64, 0, false, false, true},
                              {3, 2100, 8, 1, 20, 100, true, true, false},
                              {5, 1500, 6, 2, 128, 0, true, false, false}}) {
      SCOPED_TRACE("T " + std::to_string(c.T) + " S " + std::to_string(c.S) + " heads " +
                   std::to_string(c.nh) + "/" + std::to_string(c.nkv) + " hd " +
                   std::to_string(c.hd) + (c.paged ? " paged" : ""));
      const int64_t kvd = c.nkv * c.hd, qd = c.nh * c.hd;
      const auto q = randn(static_cast<size_t>(c.T * qd), 30);
      const auto k = randn(static_cast<size_t>(c.S * kvd), 31);
      const auto v = randn(static_cast<size_t>(c.S * kvd), 32);
      std::vector<uint8_t> valid(static_cast<size_t>(c.S), 1);
      if (c.pad)
        for (int64_t j = 0; j < c.S; j += 7) valid[static_cast<size_t>(j)] = 0;
      std::vector<int32_t> pos(static_cast<size_t>(c.S));
      for (int64_t j = 0; j < c.S; ++j) pos[static_cast<size_t>(j)] = static_cast<int32_t>(j + 3);
      std::vector<float> slopes;
      for (int64_t h = 0; h < c.nh; ++h) slopes.push_back(0.5f / static_cast<float>(h + 1));
      const int64_t pt = 16;  // paged: pages of 16 slots
      std::vector<const float*> kp, vp;
      for (int64_t p = 0; p < (c.S + pt - 1) / pt; ++p) {
        kp.push_back(k.data() + p * pt * kvd);
        vp.push_back(v.data() + p * pt * kvd);
      }
      AttentionArgs a;
      a.q = q.data();
      a.q_stride = qd;
      if (c.paged) {
        a.k_pages = kp.data();
        a.v_pages = vp.data();
        a.page_tokens = pt;
      } else {
        a.k = k.data();
        a.v = v.data();
      }
      a.kv_stride = kvd;
      a.kv_valid = c.pad ? valid.data() : nullptr;
      a.kv_pos = pos.data();
      a.out_stride = qd;
      a.T = c.T;
      a.S = c.S;
      a.q_start = c.S - c.T;
      a.n_head = c.nh;
      a.n_kv_head = c.nkv;
      a.head_dim = c.hd;
      a.scale = 1.0f / std::sqrt(static_cast<float>(c.hd));
      a.window = c.window;
      a.alibi_slopes = c.alibi ? slopes.data() : nullptr;
      std::vector<float> want(static_cast<size_t>(c.T * qd), 9.0f), got = want;
      const KernelTable* prev = set_active(&reference());
      a.out = want.data();
      attention(a, pool);
      set_active(kt);
      a.out = got.data();
      attention(a, pool);
      set_active(prev);
      float vmax = 0;
      for (float x : v) vmax = std::max(vmax, std::fabs(x));
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_LE(std::fabs(got[i] - want[i]), 1e-5 * (1 + vmax))
            << "at " << i << " got " << got[i] << " want " << want[i];
    }
  }
}

// A typed KV cache (f16, q8_0): attention() over the typed rows through each table, and through
// the reference table (which dequantizes), against the reference on the rows dequantized by
// hand: the same values, so the same tolerance as above (the reference path exactly).
TEST(SimdAttention, TypedKVMatchesDequantized) {
  ThreadPool pool(2);
  const int64_t T = 9, S = 1200, nh = 8, nkv = 2, hd = 64, kvd = nkv * hd, qd = nh * hd;
  const auto q = randn(static_cast<size_t>(T * qd), 40);
  const auto k = randn(static_cast<size_t>(S * kvd), 41);
  const auto v = randn(static_cast<size_t>(S * kvd), 42);
  EXPECT_THROW(kv_row_bytes(DType::Q8_0, 48), InvalidArgument);
  EXPECT_THROW(kv_row_bytes(DType::BF16, 64), InvalidArgument);
  for (DType t : {DType::F16, DType::Q8_0}) {
    SCOPED_TRACE(name(t));
    const int64_t rb = kv_row_bytes(t, kvd);
    std::vector<uint8_t> kb(static_cast<size_t>(S * rb)), vb(kb.size());
    std::vector<float> k32(k.size()), v32(v.size());
    for (int64_t j = 0; j < S; ++j) {
      kv_store_row(t, k.data() + j * kvd, kb.data() + j * rb, kvd);
      kv_store_row(t, v.data() + j * kvd, vb.data() + j * rb, kvd);
      quant::dequantize_row(t, kb.data() + j * rb, k32.data() + j * kvd, kvd);
      quant::dequantize_row(t, vb.data() + j * rb, v32.data() + j * kvd, kvd);
    }
    for (int64_t Tq : {T, int64_t{1}}) {
      AttentionArgs a;
      a.q = q.data();
      a.q_stride = qd;
      a.k = k32.data();
      a.v = v32.data();
      a.kv_stride = kvd;
      a.out_stride = qd;
      a.T = Tq;
      a.S = S;
      a.q_start = S - Tq;
      a.n_head = nh;
      a.n_kv_head = nkv;
      a.head_dim = hd;
      a.scale = 0.125f;
      std::vector<float> want(static_cast<size_t>(Tq * qd)), got(want.size());
      const KernelTable* prev = set_active(&reference());
      a.out = want.data();
      attention(a, pool);
      AttentionArgs typed = a;
      typed.k = typed.v = nullptr;
      typed.kv_type = t;
      typed.k_bytes = kb.data();
      typed.v_bytes = vb.data();
      typed.kv_row_bytes = rb;
      typed.out = got.data();
      attention(typed, pool);  // the reference dequantizes: the same result
      for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << "reference at " << i;
      for (const KernelTable* kt : simd_tables()) {
        SCOPED_TRACE(isa_name(kt->isa));
        set_active(kt);
        std::fill(got.begin(), got.end(), 9.0f);
        attention(typed, pool);
        for (size_t i = 0; i < want.size(); ++i)
          ASSERT_LE(std::fabs(got[i] - want[i]), 1e-5 * (1 + 5.0))
              << "at " << i << " got " << got[i] << " want " << want[i];
      }
      set_active(prev);
    }
  }
}

// rope_interleaved on rows in llama.cpp's permuted order (HF row h*hd + i*hd/2 + j stored at
// h*hd + 2j + i) equals rope (rotate-half) on HF order, permuted the same way, for every table.
TEST(Rope, InterleavedIsPermutedRotateHalf) {
  const int64_t n_head = 3, hd = 16, half = hd / 2, n_tok = 2;
  const auto x = randn(static_cast<size_t>(n_tok * n_head * hd), 5);
  const auto ang = randn(static_cast<size_t>(n_tok * half), 6);
  std::vector<float> cs(ang.size()), sn(ang.size());
  for (size_t i = 0; i < ang.size(); ++i) {
    cs[i] = std::cos(ang[i]);
    sn[i] = std::sin(ang[i]);
  }
  auto permute = [&](const std::vector<float>& v) {
    std::vector<float> p(v.size());
    for (int64_t t = 0; t < n_tok; ++t)
      for (int64_t h = 0; h < n_head; ++h)
        for (int64_t i = 0; i < 2; ++i)
          for (int64_t j = 0; j < half; ++j)
            p[(t * n_head + h) * hd + 2 * j + i] = v[(t * n_head + h) * hd + i * half + j];
    return p;
  };
  std::vector<const KernelTable*> tables = simd_tables();
  tables.push_back(&reference());
  for (const KernelTable* kt : tables) {
    SCOPED_TRACE(isa_name(kt->isa));
    const KernelTable* prev = set_active(kt);
    auto a = x;
    rope(a.data(), n_tok, n_head * hd, n_head, hd, hd, cs.data(), sn.data());
    auto b = permute(x);
    rope_interleaved(b.data(), n_tok, n_head * hd, n_head, hd, hd, cs.data(), sn.data());
    set_active(prev);
    const auto want = permute(a);
    for (size_t i = 0; i < b.size(); ++i) ASSERT_NEAR(b[i], want[i], 1e-6f) << "at " << i;
  }
}

// The AMX tables' INT8 GEMM (src/kernels/simd_amx.h) gives the AVX-512 table's results bit for
// bit: the same f32 scaling of exact int32 sub-block sums. Every block type of the qgemm path,
// plain and fine activations (Q4_0 / Q8_0), direct entries and the threaded front end (qgemm),
// row counts across the 16-row tiles and 32-row blocks (fine: 16-row blocks), partial panels.
// Runs on the emulated tile unit on every AVX-512 CPU and on the hardware where there is AMX.
TEST(SimdMatmul, AmxInt8BitwiseAvx512) {
  const KernelTable* base = table_for(Isa::Avx512);
  if (base == nullptr) GTEST_SKIP() << "this CPU has no AVX-512 table (the AMX tables extend it)";
  const std::vector<const KernelTable*> tables = amx_tables();
  ASSERT_FALSE(tables.empty()) << "the emulated AMX table is missing";
  ThreadPool pool(2);
  for (const KernelTable* kt : tables) {
    SCOPED_TRACE(table_name(kt));
    for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K})
      for (bool fine : {false, true}) {
        if (fine && t != DType::Q4_0 && t != DType::Q8_0) continue;
        const int64_t bs = traits(t).block_size, kb = bs == 32 ? 20 : 2;
        for (int64_t M : {2, 15, 16, 17, 31, 32, 33, 50}) {
          SCOPED_TRACE(std::string(name(t)) + (fine ? " fine" : "") + " M=" + std::to_string(M));
          const int64_t K = kb * bs, N = 45;
          auto w = make_weights(t, N, K, static_cast<uint32_t>(M * 7 + K));
          w.m.fine_acts = fine;
          const auto x = randn(static_cast<size_t>(M * K), static_cast<uint32_t>(M + 11));
          std::vector<float> scratch(static_cast<size_t>(K));
          std::vector<float> want(static_cast<size_t>(M * N)), got(want.size());
          const int d = static_cast<int>(t);
          auto base_fn = fine ? base->matmul_fine[d] : base->matmul[d];
          auto fn = fine ? kt->matmul_fine[d] : kt->matmul[d];
          ASSERT_NE(fn, nullptr);
          ASSERT_NE(fn, base_fn) << "the AMX table does not replace this entry";
          base_fn(x.data(), M, K, w.m, 0, N, want.data(), N, scratch.data());
          fn(x.data(), M, K, w.m, 0, N, got.data(), N, scratch.data());
          for (size_t i = 0; i < want.size(); ++i)
            ASSERT_EQ(got[i], want[i]) << "direct, row " << i / N << " col " << i % N;
          // a sub-range of panels that starts and ends inside a panel
          std::vector<float> part(want.size(), -1.0f);
          fn(x.data(), M, K, w.m, 5, 38, part.data(), N, scratch.data());
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
              const size_t i = static_cast<size_t>(m * N + n);
              if (n >= 5 && n < 38)
                ASSERT_EQ(part[i], want[i]) << "range, row " << m << " col " << n;
              else
                ASSERT_EQ(part[i], -1.0f) << "wrote outside [n0, n1) at row " << m << " col " << n;
            }
          // the threaded front end (the qgemm entry for plain activations)
          const KernelTable* prev = set_active(base);
          matmul(x.data(), M, K, w.m, nullptr, want.data(), pool);
          set_active(kt);
          matmul(x.data(), M, K, w.m, nullptr, got.data(), pool);
          set_active(prev);
          for (size_t i = 0; i < want.size(); ++i)
            ASSERT_EQ(got[i], want[i]) << "front end, row " << i / N << " col " << i % N;
        }
      }
  }
}

// The AMX tables' packed int4 groups (GPTQ / AWQ on fine activations; simd_amx.h) give the
// AVX-512 table's results bit for bit on the same packed weights (packed by the AVX-512 table):
// group sizes 32 / 64 / 128 / whole rows, sym and asym, row counts below the tile threshold
// (VNNI), across 16-row blocks, odd panel counts, through the threaded front end.
TEST(SimdMatmul, AmxPackedInt4GroupsBitwiseAvx512) {
  const KernelTable* base = table_for(Isa::Avx512);
  if (base == nullptr) GTEST_SKIP() << "this CPU has no AVX-512 table (the AMX tables extend it)";
  const std::vector<const KernelTable*> tables = amx_tables();
  ASSERT_FALSE(tables.empty()) << "the emulated AMX table is missing";
  const KernelTable* prev = set_active(base);
  ThreadPool pool(2);
  for (const KernelTable* kt : tables)
    for (bool asym : {false, true})
      for (int64_t group : {32, 64, 128, -1})
        for (int64_t N : {17, 45, 70})
          for (int64_t M : {1, 5, 16, 17, 33, 50}) {
            const int64_t K = 256, gs = group < 0 ? K : group;
            SCOPED_TRACE(table_name(kt) + (asym ? " asym" : " sym") +
                         " group=" + std::to_string(group) + " M=" + std::to_string(M) +
                         " N=" + std::to_string(N));
            set_active(base);
            auto w = make_int4_groups(N, K, gs, asym, static_cast<uint32_t>(N + gs + M));
            const auto packed = pack_weights(w.m);
            ASSERT_NE(packed, nullptr);
            Matrix pm = w.m;
            attach(pm, *packed);
            pm.data = nullptr;  // only the packed copy, as a loaded checkpoint holds it
            auto x = randn(static_cast<size_t>(M * K), static_cast<uint32_t>(K + M + N));
            if (M > 2) x[static_cast<size_t>(2 * K + 7)] = -1e3f;  // one group far larger
            std::vector<float> want(static_cast<size_t>(M * N)), got(want.size(), 777.0f);
            matmul(x.data(), M, K, pm, nullptr, want.data(), pool);
            set_active(kt);
            matmul(x.data(), M, K, pm, nullptr, got.data(), pool);
            for (size_t i = 0; i < want.size(); ++i)
              ASSERT_EQ(got[i], want[i]) << "row " << i / N << " col " << i % N;
          }
  set_active(prev);
}

// The AMX instructions themselves against the emulated tile unit that the other AMX tests run
// on: INT8 bit for bit, BF16 within the f32 summation term (the hardware's accumulation order
// inside a tile instruction is not specified beyond the SDM's pseudocode). Skips, saying why,
// where this CPU or OS has no AMX: then the kernels were checked on the emulated unit only.
TEST(SimdMatmul, AmxHardwareMatchesEmulatedTileUnit) {
  const KernelTable* hw = amx_table(false);
  if (hw == nullptr)
    GTEST_SKIP() << "no AMX here (" << amx_status()
                 << "); the AMX kernels ran on the emulated tile unit in "
                    "SimdMatmul.MatchesReference and SimdMatmul.AmxInt8BitwiseAvx512";
  const KernelTable* emu = amx_table(true);
  ASSERT_NE(emu, nullptr);
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K, DType::F16, DType::BF16}) {
    SCOPED_TRACE(name(t));
    const int64_t K = traits(t).is_quantized ? 2 * 256 : 320, M = 37, N = 70;
    const auto w = make_weights(t, N, K, 5);
    const auto x = randn(static_cast<size_t>(M * K), 6);
    std::vector<float> scratch(static_cast<size_t>(K)), a(static_cast<size_t>(M * N)), b(a.size());
    emu->matmul[static_cast<int>(t)](x.data(), M, K, w.m, 0, N, a.data(), N, scratch.data());
    hw->matmul[static_cast<int>(t)](x.data(), M, K, w.m, 0, N, b.data(), N, scratch.data());
    for (size_t i = 0; i < a.size(); ++i) {
      if (traits(t).is_quantized) {
        ASSERT_EQ(b[i], a[i]) << "at " << i;
      } else {
        ASSERT_NEAR(b[i], a[i], 1e-5 * (1.0 + std::fabs(a[i]))) << "at " << i;
      }
    }
  }
}

TEST(SimdDispatch, ActiveIsBestAndScalarOverride) {
  // The active table is one of the compiled tables; table_for(Scalar) is the reference.
  EXPECT_EQ(table_for(Isa::Scalar), &reference());
  const auto v = simd_tables();
  if (!v.empty()) {
    const char* e = std::getenv("OHM_ISA");
    if (!e) {
      EXPECT_EQ(active().isa, v.back()->isa) << "expected the best table to be active";
    }
  }
  for (const KernelTable* kt : v)
    for (int d = 0; d < static_cast<int>(DType::Count_); ++d) {
      if (reference().matmul[d]) {
        EXPECT_NE(kt->matmul[d], nullptr);
      }
    }
}

}  // namespace
}  // namespace ohm::kernels
