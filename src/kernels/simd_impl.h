// SIMD kernel bodies shared by the per-ISA translation units (avx2.cpp, avx512.cpp). Each TU
// defines OHM_SIMD_W512 (0 or 1) and includes this file once, inside an anonymous namespace, so
// every function here has internal linkage and is compiled with that TU's -m flags only.
//
// ODR rule for this file: no std:: templates, no calls to inline functions of other headers
// (they would be emitted as weak symbols compiled with AVX-512 flags and could be picked by the
// linker for scalar code). Only intrinsics, plain C++ and non-inline ohm functions.
//
// Numerics (tolerances are stated and tested in tests/unit/test_kernels_simd.cpp):
//   * f32/f16/bf16 matmul: exact weight conversion, f32 FMA accumulation in a different order
//     than the reference: |diff| <= ~1e-6 * sum|x*w|.
//   * block-quantized matmul (Q4_0, Q8_0, Q4_K, Q6_K): like llama.cpp, the activation row is
//     quantized once per call to int8 with one f32 scale per 32 elements (per 256 for the
//     K-quants on the AVX2 row tiles; round to nearest), then int8 x int4/int6/int8 dot
//     products in int32 (VNNI vpdpbusd where available) with block scales applied in f32.
//     Error vs the exact-f32 reference is bounded by sum_k |w_k| * amax(x block of k) / 254
//     (the rounding error of the activation) plus f32 rounding.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels_internal.h"

#ifndef OHM_SIMD_W512
#error "define OHM_SIMD_W512 before including simd_impl.h"
#endif

// ---------------------------------------------------------------- f32 vector abstraction
#if OHM_SIMD_W512
using vf = __m512;
constexpr int VL = 16;
static inline vf vzero() {
  return _mm512_setzero_ps();
}
static inline vf vset1(float v) {
  return _mm512_set1_ps(v);
}
static inline vf vload(const float* p) {
  return _mm512_loadu_ps(p);
}
static inline void vstore(float* p, vf v) {
  _mm512_storeu_ps(p, v);
}
static inline vf vload_f16(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
static inline vf vload_bf16(const uint8_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(
      _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}
static inline vf vfma(vf a, vf b, vf c) {
  return _mm512_fmadd_ps(a, b, c);
}
static inline vf vadd(vf a, vf b) {
  return _mm512_add_ps(a, b);
}
static inline vf vsub(vf a, vf b) {
  return _mm512_sub_ps(a, b);
}
static inline vf vmul(vf a, vf b) {
  return _mm512_mul_ps(a, b);
}
static inline vf vdiv(vf a, vf b) {
  return _mm512_div_ps(a, b);
}
static inline vf vmax(vf a, vf b) {
  return _mm512_max_ps(a, b);
}
static inline vf vmin(vf a, vf b) {
  return _mm512_min_ps(a, b);
}
static inline float vhsum(vf v) {
  return _mm512_reduce_add_ps(v);
}
static inline float vhmax(vf v) {
  return _mm512_reduce_max_ps(v);
}
static inline vf vround(vf v) {
  return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
static inline vf vpow2i(vf n) {  // 2^n for integral n in [-126, 127]
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
#else
using vf = __m256;
constexpr int VL = 8;
static inline vf vzero() {
  return _mm256_setzero_ps();
}
static inline vf vset1(float v) {
  return _mm256_set1_ps(v);
}
static inline vf vload(const float* p) {
  return _mm256_loadu_ps(p);
}
static inline void vstore(float* p, vf v) {
  _mm256_storeu_ps(p, v);
}
static inline vf vload_f16(const uint8_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
static inline vf vload_bf16(const uint8_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(
      _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}
static inline vf vfma(vf a, vf b, vf c) {
  return _mm256_fmadd_ps(a, b, c);
}
static inline vf vadd(vf a, vf b) {
  return _mm256_add_ps(a, b);
}
static inline vf vsub(vf a, vf b) {
  return _mm256_sub_ps(a, b);
}
static inline vf vmul(vf a, vf b) {
  return _mm256_mul_ps(a, b);
}
static inline vf vdiv(vf a, vf b) {
  return _mm256_div_ps(a, b);
}
static inline vf vmax(vf a, vf b) {
  return _mm256_max_ps(a, b);
}
static inline vf vmin(vf a, vf b) {
  return _mm256_min_ps(a, b);
}
static inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
static inline float vhsum(vf v) {
  return hsum8(v);
}
static inline float vhmax(vf v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
static inline vf vround(vf v) {
  return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
static inline vf vpow2i(vf n) {
  return _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}
#endif

static inline float hsum8f(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
static inline int32_t hsum8i(__m256i v) {
  __m128i t = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
  return _mm_cvtsi128_si32(t);
}
static inline float f16s(const uint8_t* p) {
  uint16_t h;
  __builtin_memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}
static inline int64_t imin(int64_t a, int64_t b) {
  return a < b ? a : b;
}

// exp(x) for a vector, Cephes-style (about 1-2 ulp over the clamped range).
static inline vf vexp(vf x) {
  x = vmin(vmax(x, vset1(-87.3365f)), vset1(88.3762f));
  const vf n = vround(vmul(x, vset1(1.44269504088896341f)));
  vf r = vsub(x, vmul(n, vset1(0.693359375f)));
  r = vsub(r, vmul(n, vset1(-2.12194440e-4f)));
  vf p = vset1(1.9875691500E-4f);
  p = vfma(p, r, vset1(1.3981999507E-3f));
  p = vfma(p, r, vset1(8.3334519073E-3f));
  p = vfma(p, r, vset1(4.1665795894E-2f));
  p = vfma(p, r, vset1(1.6666665459E-1f));
  p = vfma(p, r, vset1(5.0000001201E-1f));
  p = vfma(p, vmul(r, r), vadd(r, vset1(1.0f)));
  // n can be 128 at the top of the range: scale in two steps.
  const vf half_n = vround(vmul(n, vset1(0.5f)));
  return vmul(vmul(p, vpow2i(half_n)), vpow2i(vsub(n, half_n)));
}

// ---------------------------------------------------------------- f32 / f16 / bf16 matmul
enum class WF { F32, F16, BF16 };

template <WF T>
static inline vf wload(const uint8_t* row, int64_t k) {
  if constexpr (T == WF::F32)
    return vload(reinterpret_cast<const float*>(row) + k);
  else if constexpr (T == WF::F16)
    return vload_f16(row + 2 * k);
  else
    return vload_bf16(row + 2 * k);
}
template <WF T>
static inline float wscalar(const uint8_t* row, int64_t k) {
  if constexpr (T == WF::F32) {
    float v;
    __builtin_memcpy(&v, row + 4 * k, 4);
    return v;
  } else {
    uint16_t h;
    __builtin_memcpy(&h, row + 2 * k, 2);
    if constexpr (T == WF::F16) return _cvtsh_ss(h);
    uint32_t b = static_cast<uint32_t>(h) << 16;
    float v;
    __builtin_memcpy(&v, &b, 4);
    return v;
  }
}

// Row order of the decode (M = 1) matvecs, which stream every weight byte once from DRAM. A
// step works on R rows at once (R independent accumulators), taken from R equal sub-ranges of
// [n0, n1): rows n0 + i, n0 + Q + i, ... (Q = (n1 - n0) / R). Each of the R memory streams walks
// consecutive rows, which lie end to end, and stays sequential; steps of R neighbouring rows
// instead make R interleaved streams inside the same pages, which the hardware prefetchers do not
// follow (Q4_0 at K = 2048: 17.5 -> 23.5 GB/s on 2 threads). Software prefetch runs one row ahead
// in each stream. step(rows, pf) runs R rows, one(rows, pf) a single leftover row. Then, with a
// RowQueue installed for this thread, chunks of the queue's rows the same way until none are left
// (KernelTable::matvec_row_queue).
template <int R, class Step, class One>
static inline void decode_rows(int64_t n0, int64_t n1, size_t rb, Step&& step, One&& one) {
  RowQueue* rq = row_queue();
  for (;;) {
    const int64_t q = (n1 - n0) / R;
    for (int64_t i = 0; i < q; ++i) {
      int64_t rows[R];
      for (int r = 0; r < R; ++r) rows[r] = n0 + r * q + i;
      step(rows, rb);
    }
    for (int64_t n = n0 + R * q; n < n1; ++n) one(&n, rb);
    if (!rq) return;
    n0 = __atomic_fetch_add(&rq->next, rq->chunk, __ATOMIC_RELAXED);
    if (n0 >= rq->end) return;
    n1 = imin(rq->end, n0 + rq->chunk);
  }
}

// MT activation rows x NT weight rows, full K.
template <WF T, int MT, int NT>
static inline void float_tile(const float* x, int64_t K, const uint8_t* w, size_t rb,
                              const int64_t* rows, size_t pf, float* y, int64_t ldy) {
  vf acc[MT][NT];
  for (int i = 0; i < MT; ++i)
    for (int j = 0; j < NT; ++j) acc[i][j] = vzero();
  const uint8_t* wr[NT];
  for (int j = 0; j < NT; ++j) wr[j] = w + static_cast<size_t>(rows[j]) * rb;
  int64_t k = 0;
  for (; k + VL <= K; k += VL) {
    vf wv[NT];
    if (pf)
      for (int j = 0; j < NT; ++j)
        _mm_prefetch(reinterpret_cast<const char*>(wr[j]) + pf + k * (T == WF::F32 ? 4 : 2),
                     _MM_HINT_T0);
    for (int j = 0; j < NT; ++j) wv[j] = wload<T>(wr[j], k);
    for (int i = 0; i < MT; ++i) {
      const vf xv = vload(x + i * K + k);
      for (int j = 0; j < NT; ++j) acc[i][j] = vfma(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MT; ++i)
    for (int j = 0; j < NT; ++j) {
      float s = vhsum(acc[i][j]);
      for (int64_t kk = k; kk < K; ++kk) s += x[i * K + kk] * wscalar<T>(wr[j], kk);
      y[i * ldy + rows[j]] = s;
    }
}

template <WF T, int MT>
static void float_rows(const float* x, int64_t K, const uint8_t* w, size_t rb, int64_t n0,
                       int64_t n1, float* y, int64_t ldy) {
  if (MT == 1) {  // decode: prefetching streams (decode_rows)
    decode_rows<4>(
        n0, n1, rb,
        [&](const int64_t* rows, size_t pf) { float_tile<T, 1, 4>(x, K, w, rb, rows, pf, y, ldy); },
        [&](const int64_t* rows, size_t pf) {
          float_tile<T, 1, 1>(x, K, w, rb, rows, pf, y, ldy);
        });
    return;
  }
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) {
    const int64_t rows[4] = {n, n + 1, n + 2, n + 3};
    float_tile<T, MT, 4>(x, K, w, rb, rows, 0, y, ldy);
  }
  for (; n < n1; ++n) float_tile<T, MT, 1>(x, K, w, rb, &n, 0, y, ldy);
}

template <WF T>
static void mm_float(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0, int64_t n1,
                     float* y, int64_t ldy, float*) {
  constexpr int MB = OHM_SIMD_W512 ? 4 : 2;
  int64_t m = 0;
  // Tile over activation rows inside a band of weight rows, so the band stays in L1/L2.
  const int64_t band = M > 1 ? 16 : (n1 - n0);
  for (int64_t b0 = n0; b0 < n1; b0 += band) {
    const int64_t b1 = imin(n1, b0 + band);
    for (m = 0; m + MB <= M; m += MB)
      float_rows<T, MB>(x + m * K, K, w.data, w.row_bytes, b0, b1, y + m * ldy, ldy);
    for (; m < M; ++m)
      float_rows<T, 1>(x + m * K, K, w.data, w.row_bytes, b0, b1, y + m * ldy, ldy);
  }
}

// ---------------------------------------------------------------- activation quantization
// M rows of K floats -> int8 qs [M*K], one f32 scale per B elements d [M*K/B] and int16 sums of
// every 16 quantized values s16 [M*K/16]. K is a multiple of B (B = 32 or 256).
static void quantize_act(const float* x, int64_t M, int64_t K, int B, int8_t* qs, float* d,
                         int16_t* s16) {
  const int64_t nblk = M * K / B;
  for (int64_t b = 0; b < nblk; ++b) {
    const float* xb = x + b * B;
    int8_t* qb = qs + b * B;
    __m256 mx = _mm256_setzero_ps();
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int i = 0; i < B; i += 8)
      mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, _mm256_loadu_ps(xb + i)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float dd = amax / 127.0f;
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    d[b] = dd;
    const __m256 vid = _mm256_set1_ps(id);
    for (int i = 0; i < B; i += 32) {
      __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + i), vid));
      __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + i + 8), vid));
      __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + i + 16), vid));
      __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + i + 24), vid));
      // 16-value sums (before packing: exact ints).
      const __m256i sa = _mm256_add_epi32(i0, i1), sb = _mm256_add_epi32(i2, i3);
      __m128i ha = _mm_add_epi32(_mm256_castsi256_si128(sa), _mm256_extracti128_si256(sa, 1));
      __m128i hb = _mm_add_epi32(_mm256_castsi256_si128(sb), _mm256_extracti128_si256(sb, 1));
      ha = _mm_hadd_epi32(ha, hb);  // [a01, a23, b01, b23]
      ha = _mm_hadd_epi32(ha, ha);  // [a, b, a, b]
      s16[(b * B + i) / 16] = static_cast<int16_t>(_mm_cvtsi128_si32(ha));
      s16[(b * B + i) / 16 + 1] = static_cast<int16_t>(_mm_extract_epi32(ha, 1));
      i0 = _mm256_packs_epi32(i0, i1);
      i2 = _mm256_packs_epi32(i2, i3);
      i0 = _mm256_packs_epi16(i0, i2);
      i0 = _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(qb + i), i0);
    }
  }
}

