// Q4_0 / Q8_0 decode (M = 1): AVX-512 row groups and the AVX2 eight-block rows.
// Part of simd_impl.h: included once per ISA translation unit inside an anonymous namespace
// (see the ODR rule and the numerics there).
#pragma once

#if OHM_SIMD_W512
// ---------------------------------------------------------------- Q8_0 / Q4_0 decode (M = 1)
// Rows per step (decode_rows): R independent accumulators and memory streams.
constexpr int QM_R = 4;

// Q8_0: two blocks (64 weights) per 512-bit vpdpbusd. The weights are made unsigned (x ^ 0x80)
// and per pair corr = -128 * sum(xq) of each block, in one lane of its half, is the int32 start
// value; xd, the activation scales, are spread over the lanes of each block. An odd last block
// runs alone (tail).
// Fine activations (F; quant32_fine): the second digits in xq2 / tq2 in the same layout, corr
// = -128 * sum(254 q1 + q2), and per block S = 254 dot(u, q1) + dot(u, q2) + corr (exact int32).
struct X1 {
  const int8_t* xq;     // [np * 64]
  const int32_t* corr;  // [np * 16]
  const float* xdb;     // [np * 2] activation scale per block
  const int8_t* tq;     // [32] tail block
  int32_t tcorr;
  float td;
  const int8_t* xq2;  // F: [np * 64]
  const int8_t* tq2;  // F: [32]
};

// Floats of one row's X1 (a multiple of 16, so the rows of a batch stay 64-byte apart).
template <bool F = false>
static size_t x1_floats(int64_t K) {
  const int64_t nb = K / 32, np = nb / 2, nt = F ? 2 : 1;
  return static_cast<size_t>((np * 16 * 2 + nt * (np * 64 + 32) / 4 + 16 + 15) / 16 * 16);
}

template <bool F = false>
static X1 x1_prep(float* buf, const float* x, int64_t K) {
  const int64_t nb = K / 32, np = nb / 2;
  float* xdb = buf;
  int32_t* corr = reinterpret_cast<int32_t*>(buf + np * 16);
  int8_t* xq = reinterpret_cast<int8_t*>(buf + np * 32);
  int8_t* tq = xq + np * 64;
  int8_t* xq2 = F ? tq + 32 : nullptr;
  int8_t* tq2 = F ? xq2 + np * 64 : nullptr;
  X1 r{xq, corr, xdb, tq, 0, 0.0f, xq2, tq2};
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * 32;
    __m128i q0, q1, r0 = _mm_setzero_si128(), r1 = _mm_setzero_si128();
    float d;
    int32_t cs;
    if constexpr (F) {
      const Q32F q = quant32_fine(xb);
      q0 = q.q0, q1 = q.q1, r0 = q.r0, r1 = q.r1, d = q.d, cs = -128 * q.s;
    } else {
      const Q32 q = quant32(xb);
      q0 = q.q0, q1 = q.q1, d = q.d, cs = -128 * (q.s0 + q.s1);
    }
    const int64_t p = b / 2, h = b % 2;
    if (p == np) {  // odd tail
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tq), q0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tq + 16), q1);
      if constexpr (F) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(tq2), r0);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(tq2 + 16), r1);
      }
      r.tcorr = cs;
      r.td = d;
      continue;
    }
    int8_t* xp = xq + p * 64;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(xp + 32 * h), q0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(xp + 32 * h + 16), q1);
    if constexpr (F) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(xq2 + p * 64 + 32 * h), r0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(xq2 + p * 64 + 32 * h + 16), r1);
    }
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

// The f16 scales of 16 consecutive blocks of bsz bytes starting at p (lanes past gm zero) as
// f32: one gather of the dwords at the block starts. The kernels multiply them by the
// activation scales xd lane by lane (the same product for every activation row count).
template <int bsz>
static inline __m512 block_scales16(const uint8_t* p, __mmask16 gm) {
  const __m512i gidx =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(bsz));
  const __m512i h = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), gm, gidx, p, 1);
  return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h));
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

