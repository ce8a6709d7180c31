// The f32 vector abstraction (vf: __m256 or __m512 by OHM_SIMD_W512), horizontal sums,
// f16 loads and vexp.
// Part of simd_impl.h: included once per ISA translation unit inside an anonymous namespace
// (see the ODR rule and the numerics there).
#pragma once

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

// 8 x 8 transpose of 32-bit lanes: r[i] lane j -> r[j] lane i.
static inline void tr8x8i(__m256i r[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {
    u[4 * h + 0] = _mm256_unpacklo_epi64(t[4 * h + 0], t[4 * h + 2]);
    u[4 * h + 1] = _mm256_unpackhi_epi64(t[4 * h + 0], t[4 * h + 2]);
    u[4 * h + 2] = _mm256_unpacklo_epi64(t[4 * h + 1], t[4 * h + 3]);
    u[4 * h + 3] = _mm256_unpackhi_epi64(t[4 * h + 1], t[4 * h + 3]);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2x128_si256(u[i], u[4 + i], 0x20);
    r[4 + i] = _mm256_permute2x128_si256(u[i], u[4 + i], 0x31);
  }
}

// The same for f32 lanes (the float GEMM packing), through the integer shuffles.
static inline void tr8x8(__m256 r[8]) {
  __m256i v[8];
  for (int i = 0; i < 8; ++i) v[i] = _mm256_castps_si256(r[i]);
  tr8x8i(v);
  for (int i = 0; i < 8; ++i) r[i] = _mm256_castsi256_ps(v[i]);
}

// The tail of a row-tiled loop: tile.template operator()<r>(m) for the r = rows left (0 to R) from
// row m, one tile of exactly that many rows (nothing for 0).
template <int R, class Tile>
static inline void tail_tile(int64_t rows, int64_t m, const Tile& tile) {
  if constexpr (R > 0) {
    if (rows == R)
      tile.template operator()<R>(m);
    else
      tail_tile<R - 1>(rows, m, tile);
  }
}

// Rows [0, M) in tiles of R rows from row 0, then one tile of the rows left:
// tile.template operator()<r>(m) for each tile of r rows from row m.
template <int R, class Tile>
static inline void row_tiles(int64_t M, const Tile& tile) {
  int64_t m = 0;
  for (; m + R <= M; m += R) tile.template operator()<R>(m);
  tail_tile<R - 1>(M - m, m, tile);
}