// Per-thread buffer for the quantized activations (grows once; thread_scratch slot 2).
struct ActQ {
  const int8_t* qs;
  const float* d;
  const int16_t* s16;
};
static ActQ act_quantize(const float* x, int64_t M, int64_t K, int B) {
  const size_t nq = static_cast<size_t>(M * K), nd = static_cast<size_t>(M * K / B),
               ns = static_cast<size_t>(M * K / 16);
  const size_t floats = nd + (nq + 3) / 4 + (ns + 1) / 2 + 16;
  float* buf = thread_scratch(2, floats);
  float* d = buf;
  int8_t* qs = reinterpret_cast<int8_t*>(buf + nd);
  int16_t* s16 = reinterpret_cast<int16_t*>(buf + nd + (nq + 3) / 4);
  quantize_act(x, M, K, B, qs, d, s16);
  return {qs, d, s16};
}

static inline __m256i ivec_lane0(int v) {
  return _mm256_zextsi128_si256(_mm_cvtsi32_si128(v));
}

// u8 (first) x s8 (second) -> 8 x i32 sums of 4 products, added to acc.
static inline __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

// ---------------------------------------------------------------- Q4_0 / Q8_0 (block 32)
// Q4_0 block: {f16 d; u8 qs[16]} (18 B): x[j] = d*(lo(qs[j]) - 8), x[j+16] = d*(hi(qs[j]) - 8).
// Q8_0 block: {f16 d; i8 qs[32]} (34 B).
template <bool Q8, int MT>
static inline void q32_tile(const ActQ& a, int64_t K, const uint8_t* wr, float* y, int64_t ldy,
                            int64_t n) {
  const int64_t nb = K / 32;
  const size_t bsz = Q8 ? 34 : 18;
  __m256 acc[MT];
  for (int i = 0; i < MT; ++i) acc[i] = _mm256_setzero_ps();
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = wr + b * bsz;
    const float wd = f16s(blk);
    __m256i u;
#if !(defined(__AVX512VNNI__) && defined(__AVX512VL__))
    __m256i wsgn;
#endif
    if constexpr (Q8) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
      u = _mm256_xor_si256(w, _mm256_set1_epi8(static_cast<char>(0x80)));  // w + 128
#else
      u = _mm256_sign_epi8(w, w);  // |w|
      wsgn = w;
#endif
    } else {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4);
    }
    for (int i = 0; i < MT; ++i) {
      const int8_t* xq = a.qs + i * K + b * 32;
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq));
      const int64_t sb = (i * K + b * 32) / 16;
      const int xs = a.s16[sb] + a.s16[sb + 1];
      __m256i p;
      if constexpr (Q8) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
        p = _mm256_dpbusd_epi32(ivec_lane0(-128 * xs), u, xv);
#else
        (void)xs;
        p = dot_u8s8(_mm256_setzero_si256(), u, _mm256_sign_epi8(xv, wsgn));
#endif
      } else {
        p = dot_u8s8(ivec_lane0(-8 * xs), u, xv);
      }
      const float sc = wd * a.d[(i * K) / 32 + b];
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(sc), acc[i]);
    }
  }
  for (int i = 0; i < MT; ++i) y[i * ldy + n] = hsum8f(acc[i]);
}

// ---------------------------------------------------------------- Q4_K (block 256, 144 B)
// {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}; sub-block s (32 values) = d*sc[s]*q - dmin*m[s].
static inline void q4k_scales(const uint8_t* q, int16_t* sc, int16_t* mn) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      sc[j] = q[j] & 63;
      mn[j] = q[j + 4] & 63;
    } else {
      sc[j] = static_cast<int16_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
      mn[j] = static_cast<int16_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
  }
}

template <int MT>
static inline void q4k_tile(const ActQ& a, int64_t K, const uint8_t* wr, float* y, int64_t ldy,
                            int64_t n) {
  const int64_t nb = K / 256;
  __m256 acc[MT];
  for (int i = 0; i < MT; ++i) acc[i] = _mm256_setzero_ps();
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = wr + b * 144;
    const float wd = f16s(blk), wmin = f16s(blk + 2);
    int16_t sc[8], mn[8];
    q4k_scales(blk + 4, sc, mn);
    alignas(32) int16_t mn16[16];
    for (int s = 0; s < 8; ++s) mn16[2 * s] = mn16[2 * s + 1] = mn[s];
    const __m256i mnv = _mm256_load_si256(reinterpret_cast<const __m256i*>(mn16));
    __m256i lo[4], hi[4];
    for (int j = 0; j < 4; ++j) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * j));
      lo[j] = _mm256_and_si256(q, m4);
      hi[j] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    }
    for (int i = 0; i < MT; ++i) {
      const int8_t* xq = a.qs + i * K + b * 256;
      __m256i isum = _mm256_setzero_si256();
      for (int j = 0; j < 4; ++j) {
        const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 64 * j));
        const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 64 * j + 32));
        const __m256i p0 =
            _mm256_madd_epi16(_mm256_maddubs_epi16(lo[j], x0), _mm256_set1_epi16(sc[2 * j]));
        const __m256i p1 =
            _mm256_madd_epi16(_mm256_maddubs_epi16(hi[j], x1), _mm256_set1_epi16(sc[2 * j + 1]));
        isum = _mm256_add_epi32(isum, _mm256_add_epi32(p0, p1));
      }
      const __m256i bs =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.s16 + (i * K + b * 256) / 16));
      const __m256i msum = _mm256_madd_epi16(mnv, bs);
      const float xd = a.d[(i * K) / 256 + b];
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(wd * xd), acc[i]);
      acc[i] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(wmin * xd), acc[i]);
    }
  }
  for (int i = 0; i < MT; ++i) y[i * ldy + n] = hsum8f(acc[i]);
}

// ---------------------------------------------------------------- Q6_K (block 256, 210 B)
// {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}; x = d*sc[16-group] * (q6 - 32).
template <int MT>
static inline void q6k_tile(const ActQ& a, int64_t K, const uint8_t* wr, float* y, int64_t ldy,
                            int64_t n) {
  const int64_t nb = K / 256;
  __m256 acc[MT];
  for (int i = 0; i < MT; ++i) acc[i] = _mm256_setzero_ps();
  const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = wr + b * 210;
    const float wd = f16s(blk + 208);
    const int8_t* scs = reinterpret_cast<const int8_t*>(blk + 192);
    const __m256i sc16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scs)));
    __m256i q[8];    // 8 groups of 32 values, in element order
    __m256i scv[8];  // per group: lanes 0-7 scale of the first 16, 8-15 of the second 16
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = blk + 64 * h;
      const uint8_t* qh = blk + 128 + 32 * h;
      const __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i a1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i hv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
      q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(a0, m4),
                                     _mm256_and_si256(_mm256_slli_epi16(hv, 4), m30));
      q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(a1, m4),
                                     _mm256_and_si256(_mm256_slli_epi16(hv, 2), m30));
      q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a0, 4), m4),
                                     _mm256_and_si256(hv, m30));
      q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a1, 4), m4),
                                     _mm256_and_si256(_mm256_srli_epi16(hv, 2), m30));
      for (int g = 0; g < 4; ++g)
        scv[4 * h + g] = _mm256_set_m128i(_mm_set1_epi16(scs[8 * h + 2 * g + 1]),
                                          _mm_set1_epi16(scs[8 * h + 2 * g]));
    }
    for (int i = 0; i < MT; ++i) {
      const int8_t* xq = a.qs + i * K + b * 256;
      __m256i isum = _mm256_setzero_si256();
      for (int g = 0; g < 8; ++g) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * g));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(q[g], xv), scv[g]));
      }
      const __m256i bs =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.s16 + (i * K + b * 256) / 16));
      const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5);  // 32*sum sc*bsum
      isum = _mm256_sub_epi32(isum, corr);
      const float xd = a.d[(i * K) / 256 + b];
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(wd * xd), acc[i]);
    }
  }
  for (int i = 0; i < MT; ++i) y[i * ldy + n] = hsum8f(acc[i]);
}

