// Activation quantization to int8 and the int8 x block-quant row tiles (Q4_0, Q8_0, Q4_K,
// Q6_K) that mm_quant runs for small M.
// Part of simd_impl.h: included once per ISA translation unit inside an anonymous namespace
// (see the ODR rule and the numerics there).
#pragma once

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
// Fine activations (AVX2 Q4_0 / Q8_0, act_quantize_fine) add a second int8 digit per value, qs2,
// and its 16-value sums s16b; null otherwise.
struct ActQ {
  const int8_t* qs;
  const float* d;
  const int16_t* s16;
  const int8_t* qs2;
  const int16_t* s16b;
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
  return {qs, d, s16, nullptr, nullptr};
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