// R weight rows x MT activation rows (xs[i], output y + i * ldy). Each (weight row, activation
// row) pair has its own accumulator and the same operations in the same order whatever MT is,
// so a row's result does not depend on how many rows share the call (batch invariance: the
// M > 1 entry runs this at every M, docs/serving.md). The weights of a step are unpacked once
// for all MT activation rows.
template <int R, int MT, bool F = false>
static inline void q8_rows2(const X1* xs, int64_t nb, const uint8_t* w, size_t rb,
                            const int64_t* rows, size_t pf, float* y, int64_t ldy,
                            const float* wsf = nullptr) {
  constexpr int bsz = 34;
  __m512 acc[MT][R];
  const uint8_t* wr[R];
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < MT; ++i) acc[i][r] = _mm512_setzero_ps();
    wr[r] = w + static_cast<size_t>(rows[r]) * rb;
  }
  const int64_t np = nb / 2;
  for (int64_t g0 = 0; g0 < np; g0 += 8) {
    // scales of the 16 blocks of this group; times the activation scales per activation row
    const int64_t gp = imin(8, np - g0);
    const __mmask16 gm = static_cast<__mmask16>(gp == 8 ? 0xFFFF : (1u << (2 * gp)) - 1);
    __m512 xd[MT], ws[R];
    for (int i = 0; i < MT; ++i) xd[i] = _mm512_maskz_loadu_ps(gm, xs[i].xdb + 2 * g0);
    for (int r = 0; r < R; ++r)
      ws[r] = wsf ? _mm512_maskz_loadu_ps(gm, wsf + r * nb + 2 * g0)
                  : block_scales16<bsz>(wr[r] + 2 * g0 * bsz, gm);
    for (int64_t q = 0; q < gp; ++q) {
      const int64_t p = g0 + q;
      const __m512i pidx = _mm512_load_si512(q8_pair_idx[q]);
      // this step's weights, unpacked once (unsigned: x ^ 0x80). The scales of this pair's
      // lanes: permute(ws * xd) == permute(ws) * permute(xd), lane by lane the same product.
      __m512i u[R];
      __m512 pws[R];
      for (int r = 0; r < R; ++r) {
        const uint8_t* b0 = wr[r] + 2 * p * bsz;
        _mm_prefetch(reinterpret_cast<const char*>(b0) + pf, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(b0) + pf + 64, _MM_HINT_T0);
        u[r] = _mm512_xor_si512(
            _mm512_inserti64x4(_mm512_castsi256_si512(
                                   _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + 2))),
                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + bsz + 2)),
                               1),
            _mm512_set1_epi8(static_cast<char>(0x80)));
        pws[r] = _mm512_permutexvar_ps(pidx, ws[r]);
      }
      for (int i = 0; i < MT; ++i) {
        const X1& x = xs[i];
        const __m512i xv = _mm512_loadu_si512(x.xq + p * 64);
        const __m512i cv = _mm512_loadu_si512(x.corr + p * 16);
        const __m512 pxd = _mm512_permutexvar_ps(pidx, xd[i]);
        __m512i xv2 = _mm512_setzero_si512();
        if constexpr (F) xv2 = _mm512_loadu_si512(x.xq2 + p * 64);
        for (int r = 0; r < R; ++r) {
          __m512i pr;
          if constexpr (F)
            pr = _mm512_add_epi32(
                _mm512_mullo_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u[r], xv),
                                   _mm512_set1_epi32(254)),
                _mm512_dpbusd_epi32(cv, u[r], xv2));
          else
            pr = _mm512_dpbusd_epi32(cv, u[r], xv);
          acc[i][r] =
              _mm512_fmadd_ps(_mm512_cvtepi32_ps(pr), _mm512_mul_ps(pws[r], pxd), acc[i][r]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < MT; ++i) {
      const X1& x = xs[i];
      float s = _mm512_reduce_add_ps(acc[i][r]);
      if (nb % 2) {
        const uint8_t* blk = wr[r] + (nb - 1) * bsz;
        const __m256i u =
            _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)),
                             _mm256_set1_epi8(static_cast<char>(0x80)));
        const int32_t dot = F ? 254 * block_dot32(0, u, x.tq) + block_dot32(x.tcorr, u, x.tq2)
                              : block_dot32(x.tcorr, u, x.tq);
        s += static_cast<float>(dot) * (f16s(blk) * x.td);
      }
      y[i * ldy + rows[r]] = s;
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
// F: as X1 (the second digits in xq2 / tq2, corr = -8 * sum(254 q1 + q2)).
struct X4 {
  const int8_t* xq;      // [ng * 128]
  const int32_t* corr;   // [ng * 16]: -8 * sum(xq) of block k in lane 4k
  const float* xdb;      // [nb] activation scale per block
  const int8_t* tq;      // [3 * 32] tail blocks
  const int32_t* tcorr;  // [3]
  const int8_t* xq2;     // F: [ng * 128]
  const int8_t* tq2;     // F: [3 * 32]
};

// Floats of one row's X4 (a multiple of 16).
template <bool F = false>
static size_t x4_floats(int64_t K) {
  const int64_t nb = K / 32, ng = nb / 4, nt = F ? 2 : 1;
  return static_cast<size_t>((nb + ng * 16 + 4 + nt * (ng * 128 + 96) / 4 + 16 + 15) / 16 * 16);
}

template <bool F = false>
static X4 x4_prep(float* buf, const float* x, int64_t K) {
  const int64_t nb = K / 32, ng = nb / 4;
  float* xdb = buf;
  int32_t* corr = reinterpret_cast<int32_t*>(buf + nb);
  int32_t* tcorr = corr + ng * 16;
  int8_t* xq = reinterpret_cast<int8_t*>(tcorr + 4);
  int8_t* tq = xq + ng * 128;
  int8_t* xq2 = F ? tq + 96 : nullptr;
  int8_t* tq2 = F ? xq2 + ng * 128 : nullptr;
  for (int64_t b = 0; b < nb; ++b) {
    __m128i q0, q1, r0 = _mm_setzero_si128(), r1 = _mm_setzero_si128();
    int32_t cs;
    if constexpr (F) {
      const Q32F q = quant32_fine(x + b * 32);
      q0 = q.q0, q1 = q.q1, r0 = q.r0, r1 = q.r1, xdb[b] = q.d, cs = -8 * q.s;
    } else {
      const Q32 q = quant32(x + b * 32);
      q0 = q.q0, q1 = q.q1, xdb[b] = q.d, cs = -8 * (q.s0 + q.s1);
    }
    const int64_t g = b / 4, k = b % 4;
    if (g == ng) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tq + 32 * k), q0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tq + 32 * k + 16), q1);
      if constexpr (F) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(tq2 + 32 * k), r0);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(tq2 + 32 * k + 16), r1);
      }
      tcorr[k] = cs;
      continue;
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + g * 128 + 16 * k), q0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + g * 128 + 64 + 16 * k), q1);
    if constexpr (F) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(xq2 + g * 128 + 16 * k), r0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(xq2 + g * 128 + 64 + 16 * k), r1);
    }
    int32_t* cp = corr + g * 16 + 4 * k;
    cp[0] = cs;
    cp[1] = cp[2] = cp[3] = 0;
  }
  return {xq, corr, xdb, tq, tcorr, xq2, tq2};
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