enum class QK { Q4_0, Q8_0, Q4_K, Q6_K };

template <QK T, int MT>
static inline void qtile(const ActQ& a, int64_t K, const uint8_t* wr, float* y, int64_t ldy,
                         int64_t n) {
  if constexpr (T == QK::Q4_0)
    q32_tile<false, MT>(a, K, wr, y, ldy, n);
  else if constexpr (T == QK::Q8_0)
    q32_tile<true, MT>(a, K, wr, y, ldy, n);
  else if constexpr (T == QK::Q4_K)
    q4k_tile<MT>(a, K, wr, y, ldy, n);
  else
    q6k_tile<MT>(a, K, wr, y, ldy, n);
}

#if OHM_SIMD_W512
// ---------------------------------------------------------------- batched block-quantized GEMM
// For M >= QGEMM_MIN_ROWS. Each weight format is a sum over sub-blocks (32 values; 16 for Q6_K)
// of w = s * q + o with q an unsigned byte and s, o per (row, sub-block) f32. A thread packs
// 32 weight rows x KCC chunks of 32 values at a time into a panel (L1-resident): per chunk,
// 8 quads x 32 rows x 4 bytes, so one 512-bit vpdpbusd with 4 broadcast activation bytes adds
// 4 products for 16 output features. Per sub-block, the int32 sums are scaled in f32:
//   y += cvt(sum q*xq) * (s * xd) + o * (xd * sum xq).
// Activations: int8 per 32 values (round to nearest), as in the per-row path.
constexpr int64_t QGEMM_MIN_ROWS = 2;
constexpr int64_t QG_KCC = 16;  // chunks of 32 values per panel (a multiple of 8: K-quant blocks)

// 32 activations -> int8 (round to nearest) with one scale d = amax / 127, and the sums of the
// two 16-value halves. Shared by every int8 path of this file.
struct Q32 {
  __m128i q0, q1;
  float d;
  int s0, s1;
};
static inline Q32 quant32(const float* xb) {
  const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
  const float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
  const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, _mm512_set1_ps(id)));
  const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, _mm512_set1_ps(id)));
  return {_mm512_cvtsepi32_epi8(i0), _mm512_cvtsepi32_epi8(i1), d, _mm512_reduce_add_epi32(i0),
          _mm512_reduce_add_epi32(i1)};
}

// Store masks of the two 16-lane halves of a 32-wide panel holding nr (<= 32) valid columns.
static inline void panel_masks(int nr, __mmask16& k0, __mmask16& k1) {
  k0 = static_cast<__mmask16>(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
  k1 = static_cast<__mmask16>(nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (1u << (nr - 16)) - 1);
}

// An MR x 32 output tile at y (row stride ldy) with the panel's masks: the accumulators start
// from y (a later K slice) or zero, and are stored back masked.
template <int MR>
static inline void tile_load(__m512 (&acc)[MR][2], const float* y, int64_t ldy, __mmask16 k0,
                             __mmask16 k1, bool accumulate) {
  for (int i = 0; i < MR; ++i) {
    acc[i][0] = accumulate ? _mm512_maskz_loadu_ps(k0, y + i * ldy) : _mm512_setzero_ps();
    acc[i][1] = accumulate ? _mm512_maskz_loadu_ps(k1, y + i * ldy + 16) : _mm512_setzero_ps();
  }
}
template <int MR>
static inline void tile_store(const __m512 (&acc)[MR][2], float* y, int64_t ldy, __mmask16 k0,
                              __mmask16 k1) {
  for (int i = 0; i < MR; ++i) {
    _mm512_mask_storeu_ps(y + i * ldy, k0, acc[i][0]);
    _mm512_mask_storeu_ps(y + i * ldy + 16, k1, acc[i][1]);
  }
}

static void qg_prepare(const float* x, int64_t m0, int64_t m1, const QActs& a) {
  const int64_t K = a.K, nc = K / 32;
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t c = 0; c < nc; ++c) {
      const float* xb = x + m * K + c * 32;
      const Q32 q = quant32(xb);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(a.qs + m * K + c * 32), q.q0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(a.qs + m * K + c * 32 + 16), q.q1);
      const int64_t ci = m * nc + c;
      a.d32[ci] = q.d;
      a.sd32[ci] = q.d * static_cast<float>(q.s0 + q.s1);
      a.sd16[2 * ci] = q.d * static_cast<float>(q.s0);
      a.sd16[2 * ci + 1] = q.d * static_cast<float>(q.s1);
    }
}

// 8x8 transpose of 32-bit lanes (r[i] lane j -> r[j] lane i).
static inline void tr8x8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// One row's chunk c (32 values) as unsigned bytes, and its sub-block scales/offsets
// (NS = 1 sub-block of 32, or 2 of 16 for Q6_K).
template <QK T>
static inline __m256i qg_unpack(const uint8_t* row, int64_t c, float* s, float* o) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  if constexpr (T == QK::Q4_0) {
    const uint8_t* blk = row + c * 18;
    const float d = f16s(blk);
    s[0] = d;
    o[0] = -8.0f * d;
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4);
  } else if constexpr (T == QK::Q8_0) {
    const uint8_t* blk = row + c * 34;
    const float d = f16s(blk);
    s[0] = d;
    o[0] = -128.0f * d;
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)),
                            _mm256_set1_epi8(static_cast<char>(0x80)));
  } else if constexpr (T == QK::Q4_K) {
    const uint8_t* blk = row + (c / 8) * 144;
    const int sb = static_cast<int>(c % 8);
    const uint8_t* q = blk + 4;
    int sc, mn;
    if (sb < 4) {
      sc = q[sb] & 63;
      mn = q[sb + 4] & 63;
    } else {
      sc = (q[sb + 4] & 0xF) | ((q[sb - 4] >> 6) << 4);
      mn = (q[sb + 4] >> 4) | ((q[sb] >> 6) << 4);
    }
    s[0] = f16s(blk) * static_cast<float>(sc);
    o[0] = -f16s(blk + 2) * static_cast<float>(mn);
    const __m256i v =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * (sb / 2)));
    return (sb & 1) ? _mm256_and_si256(_mm256_srli_epi16(v, 4), m4) : _mm256_and_si256(v, m4);
  } else {
    const uint8_t* blk = row + (c / 8) * 210;
    const int ci = static_cast<int>(c % 8), h = ci / 4, g = ci % 4;
    const float d = f16s(blk + 208);
    const int8_t* scs = reinterpret_cast<const int8_t*>(blk + 192);
    s[0] = d * static_cast<float>(scs[8 * h + 2 * g]);
    s[1] = d * static_cast<float>(scs[8 * h + 2 * g + 1]);
    o[0] = -32.0f * s[0];
    o[1] = -32.0f * s[1];
    const __m256i m30 = _mm256_set1_epi8(0x30);
    const __m256i a =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h + 32 * (g & 1)));
    const __m256i hv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h));
    const __m256i lo =
        (g < 2) ? _mm256_and_si256(a, m4) : _mm256_and_si256(_mm256_srli_epi16(a, 4), m4);
    const int hs = 4 - 2 * g;  // qh bits (2g, 2g+1) -> bits 4..5
    const __m256i hb =
        hs > 0 ? _mm256_slli_epi16(hv, hs) : (hs < 0 ? _mm256_srli_epi16(hv, -hs) : hv);
    return _mm256_or_si256(lo, _mm256_and_si256(hb, m30));
  }
}

// Packs rows [n, n+nr) (nr <= 32; missing rows are zero) x chunks [c0, c1) into the panel:
// pw [(c-c0)*1024 + q*128 + r*4 + j] = byte j of quad q of row r; ps/po [(c-c0)*NS + h][32].
template <QK T>
static void qg_pack(const Matrix& w, int64_t n, int nr, int64_t c0, int64_t c1, uint8_t* pw,
                    float* ps, float* po) {
  constexpr int NS = T == QK::Q6_K ? 2 : 1;
  for (int64_t c = c0; c < c1; ++c) {
    uint8_t* pc = pw + (c - c0) * 1024;
    float* sc = ps + (c - c0) * NS * 32;
    float* oc = po + (c - c0) * NS * 32;
    for (int g = 0; g < 4; ++g) {  // 8 rows at a time
      __m256 r[8];
      for (int i = 0; i < 8; ++i) {
        const int rr = 8 * g + i;
        float s[2] = {0, 0}, o[2] = {0, 0};
        __m256i v = _mm256_setzero_si256();
        if (rr < nr) v = qg_unpack<T>(w.row(n + rr), c, s, o);
        r[i] = _mm256_castsi256_ps(v);
        for (int h = 0; h < NS; ++h) {
          sc[h * 32 + rr] = s[h];
          oc[h * 32 + rr] = o[h];
        }
      }
      tr8x8(r);
      for (int q = 0; q < 8; ++q)
        _mm256_storeu_ps(reinterpret_cast<float*>(pc + q * 128 + g * 32), r[q]);
    }
  }
}

