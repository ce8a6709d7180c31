// The batched block-quantized GEMM (AVX-512: prompt processing; KernelTable::qgemm).
// Part of simd_impl.h: included once per ISA translation unit inside an anonymous namespace
// (see the ODR rule and the numerics there).
#pragma once

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

// Fine activations (Matrix::fine_acts): the two int8 digits of 32 activations as the AVX2
// act_quantize_fine defines them (t = x * 127 / amax, q1 = round(t), q2 = round(254 t) - 254 q1,
// d = amax / 127 / 254, x ~ d * (254 q1 + q2)), and s = sum(254 q1 + q2).
struct Q32F {
  __m128i q0, q1, r0, r1;
  float d;
  int s;
};
static inline Q32F quant32_fine(const float* xb) {
  const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
  const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
  const __m512 t0 = _mm512_mul_ps(v0, _mm512_set1_ps(id)),
               t1 = _mm512_mul_ps(v1, _mm512_set1_ps(id));
  const __m512i i0 = _mm512_cvtps_epi32(t0), i1 = _mm512_cvtps_epi32(t1);
  const __m512i f0 = _mm512_cvtps_epi32(_mm512_mul_ps(t0, _mm512_set1_ps(254.0f)));
  const __m512i f1 = _mm512_cvtps_epi32(_mm512_mul_ps(t1, _mm512_set1_ps(254.0f)));
  const __m512i c254 = _mm512_set1_epi32(254);
  const __m512i j0 = _mm512_sub_epi32(f0, _mm512_mullo_epi32(i0, c254));
  const __m512i j1 = _mm512_sub_epi32(f1, _mm512_mullo_epi32(i1, c254));
  return {_mm512_cvtsepi32_epi8(i0), _mm512_cvtsepi32_epi8(i1),
          _mm512_cvtsepi32_epi8(j0), _mm512_cvtsepi32_epi8(j1),
          amax / 127.0f / 254.0f,    _mm512_reduce_add_epi32(_mm512_add_epi32(f0, f1))};
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
      a.o32[ci] = -8 * (q.s0 + q.s1);
      a.sd16[2 * ci] = q.d * static_cast<float>(q.s0);
      a.sd16[2 * ci + 1] = q.d * static_cast<float>(q.s1);
    }
}

// qg_prepare for fine activations (Q4_0 / Q8_0 only: no sd16): both digits (quant32_fine).
static void qg_prepare_fine(const float* x, int64_t m0, int64_t m1, const QActs& a) {
  const int64_t K = a.K, nc = K / 32;
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t c = 0; c < nc; ++c) {
      const Q32F q = quant32_fine(x + m * K + c * 32);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(a.qs + m * K + c * 32), q.q0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(a.qs + m * K + c * 32 + 16), q.q1);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(a.qs2 + m * K + c * 32), q.r0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(a.qs2 + m * K + c * 32 + 16), q.r1);
      const int64_t ci = m * nc + c;
      a.d32[ci] = q.d;
      a.sd32[ci] = q.d * static_cast<float>(q.s);
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

// The weight offset of T's unsigned panel bytes in the integer sums (qg_tile's ZS): Q4_0 and
// Q8_0 hold q + 8 and q + 128 with one offset per chunk, so each chunk's int32 sum starts from
// -8 x (or -128 x, o32 << 4) the sum of its int8 activations (QActs::o32) and needs no f32 offset
// term; -1: the f32 term o * xs (the K-quants' per-sub-block minimums; fine activations).
template <QK T, bool F>
constexpr int qg_int_offset() {
  return F ? -1 : T == QK::Q4_0 ? 0 : T == QK::Q8_0 ? 4 : -1;
}