// R weight rows x MT activation rows, as q8_rows2.
template <int R, int MT, bool F = false>
static inline void q4_rows4(const X4* xs, int64_t nb, const uint8_t* w, size_t rb,
                            const int64_t* rows, size_t pf, float* y, int64_t ldy,
                            const float* wsf = nullptr) {
  constexpr int bsz = 18;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  // dwords of the load at +2 (blocks 0, 2: 0-3, 9-12) and at +20 (blocks 1, 3: 16 + 0-3, 9-12)
  const __m512i tidx = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 9, 10, 11, 12, 25, 26, 27, 28);
  constexpr __mmask16 bmask = 0x1E0F;  // the +20 load stops at the group's end
  __m512 acc[MT][R];
  const uint8_t* wr[R];
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < MT; ++i) acc[i][r] = _mm512_setzero_ps();
    wr[r] = w + static_cast<size_t>(rows[r]) * rb;
  }
  const int64_t ng = nb / 4;
  for (int64_t c0 = 0; c0 < ng; c0 += 4) {
    const int64_t gc = imin(4, ng - c0);
    const __mmask16 gm = static_cast<__mmask16>(gc == 4 ? 0xFFFF : (1u << (4 * gc)) - 1);
    __m512 xd[MT], ws[R];
    for (int i = 0; i < MT; ++i) xd[i] = _mm512_maskz_loadu_ps(gm, xs[i].xdb + 4 * c0);
    for (int r = 0; r < R; ++r)
      ws[r] = wsf ? _mm512_maskz_loadu_ps(gm, wsf + r * nb + 4 * c0)
                  : block_scales16<bsz>(wr[r] + 4 * c0 * bsz, gm);
    for (int64_t q = 0; q < gc; ++q) {
      const int64_t g = c0 + q;
      const __m512i sidx = _mm512_load_si512(q4_group_idx[q]);
      // this step's weights, unpacked once: the four blocks' low and high nibbles per row
      __m512i lo[R], hi[R];
      __m512 pws[R];  // as q8_rows2
      for (int r = 0; r < R; ++r) {
        const uint8_t* b0 = wr[r] + 4 * g * bsz;
        _mm_prefetch(reinterpret_cast<const char*>(b0) + pf, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(b0) + pf + 4 * bsz - 1, _MM_HINT_T0);
        const __m512i v = _mm512_permutex2var_epi32(_mm512_loadu_si512(b0 + 2), tidx,
                                                    _mm512_maskz_loadu_epi32(bmask, b0 + 20));
        lo[r] = _mm512_and_si512(v, m4);
        hi[r] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        pws[r] = _mm512_permutexvar_ps(sidx, ws[r]);
      }
      for (int i = 0; i < MT; ++i) {
        const X4& x = xs[i];
        const __m512i xlo = _mm512_loadu_si512(x.xq + g * 128);
        const __m512i xhi = _mm512_loadu_si512(x.xq + g * 128 + 64);
        const __m512i cv = _mm512_loadu_si512(x.corr + g * 16);
        const __m512 pxd = _mm512_permutexvar_ps(sidx, xd[i]);
        __m512i ylo = _mm512_setzero_si512(), yhi = _mm512_setzero_si512();
        if constexpr (F) {
          ylo = _mm512_loadu_si512(x.xq2 + g * 128);
          yhi = _mm512_loadu_si512(x.xq2 + g * 128 + 64);
        }
        for (int r = 0; r < R; ++r) {
          __m512i pr;
          if constexpr (F)
            pr = _mm512_add_epi32(
                _mm512_mullo_epi32(
                    _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[r], xlo),
                                        hi[r], xhi),
                    _mm512_set1_epi32(254)),
                _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(cv, lo[r], ylo), hi[r], yhi));
          else
            pr = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(cv, lo[r], xlo), hi[r], xhi);
          acc[i][r] =
              _mm512_fmadd_ps(_mm512_cvtepi32_ps(pr), _mm512_mul_ps(pws[r], pxd), acc[i][r]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < MT; ++i) {
      const X4& x = xs[i];
      float s = _mm512_reduce_add_ps(acc[i][r]);
      for (int64_t b = ng * 4; b < nb; ++b) {
        const uint8_t* blk = wr[r] + b * bsz;
        const int64_t t = b - ng * 4;
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
        const __m256i u =
            _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
        const int32_t dot =
            F ? 254 * block_dot32(0, u, x.tq + 32 * t) + block_dot32(x.tcorr[t], u, x.tq2 + 32 * t)
              : block_dot32(x.tcorr[t], u, x.tq + 32 * t);
        s += static_cast<float>(dot) * (f16s(blk) * x.xdb[b]);
      }
      y[i * ldy + rows[r]] = s;
    }
}

// Activation rows per call of the row kernels at M > 1 (F: twice the int32 work per pair).
template <bool F>
constexpr int kQ32MT = F ? 2 : 4;

// Q4_0 / Q8_0 at any M with the decode arithmetic: each activation row is prepared as at M = 1
// (x4_prep / x1_prep) and runs through the same row kernels, MT rows per weight step (the step's
// weights stay in L1 for the rest), so a row's result is bitwise the same at every M.
template <int R>
struct RowCount {  // R as a type (sizeof(r) == R) for the generic lambda below
  char r[R];
};
template <bool F, class XP, class Kern>
static void q32_rows_m(const XP* xs, int64_t M, int64_t nb, const Matrix& w, int64_t n0, int64_t n1,
                       float* y, int64_t ldy) {
  constexpr int MT = kQ32MT<F>;
  const size_t rb = w.row_bytes;
  // With several chunks of MT activation rows, the step's weight scales as f32 once (slot 6:
  // R x nb), instead of a gather per chunk; the same values (f16 -> f32 is exact).
  float* wsf = M > MT ? thread_scratch(6, static_cast<size_t>(QM_R * nb)) : nullptr;
  const auto run = [&](const int64_t* rows, size_t pf, auto rt) {
    constexpr int R = sizeof(rt.r);
    if (wsf)
      for (int r = 0; r < R; ++r) {
        const uint8_t* wr = w.data + static_cast<size_t>(rows[r]) * rb;
        for (int64_t b = 0; b < nb; ++b) wsf[r * nb + b] = f16s(wr + b * Kern::bsz);
      }
    int64_t m = 0;
    for (; m + MT <= M; m += MT)
      Kern::template rows<R, MT, F>(xs + m, nb, w.data, rb, rows, m == 0 ? pf : 0, y + m * ldy, ldy,
                                    wsf);
    switch (M - m) {
      case 3:
        Kern::template rows<R, 3, F>(xs + m, nb, w.data, rb, rows, 0, y + m * ldy, ldy, wsf);
        break;
      case 2:
        Kern::template rows<R, 2, F>(xs + m, nb, w.data, rb, rows, 0, y + m * ldy, ldy, wsf);
        break;
      case 1:
        Kern::template rows<R, 1, F>(xs + m, nb, w.data, rb, rows, m == 0 ? pf : 0, y + m * ldy,
                                     ldy, wsf);
        break;
      default:
        break;
    }
  };
  // (R = 2 or MT = 2 at M > 1 measured slower on the 1.1B Q4_0 shape: 71-98 against 105-117
  // tok/s at pp16-pp256, 2 threads)
  decode_rows<QM_R>(
      n0, n1, rb, [&](const int64_t* rows, size_t pf) { run(rows, pf, RowCount<QM_R>{}); },
      [&](const int64_t* rows, size_t pf) { run(rows, pf, RowCount<1>{}); });
}
struct Q4Rows {
  static constexpr int bsz = 18;
  template <int R, int MT, bool F>
  static void rows(const X4* xs, int64_t nb, const uint8_t* w, size_t rb, const int64_t* rows,
                   size_t pf, float* y, int64_t ldy, const float* wsf) {
    q4_rows4<R, MT, F>(xs, nb, w, rb, rows, pf, y, ldy, wsf);
  }
};
struct Q8Rows {
  static constexpr int bsz = 34;
  template <int R, int MT, bool F>
  static void rows(const X1* xs, int64_t nb, const uint8_t* w, size_t rb, const int64_t* rows,
                   size_t pf, float* y, int64_t ldy, const float* wsf) {
    q8_rows2<R, MT, F>(xs, nb, w, rb, rows, pf, y, ldy, wsf);
  }
};