// y[m, n..n+nr) (+)= panel x activations rows [m, m+MR), chunks [c0, c1).
template <int MR, int NS>
static inline void qg_tile(const QActs& a, int64_t m, int64_t c0, int64_t c1, const uint8_t* pw,
                           const float* ps, const float* po, float* y, int64_t ldy, int64_t n,
                           __mmask16 k0, __mmask16 k1, bool accumulate) {
  const int64_t K = a.K, nc = K / 32;
  __m512 acc[MR][2];
  tile_load<MR>(acc, y + m * ldy + n, ldy, k0, k1, accumulate);
  const int8_t* xq = a.qs + m * K;
  for (int64_t c = c0; c < c1; ++c) {
    const uint8_t* pc = pw + (c - c0) * 1024;
    for (int h = 0; h < NS; ++h) {
      __m512i is[MR][2];
      for (int i = 0; i < MR; ++i) is[i][0] = is[i][1] = _mm512_setzero_si512();
      for (int q = h * (8 / NS); q < (h + 1) * (8 / NS); ++q) {
        const __m512i w0 = _mm512_loadu_si512(pc + q * 128);
        const __m512i w1 = _mm512_loadu_si512(pc + q * 128 + 64);
        for (int i = 0; i < MR; ++i) {
          int32_t xv;
          __builtin_memcpy(&xv, xq + i * K + c * 32 + q * 4, 4);
          const __m512i xb = _mm512_set1_epi32(xv);
          is[i][0] = _mm512_dpbusd_epi32(is[i][0], w0, xb);
          is[i][1] = _mm512_dpbusd_epi32(is[i][1], w1, xb);
        }
      }
      const float* sc = ps + ((c - c0) * NS + h) * 32;
      const float* oc = po + ((c - c0) * NS + h) * 32;
      const __m512 s0 = _mm512_loadu_ps(sc), s1 = _mm512_loadu_ps(sc + 16);
      const __m512 o0 = _mm512_loadu_ps(oc), o1 = _mm512_loadu_ps(oc + 16);
      for (int i = 0; i < MR; ++i) {
        const int64_t ci = (m + i) * nc + c;
        const __m512 xd = _mm512_set1_ps(a.d32[ci]);
        const __m512 xs = _mm512_set1_ps(NS == 1 ? a.sd32[ci] : a.sd16[2 * ci + h]);
        acc[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[i][0]), _mm512_mul_ps(s0, xd), acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[i][1]), _mm512_mul_ps(s1, xd), acc[i][1]);
        acc[i][0] = _mm512_fmadd_ps(o0, xs, acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(o1, xs, acc[i][1]);
      }
    }
  }
  tile_store<MR>(acc, y + m * ldy + n, ldy, k0, k1);
}

template <QK T>
static void qg_gemm(const QActs& a, const Matrix& w, int64_t n0, int64_t n1, float* y,
                    int64_t ldy) {
  constexpr int NS = T == QK::Q6_K ? 2 : 1;
  constexpr int MR = 6;
  const int64_t M = a.M, nc = a.K / 32;
  float* buf = thread_scratch(3, static_cast<size_t>(QG_KCC * (256 + 2 * NS * 32)));
  uint8_t* pw = reinterpret_cast<uint8_t*>(buf);
  float* ps = buf + QG_KCC * 256;
  float* po = ps + QG_KCC * NS * 32;
  for (int64_t n = n0; n < n1; n += 32) {
    const int nr = static_cast<int>(imin(32, n1 - n));
    __mmask16 k0, k1;
    panel_masks(nr, k0, k1);
    for (int64_t c0 = 0; c0 < nc; c0 += QG_KCC) {
      const int64_t c1 = imin(nc, c0 + QG_KCC);
      qg_pack<T>(w, n, nr, c0, c1, pw, ps, po);
      const bool accum = c0 > 0;
      int64_t m = 0;
      for (; m + MR <= M; m += MR)
        qg_tile<MR, NS>(a, m, c0, c1, pw, ps, po, y, ldy, n, k0, k1, accum);
      switch (M - m) {
        case 5:
          qg_tile<5, NS>(a, m, c0, c1, pw, ps, po, y, ldy, n, k0, k1, accum);
          break;
        case 4:
          qg_tile<4, NS>(a, m, c0, c1, pw, ps, po, y, ldy, n, k0, k1, accum);
          break;
        case 3:
          qg_tile<3, NS>(a, m, c0, c1, pw, ps, po, y, ldy, n, k0, k1, accum);
          break;
        case 2:
          qg_tile<2, NS>(a, m, c0, c1, pw, ps, po, y, ldy, n, k0, k1, accum);
          break;
        case 1:
          qg_tile<1, NS>(a, m, c0, c1, pw, ps, po, y, ldy, n, k0, k1, accum);
          break;
        default:
          break;
      }
    }
  }
}
#endif  // OHM_SIMD_W512

#if OHM_SIMD_W512
// ---------------------------------------------------------------- batched f32/f16/bf16 GEMM
// For M >= FG_MIN_ROWS: 32 weight rows x FG_KC values are converted to f32 and transposed into
// a panel [k][32] (L1-resident), then a 12 x 32 register tile (24 accumulators) runs
// broadcast-FMA over it: per k, two panel loads and 24 FMAs. Each output is accumulated in k
// order in f32, whatever the panel position of its row, so thread splits do not change results.
constexpr int64_t FG_MIN_ROWS = 8;
constexpr int64_t FG_KC = 256;

template <WF T>
static void fg_pack(const Matrix& w, int64_t n, int nr, int64_t k0, int64_t k1, float* pw) {
  const int64_t kc = k1 - k0;
  for (int g = 0; g < 4; ++g) {
    int64_t k = k0;
    if (8 * g + 8 <= nr) {
      for (; k + 8 <= k1; k += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) {
          const uint8_t* row = w.row(n + 8 * g + i);
          if constexpr (T == WF::F32)
            r[i] = _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
          else if constexpr (T == WF::F16)
            r[i] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k)));
          else
            r[i] = _mm256_castsi256_ps(_mm256_slli_epi32(
                _mm256_cvtepu16_epi32(
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k))),
                16));
        }
        tr8x8(r);
        for (int j = 0; j < 8; ++j) _mm256_storeu_ps(pw + (k - k0 + j) * 32 + 8 * g, r[j]);
      }
    }
    for (; k < k1; ++k)
      for (int i = 0; i < 8; ++i) {
        const int rr = 8 * g + i;
        pw[(k - k0) * 32 + rr] = rr < nr ? wscalar<T>(w.row(n + rr), k) : 0.0f;
      }
  }
  (void)kc;
}

template <int MR>
static inline void fg_tile(const float* xp, int64_t kc, const float* pw, float* y, int64_t ldy,
                           int64_t m, int64_t n, __mmask16 q0, __mmask16 q1, bool accumulate) {
  __m512 acc[MR][2];
  tile_load<MR>(acc, y + m * ldy + n, ldy, q0, q1, accumulate);
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 w0 = _mm512_loadu_ps(pw + k * 32);
    const __m512 w1 = _mm512_loadu_ps(pw + k * 32 + 16);
    for (int i = 0; i < MR; ++i) {
      const __m512 xb = _mm512_set1_ps(xp[k * MR + i]);
      acc[i][0] = _mm512_fmadd_ps(xb, w0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(xb, w1, acc[i][1]);
    }
  }
  tile_store<MR>(acc, y + m * ldy + n, ldy, q0, q1);
}

template <WF T>
static void fg_gemm(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0, int64_t n1,
                    float* y, int64_t ldy) {
  constexpr int MR = 12;
  float* pw = thread_scratch(3, static_cast<size_t>(FG_KC * 32));
  // x slice [M, kc] packed per 12-row tile as [k][rows] (one contiguous broadcast stream)
  float* xp = thread_scratch(4, static_cast<size_t>(M * FG_KC));
  for (int64_t k0 = 0; k0 < K; k0 += FG_KC) {
    const int64_t k1 = imin(K, k0 + FG_KC), kc = k1 - k0;
    for (int64_t m = 0; m < M; m += MR) {
      const int64_t mr = imin(MR, M - m);
      float* t = xp + m * kc;
      for (int64_t i = 0; i < mr; ++i)
        for (int64_t k = 0; k < kc; ++k) t[k * mr + i] = x[(m + i) * K + k0 + k];
    }
    const bool acc = k0 > 0;
    for (int64_t n = n0; n < n1; n += 32) {
      const int nr = static_cast<int>(imin(32, n1 - n));
      __mmask16 q0, q1;
      panel_masks(nr, q0, q1);
      fg_pack<T>(w, n, nr, k0, k1, pw);
      int64_t m = 0;
      for (; m + MR <= M; m += MR) fg_tile<MR>(xp + m * kc, kc, pw, y, ldy, m, n, q0, q1, acc);
      switch (M - m) {
#define OHM_FG_CASE(r)                                          \
  case r:                                                       \
    fg_tile<r>(xp + m * kc, kc, pw, y, ldy, m, n, q0, q1, acc); \
    break;
        OHM_FG_CASE(11)
        OHM_FG_CASE(10)
        OHM_FG_CASE(9)
        OHM_FG_CASE(8)
        OHM_FG_CASE(7)
        OHM_FG_CASE(6)
        OHM_FG_CASE(5)
        OHM_FG_CASE(4)
        OHM_FG_CASE(3)
        OHM_FG_CASE(2)
        OHM_FG_CASE(1)
#undef OHM_FG_CASE
        default:
          break;
      }
    }
  }
}
#endif  // OHM_SIMD_W512

#if OHM_SIMD_W512
// ---------------------------------------------------------------- Q8_0 / Q4_0 decode (M = 1)
// Rows per step (decode_rows): R independent accumulators and memory streams.
constexpr int QM_R = 4;

// Q8_0: two blocks (64 weights) per 512-bit vpdpbusd. The weights are made unsigned (x ^ 0x80)
// and per pair corr = -128 * sum(xq) of each block, in one lane of its half, is the int32 start
// value; xd, the activation scales, are spread over the lanes of each block. An odd last block
// runs alone (tail).
struct X1 {
  const int8_t* xq;     // [np * 64]
  const int32_t* corr;  // [np * 16]
  const float* xdb;     // [np * 2] activation scale per block
  const int8_t* tq;     // [32] tail block
  int32_t tcorr;
  float td;
};

static X1 x1_prep(const float* x, int64_t K) {
  const int64_t nb = K / 32, np = nb / 2;
  float* buf = thread_scratch(2, static_cast<size_t>(np * 16 * 2 + (np * 64 + 32) / 4 + 16));
  float* xdb = buf;
  int32_t* corr = reinterpret_cast<int32_t*>(buf + np * 16);
  int8_t* xq = reinterpret_cast<int8_t*>(buf + np * 32);
  int8_t* tq = xq + np * 64;
  X1 r{xq, corr, xdb, tq, 0, 0.0f};
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * 32;
    const Q32 q = quant32(xb);
    const float d = q.d;
    const int32_t cs = -128 * (q.s0 + q.s1);
    const __m128i q0 = q.q0, q1 = q.q1;
    const int64_t p = b / 2, h = b % 2;
    if (p == np) {  // odd tail
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tq), q0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tq + 16), q1);
      r.tcorr = cs;
      r.td = d;
      continue;
    }
    int8_t* xp = xq + p * 64;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(xp + 32 * h), q0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(xp + 32 * h + 16), q1);
    int32_t* cp = corr + p * 16;
    xdb[b] = d;
    if (h == 0)
      for (int l = 0; l < 16; ++l) cp[l] = 0;
    cp[8 * h] = cs;
  }
  return r;
}