// y[m, n..n+nr) (+)= panel x activations rows [m, m+MR), chunks [c0, c1). F (fine activations,
// NS = 1): both digit streams against each panel load, is = 254 is1 + is2 per chunk (exact).
// ZS >= 0: the weight offset in int32 (qg_int_offset).
template <int MR, int NS, bool F = false, int ZS = -1>
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
      __m512i is[MR][2], is2[MR][2];
      for (int i = 0; i < MR; ++i) {
        is[i][0] = is[i][1] = is2[i][0] = is2[i][1] = _mm512_setzero_si512();
        if constexpr (ZS >= 0)
          is[i][0] = is[i][1] = _mm512_slli_epi32(_mm512_set1_epi32(a.o32[(m + i) * nc + c]), ZS);
      }
      for (int q = h * (8 / NS); q < (h + 1) * (8 / NS); ++q) {
        const __m512i w0 = _mm512_loadu_si512(pc + q * 128);
        const __m512i w1 = _mm512_loadu_si512(pc + q * 128 + 64);
        for (int i = 0; i < MR; ++i) {
          int32_t xv;
          __builtin_memcpy(&xv, xq + i * K + c * 32 + q * 4, 4);
          const __m512i xb = _mm512_set1_epi32(xv);
          is[i][0] = _mm512_dpbusd_epi32(is[i][0], w0, xb);
          is[i][1] = _mm512_dpbusd_epi32(is[i][1], w1, xb);
          if constexpr (F) {
            __builtin_memcpy(&xv, a.qs2 + (m + i) * K + c * 32 + q * 4, 4);
            const __m512i yb = _mm512_set1_epi32(xv);
            is2[i][0] = _mm512_dpbusd_epi32(is2[i][0], w0, yb);
            is2[i][1] = _mm512_dpbusd_epi32(is2[i][1], w1, yb);
          }
        }
      }
      if constexpr (F)
        for (int i = 0; i < MR; ++i)
          for (int k = 0; k < 2; ++k)
            is[i][k] =
                _mm512_add_epi32(_mm512_mullo_epi32(is[i][k], _mm512_set1_epi32(254)), is2[i][k]);
      const float* sc = ps + ((c - c0) * NS + h) * 32;
      const float* oc = po + ((c - c0) * NS + h) * 32;
      const __m512 s0 = _mm512_loadu_ps(sc), s1 = _mm512_loadu_ps(sc + 16);
      const __m512 o0 = _mm512_loadu_ps(oc), o1 = _mm512_loadu_ps(oc + 16);
      for (int i = 0; i < MR; ++i) {
        const int64_t ci = (m + i) * nc + c;
        const __m512 xd = _mm512_set1_ps(a.d32[ci]);
        acc[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[i][0]), _mm512_mul_ps(s0, xd), acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[i][1]), _mm512_mul_ps(s1, xd), acc[i][1]);
        if constexpr (ZS < 0) {
          const __m512 xs = _mm512_set1_ps(NS == 1 ? a.sd32[ci] : a.sd16[2 * ci + h]);
          acc[i][0] = _mm512_fmadd_ps(o0, xs, acc[i][0]);
          acc[i][1] = _mm512_fmadd_ps(o1, xs, acc[i][1]);
        }
      }
    }
  }
  tile_store<MR>(acc, y + m * ldy + n, ldy, k0, k1);
}

// The panel loop of the batched block-quant GEMMs (qg_gemm; the AMX qgemm, simd_amx.h): for each
// 32-feature panel [n, n + 32) of [n0, n1) (store masks k0, k1) and each slice [c0, c1) of QG_KCC
// chunks of 32 values, qg_pack packs the panel into this thread's buffers (thread_scratch slot 3:
// pw, QG_KCC x 1024 bytes; its scales ps and offsets po, QG_KCC x NS x 32 floats each), then
// body(n, k0, k1, c0, c1, pw, ps, po) runs the activation rows over it.
template <QK T, class Body>
static inline void qg_panels(const Matrix& w, int64_t n0, int64_t n1, int64_t nc,
                             const Body& body) {
  constexpr int NS = T == QK::Q6_K ? 2 : 1;
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
      body(n, k0, k1, c0, c1, pw, static_cast<const float*>(ps), static_cast<const float*>(po));
    }
  }
}

template <QK T, bool F = false>
static void qg_gemm(const QActs& a, const Matrix& w, int64_t n0, int64_t n1, float* y,
                    int64_t ldy) {
  constexpr int NS = T == QK::Q6_K ? 2 : 1;
  constexpr int MR = F ? 4 : 6;  // F: twice the int32 accumulators
  const int64_t M = a.M, nc = a.K / 32;
  qg_panels<T>(w, n0, n1, nc,
               [&](int64_t n, __mmask16 k0, __mmask16 k1, int64_t c0, int64_t c1, const uint8_t* pw,
                   const float* ps, const float* po) {
                 const bool accum = c0 > 0;
                 row_tiles<MR>(M, [&]<int R>(int64_t m) {
                   qg_tile<R, NS, F, qg_int_offset<T, F>()>(a, m, c0, c1, pw, ps, po, y, ldy, n, k0,
                                                            k1, accum);
                 });
               });
}
#endif  // OHM_SIMD_W512