template <bool Q8, bool F = false>
static void q32_rows(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0, int64_t n1,
                     float* y, int64_t ldy) {
  const int64_t nb = K / 32;
  // the per-row preparations (slot 2) and their descriptors (slot 5)
  if constexpr (!Q8) {
    const size_t per = x4_floats<F>(K);
    float* buf = thread_scratch(2, per * static_cast<size_t>(M));
    X4* xs = reinterpret_cast<X4*>(thread_scratch(
        5, (sizeof(X4) * static_cast<size_t>(M) + sizeof(float) - 1) / sizeof(float)));
    for (int64_t m = 0; m < M; ++m) xs[m] = x4_prep<F>(buf + m * per, x + m * K, K);
    q32_rows_m<F, X4, Q4Rows>(xs, M, nb, w, n0, n1, y, ldy);
  } else {
    const size_t per = x1_floats<F>(K);
    float* buf = thread_scratch(2, per * static_cast<size_t>(M));
    X1* xs = reinterpret_cast<X1*>(thread_scratch(
        5, (sizeof(X1) * static_cast<size_t>(M) + sizeof(float) - 1) / sizeof(float)));
    for (int64_t m = 0; m < M; ++m) xs[m] = x1_prep<F>(buf + m * per, x + m * K, K);
    q32_rows_m<F, X1, Q8Rows>(xs, M, nb, w, n0, n1, y, ldy);
  }
}

// Decode (M = 1).
template <bool Q8, bool F = false>
static void q32_matvec(const float* x, int64_t K, const Matrix& w, int64_t n0, int64_t n1,
                       float* y) {
  q32_rows<Q8, F>(x, 1, K, w, n0, n1, y, 0);
}

// KernelTable::matmul_fine for Q4_0 / Q8_0 (AVX-512): the plain entry's paths (the decode row
// groups at M = 1, qg_gemm otherwise) on the two-digit activations of quant32_fine.
template <bool Q8>
static void mm_q32_fine(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0,
                        int64_t n1, float* y, int64_t ldy, float*) {
  if (M == 1) return q32_matvec<Q8, true>(x, K, w, n0, n1, y);
  const size_t nf = qacts_floats(M, K);
  float* buf = thread_scratch(2, nf + static_cast<size_t>(M * K + 3) / 4 + 16);
  QActs a = qacts_in(buf, M, K);
  a.qs2 = reinterpret_cast<int8_t*>(buf + nf);
  qg_prepare_fine(x, 0, M, a);
  qg_gemm<Q8 ? QK::Q8_0 : QK::Q4_0, true>(a, w, n0, n1, y, ldy);
}

// The batch-invariant table's Q4_0 / Q8_0 entries (plain and fine activations): the decode
// arithmetic at every M (q32_rows).
template <bool Q8, bool F>
static void mm_q32_invariant(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0,
                             int64_t n1, float* y, int64_t ldy, float*) {
  q32_rows<Q8, F>(x, M, K, w, n0, n1, y, ldy);
}
#endif  // OHM_SIMD_W512

#if !OHM_SIMD_W512
// ---------------------------------------------------------------- Q4_0 / Q8_0, AVX2: numerics
// One contract for every M (batch invariance: a row's result is bitwise the same whatever else
// is in the batch; docs/serving.md). Per block b the integer dot S_b = sum w_q * x_q (Q4_0: minus
// 8 x the activation block sum) is exact, so how it is summed is free. The float part is fixed:
// blocks go in groups of eight, lane j of one f32 accumulator taking block g+j,
//   acc = fma(cvt(S), wd * xd, acc)        (wd: the eight f16 weight scales, xd: the activations')
// then y = hsum8f(acc), then the blocks past the last group of eight one at a time,
//   y += float(S_b) * (wd_b * xd_b)        (fine activations: one explicit fma).
//
// Fine activations (F, Matrix::fine_acts; act_quantize_fine): each activation is two int8
// digits, x ~ xd * (254 q1 + q2) with xd = (amax / 127) / 254, q1 the int8 activation of the
// plain path and q2 the rounding residual in steps 254 times finer (|q2| <= 127). Both digit
// streams run against each unpacked weight block and meet in int32, S = 254 S1 + S2 (Q4_0:
// minus 8 x (254 sum q1 + sum q2)), exact, so the float contract above holds unchanged.

