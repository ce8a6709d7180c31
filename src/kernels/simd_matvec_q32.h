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
// ---------------------------------------------------------------- Q4_0 / Q8_0, AVX2: numerics
// One contract for every M (batch invariance: a row's result is bitwise the same whatever else
// is in the batch; docs/serving.md). Per block b the integer dot S_b = sum w_q * x_q (Q4_0: minus
// 8 x the activation block sum) is exact, so how it is summed is free. The float part is fixed:
// blocks go in groups of eight, lane j of one f32 accumulator taking block g+j,
//   acc = fma(cvt(S), wd * xd, acc)        (wd: the eight f16 weight scales, xd: the activations')
// then y = hsum8f(acc), then the blocks past the last group of eight one at a time,
//   y += float(S_b) * (wd_b * xd_b).

// One block: 8 int32 partial sums of its 32 products (Q4_0 without the offset).
template <bool Q8>
static inline __m256i q32_block(const uint8_t* blk, const int8_t* xq) {
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq));
  if constexpr (Q8) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    return _mm256_madd_epi16(
        _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv)), ones);
  } else {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m256i u =
        _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, xv), ones);
  }
}

// The blocks b0..nb-1 of weight row wr one at a time, added to s (the contract's last step).
template <bool Q8>
static inline float q32_tail(float s, const uint8_t* wr, const ActQ& a, int64_t b0, int64_t nb) {
  constexpr int bsz = Q8 ? 34 : 18;
  for (int64_t b = b0; b < nb; ++b) {
    const uint8_t* blk = wr + b * bsz;
    int32_t dot = hsum8i(q32_block<Q8>(blk, a.qs + b * 32));
    if constexpr (!Q8) dot -= 8 * (a.s16[2 * b] + a.s16[2 * b + 1]);
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

// Transposed activations: per row and group of eight blocks 256 bytes (step t at 32 t), and for
// Q4_0 8 x the eight block sums.
struct ActT {
  const int8_t* xt;   // [M][ng][256]
  const int32_t* sx;  // [M][ng][8]
  int64_t ng;
};
static ActT act_transpose(const ActQ& a, int64_t M, int64_t K) {
  const int64_t ng = K / 256;
  float* buf = thread_scratch(3, static_cast<size_t>(M * ng * (64 + 8) + 16));
  int8_t* xt = reinterpret_cast<int8_t*>(buf);
  int32_t* sx = reinterpret_cast<int32_t*>(buf + M * ng * 64);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t g = 0; g < ng; ++g) {
      const int8_t* src = a.qs + m * K + g * 256;
      __m256i v[8];
      for (int j = 0; j < 8; ++j)
        v[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 32 * j));
      tr8x8i(v);
      int8_t* dst = xt + (m * ng + g) * 256;
      for (int t = 0; t < 8; ++t)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32 * t), v[t]);
      const __m256i s =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.s16 + m * (K / 16) + 16 * g));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(sx + (m * ng + g) * 8),
                          _mm256_slli_epi32(_mm256_madd_epi16(s, ones), 3));
    }
  return {xt, sx, ng};
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
static inline __m256i q4_group_sums(const uint8_t* b0, const int8_t* xt) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256i c[4];
  q4_group_steps(b0, c);
  __m256i s = _mm256_setzero_si256();
  for (int t = 0; t < 4; ++t) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xt + 32 * t));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xt + 32 * (t + 4)));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(c[t], m4), x0));
    s = _mm256_add_epi16(
        s, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(c[t], 4), m4), x1));
  }
  return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
}

// ---------------------------------------------------------------- Q4_0 / Q8_0 decode, AVX2 (M = 1)
// Eight blocks per step and row: per block one vpmaddubsw + vpmaddwd against the int8
// activation (Q4_0: one 16-byte load unpacked to 32 nibbles; Q8_0: |w| against the activation
// with w's signs). The eight 8-lane partial sums reduce to one vector of block sums (six vphaddd
// and a lane swap), from which Q4_0's -8 offset (8 x the activation block sums) is subtracted;
// then the contract's fmadd per eight blocks.
template <bool Q8, int R>
static inline void q32_rows8(const ActQ& a, const int8_t* xt, int64_t nb, const uint8_t* w,
                             size_t rb, const int64_t* rows, size_t pf, float* y) {
  constexpr int bsz = Q8 ? 34 : 18;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R];
  const uint8_t* wr[R];
  for (int r = 0; r < R; ++r) {
    acc[r] = _mm256_setzero_ps();
    wr[r] = w + static_cast<size_t>(rows[r]) * rb;
  }
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
      __m256i sums;
      if constexpr (Q8) {
        __m256i p[8];
        for (int k = 0; k < 8; ++k) p[k] = q32_block<Q8>(b0 + k * bsz, a.qs + (g + k) * 32);
        const __m256i h0 =
            _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
        const __m256i h1 =
            _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
        sums = _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20),
                                _mm256_permute2x128_si256(h0, h1, 0x31));
      } else {
        sums = _mm256_sub_epi32(q4_group_sums(b0, xt + g * 32), sx);
      }
      const __m256 wd = q32_scales8<bsz>(b0);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(wd, xd), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) y[rows[r]] = q32_tail<Q8>(hsum8f(acc[r]), wr[r], a, g, nb);
}

