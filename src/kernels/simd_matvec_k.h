// Q4_K and Q6_K decode (M = 1, AVX-512).
// Part of simd_impl.h: included once per ISA translation unit inside an anonymous namespace
// (see the ODR rule and the numerics there).
#pragma once

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