// One block: 8 int32 partial sums of its 32 products (Q4_0 without the offset); F: of 254 q1 + q2.
template <bool Q8, bool F = false>
static inline __m256i q32_block(const uint8_t* blk, const int8_t* xq, const int8_t* xq2 = nullptr) {
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq));
  __m256i u, x1, x2 = _mm256_setzero_si256();
  if constexpr (Q8) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    u = _mm256_sign_epi8(wv, wv);
    x1 = _mm256_sign_epi8(xv, wv);
    if constexpr (F)
      x2 = _mm256_sign_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq2)), wv);
  } else {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
    x1 = xv;
    if constexpr (F) x2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq2));
  }
  if constexpr (F)
    return _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(u, x1), _mm256_set1_epi16(254)),
                            _mm256_madd_epi16(_mm256_maddubs_epi16(u, x2), ones));
  else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x1), ones);
}

// The blocks b0..nb-1 of weight row wr one at a time, added to s (the contract's last step).
template <bool Q8, bool F = false>
static inline float q32_tail(float s, const uint8_t* wr, const ActQ& a, int64_t b0, int64_t nb) {
  constexpr int bsz = Q8 ? 34 : 18;
  for (int64_t b = b0; b < nb; ++b) {
    const uint8_t* blk = wr + b * bsz;
    int32_t dot = hsum8i(q32_block<Q8, F>(blk, a.qs + b * 32, F ? a.qs2 + b * 32 : nullptr));
    if constexpr (!Q8) {
      dot -= 8 * (a.s16[2 * b] + a.s16[2 * b + 1]) * (F ? 254 : 1);
      if constexpr (F) dot -= 8 * (a.s16b[2 * b] + a.s16b[2 * b + 1]);
    }
    if constexpr (F)
      s = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(static_cast<float>(dot)),
                                     _mm_set_ss(f16s(blk) * a.d[b]), _mm_set_ss(s)));
    else
      s += static_cast<float>(dot) * (f16s(blk) * a.d[b]);
  }
  return s;
}

// The eight f16 scales of the blocks at b0, b0 + bsz, ... as f32 (one gather).
template <int bsz>
static inline __m256 q32_scales8(const uint8_t* b0) {
  uint16_t h[8];
  for (int k = 0; k < 8; ++k) __builtin_memcpy(&h[k], b0 + k * bsz, 2);
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
}

// Q4_0's offset term per group of eight blocks: 8 x the eight block sums of the activation digits
// (F: 8 x (254 sum q1 + sum q2)) from the 16-value sums s16 (and s16b) at block g.
template <bool F>
static inline __m256i q4_offsets8(const ActQ& a, int64_t g) {
  const __m256i s1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.s16 + 2 * g));
  if constexpr (F) {
    const __m256i s2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.s16b + 2 * g));
    return _mm256_add_epi32(_mm256_madd_epi16(s1, _mm256_set1_epi16(8 * 254)),
                            _mm256_madd_epi16(s2, _mm256_set1_epi16(8)));
  } else {
    return _mm256_slli_epi32(_mm256_madd_epi16(s1, _mm256_set1_epi16(1)), 3);
  }
}

// Transposed activations: per row and group of eight blocks 256 bytes (step t at 32 t), and for
// Q4_0 the offsets q4_offsets8. Fine activations: the residual digits in xt2, likewise.
struct ActT {
  const int8_t* xt;   // [M][ng][256]
  const int8_t* xt2;  // [M][ng][256] (fine activations; else null)
  const int32_t* sx;  // [M][ng][8]
  int64_t ng;
};
template <bool F = false>
static ActT act_transpose(const ActQ& a, int64_t M, int64_t K) {
  const int64_t ng = K / 256, nt = F ? 2 : 1;
  float* buf = thread_scratch(3, static_cast<size_t>(M * ng * (64 * nt + 8) + 16));
  int8_t* xt = reinterpret_cast<int8_t*>(buf);
  int8_t* xt2 = F ? reinterpret_cast<int8_t*>(buf + M * ng * 64) : nullptr;
  int32_t* sx = reinterpret_cast<int32_t*>(buf + M * ng * 64 * nt);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t g = 0; g < ng; ++g)
      for (int64_t s = 0; s < nt; ++s) {
        const int8_t* src = (s ? a.qs2 : a.qs) + m * K + g * 256;
        __m256i v[8];
        for (int j = 0; j < 8; ++j)
          v[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 32 * j));
        tr8x8i(v);
        int8_t* dst = (s ? xt2 : xt) + (m * ng + g) * 256;
        for (int t = 0; t < 8; ++t)
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32 * t), v[t]);
        if (s == 0) {
          const ActQ am{a.qs, a.d, a.s16 + m * (K / 16), nullptr,
                        F ? a.s16b + m * (K / 16) : nullptr};
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(sx + (m * ng + g) * 8),
                              q4_offsets8<F>(am, 8 * g));
        }
      }
  return {xt, xt2, sx, ng};
}