// One block alone: corr + sum of the 32 products u (unsigned) x xq (int8).
static inline int32_t block_dot32(int32_t corr, __m256i u, const int8_t* xq) {
  return hsum8i(_mm256_dpbusd_epi32(ivec_lane0(corr), u,
                                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq))));
}

// The f16 scales of 16 consecutive blocks of bsz bytes starting at p (lanes past gm zero),
// times the activation scales xd: one gather of the dwords at the block starts.
template <int bsz>
static inline __m512 block_scales16(const uint8_t* p, __mmask16 gm, __m512 xd) {
  const __m512i gidx =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(bsz));
  const __m512i h = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), gm, gidx, p, 1);
  return _mm512_mul_ps(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(h)), xd);
}

// Lane -> block-of-pair maps for the scale vector of pair q of a 16-block group.
alignas(64) static const int32_t q8_pair_idx[8][16] = {
#define OHM_P8(q)                                                                            \
  {                                                                                          \
    2 * q, 2 * q, 2 * q, 2 * q, 2 * q, 2 * q, 2 * q, 2 * q, 2 * q + 1, 2 * q + 1, 2 * q + 1, \
        2 * q + 1, 2 * q + 1, 2 * q + 1, 2 * q + 1, 2 * q + 1                                \
  }
    OHM_P8(0), OHM_P8(1), OHM_P8(2), OHM_P8(3), OHM_P8(4), OHM_P8(5), OHM_P8(6), OHM_P8(7),
#undef OHM_P8
};

template <int R>
static inline void q8_rows2(const X1& x, int64_t nb, const uint8_t* w, size_t rb,
                            const int64_t* rows, size_t pf, float* y) {
  constexpr int bsz = 34;
  __m512 acc[R];
  const uint8_t* wr[R];
  for (int r = 0; r < R; ++r) {
    acc[r] = _mm512_setzero_ps();
    wr[r] = w + static_cast<size_t>(rows[r]) * rb;
  }
  const int64_t np = nb / 2;
  for (int64_t g0 = 0; g0 < np; g0 += 8) {
    // scales of the 16 blocks of this group, weight x activation, one vector per row
    const int64_t gp = imin(8, np - g0);
    const __mmask16 gm = static_cast<__mmask16>(gp == 8 ? 0xFFFF : (1u << (2 * gp)) - 1);
    const __m512 xd = _mm512_maskz_loadu_ps(gm, x.xdb + 2 * g0);
    __m512 sc[R];
    for (int r = 0; r < R; ++r) sc[r] = block_scales16<bsz>(wr[r] + 2 * g0 * bsz, gm, xd);
    for (int64_t q = 0; q < gp; ++q) {
      const int64_t p = g0 + q;
      const __m512i xv = _mm512_loadu_si512(x.xq + p * 64);
      const __m512i cv = _mm512_loadu_si512(x.corr + p * 16);
      const __m512i pidx = _mm512_load_si512(q8_pair_idx[q]);
      for (int r = 0; r < R; ++r) {
        const uint8_t* b0 = wr[r] + 2 * p * bsz;
        _mm_prefetch(reinterpret_cast<const char*>(b0) + pf, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(b0) + pf + 64, _MM_HINT_T0);
        __m512i u = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + 2))),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + bsz + 2)), 1);
        u = _mm512_xor_si512(u, _mm512_set1_epi8(static_cast<char>(0x80)));
        const __m512i pr = _mm512_dpbusd_epi32(cv, u, xv);
        acc[r] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(pr), _mm512_permutexvar_ps(pidx, sc[r]), acc[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    float s = _mm512_reduce_add_ps(acc[r]);
    if (nb % 2) {
      const uint8_t* blk = wr[r] + (nb - 1) * bsz;
      const __m256i u =
          _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)),
                           _mm256_set1_epi8(static_cast<char>(0x80)));
      s += static_cast<float>(block_dot32(x.tcorr, u, x.tq)) * (f16s(blk) * x.td);
    }
    y[rows[r]] = s;
  }
}

// Q4_0 decode, four blocks (72 bytes) per step: two loads (at +2 and, masked, at +20, so the
// quants of blocks 0, 2 and 1, 3 sit on dword boundaries), one vpermt2d that packs the four
// 16-byte quant runs into one register, and two vpdpbusd (low nibbles, high nibbles) into one
// int32 vector whose lanes 4k..4k+3 belong to block k; then one scale multiply per four blocks.
// About half the vector work per block of the two-block scheme Q8_0 uses, which was
// compute-bound below the DRAM rate on Q4_0 (in L2: 14.5 -> 20 GB/s on one core). The activation of
// a group of four blocks is stored as the four first halves then the four second halves; blocks
// past the last full group (K / 32 % 4) run one at a time in natural order.
struct X4 {
  const int8_t* xq;      // [ng * 128]
  const int32_t* corr;   // [ng * 16]: -8 * sum(xq) of block k in lane 4k
  const float* xdb;      // [nb] activation scale per block
  const int8_t* tq;      // [3 * 32] tail blocks
  const int32_t* tcorr;  // [3]
};

static X4 x4_prep(const float* x, int64_t K) {
  const int64_t nb = K / 32, ng = nb / 4;
  float* buf = thread_scratch(2, static_cast<size_t>(nb + ng * 16 + 4 + (ng * 128 + 96) / 4 + 16));
  float* xdb = buf;
  int32_t* corr = reinterpret_cast<int32_t*>(buf + nb);
  int32_t* tcorr = corr + ng * 16;
  int8_t* xq = reinterpret_cast<int8_t*>(tcorr + 4);
  int8_t* tq = xq + ng * 128;
  for (int64_t b = 0; b < nb; ++b) {
    const Q32 q = quant32(x + b * 32);
    const int32_t cs = -8 * (q.s0 + q.s1);
    const int64_t g = b / 4, k = b % 4;
    xdb[b] = q.d;
    if (g == ng) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tq + 32 * k), q.q0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tq + 32 * k + 16), q.q1);
      tcorr[k] = cs;
      continue;
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + g * 128 + 16 * k), q.q0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + g * 128 + 64 + 16 * k), q.q1);
    int32_t* cp = corr + g * 16 + 4 * k;
    cp[0] = cs;
    cp[1] = cp[2] = cp[3] = 0;
  }
  return {xq, corr, xdb, tq, tcorr};
}

// Lane -> block maps for the scale vector of group q of a 16-block chunk.
alignas(64) static const int32_t q4_group_idx[4][16] = {
#define OHM_G(q)                                                                                  \
  {                                                                                               \
    4 * q, 4 * q, 4 * q, 4 * q, 4 * q + 1, 4 * q + 1, 4 * q + 1, 4 * q + 1, 4 * q + 2, 4 * q + 2, \
        4 * q + 2, 4 * q + 2, 4 * q + 3, 4 * q + 3, 4 * q + 3, 4 * q + 3                          \
  }
    OHM_G(0), OHM_G(1), OHM_G(2), OHM_G(3)
#undef OHM_G
};

template <int R>
static inline void q4_rows4(const X4& x, int64_t nb, const uint8_t* w, size_t rb,
                            const int64_t* rows, size_t pf, float* y) {
  constexpr int bsz = 18;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  // dwords of the load at +2 (blocks 0, 2: 0-3, 9-12) and at +20 (blocks 1, 3: 16 + 0-3, 9-12)
  const __m512i tidx = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 9, 10, 11, 12, 25, 26, 27, 28);
  constexpr __mmask16 bmask = 0x1E0F;  // the +20 load stops at the group's end
  __m512 acc[R];
  const uint8_t* wr[R];
  for (int r = 0; r < R; ++r) {
    acc[r] = _mm512_setzero_ps();
    wr[r] = w + static_cast<size_t>(rows[r]) * rb;
  }
  const int64_t ng = nb / 4;
  for (int64_t c0 = 0; c0 < ng; c0 += 4) {
    const int64_t gc = imin(4, ng - c0);
    const __mmask16 gm = static_cast<__mmask16>(gc == 4 ? 0xFFFF : (1u << (4 * gc)) - 1);
    const __m512 xd = _mm512_maskz_loadu_ps(gm, x.xdb + 4 * c0);
    __m512 sc[R];
    for (int r = 0; r < R; ++r) sc[r] = block_scales16<bsz>(wr[r] + 4 * c0 * bsz, gm, xd);
    for (int64_t q = 0; q < gc; ++q) {
      const int64_t g = c0 + q;
      const __m512i xlo = _mm512_loadu_si512(x.xq + g * 128);
      const __m512i xhi = _mm512_loadu_si512(x.xq + g * 128 + 64);
      const __m512i cv = _mm512_loadu_si512(x.corr + g * 16);
      const __m512i sidx = _mm512_load_si512(q4_group_idx[q]);
      for (int r = 0; r < R; ++r) {
        const uint8_t* b0 = wr[r] + 4 * g * bsz;
        _mm_prefetch(reinterpret_cast<const char*>(b0) + pf, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(b0) + pf + 4 * bsz - 1, _MM_HINT_T0);
        const __m512i v = _mm512_permutex2var_epi32(_mm512_loadu_si512(b0 + 2), tidx,
                                                    _mm512_maskz_loadu_epi32(bmask, b0 + 20));
        const __m512i lo = _mm512_and_si512(v, m4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        const __m512i pr = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(cv, lo, xlo), hi, xhi);
        acc[r] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(pr), _mm512_permutexvar_ps(sidx, sc[r]), acc[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    float s = _mm512_reduce_add_ps(acc[r]);
    for (int64_t b = ng * 4; b < nb; ++b) {
      const uint8_t* blk = wr[r] + b * bsz;
      const int64_t t = b - ng * 4;
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      const __m256i u =
          _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
      s += static_cast<float>(block_dot32(x.tcorr[t], u, x.tq + 32 * t)) * (f16s(blk) * x.xdb[b]);
    }
    y[rows[r]] = s;
  }
}

template <bool Q8>
static void q32_matvec(const float* x, int64_t K, const Matrix& w, int64_t n0, int64_t n1,
                       float* y) {
  const int64_t nb = K / 32;
  const size_t rb = w.row_bytes;
  if constexpr (!Q8) {
    const X4 xp = x4_prep(x, K);
    decode_rows<QM_R>(
        n0, n1, rb,
        [&](const int64_t* rows, size_t pf) { q4_rows4<QM_R>(xp, nb, w.data, rb, rows, pf, y); },
        [&](const int64_t* rows, size_t pf) { q4_rows4<1>(xp, nb, w.data, rb, rows, pf, y); });
  } else {
    const X1 xp = x1_prep(x, K);
    decode_rows<QM_R>(
        n0, n1, rb,
        [&](const int64_t* rows, size_t pf) { q8_rows2<QM_R>(xp, nb, w.data, rb, rows, pf, y); },
        [&](const int64_t* rows, size_t pf) { q8_rows2<1>(xp, nb, w.data, rb, rows, pf, y); });
  }
}
#endif  // OHM_SIMD_W512

#if OHM_SIMD_W512
// ---------------------------------------------------------------- Q4_K decode (M = 1)
// Per 256-value block and row: two 512-bit loads of the nibbles, four vpdpbusd against the
// activation stored with its 32-value sub-blocks in the order the nibbles unpack to
// (0,2 | 1,3 | 4,6 | 5,7), the eight 6-bit scales and mins unpacked with 32-bit masks and
// applied in f32. Activations: int8 per 32 values.
struct X1K {
  const int8_t* xq;  // [nb * 256], permuted
  const float* xd8;  // [nb * 8] scale of each sub-block
  const float* xs8;  // [nb * 8] scale * sum of the int8 values of each sub-block
};

static X1K x1k_prep(const float* x, int64_t K) {
  const int64_t nb = K / 256;
  float* buf = thread_scratch(2, static_cast<size_t>(nb * 16 + nb * 64 + 16));
  float* xd8 = buf;
  float* xs8 = buf + nb * 8;
  int8_t* xq = reinterpret_cast<int8_t*>(buf + nb * 16);
  static constexpr int slot[8] = {0, 2, 1, 3, 4, 6, 5, 7};
  for (int64_t c = 0; c < nb * 8; ++c) {
    const float* xb = x + c * 32;
    const Q32 q = quant32(xb);
    int8_t* dst = xq + (c / 8) * 256 + slot[c % 8] * 32;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), q.q0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16), q.q1);
    xd8[c] = q.d;
    xs8[c] = q.d * static_cast<float>(q.s0 + q.s1);
  }
  return {xq, xd8, xs8};
}