// ---------------------------------------------------------------- Q4_0 / Q8_0, AVX2, M > 1
// The same contract with the integer dots computed block-parallel: a group of eight blocks is
// transposed (8 x 8 dwords) so that lane j of every vector holds four bytes of block j, for the
// activations once per row and for the weights once per group of four weight rows. Then a
// vpmaddubsw of step t adds products of bytes 4t..4t+3 of all eight blocks at once and the eight
// block sums come out in the lanes with no horizontal reduction. Q4_0 sums its eight steps in
// int16 (|8 x 2 x 15 x 127| < 2^15) and widens once; Q8_0 widens per step.

// Rows n0..n1 of y[M x N] (row stride ldy): four weight rows at a time are transposed into a
// per-thread panel (Q4_0: the unpacked nibbles; Q8_0: |w| and w), then each activation row
// (Q8_0: each pair of rows) runs against it.
template <bool Q8>
static void q32_gemm_t(const ActQ& a, const ActT& at, int64_t M, int64_t K, const uint8_t* w,
                       size_t rb, int64_t n0, int64_t n1, float* y, int64_t ldy) {
  constexpr int bsz = Q8 ? 34 : 18;
  constexpr int R = 4, MT = Q8 ? 2 : 1;   // Q4_0 with two activation rows spills (GCC 12)
  constexpr int64_t WS = Q8 ? 512 : 256;  // panel bytes per (row, group)
  const int64_t nb = K / 32, ng = at.ng;
  float* buf = thread_scratch(4, static_cast<size_t>(R * ng * (WS / 4 + 8) + 16));
  uint8_t* wt = reinterpret_cast<uint8_t*>(buf);
  float* wdv = buf + R * ng * WS / 4;
  const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
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
      __m256 acc[R][MT];
      for (int r = 0; r < R; ++r)
        for (int i = 0; i < MT; ++i) acc[r][i] = _mm256_setzero_ps();
      for (int64_t g = 0; g < ng; ++g) {
        const int8_t* xg[MT];
        for (int i = 0; i < MT; ++i) xg[i] = at.xt + (mr[i] * ng + g) * 256;
        const uint8_t* wg = wt + g * WS;
        __m256i s[R][MT];
        for (int r = 0; r < R; ++r)
          for (int i = 0; i < MT; ++i) s[r][i] = _mm256_setzero_si256();
        for (int t = 0; t < 8; ++t) {
          __m256i xv[MT];
          for (int i = 0; i < MT; ++i)
            xv[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xg[i] + 32 * t));
          for (int r = 0; r < R; ++r) {
            const uint8_t* p = wg + r * ng * WS + 32 * t;
            const __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
            if constexpr (Q8) {
              const __m256i sg = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 256));
              for (int i = 0; i < MT; ++i)
                s[r][i] = _mm256_add_epi32(
                    s[r][i],
                    _mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_sign_epi8(xv[i], sg)), ones));
            } else {
              for (int i = 0; i < MT; ++i)
                s[r][i] = _mm256_add_epi16(s[r][i], _mm256_maddubs_epi16(u, xv[i]));
            }
          }
        }
        for (int i = 0; i < MT; ++i) {
          const __m256 xd = _mm256_loadu_ps(a.d + mr[i] * nb + g * 8);
          const __m256i sx =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at.sx + (mr[i] * ng + g) * 8));
          for (int r = 0; r < R; ++r) {
            __m256i sums = s[r][i];
            if constexpr (!Q8) sums = _mm256_sub_epi32(_mm256_madd_epi16(sums, ones), sx);
            const __m256 wd = _mm256_loadu_ps(wdv + (r * ng + g) * 8);
            acc[r][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(wd, xd), acc[r][i]);
          }
        }
      }
      for (int i = 0; i < MT && m0 + i < M; ++i) {
        const int64_t m = m0 + i;
        const ActQ am{a.qs + m * K, a.d + m * nb, a.s16 + m * (K / 16)};
        for (int r = 0; r < nr; ++r)
          y[m * ldy + r0 + r] =
              q32_tail<Q8>(hsum8f(acc[r][i]), w + static_cast<size_t>(r0 + r) * rb, am, ng * 8, nb);
      }
    }
  }
}
#endif