// Q4_0: the packed nibbles of the eight blocks at b0 as transposed steps (lane j: block j).
// Bytes 4t..4t+3 of a block hold values 4t..4t+3 (low nibbles) and 16+4t..16+4t+3 (high): a
// 4 x 4 dword transpose of the packed blocks (j and j+4 in the two halves) gives c[t], whose low
// nibbles are step t and high nibbles step t + 4.
static inline void q4_group_steps(const uint8_t* b0, __m256i c[4]) {
  constexpr int bsz = 18;
  __m256i p[4];
  for (int j = 0; j < 4; ++j)
    p[j] =
        _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b0 + (j + 4) * bsz + 2)),
                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(b0 + j * bsz + 2)));
  const __m256i t0 = _mm256_unpacklo_epi32(p[0], p[1]), t1 = _mm256_unpackhi_epi32(p[0], p[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(p[2], p[3]), t3 = _mm256_unpackhi_epi32(p[2], p[3]);
  c[0] = _mm256_unpacklo_epi64(t0, t2);
  c[1] = _mm256_unpackhi_epi64(t0, t2);
  c[2] = _mm256_unpacklo_epi64(t1, t3);
  c[3] = _mm256_unpackhi_epi64(t1, t3);
}
// Q4_0: the eight block sums (without the -8 offset) of the group at b0 against the transposed
// activations xt (256 bytes of act_transpose), summed in int16 (|8 x 2 x 15 x 127| < 2^15).
// F: the same for the residual digits xt2 from the same unpacked nibbles, then 254 S1 + S2.
template <bool F = false>
static inline __m256i q4_group_sums(const uint8_t* b0, const int8_t* xt,
                                    const int8_t* xt2 = nullptr) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256i c[4];
  q4_group_steps(b0, c);
  __m256i s = _mm256_setzero_si256(), s2 = _mm256_setzero_si256();
  for (int t = 0; t < 4; ++t) {
    const __m256i lo = _mm256_and_si256(c[t], m4);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(c[t], 4), m4);
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xt + 32 * t));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xt + 32 * (t + 4)));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(lo, x0));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(hi, x1));
    if constexpr (F) {
      const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xt2 + 32 * t));
      const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xt2 + 32 * (t + 4)));
      s2 = _mm256_add_epi16(s2, _mm256_maddubs_epi16(lo, y0));
      s2 = _mm256_add_epi16(s2, _mm256_maddubs_epi16(hi, y1));
    }
  }
  if constexpr (F)
    return _mm256_add_epi32(_mm256_madd_epi16(s, _mm256_set1_epi16(254)),
                            _mm256_madd_epi16(s2, _mm256_set1_epi16(1)));
  else
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
}

// ---------------------------------------------------------------- Q4_0 / Q8_0 decode, AVX2 (M = 1)
// Eight blocks per step and row: per block one vpmaddubsw + vpmaddwd against the int8
// activation (Q4_0: one 16-byte load unpacked to 32 nibbles; Q8_0: |w| against the activation
// with w's signs). The eight 8-lane partial sums reduce to one vector of block sums (six vphaddd
// and a lane swap), from which Q4_0's -8 offset (8 x the activation block sums) is subtracted;
// then the contract's fmadd per eight blocks. F: both activation digit streams per weight load.
template <bool Q8, int R, bool F = false>
static inline void q32_rows8(const ActQ& a, const ActT& at, int64_t nb, const uint8_t* w, size_t rb,
                             const int64_t* rows, size_t pf, float* y) {
  constexpr int bsz = Q8 ? 34 : 18;
  __m256 acc[R];
  const uint8_t* wr[R];
  for (int r = 0; r < R; ++r) {
    acc[r] = _mm256_setzero_ps();
    wr[r] = w + static_cast<size_t>(rows[r]) * rb;
  }
  int64_t g = 0;
  for (; g + 8 <= nb; g += 8) {
    const __m256 xd = _mm256_loadu_ps(a.d + g);
    const __m256i sx = Q8 ? _mm256_setzero_si256() : q4_offsets8<F>(a, g);
    for (int r = 0; r < R; ++r) {
      const uint8_t* b0 = wr[r] + g * bsz;
      for (int o = 0; o < 8 * bsz; o += 64)
        _mm_prefetch(reinterpret_cast<const char*>(b0) + pf + o, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b0) + pf + 8 * bsz - 1, _MM_HINT_T0);
      __m256i sums;
      if constexpr (Q8) {
        __m256i p[8];
        for (int k = 0; k < 8; ++k)
          p[k] = q32_block<Q8, F>(b0 + k * bsz, a.qs + (g + k) * 32,
                                  F ? a.qs2 + (g + k) * 32 : nullptr);
        const __m256i h0 =
            _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
        const __m256i h1 =
            _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
        sums = _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20),
                                _mm256_permute2x128_si256(h0, h1, 0x31));
      } else {
        sums = _mm256_sub_epi32(q4_group_sums<F>(b0, at.xt + g * 32, F ? at.xt2 + g * 32 : nullptr),
                                sx);
      }
      const __m256 wd = q32_scales8<bsz>(b0);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(wd, xd), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) y[rows[r]] = q32_tail<Q8, F>(hsum8f(acc[r]), wr[r], a, g, nb);
}

// ---------------------------------------------------------------- Q4_0 / Q8_0, AVX2, M > 1
// The same contract with the integer dots computed block-parallel: a group of eight blocks is
// transposed (8 x 8 dwords) so that lane j of every vector holds four bytes of block j, for the
// activations once per row and for the weights once per group of four weight rows. Then a
// vpmaddubsw of step t adds products of bytes 4t..4t+3 of all eight blocks at once and the eight
// block sums come out in the lanes with no horizontal reduction. Q4_0 sums its eight steps in
// int16 (|8 x 2 x 15 x 127| < 2^15) and widens once; Q8_0 widens per step. F: the residual
// digits run against the same panel (Q4_0: a second int16 sum; Q8_0: widened with weight 1
// next to the first digit's 254).