template <int R>
static inline void q4k_rows1(const X1K& x, int64_t nb, const uint8_t* w, size_t rb,
                             const int64_t* rows, size_t pf, float* y) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i ix0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
  const __m512i ix1 = _mm512_setr_epi32(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m512i ix2 = _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6);
  const __m512i ix3 = _mm512_setr_epi32(5, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7);
  __m512 acc[R];
  __m256 macc[R];
  const uint8_t* wr[R];
  for (int r = 0; r < R; ++r) {
    acc[r] = _mm512_setzero_ps();
    macc[r] = _mm256_setzero_ps();
    wr[r] = w + static_cast<size_t>(rows[r]) * rb;
  }
  for (int64_t b = 0; b < nb; ++b) {
    const int8_t* xb = x.xq + b * 256;
    const __m512i x0 = _mm512_loadu_si512(xb), x1 = _mm512_loadu_si512(xb + 64);
    const __m512i x2 = _mm512_loadu_si512(xb + 128), x3 = _mm512_loadu_si512(xb + 192);
    const __m256 xd = _mm256_loadu_ps(x.xd8 + b * 8), xs = _mm256_loadu_ps(x.xs8 + b * 8);
    for (int r = 0; r < R; ++r) {
      const uint8_t* blk = wr[r] + b * 144;
      const char* pfp = reinterpret_cast<const char*>(blk) + pf;
      _mm_prefetch(pfp, _MM_HINT_T0);
      _mm_prefetch(pfp + 64, _MM_HINT_T0);
      _mm_prefetch(pfp + 128, _MM_HINT_T0);
      const __m512i q0 = _mm512_loadu_si512(blk + 16), q1 = _mm512_loadu_si512(blk + 80);
      const __m512i z = _mm512_setzero_si512();
      const __m512i p0 = _mm512_dpbusd_epi32(z, _mm512_and_si512(q0, m4), x0);
      const __m512i p1 = _mm512_dpbusd_epi32(z, _mm512_and_si512(_mm512_srli_epi16(q0, 4), m4), x1);
      const __m512i p2 = _mm512_dpbusd_epi32(z, _mm512_and_si512(q1, m4), x2);
      const __m512i p3 = _mm512_dpbusd_epi32(z, _mm512_and_si512(_mm512_srli_epi16(q1, 4), m4), x3);
      uint32_t u0, u1, u2;
      __builtin_memcpy(&u0, blk + 4, 4);
      __builtin_memcpy(&u1, blk + 8, 4);
      __builtin_memcpy(&u2, blk + 12, 4);
      const uint64_t sc = (u0 & 0x3f3f3f3fu) |
                          (uint64_t{(u2 & 0x0f0f0f0fu) | (((u0 >> 6) & 0x03030303u) << 4)} << 32);
      const uint64_t mn =
          (u1 & 0x3f3f3f3fu) |
          (uint64_t{((u2 >> 4) & 0x0f0f0f0fu) | (((u1 >> 6) & 0x03030303u) << 4)} << 32);
      const __m256 scf =
          _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(sc))));
      const __m256 mnf =
          _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(mn))));
      const __m512 S =
          _mm512_castps256_ps512(_mm256_mul_ps(scf, _mm256_mul_ps(xd, _mm256_set1_ps(f16s(blk)))));
      macc[r] = _mm256_fmadd_ps(_mm256_mul_ps(mnf, _mm256_set1_ps(f16s(blk + 2))), xs, macc[r]);
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), _mm512_permutexvar_ps(ix0, S), acc[r]);
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), _mm512_permutexvar_ps(ix1, S), acc[r]);
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p2), _mm512_permutexvar_ps(ix2, S), acc[r]);
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p3), _mm512_permutexvar_ps(ix3, S), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) y[rows[r]] = _mm512_reduce_add_ps(acc[r]) - hsum8f(macc[r]);
}

static void q4k_matvec(const float* x, int64_t K, const Matrix& w, int64_t n0, int64_t n1,
                       float* y) {
  const X1K xp = x1k_prep(x, K);
  const int64_t nb = K / 256;
  const size_t rb = w.row_bytes;
  decode_rows<QM_R>(
      n0, n1, rb,
      [&](const int64_t* rows, size_t pf) { q4k_rows1<QM_R>(xp, nb, w.data, rb, rows, pf, y); },
      [&](const int64_t* rows, size_t pf) { q4k_rows1<1>(xp, nb, w.data, rb, rows, pf, y); });
}

// ---------------------------------------------------------------- Q6_K decode (M = 1)
// Per 256-value block and row, per 128-value half: one 512-bit load of ql (64 bytes) gives the
// low 4 bits of values 0-63 (low nibbles) and 64-127 (high nibbles) of the half in natural
// order; qh (32 bytes) widened to [qh, qh >> 2] gives their top 2 bits with one shift and one
// mask each. Two vpdpbusd on the unsigned 6-bit values against the natural-order activation;
// the -32 offset is applied once per block through the 16-value activation sums. Lanes 4g..4g+3
// of each product belong to the 16-value group g, whose int8 scale is ggml's scales[g].
struct X6 {
  const int8_t* xq;   // [nb * 256] natural order
  const float* xd16;  // [nb * 16] activation scale of each 16-value group (of its 32 block)
  const float* xs16;  // [nb * 16] scale * sum of the int8 values of each 16-value group
};

static X6 x6_prep(const float* x, int64_t K) {
  const int64_t nb = K / 256;
  float* buf = thread_scratch(2, static_cast<size_t>(nb * 32 + nb * 64 + 16));
  float* xd16 = buf;
  float* xs16 = buf + nb * 16;
  int8_t* xq = reinterpret_cast<int8_t*>(buf + nb * 32);
  for (int64_t c = 0; c < nb * 8; ++c) {
    const Q32 q = quant32(x + c * 32);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + c * 32), q.q0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + c * 32 + 16), q.q1);
    xd16[2 * c] = xd16[2 * c + 1] = q.d;
    xs16[2 * c] = q.d * static_cast<float>(q.s0);
    xs16[2 * c + 1] = q.d * static_cast<float>(q.s1);
  }
  return {xq, xd16, xs16};
}

template <int R>
static inline void q6k_rows(const X6& x, int64_t nb, const uint8_t* w, size_t rb,
                            const int64_t* rows, size_t pf, float* y) {
  constexpr int bsz = 210;
  const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
  const __m512i z = _mm512_setzero_si512();
  // group index of each lane, for the four 64-value products of a block
  const __m512i gi0 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const __m512i gi[4] = {gi0, _mm512_add_epi32(gi0, _mm512_set1_epi32(4)),
                         _mm512_add_epi32(gi0, _mm512_set1_epi32(8)),
                         _mm512_add_epi32(gi0, _mm512_set1_epi32(12))};
  __m512 acc[R], macc[R];
  const uint8_t* wr[R];
  for (int r = 0; r < R; ++r) {
    acc[r] = _mm512_setzero_ps();
    macc[r] = _mm512_setzero_ps();
    wr[r] = w + static_cast<size_t>(rows[r]) * rb;
  }
  for (int64_t b = 0; b < nb; ++b) {
    const int8_t* xb = x.xq + b * 256;
    __m512i xv[4];
    for (int i = 0; i < 4; ++i) xv[i] = _mm512_loadu_si512(xb + 64 * i);
    const __m512 xd = _mm512_loadu_ps(x.xd16 + b * 16), xs = _mm512_loadu_ps(x.xs16 + b * 16);
    for (int r = 0; r < R; ++r) {
      const uint8_t* blk = wr[r] + b * bsz;
      const char* pfp = reinterpret_cast<const char*>(blk) + pf;
      _mm_prefetch(pfp, _MM_HINT_T0);
      _mm_prefetch(pfp + 64, _MM_HINT_T0);
      _mm_prefetch(pfp + 128, _MM_HINT_T0);
      _mm_prefetch(pfp + bsz - 1, _MM_HINT_T0);
      // group scales x d (weights) and x the activation scales
      const __m512 S = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(
                                         reinterpret_cast<const __m128i*>(blk + 192)))),
                                     _mm512_set1_ps(f16s(blk + 208)));
      const __m512 SX = _mm512_mul_ps(S, xd);
      macc[r] = _mm512_fmadd_ps(S, xs, macc[r]);
      for (int h = 0; h < 2; ++h) {
        const __m512i ql = _mm512_loadu_si512(blk + 64 * h);
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h));
        const __m512i qh2 =
            _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
        const __m512i u0 = _mm512_or_si512(_mm512_and_si512(ql, m4),
                                           _mm512_and_si512(_mm512_slli_epi16(qh2, 4), m30));
        const __m512i u1 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                           _mm512_and_si512(qh2, m30));
        const __m512i p0 = _mm512_dpbusd_epi32(z, u0, xv[2 * h]);
        const __m512i p1 = _mm512_dpbusd_epi32(z, u1, xv[2 * h + 1]);
        acc[r] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), _mm512_permutexvar_ps(gi[2 * h], SX), acc[r]);
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), _mm512_permutexvar_ps(gi[2 * h + 1], SX),
                                 acc[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    y[rows[r]] = _mm512_reduce_add_ps(acc[r]) - 32.0f * _mm512_reduce_add_ps(macc[r]);
}

