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

// ---------------------------------------------------------------- Q4_0 / Q8_0, AVX2, M > 1
// q32_rows8's arithmetic for many activation rows at once (batch invariance: a row's result is
// bitwise what q32_rows8 gives it alone). The integer work is shared where it can be: a weight
// row's eight blocks are unpacked and its scales gathered once per group for every activation,
// and each activation's block sums reduce with the same hadd tree; the f32 part (one fmadd per
// eight blocks, the hsum, the tail blocks one at a time) is q32_rows8's, op for op.
template <bool Q8>
static void q32_rows8_multi(const ActQ& a, int64_t M, int64_t K, const uint8_t* w, size_t rb,
                            int64_t n0, int64_t n1, float* y, int64_t ldy) {
  constexpr int bsz = Q8 ? 34 : 18;
  constexpr int R = 4, MT = 8;
  const int64_t nb = K / 32;
  const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  const __m256i gidx =
      _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(bsz));
  const __m256i lo16 = _mm256_set1_epi32(0xFFFF);
  for (int64_t r0 = n0; r0 < n1; r0 += R) {
    const int nr = static_cast<int>(imin(R, n1 - r0));
    for (int64_t m0 = 0; m0 < M; m0 += MT) {
      const int nm = static_cast<int>(imin(MT, M - m0));
      __m256 acc[R][MT];
      for (int r = 0; r < nr; ++r)
        for (int m = 0; m < nm; ++m) acc[r][m] = _mm256_setzero_ps();
      int64_t g = 0;
      for (; g + 8 <= nb; g += 8) {
        for (int r = 0; r < nr; ++r) {
          const uint8_t* b0 = w + static_cast<size_t>(r0 + r) * rb + g * bsz;
          __m256i u[8], ws[8];
          for (int k = 0; k < 8; ++k) {
            const uint8_t* blk = b0 + k * bsz;
            if constexpr (Q8) {
              const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
              u[k] = _mm256_sign_epi8(wv, wv);
              ws[k] = wv;
            } else {
              const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
              u[k] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4);
              ws[k] = u[k];
            }
          }
          const __m256i hs = _mm256_and_si256(
              _mm256_i32gather_epi32(reinterpret_cast<const int*>(b0), gidx, 1), lo16);
          const __m256 wd = _mm256_cvtph_ps(
              _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(hs, hs), 0x08)));
          for (int m = 0; m < nm; ++m) {
            const int64_t row = m0 + m;
            const int8_t* xq = a.qs + row * K + g * 32;
            __m256i p[8];
            for (int k = 0; k < 8; ++k) {
              const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + k * 32));
              if constexpr (Q8)
                p[k] = _mm256_madd_epi16(_mm256_maddubs_epi16(u[k], _mm256_sign_epi8(xv, ws[k])),
                                         ones);
              else
                p[k] = _mm256_madd_epi16(_mm256_maddubs_epi16(u[k], xv), ones);
            }
            const __m256i h0 =
                _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
            const __m256i h1 =
                _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
            __m256i sums = _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20),
                                            _mm256_permute2x128_si256(h0, h1, 0x31));
            if constexpr (!Q8) {
              const __m256i sx = _mm256_slli_epi32(
                  _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                                        a.s16 + row * (K / 16) + 2 * g)),
                                    ones),
                  3);
              sums = _mm256_sub_epi32(sums, sx);
            }
            const __m256 xd = _mm256_loadu_ps(a.d + row * (K / 32) + g);
            acc[r][m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(wd, xd), acc[r][m]);
          }
        }
      }
      for (int r = 0; r < nr; ++r) {
        const uint8_t* wr = w + static_cast<size_t>(r0 + r) * rb;
        for (int m = 0; m < nm; ++m) {
          const int64_t row = m0 + m;
          const int8_t* qs = a.qs + row * K;
          const int16_t* s16 = a.s16 + row * (K / 16);
          const float* d = a.d + row * (K / 32);
          float s = hsum8f(acc[r][m]);
          for (int64_t b = g; b < nb; ++b) {
            const uint8_t* blk = wr + b * bsz;
            const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + b * 32));
            __m256i pb;
            if constexpr (Q8) {
              const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
              pb = _mm256_madd_epi16(
                  _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv)), ones);
            } else {
              const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
              const __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4);
              pb = _mm256_madd_epi16(_mm256_maddubs_epi16(u, xv), ones);
            }
            int32_t dot = hsum8i(pb);
            if constexpr (!Q8) dot -= 8 * (s16[2 * b] + s16[2 * b + 1]);
            s += static_cast<float>(dot) * (f16s(blk) * d[b]);
          }
          y[row * ldy + r0 + r] = s;
        }
      }
    }
  }
}
#endif