// Rows n0..n1 of y[M x N] (row stride ldy): four weight rows at a time are transposed into a
// per-thread panel (Q4_0: the unpacked nibbles; Q8_0: |w| and w), then each activation row
// (Q8_0 without F: each pair of rows) runs against it.
template <bool Q8, bool F = false>
static void q32_gemm_t(const ActQ& a, const ActT& at, int64_t M, int64_t K, const uint8_t* w,
                       size_t rb, int64_t n0, int64_t n1, float* y, int64_t ldy) {
  constexpr int bsz = Q8 ? 34 : 18;
  constexpr int R = 4, MT = Q8 && !F ? 2 : 1;  // Q4_0 with two activation rows spills (GCC 12)
  constexpr int64_t WS = Q8 ? 512 : 256;       // panel bytes per (row, group)
  const int64_t nb = K / 32, ng = at.ng;
  float* buf = thread_scratch(4, static_cast<size_t>(R * ng * (WS / 4 + 8) + 16));
  uint8_t* wt = reinterpret_cast<uint8_t*>(buf);
  float* wdv = buf + R * ng * WS / 4;
  const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  const __m256i c254 = _mm256_set1_epi16(254);
  for (int64_t r0 = n0; r0 < n1; r0 += R) {
    const int nr = static_cast<int>(imin(R, n1 - r0));
    for (int r = 0; r < R; ++r) {  // missing rows repeat the first (computed, not stored)
      const uint8_t* wr = w + static_cast<size_t>(r0 + (r < nr ? r : 0)) * rb;
      for (int64_t g = 0; g < ng; ++g) {
        const uint8_t* b0 = wr + g * 8 * bsz;
        uint8_t* dst = wt + (r * ng + g) * WS;
        if constexpr (Q8) {
          __m256i v[8];
          for (int k = 0; k < 8; ++k)
            v[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + k * bsz + 2));
          tr8x8i(v);
          for (int t = 0; t < 8; ++t) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32 * t),
                                _mm256_sign_epi8(v[t], v[t]));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 256 + 32 * t), v[t]);
          }
        } else {
          __m256i c[4];
          q4_group_steps(b0, c);
          for (int t = 0; t < 4; ++t) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32 * t),
                                _mm256_and_si256(c[t], m4));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32 * (t + 4)),
                                _mm256_and_si256(_mm256_srli_epi16(c[t], 4), m4));
          }
        }
        _mm256_storeu_ps(wdv + (r * ng + g) * 8, q32_scales8<bsz>(b0));
      }
    }
    for (int64_t m0 = 0; m0 < M; m0 += MT) {
      int64_t mr[MT];  // missing rows repeat the last (computed, not stored)
      for (int i = 0; i < MT; ++i) mr[i] = imin(m0 + i, M - 1);
      // F: the f32 sums live in memory between groups, which leaves the step loop the registers
      // for its eight int16 sums (GCC 12 spills them otherwise)
      __m256 acc[R][MT];
      alignas(32) float accm[F ? R * MT * 8 : 8];
      for (int r = 0; r < R; ++r)
        for (int i = 0; i < MT; ++i) {
          acc[r][i] = _mm256_setzero_ps();
          if constexpr (F) _mm256_store_ps(accm + (r * MT + i) * 8, _mm256_setzero_ps());
        }
      for (int64_t g = 0; g < ng; ++g) {
        const int8_t* xg[MT];
        const int8_t* xg2[MT];
        for (int i = 0; i < MT; ++i) {
          xg[i] = at.xt + (mr[i] * ng + g) * 256;
          xg2[i] = F ? at.xt2 + (mr[i] * ng + g) * 256 : nullptr;
        }
        const uint8_t* wg = wt + g * WS;
        __m256i s[R][MT], s2[R][MT];
        for (int r = 0; r < R; ++r)
          for (int i = 0; i < MT; ++i) s[r][i] = s2[r][i] = _mm256_setzero_si256();
        if constexpr (F && !Q8 && R == 4 && MT == 1) {
          // Q4_0 fine: the eight int16 sums in named registers (GCC 12 keeps arrays of them in
          // memory here), one step per iteration.
          __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
          __m256i b0 = a0, b1 = a0, b2 = a0, b3 = a0;
          const int8_t* x1 = xg[0];
          const int8_t* x2 = xg2[0];
          const uint8_t* p0 = wg;
          const uint8_t* p1 = wg + ng * WS;
          const uint8_t* p2 = wg + 2 * ng * WS;
          const uint8_t* p3 = wg + 3 * ng * WS;
#pragma GCC unroll 1
          for (int t = 0; t < 256; t += 32) {
            const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x1 + t));
            const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x2 + t));
            __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p0 + t));
            a0 = _mm256_add_epi16(a0, _mm256_maddubs_epi16(u, xv));
            b0 = _mm256_add_epi16(b0, _mm256_maddubs_epi16(u, yv));
            u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p1 + t));
            a1 = _mm256_add_epi16(a1, _mm256_maddubs_epi16(u, xv));
            b1 = _mm256_add_epi16(b1, _mm256_maddubs_epi16(u, yv));
            u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p2 + t));
            a2 = _mm256_add_epi16(a2, _mm256_maddubs_epi16(u, xv));
            b2 = _mm256_add_epi16(b2, _mm256_maddubs_epi16(u, yv));
            u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p3 + t));
            a3 = _mm256_add_epi16(a3, _mm256_maddubs_epi16(u, xv));
            b3 = _mm256_add_epi16(b3, _mm256_maddubs_epi16(u, yv));
          }
          s[0][0] = a0, s[1][0] = a1, s[2][0] = a2, s[3][0] = a3;
          s2[0][0] = b0, s2[1][0] = b1, s2[2][0] = b2, s2[3][0] = b3;
        } else
          for (int t = 0; t < 8; ++t) {
            __m256i xv[MT], xv2[MT];
            for (int i = 0; i < MT; ++i) {
              xv[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xg[i] + 32 * t));
              if constexpr (F)
                xv2[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xg2[i] + 32 * t));
            }
            for (int r = 0; r < R; ++r) {
              const uint8_t* p = wg + r * ng * WS + 32 * t;
              const __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
              if constexpr (Q8) {
                const __m256i sg = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 256));
                for (int i = 0; i < MT; ++i) {
                  if constexpr (F)
                    s[r][i] = _mm256_add_epi32(
                        s[r][i],
                        _mm256_add_epi32(
                            _mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_sign_epi8(xv[i], sg)),
                                              c254),
                            _mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_sign_epi8(xv2[i], sg)),
                                              ones)));
                  else
                    s[r][i] = _mm256_add_epi32(
                        s[r][i], _mm256_madd_epi16(
                                     _mm256_maddubs_epi16(u, _mm256_sign_epi8(xv[i], sg)), ones));
                }
              } else {
                for (int i = 0; i < MT; ++i) {
                  s[r][i] = _mm256_add_epi16(s[r][i], _mm256_maddubs_epi16(u, xv[i]));
                  if constexpr (F)
                    s2[r][i] = _mm256_add_epi16(s2[r][i], _mm256_maddubs_epi16(u, xv2[i]));
                }
              }
            }
          }
        for (int i = 0; i < MT; ++i) {
          const __m256 xd = _mm256_loadu_ps(a.d + mr[i] * nb + g * 8);
          const __m256i sx =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at.sx + (mr[i] * ng + g) * 8));
          for (int r = 0; r < R; ++r) {
            __m256i sums = s[r][i];
            if constexpr (!Q8) {
              if constexpr (F)
                sums = _mm256_add_epi32(_mm256_madd_epi16(sums, c254),
                                        _mm256_madd_epi16(s2[r][i], ones));
              else
                sums = _mm256_madd_epi16(sums, ones);
              sums = _mm256_sub_epi32(sums, sx);
            }
            const __m256 wd = _mm256_loadu_ps(wdv + (r * ng + g) * 8);
            if constexpr (F)
              _mm256_store_ps(accm + (r * MT + i) * 8,
                              _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(wd, xd),
                                              _mm256_load_ps(accm + (r * MT + i) * 8)));
            else
              acc[r][i] =
                  _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(wd, xd), acc[r][i]);
          }
        }
      }
      for (int i = 0; i < MT && m0 + i < M; ++i) {
        const int64_t m = m0 + i;
        const ActQ am{a.qs + m * K, a.d + m * nb, a.s16 + m * (K / 16), F ? a.qs2 + m * K : nullptr,
                      F ? a.s16b + m * (K / 16) : nullptr};
        for (int r = 0; r < nr; ++r)
          y[m * ldy + r0 + r] =
              q32_tail<Q8, F>(hsum8f(F ? _mm256_load_ps(accm + (r * MT + i) * 8) : acc[r][i]),
                              w + static_cast<size_t>(r0 + r) * rb, am, ng * 8, nb);
      }
    }
  }
}

