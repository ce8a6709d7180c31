// The batched f32/f16/bf16 GEMM (AVX-512) and the float matmul entry (mm_floatb).
// Part of simd_impl.h: included once per ISA translation unit inside an anonymous namespace
// (see the ODR rule and the numerics there).
#pragma once

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
      row_tiles<MR>(
          M, [&]<int R>(int64_t m) { fg_tile<R>(xp + m * kc, kc, pw, y, ldy, m, n, q0, q1, acc); });
    }
  }
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