static void q6k_matvec(const float* x, int64_t K, const Matrix& w, int64_t n0, int64_t n1,
                       float* y) {
  const X6 xp = x6_prep(x, K);
  const int64_t nb = K / 256;
  const size_t rb = w.row_bytes;
  decode_rows<QM_R>(
      n0, n1, rb,
      [&](const int64_t* rows, size_t pf) { q6k_rows<QM_R>(xp, nb, w.data, rb, rows, pf, y); },
      [&](const int64_t* rows, size_t pf) { q6k_rows<1>(xp, nb, w.data, rb, rows, pf, y); });
}
#endif  // OHM_SIMD_W512

// f32/f16/bf16 entry: the batched GEMM for M >= FG_MIN_ROWS (AVX-512), else row tiles.
template <WF T>
static void mm_floatb(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0, int64_t n1,
                      float* y, int64_t ldy, float* scratch) {
#if OHM_SIMD_W512
  if (M >= FG_MIN_ROWS) return fg_gemm<T>(x, M, K, w, n0, n1, y, ldy);
#endif
  mm_float<T>(x, M, K, w, n0, n1, y, ldy, scratch);
}

#if !OHM_SIMD_W512
// ---------------------------------------------------------------- Q4_0 / Q8_0 decode, AVX2 (M = 1)
// Eight blocks per step and row: per block one vpmaddubsw + vpmaddwd against the int8
// activation (Q4_0: one 16-byte load unpacked to 32 nibbles; Q8_0: |w| against the activation
// with w's signs). The eight 8-lane partial sums reduce to one vector of block sums (six vphaddd
// and a lane swap), from which Q4_0's -8 offset (8 x the activation block sums) is subtracted;
// then one f32 scale multiply per eight blocks, the eight f16 block scales coming from one
// gather. Blocks past the last group of eight run one at a time.
template <bool Q8, int R>
static inline void q32_rows8(const ActQ& a, int64_t nb, const uint8_t* w, size_t rb,
                             const int64_t* rows, size_t pf, float* y) {
  constexpr int bsz = Q8 ? 34 : 18;
  const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  const __m256i gidx =
      _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(bsz));
  const __m256i lo16 = _mm256_set1_epi32(0xFFFF);
  __m256 acc[R];
  const uint8_t* wr[R];
  for (int r = 0; r < R; ++r) {
    acc[r] = _mm256_setzero_ps();
    wr[r] = w + static_cast<size_t>(rows[r]) * rb;
  }
  // one block: 8 int32 partial sums of its 32 products (Q4_0 without the offset)
  const auto block = [&](const uint8_t* blk, const int8_t* xq) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq));
    if constexpr (Q8) {
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
      return _mm256_madd_epi16(
          _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv)), ones);
    } else {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      const __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4);
      return _mm256_madd_epi16(_mm256_maddubs_epi16(u, xv), ones);
    }
  };
  int64_t g = 0;
  for (; g + 8 <= nb; g += 8) {
    const __m256 xd = _mm256_loadu_ps(a.d + g);
    // Q4_0: 8 x the int8 sum of each activation block (from the 16-value sums)
    const __m256i sx = _mm256_slli_epi32(
        _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.s16 + 2 * g)),
                          ones),
        3);
    for (int r = 0; r < R; ++r) {
      const uint8_t* b0 = wr[r] + g * bsz;
      for (int o = 0; o < 8 * bsz; o += 64)
        _mm_prefetch(reinterpret_cast<const char*>(b0) + pf + o, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b0) + pf + 8 * bsz - 1, _MM_HINT_T0);
      __m256i p[8];
      for (int k = 0; k < 8; ++k) p[k] = block(b0 + k * bsz, a.qs + (g + k) * 32);
      const __m256i h0 =
          _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
      const __m256i h1 =
          _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
      __m256i sums = _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20),
                                      _mm256_permute2x128_si256(h0, h1, 0x31));
      if constexpr (!Q8) sums = _mm256_sub_epi32(sums, sx);
      const __m256i hs =
          _mm256_and_si256(_mm256_i32gather_epi32(reinterpret_cast<const int*>(b0), gidx, 1), lo16);
      const __m256 wd = _mm256_cvtph_ps(
          _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(hs, hs), 0x08)));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(wd, xd), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    float s = hsum8f(acc[r]);
    for (int64_t b = g; b < nb; ++b) {
      const uint8_t* blk = wr[r] + b * bsz;
      int32_t dot = hsum8i(block(blk, a.qs + b * 32));
      if constexpr (!Q8) dot -= 8 * (a.s16[2 * b] + a.s16[2 * b + 1]);
      s += static_cast<float>(dot) * (f16s(blk) * a.d[b]);
    }
    y[rows[r]] = s;
  }
}
#endif

template <QK T>
static void mm_quant(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0, int64_t n1,
                     float* y, int64_t ldy, float*) {
#if OHM_SIMD_W512
  if constexpr (T == QK::Q4_0 || T == QK::Q8_0)
    if (M == 1) return q32_matvec<T == QK::Q8_0>(x, K, w, n0, n1, y);
  if constexpr (T == QK::Q4_K)
    if (M == 1) return q4k_matvec(x, K, w, n0, n1, y);
  if constexpr (T == QK::Q6_K)
    if (M == 1) return q6k_matvec(x, K, w, n0, n1, y);
  if (M >= QGEMM_MIN_ROWS) {
    const QActs a = qacts_in(thread_scratch(2, qacts_floats(M, K)), M, K);
    qg_prepare(x, 0, M, a);
    qg_gemm<T>(a, w, n0, n1, y, ldy);
    return;
  }
#endif
  constexpr int B = (T == QK::Q4_0 || T == QK::Q8_0) ? 32 : 256;
  const ActQ a = act_quantize(x, M, K, B);
#if !OHM_SIMD_W512
  if constexpr (T == QK::Q4_0 || T == QK::Q8_0)
    if (M == 1) {
      constexpr bool Q8 = T == QK::Q8_0;
      const int64_t nb = K / 32;
      const size_t rb = w.row_bytes;
      decode_rows<4>(
          n0, n1, rb,
          [&](const int64_t* rows, size_t pf) { q32_rows8<Q8, 4>(a, nb, w.data, rb, rows, pf, y); },
          [&](const int64_t* rows, size_t pf) {
            q32_rows8<Q8, 1>(a, nb, w.data, rb, rows, pf, y);
          });
      return;
    }
#endif
  if (M == 1) {  // one sequential stream of rows, then the shared row queue
    const auto row = [&](const int64_t* rows, size_t) {
      const uint8_t* wr = w.data + rows[0] * w.row_bytes;
      // the row after next, whole (the hardware prefetchers alone leave the scale loads
      // waiting on DRAM)
      for (size_t o = 0; o < w.row_bytes; o += 64)
        _mm_prefetch(reinterpret_cast<const char*>(wr) + 2 * w.row_bytes + o, _MM_HINT_T0);
      qtile<T, 1>(a, K, wr, y, ldy, rows[0]);
    };
    decode_rows<1>(n0, n1, w.row_bytes, row, row);
    return;
  }
  const int64_t band = 8;
  for (int64_t b0 = n0; b0 < n1; b0 += band) {
    const int64_t b1 = imin(n1, b0 + band);
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) {
      const ActQ am{a.qs + m * K, a.d + m * K / B, a.s16 + m * K / 16};
      for (int64_t n = b0; n < b1; ++n)
        qtile<T, 4>(am, K, w.data + n * w.row_bytes, y + m * ldy, ldy, n);
    }
    for (; m < M; ++m) {
      const ActQ am{a.qs + m * K, a.d + m * K / B, a.s16 + m * K / 16};
      for (int64_t n = b0; n < b1; ++n)
        qtile<T, 1>(am, K, w.data + n * w.row_bytes, y + m * ldy, ldy, n);
    }
  }
}