// ---------------------------------------------------------------- fine activations (AVX2)
// M rows of K floats -> the two int8 digits of each activation (see the numerics above): per
// block of 32 with amax its largest |x|, id = 127 / amax, t = x * id,
//   q1 = round(t)   (the plain path's int8 activation),   q2 = round(254 t) - 254 q1,
// |q2| <= 127 (rounding is monotonic and |254 t - 254 q1| <= 127), d = (amax / 127) / 254; and
// the int16 sums of every 16 values of each digit. Round half to even throughout (cvtps).
static ActQ act_quantize_fine(const float* x, int64_t M, int64_t K) {
  const size_t nq = static_cast<size_t>(M * K), nd = nq / 32, ns = nq / 16;
  float* buf = thread_scratch(2, nd + 2 * ((nq + 3) / 4) + 2 * ((ns + 1) / 2) + 16);
  float* d = buf;
  int8_t* qs = reinterpret_cast<int8_t*>(buf + nd);
  int8_t* qs2 = qs + 4 * ((nq + 3) / 4);
  int16_t* s16 = reinterpret_cast<int16_t*>(buf + nd + 2 * ((nq + 3) / 4));
  int16_t* s16b = s16 + 2 * ((ns + 1) / 2);
  const __m256 sign = _mm256_set1_ps(-0.0f), f254 = _mm256_set1_ps(254.0f);
  const __m256i i254 = _mm256_set1_epi32(254);
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (size_t b = 0; b < nd; ++b) {
    const float* xb = x + b * 32;
    __m256 mx = _mm256_setzero_ps();
    for (int i = 0; i < 32; i += 8)
      mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, _mm256_loadu_ps(xb + i)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    d[b] = amax / 127.0f / 254.0f;
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q1[4], q2[4];
    for (int j = 0; j < 4; ++j) {
      const __m256 t = _mm256_mul_ps(_mm256_loadu_ps(xb + 8 * j), vid);
      q1[j] = _mm256_cvtps_epi32(t);
      q2[j] = _mm256_sub_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(t, f254)),
                               _mm256_mullo_epi32(q1[j], i254));
    }
    for (int s = 0; s < 2; ++s) {
      const __m256i* q = s ? q2 : q1;
      int16_t* sums = (s ? s16b : s16) + 2 * b;
      const __m256i sa = _mm256_add_epi32(q[0], q[1]), sb = _mm256_add_epi32(q[2], q[3]);
      __m128i ha = _mm_add_epi32(_mm256_castsi256_si128(sa), _mm256_extracti128_si256(sa, 1));
      __m128i hb = _mm_add_epi32(_mm256_castsi256_si128(sb), _mm256_extracti128_si256(sb, 1));
      ha = _mm_hadd_epi32(ha, hb);  // [a01, a23, b01, b23]
      ha = _mm_hadd_epi32(ha, ha);  // [a, b, a, b]
      sums[0] = static_cast<int16_t>(_mm_cvtsi128_si32(ha));
      sums[1] = static_cast<int16_t>(_mm_extract_epi32(ha, 1));
      const __m256i p = _mm256_permutevar8x32_epi32(
          _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3])), perm);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>((s ? qs2 : qs) + b * 32), p);
    }
  }
  return {qs, d, s16, qs2, s16b};
}

// KernelTable::matmul_fine for Q4_0 / Q8_0: the plain entry's row walks (decode_rows at M = 1,
// q32_gemm_t above) on the two-digit activations.
template <bool Q8>
static void mm_q32_fine(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0,
                        int64_t n1, float* y, int64_t ldy, float*) {
  const ActQ a = act_quantize_fine(x, M, K);
  const int64_t nb = K / 32;
  const size_t rb = w.row_bytes;
  if (M == 1) {
    const ActT at = Q8 ? ActT{nullptr, nullptr, nullptr, 0} : act_transpose<true>(a, 1, K);
    decode_rows<4>(
        n0, n1, rb,
        [&](const int64_t* rows, size_t pf) {
          q32_rows8<Q8, 4, true>(a, at, nb, w.data, rb, rows, pf, y);
        },
        [&](const int64_t* rows, size_t pf) {
          q32_rows8<Q8, 1, true>(a, at, nb, w.data, rb, rows, pf, y);
        });
    return;
  }
  const ActT at = act_transpose<true>(a, M, K);
  q32_gemm_t<Q8, true>(a, at, M, K, w.data, rb, n0, n1, y, ldy);
}
#endif