// ---------------------------------------------------------------- elementwise ops
static float s_dot(const float* a, const float* b, int64_t n) {
  vf a0 = vzero(), a1 = vzero();
  int64_t i = 0;
  for (; i + 2 * VL <= n; i += 2 * VL) {
    a0 = vfma(vload(a + i), vload(b + i), a0);
    a1 = vfma(vload(a + i + VL), vload(b + i + VL), a1);
  }
  for (; i + VL <= n; i += VL) a0 = vfma(vload(a + i), vload(b + i), a0);
  float s = vhsum(vadd(a0, a1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

static void s_axpy(float s, const float* x, float* y, int64_t n) {
  const vf sv = vset1(s);
  int64_t i = 0;
  for (; i + VL <= n; i += VL) vstore(y + i, vfma(sv, vload(x + i), vload(y + i)));
  for (; i < n; ++i) y[i] += s * x[i];
}

static void s_add(const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + VL <= n; i += VL) vstore(y + i, vadd(vload(a + i), vload(b + i)));
  for (; i < n; ++i) y[i] = a[i] + b[i];
}

static void s_mul(const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + VL <= n; i += VL) vstore(y + i, vmul(vload(a + i), vload(b + i)));
  for (; i < n; ++i) y[i] = a[i] * b[i];
}

static void s_rms_norm(const float* x, const float* w, float w_offset, float eps, float* y,
                       int64_t n) {
  // Sum of squares in double (as the reference), 4 lanes at a time.
  __m256d acc = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
    acc = _mm256_fmadd_pd(v, v, acc);
  }
  alignas(32) double t[4];
  _mm256_store_pd(t, acc);
  double ss = (t[0] + t[1]) + (t[2] + t[3]);
  for (; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float var = static_cast<float>(ss / static_cast<double>(n));
  const float inv = 1.0f / __builtin_sqrtf(var + eps);
  const vf iv = vset1(inv), off = vset1(w_offset);
  i = 0;
  if (w) {
    for (; i + VL <= n; i += VL)
      vstore(y + i, vmul(vmul(vload(x + i), iv), vadd(vload(w + i), off)));
    for (; i < n; ++i) y[i] = (x[i] * inv) * (w[i] + w_offset);
  } else {
    for (; i + VL <= n; i += VL) vstore(y + i, vmul(vload(x + i), iv));
    for (; i < n; ++i) y[i] = x[i] * inv;
  }
}

static void s_softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float mx = x[0];
  int64_t i = 0;
  if (n >= VL) {
    vf m = vload(x);
    for (i = VL; i + VL <= n; i += VL) m = vmax(m, vload(x + i));
    mx = vhmax(m);
  }
  for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  const vf mv = vset1(mx);
  vf sv = vzero();
  for (i = 0; i + VL <= n; i += VL) {
    const vf e = vexp(vsub(vload(x + i), mv));
    vstore(x + i, e);
    sv = vadd(sv, e);
  }
  double sum = vhsum(sv);
  for (; i < n; ++i) {
    x[i] = __builtin_expf(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  const vf iv = vset1(inv);
  for (i = 0; i + VL <= n; i += VL) vstore(x + i, vmul(vload(x + i), iv));
  for (; i < n; ++i) x[i] *= inv;
}

static void s_silu(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  const vf one = vset1(1.0f), zero = vzero();
  for (; i + VL <= n; i += VL) {
    const vf v = vload(x + i);
    vstore(y + i, vdiv(v, vadd(one, vexp(vsub(zero, v)))));
  }
  for (; i < n; ++i) y[i] = x[i] / (1.0f + __builtin_expf(-x[i]));
}

static void s_rope(float* x, int64_t n_head, int64_t head_dim, int64_t rot_dim, const float* cos,
                   const float* sin) {
  const int64_t half = rot_dim / 2;
  for (int64_t h = 0; h < n_head; ++h) {
    float* v = x + h * head_dim;
    int64_t i = 0;
    for (; i + VL <= half; i += VL) {
      const vf x1 = vload(v + i), x2 = vload(v + i + half);
      const vf c = vload(cos + i), s = vload(sin + i);
      vstore(v + i, vsub(vmul(x1, c), vmul(x2, s)));
      vstore(v + i + half, vadd(vmul(x2, c), vmul(x1, s)));
    }
    for (; i < half; ++i) {
      const float x1 = v[i], x2 = v[i + half];
      v[i] = x1 * cos[i] - x2 * sin[i];
      v[i + half] = x2 * cos[i] + x1 * sin[i];
    }
  }
}

// ---------------------------------------------------------------- attention, one query
// q and the output accumulators stay in registers (head_dim = NV vectors); the softmax runs
// vectorized over the score row. The generic version (other head sizes) uses s_dot/s_axpy.
static void attn_softmax_row(const AttnQuery& a, float* scores, float mx, float& inv) {
  float* sc = scores + a.lo;
  const int64_t n = a.hi - a.lo + 1;
  const vf mv = vset1(mx);
  vf sv = vzero();
  int64_t i = 0;
  for (; i + VL <= n; i += VL) {
    const vf e = vexp(vsub(vload(sc + i), mv));
    vstore(sc + i, e);
    sv = vadd(sv, e);
  }
  double sum = vhsum(sv);
  for (; i < n; ++i) {
    sc[i] = __builtin_expf(sc[i] - mx);
    sum += sc[i];
  }
  if (a.kv_valid)  // masked keys were set to -inf; vexp clamps, so zero them exactly
    for (int64_t j = a.lo; j <= a.hi; ++j)
      if (!a.kv_valid[j]) {
        sum -= scores[j];
        scores[j] = 0.0f;
      }
  inv = static_cast<float>(1.0 / sum);
}

template <int NV>
static void attn_query_regs(const AttnQuery& a, float* scores, float* out) {
  constexpr float ninf = -__builtin_inff();
  vf qv[NV];
  for (int i = 0; i < NV; ++i) qv[i] = vload(a.q + i * VL);
  float mx = ninf;
  for (int64_t j = a.lo; j <= a.hi; ++j) {
    if (a.kv_valid && !a.kv_valid[j]) {
      scores[j] = ninf;
      continue;
    }
    const float* kj = a.k + j * a.kv_stride;
    vf acc = vmul(qv[0], vload(kj));
    for (int i = 1; i < NV; ++i) acc = vfma(qv[i], vload(kj + i * VL), acc);
    float s = vhsum(acc);
    if (a.alibi) s += a.alibi_slope * static_cast<float>(a.kv_pos ? a.kv_pos[j] : j);
    s *= a.scale;
    scores[j] = s;
    mx = s > mx ? s : mx;
  }
  vf o[NV];
  for (int i = 0; i < NV; ++i) o[i] = vzero();
  if (mx != ninf) {
    float inv;
    attn_softmax_row(a, scores, mx, inv);
    for (int64_t j = a.lo; j <= a.hi; ++j) {
      if (a.kv_valid && !a.kv_valid[j]) continue;
      const vf p = vset1(scores[j] * inv);
      const float* vj = a.v + j * a.kv_stride;
      for (int i = 0; i < NV; ++i) o[i] = vfma(p, vload(vj + i * VL), o[i]);
    }
  }
  for (int i = 0; i < NV; ++i) vstore(out + i * VL, o[i]);
}

static void attn_query_generic(const AttnQuery& a, float* scores, float* out) {
  constexpr float ninf = -__builtin_inff();
  const int64_t hd = a.head_dim;
  for (int64_t i = 0; i < hd; ++i) out[i] = 0.0f;
  float mx = ninf;
  for (int64_t j = a.lo; j <= a.hi; ++j) {
    if (a.kv_valid && !a.kv_valid[j]) {
      scores[j] = ninf;
      continue;
    }
    float s = s_dot(a.q, a.k + j * a.kv_stride, hd);
    if (a.alibi) s += a.alibi_slope * static_cast<float>(a.kv_pos ? a.kv_pos[j] : j);
    s *= a.scale;
    scores[j] = s;
    mx = s > mx ? s : mx;
  }
  if (mx == ninf) return;
  float inv;
  attn_softmax_row(a, scores, mx, inv);
  for (int64_t j = a.lo; j <= a.hi; ++j) {
    if (a.kv_valid && !a.kv_valid[j]) continue;
    s_axpy(scores[j] * inv, a.v + j * a.kv_stride, out, hd);
  }
}

static void s_attn_query(const AttnQuery& a, float* scores, float* out) {
  if (a.head_dim % VL == 0) switch (a.head_dim / VL) {
      case 2:
        return attn_query_regs<2>(a, scores, out);
      case 4:
        return attn_query_regs<4>(a, scores, out);
      case 6:
        return attn_query_regs<6>(a, scores, out);
      case 8:
        return attn_query_regs<8>(a, scores, out);
      default:
        break;
    }
  attn_query_generic(a, scores, out);
}

// The matmul / qgemm entries of a block type's SIMD family (QuantTraits::simd).
static KernelTable::MatmulFn simd_matmul(SimdKernel k) {
  switch (k) {
    case SimdKernel::Q4_0:
      return &mm_quant<QK::Q4_0>;
    case SimdKernel::Q8_0:
      return &mm_quant<QK::Q8_0>;
    case SimdKernel::Q4_K:
      return &mm_quant<QK::Q4_K>;
    case SimdKernel::Q6_K:
      return &mm_quant<QK::Q6_K>;
    case SimdKernel::None:
      break;
  }
  return nullptr;
}
#if OHM_SIMD_W512
static KernelTable::QGemmFn simd_qgemm(SimdKernel k) {
  switch (k) {
    case SimdKernel::Q4_0:
      return &qg_gemm<QK::Q4_0>;
    case SimdKernel::Q8_0:
      return &qg_gemm<QK::Q8_0>;
    case SimdKernel::Q4_K:
      return &qg_gemm<QK::Q4_K>;
    case SimdKernel::Q6_K:
      return &qg_gemm<QK::Q6_K>;
    case SimdKernel::None:
      break;
  }
  return nullptr;
}
#endif

// Fills the entries this ISA accelerates (the rest stay as copied from the reference). Every
// matmul entry's M = 1 path runs through decode_rows (matvec_row_queue). The block types come
// from their QuantTraits rows (kQuantTypes is read as data: no inline function of another header
// is called here, see the ODR rule above).
static void fill_table(KernelTable& t) {
  t.matmul[static_cast<int>(DType::F32)] = &mm_floatb<WF::F32>;
  t.matmul[static_cast<int>(DType::F16)] = &mm_floatb<WF::F16>;
  t.matmul[static_cast<int>(DType::BF16)] = &mm_floatb<WF::BF16>;
  static constexpr DType kFloat[] = {DType::F32, DType::F16, DType::BF16};
  for (DType d : kFloat) t.matvec_row_queue[static_cast<int>(d)] = true;
#if OHM_SIMD_W512
  t.qgemm_min_rows = QGEMM_MIN_ROWS;
  t.qacts_prepare = &qg_prepare;
#endif
  for (const QuantTraits& q : kQuantTypes) {
    const auto d = static_cast<int>(q.dtype);
    if (const auto mm = simd_matmul(q.simd)) {
      t.matmul[d] = mm;
      t.matvec_row_queue[d] = true;
    }
#if OHM_SIMD_W512
    t.qgemm[d] = simd_qgemm(q.simd);
#endif
  }
  t.dot = &s_dot;
  t.axpy = &s_axpy;
  t.add = &s_add;
  t.mul = &s_mul;
  t.rms_norm = &s_rms_norm;
  t.softmax = &s_softmax;
  t.silu = &s_silu;
  t.rope = &s_rope;
  t.attn_query = &s_attn_query;
}
