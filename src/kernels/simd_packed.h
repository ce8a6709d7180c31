// Packed Q4_0 weights and their panel kernel (AVX-512; KernelTable::pack / packed_matmul of the
// batch-invariant table). Part of simd_impl.h: included once per ISA translation unit inside an
// anonymous namespace (see the ODR rule and the numerics there).
#pragma once

#if OHM_SIMD_W512
// ---------------------------------------------------------------- packed Q4_0 panels
// One layout and one kernel for every number of activation rows M, so a row's result is bitwise
// the same at any M (batch invariance, docs/serving.md) and decode (M = 1) streams the weights
// once at the memory rate while a batched step shares each unpacked panel chunk among up to 8
// activation rows.
//
// Layout: panel p holds output features [16p, 16p + 16) (zeros past the last row). For each
// block c of 32 inputs (nb = K / 32 of them), 256 bytes of quants at P + 256 c: dword j (the
// block's quant bytes 4j..4j+3: weights 4j..4j+3 in the low nibbles, 16+4j..19+4j in the high
// ones) of feature r at P + 256 c + 64 j + 4 r, so one 64-byte load gives lane r the 4 + 4
// weights that pair with activation dwords j and j + 4; then the 16 f16 block scales of block c
// at P + 256 nb + 32 c. A panel is 288 nb bytes rounded up to 64: Q4_0's 18 bytes per 32 weights.
//
// Arithmetic per (activation row m, feature n), blocks in order, acc starting at 0:
//   S_c = sum_k u_k * q_k - 8 * sum_k q_k   (u: the unsigned nibbles, q: the int8 activations;
//                                            exact int32)
//   acc = fma(f32(S_c), wd_c * xd_c, acc)   (wd: the f16 weight scale as f32, xd: the activation's)
// whatever M, the row tile or the panel split.
constexpr int64_t PK_ROWS = 16;

static size_t pk_panel_bytes(int64_t K) {
  return static_cast<size_t>((K / 32 * 288 + 63) / 64 * 64);
}

static size_t pk_packed_bytes(DType, int64_t rows, int64_t cols) {
  return static_cast<size_t>((rows + PK_ROWS - 1) / PK_ROWS) * pk_panel_bytes(cols);
}

// Panels [p0, p1) of w into out (the whole packed buffer).
static void pk_pack_q4_0(const Matrix& w, int64_t p0, int64_t p1, uint8_t* out) {
  const int64_t nb = w.cols / 32;
  const size_t pb = pk_panel_bytes(w.cols);
  for (int64_t p = p0; p < p1; ++p) {
    uint8_t* P = out + static_cast<size_t>(p) * pb;
    std::memset(P, 0, pb);
    for (int64_t r = 0; r < PK_ROWS; ++r) {
      const int64_t n = p * PK_ROWS + r;
      if (n >= w.rows) break;
      const uint8_t* row = w.row(n);
      for (int64_t c = 0; c < nb; ++c) {
        const uint8_t* blk = row + c * 18;
        std::memcpy(P + 256 * nb + 32 * c + 2 * r, blk, 2);
        for (int64_t j = 0; j < 4; ++j)
          std::memcpy(P + 256 * c + 64 * j + 4 * r, blk + 2 + 4 * j, 4);
      }
    }
  }
}

// The packed Q4_0 kernel's activation rows per tile (pk_acts' layout).
constexpr int64_t PK_MR = 8;

// Where pk_acts puts row m's block c (of nc): tile-major (rows in tiles of PK_MR; a tile's blocks
// in order, each holding its rows together), so a tile reads its activations as one sequential
// run (block-major over all M rows put a tile's blocks 32 M bytes apart: at M = 512 they fell in
// a handful of cache sets).
static inline int64_t pk_act_index(int64_t c, int64_t m, int64_t nc) {
  return (m / PK_MR * nc + c) * PK_MR + m % PK_MR;
}

// KernelTable::packed_acts: activation rows [m0, m1) of x quantized per 32 values (quant32): row
// m's block c at qs + 32 i, its scale at d32[i] and its offset term at o32[i] (-8 x the sum of
// the int8 values), i = pk_act_index(c, m, K / 32). The QActs holds whole tiles (M rounded up to
// PK_MR rows).
static void pk_acts(const float* x, int64_t m0, int64_t m1, const QActs& a) {
  const int64_t K = a.K, nc = K / 32;
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t c = 0; c < nc; ++c) {
      const Q32 q = quant32(x + m * K + c * 32);
      const int64_t i = pk_act_index(c, m, nc);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(a.qs + i * 32), q.q0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(a.qs + i * 32 + 16), q.q1);
      a.d32[i] = q.d;
      a.o32[i] = -8 * (q.s0 + q.s1);
    }
}

// MR activation rows (from m0) x NP panels Ps[h] (outputs ys[h] + i * ldy, lanes in masks ks[h]),
// the panels' blocks in lockstep: at M = 1 two panels far apart are two DRAM streams per thread.
template <int MR, int NP = 1>
static inline void pk_tile_q4(const QActs& a, int64_t m0, const uint8_t* const* Ps, int64_t nb,
                              float* const* ys, int64_t ldy, const __mmask16* ks) {
  constexpr int CH = MR < 4 ? 2 : 1;
  const int64_t nc = a.K / 32;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  __m512 acc[NP][MR];
  for (int h = 0; h < NP; ++h)
    for (int i = 0; i < MR; ++i) acc[h][i] = _mm512_setzero_ps();
  for (int64_t c = 0; c < nb; ++c) {
    for (int h = 0; h < NP; ++h) {
      const uint8_t* P = Ps[h];
      const uint8_t* q = P + 256 * c;
      // The weights 16 KiB ahead, into L2, advancing 288 bytes per block: a run of panels is
      // one contiguous stream, quants then scales, so this keeps pace with it across the panel
      // ends (with the two streams below, decode reads at the DRAM rate: 20 -> 27 GB/s on 600
      // MiB, BM_PackedQ4_0; the hardware prefetchers alone fall behind at each page).
      // With one activation row also 1 KiB ahead from L2 into L1 (decode 1.08x on the 1.1B Q4_0
      // GGUF with the invariant table; as pkf_tile_m1).
      for (int o = 0; o < 320; o += 64)
        _mm_prefetch(reinterpret_cast<const char*>(P + 16384 + 288 * c + o), _MM_HINT_T1);
      if constexpr (MR == 1)
        for (int o = 0; o < 320; o += 64)
          _mm_prefetch(reinterpret_cast<const char*>(P + 1024 + 288 * c + o), _MM_HINT_T0);
      __m512i w[8];
      for (int j = 0; j < 4; ++j) {
        const __m512i v = _mm512_load_si512(q + 64 * j);
        w[j] = _mm512_and_si512(v, m4);
        w[j + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
      }
      const __m512 wd = _mm512_cvtph_ps(
          _mm256_load_si256(reinterpret_cast<const __m256i*>(P + 256 * nb + 32 * c)));
      // The rows' chains interleaved (row-major over the 8 activation dwords), each from the
      // offset term, each activation dword straight from memory as a broadcast operand: loads,
      // no shuffles, and MR independent vpdpbusd between two of one chain (below 4 rows, two
      // chains per row, summed exactly in int32).
      const int64_t t0 = pk_act_index(c, m0, nc);  // the tile's rows at t0 + i
      __m512i sv[CH][MR];
      for (int i = 0; i < MR; ++i) {
        sv[0][i] = _mm512_set1_epi32(a.o32[t0 + i]);
        if constexpr (CH == 2) sv[1][i] = _mm512_setzero_si512();
      }
      for (int j = 0; j < 8; ++j)
        for (int i = 0; i < MR; ++i) {
          int32_t x;
          std::memcpy(&x, a.qs + (t0 + i) * 32 + 4 * j, 4);
          sv[j % CH][i] = _mm512_dpbusd_epi32(sv[j % CH][i], w[j], _mm512_set1_epi32(x));
        }
      for (int i = 0; i < MR; ++i) {
        __m512i t = sv[0][i];
        if constexpr (CH == 2) t = _mm512_add_epi32(t, sv[1][i]);
        const __m512 scale = _mm512_mul_ps(wd, _mm512_set1_ps(a.d32[t0 + i]));
        acc[h][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), scale, acc[h][i]);
      }
    }
  }
  for (int h = 0; h < NP; ++h)
    for (int i = 0; i < MR; ++i) _mm512_mask_storeu_ps(ys[h] + i * ldy, ks[h], acc[h][i]);
}

// Panel p of a packed matrix of `rows` output features whose panels (pb bytes each) start at
// base, for the panel kernels: its bytes P, its outputs yp (features [16p, 16p + 16) at y + 16p)
// and the mask k of its lanes below `rows`.
static inline void pk_panel(const uint8_t* base, size_t pb, int64_t rows, float* y, int64_t p,
                            const uint8_t*& P, float*& yp, __mmask16& k) {
  P = base + static_cast<size_t>(p) * pb;
  const int64_t n = p * PK_ROWS, left = rows - n;
  k = static_cast<__mmask16>(left >= 16 ? 0xFFFF : (1u << left) - 1);
  yp = y + n;
}

// Rows per block of the panel kernels at M > 1: a block's activations (`row_bytes` each) stay in
// L2 while the thread's panels stream past them, instead of every row's activations coming back
// from L3 for every panel (at pp512 and K = 5632 that was 11 MB a panel). Each block re-reads the
// panels, a small fraction of that. A multiple of `mr` (the tiles start at multiples of it).
static inline int64_t pk_row_block(int64_t row_bytes, int64_t mr) {
  constexpr int64_t kBudget = 512 * 1024;
  const int64_t rows = kBudget / row_bytes / mr * mr;
  return rows > mr ? rows : mr;
}

// The M > 1 loop of the panel kernels: panels [p0, p1) over row blocks of mb rows, in tiles of
// up to mr rows from multiples of mr (the activation layouts' tiles): tile(m, rows, P, ym, k)
// with ym the tile's first output row of panel P.
template <class PanelFn, class TileFn>
static inline void pk_row_blocks(int64_t M, int64_t mb, int64_t mr, int64_t p0, int64_t p1,
                                 int64_t ldy, const PanelFn& panel, const TileFn& tile) {
  for (int64_t m0 = 0; m0 < M; m0 += mb)
    for (int64_t p = p0; p < p1; ++p) {
      const uint8_t* P;
      float* yp;
      __mmask16 k;
      panel(p, P, yp, k);
      for (int64_t m = m0; m < imin(M, m0 + mb); m += mr)
        tile(m, imin(mr, M - m), P, yp + m * ldy, k);
    }
}

// KernelTable::packed_matmul for Q4_0: panels [p0, p1), every activation row, 8 rows per tile;
// at M = 1 the panels in pairs (p, p + half the range).
static void pk_matmul_q4_0(const QActs& a, const Matrix& w, int64_t p0, int64_t p1, float* y,
                           int64_t ldy) {
  const int64_t nb = a.K / 32, M = a.M;
  const size_t pb = pk_panel_bytes(a.K);
  const auto panel = [&](int64_t p, const uint8_t*& P, float*& yp, __mmask16& k) {
    pk_panel(w.packed, pb, w.rows, y, p, P, yp, k);
  };
  if (M == 1) {
    const int64_t h = (p1 - p0) / 2;
    for (int64_t p = p0; p < p0 + h; ++p) {
      const uint8_t* Ps[2];
      float* ys[2];
      __mmask16 ks[2];
      panel(p, Ps[0], ys[0], ks[0]);
      panel(p + h, Ps[1], ys[1], ks[1]);
      pk_tile_q4<1, 2>(a, 0, Ps, nb, ys, ldy, ks);
    }
    if ((p1 - p0) % 2 == 0) return;
    p0 = p1 - 1;  // the odd panel left over, alone
  }
  using Tile = void (*)(const QActs&, int64_t, const uint8_t* const*, int64_t, float* const*,
                        int64_t, const __mmask16*);
  static constexpr Tile kTiles[9] = {nullptr,        &pk_tile_q4<1>, &pk_tile_q4<2>,
                                     &pk_tile_q4<3>, &pk_tile_q4<4>, &pk_tile_q4<5>,
                                     &pk_tile_q4<6>, &pk_tile_q4<7>, &pk_tile_q4<8>};
  pk_row_blocks(M, pk_row_block(a.K, PK_MR), PK_MR, p0, p1, ldy, panel,
                [&](int64_t m, int64_t rows, const uint8_t* P, float* ym, __mmask16 k) {
                  kTiles[rows](a, m, &P, nb, &ym, ldy, &k);
                });
}
// ---------------------------------------------------------------- int4 groups, fine activations
// HF GPTQ / AWQ int4 checkpoints on float-accurate activations (Matrix::fine_acts): the loader's
// exact repacks (Q4_0 for GPTQ sym, Q5_0 holding q - zero + 16 for asym GPTQ and AWQ) packed
// into panels with one f16 scale and one zero per group of G blocks of 32 inputs (G = 4, 2 or 1:
// the largest over which every row's scales and zeros are constant), so the weights stream at
// 4 bits plus 24 bits per group (GPTQ's own size) and each group is scaled once.
//
// Layout (after a 64-byte header whose first int32 is G): panel p holds output features [16p,
// 16p + 16). Block c's quants at P + 256 c as in the Q4_0 panels above (u4 values q in [0, 15]);
// then group g's 16 f16 scales at P + 256 nb + 32 g; then its 16 u8 zeros at P + 256 nb + 32 ng
// + 16 g. Weight = scale * (q - zero), exactly the loader's value.
//
// Activations (pkf_acts) per group of 32 G inputs of a row: t = x * 127 / amax, digits
// a1 = rint(t), a2 = rint(254 (t - a1)) (|a2| <= 127), x ~ (amax / 127 / 254) (254 a1 + a2);
// in qs, 64 bytes per (block c, row m): the block's 32 a1, then its 32 a2, tile-major (rows in
// tiles of PKF_MR; tile t's blocks in order, each holding its rows' 64 bytes together, at
// 64 ((t nb + c) PKF_MR + m % PKF_MR)), so a tile reads its activations as one sequential run;
// d32[g M + m] = amax / 127 / 254 and o32[g M + m] = sum(254 a1 + a2) over the group.
//
// Arithmetic per (row m, feature n), groups in order, acc starting at 0:
//   S = 254 sum(q a1) + sum(q a2) - zero * o32        (exact int32: |S| < 2^27)
//   acc = fma(f32(S), scale * d32, acc)
// whatever M, the row tile or the panel split: batch invariant.
static constexpr int64_t PKF_HEADER = 64;
static constexpr int64_t PKF_MR = 6;  // activation rows per tile (3 accumulators a row)

static size_t pkf_panel_bytes(int64_t K, int G) {
  const int64_t nb = K / 32, ng = nb / G;
  return static_cast<size_t>((256 * nb + 48 * ng + 63) / 64 * 64);
}

// The 32 values (u5 for Q5_0: q - zero + 16; u4 for Q4_0: q, zero 8) of block c of row n.
static void pkf_block_values(const Matrix& w, int64_t n, int64_t c, uint8_t* v, uint16_t* d) {
  const uint8_t* row = w.row(n);
  if (w.dtype == DType::Q4_0) {
    const uint8_t* b = row + c * 18;
    std::memcpy(d, b, 2);
    for (int j = 0; j < 16; ++j) {
      v[j] = b[2 + j] & 15;
      v[j + 16] = b[2 + j] >> 4;
    }
  } else {
    const uint8_t* b = row + c * 22;
    std::memcpy(d, b, 2);
    uint32_t qh;
    std::memcpy(&qh, b + 2, 4);
    for (int j = 0; j < 16; ++j) {
      v[j] = static_cast<uint8_t>((b[6 + j] & 15) | (((qh >> j) & 1) << 4));
      v[j + 16] = static_cast<uint8_t>((b[6 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
    }
  }
}

// Whether row n's groups of G blocks each have one scale and a zero that keeps every q in
// [0, 15]; the zeros (per group) into z when so.
static bool pkf_row_groups(const Matrix& w, int64_t n, int G, uint8_t* z) {
  const int64_t nb = w.cols / 32;
  uint8_t v[32];
  if (w.dtype == DType::Q4_0) {  // zeros 8; only the scales to compare
    const uint8_t* row = w.row(n);
    for (int64_t g = 0; g < nb / G; ++g) {
      for (int b = 1; b < G; ++b)
        if (std::memcmp(row + (g * G + b) * 18, row + g * G * 18, 2) != 0) return false;
      z[g] = 8;
    }
    return true;
  }
  for (int64_t g = 0; g < nb / G; ++g) {
    uint16_t d0 = 0;
    int lo = 255, hi = 0;
    for (int b = 0; b < G; ++b) {
      uint16_t d;
      pkf_block_values(w, n, g * G + b, v, &d);
      if (b == 0) d0 = d;
      if (d != d0) return false;
      for (int j = 0; j < 32; ++j) lo = lo < v[j] ? lo : v[j], hi = hi > v[j] ? hi : v[j];
    }
    // q - zero = v - 16 for some zero with every q = v - 16 + zero in [0, 15].
    const int zero = lo >= 16 ? 0 : 16 - lo;
    if (zero > 15 || hi - 16 + zero > 15) return false;
    z[g] = static_cast<uint8_t>(zero);
  }
  return true;
}

// KernelTable::pack_fine for Q4_0 / Q5_0: the bytes w packs into (out null), or packs it; 0
// where no G in {4, 2, 1} groups every row.
static size_t pkf_pack(const Matrix& w, uint8_t* out) {
  const int64_t nb = w.cols / 32, N = w.rows;
  if (w.cols % 32 != 0 || nb == 0 || (w.dtype != DType::Q4_0 && w.dtype != DType::Q5_0)) return 0;
  // No std:: containers in these files (the ODR rule in simd_impl.h): a plain buffer.
  uint8_t* z = static_cast<uint8_t*>(std::malloc(static_cast<size_t>(nb)));
  if (!z) return 0;
  static constexpr int kGroups[3] = {4, 2, 1};
  int G = 0;
  for (int g : kGroups) {
    if (nb % g != 0) continue;
    bool ok = true;
    for (int64_t n = 0; n < N && ok; ++n) ok = pkf_row_groups(w, n, g, z);
    if (ok) {
      G = g;
      break;
    }
  }
  if (!G || !out) {
    std::free(z);
    return G ? PKF_HEADER +
                   static_cast<size_t>((N + PK_ROWS - 1) / PK_ROWS) * pkf_panel_bytes(w.cols, G)
             : 0;
  }
  const int64_t ng = nb / G, P = (N + PK_ROWS - 1) / PK_ROWS;
  const size_t pb = pkf_panel_bytes(w.cols, G);
  std::memset(out, 0, PKF_HEADER);
  const int32_t g32 = G;
  std::memcpy(out, &g32, 4);
  uint8_t v[32];
  for (int64_t p = 0; p < P; ++p) {
    uint8_t* Pp = out + PKF_HEADER + static_cast<size_t>(p) * pb;
    std::memset(Pp, 0, pb);
    for (int64_t r = 0; r < PK_ROWS; ++r) {
      const int64_t n = p * PK_ROWS + r;
      if (n >= N) break;
      pkf_row_groups(w, n, G, z);
      for (int64_t c = 0; c < nb; ++c) {
        const int64_t g = c / G;
        uint16_t d;
        pkf_block_values(w, n, c, v, &d);
        const int shift = w.dtype == DType::Q4_0 ? 0 : 16 - z[g];
        uint8_t qb[16];
        for (int j = 0; j < 16; ++j)
          qb[j] = static_cast<uint8_t>((v[j] - shift) | ((v[j + 16] - shift) << 4));
        for (int64_t j = 0; j < 4; ++j) std::memcpy(Pp + 256 * c + 64 * j + 4 * r, qb + 4 * j, 4);
        if (c % G == 0) {
          std::memcpy(Pp + 256 * nb + 32 * g + 2 * r, &d, 2);
          Pp[256 * nb + 32 * ng + 16 * g + r] = z[g];
        }
      }
    }
  }
  std::free(z);
  return PKF_HEADER + static_cast<size_t>(P) * pb;
}

// Rows [m0, m1) of x in two int8 digits per group of 32 G values (d32, o32 as above); the
// digits of the 16 values from k of row m go to at(m, k, d1, d2): digit 1 at d1, digit 2 at d2.
template <class At>
static void pkf_quantize(const float* x, int64_t m0, int64_t m1, int G, const QActs& a,
                         const At& at) {
  const int64_t K = a.K, M = a.M, nb = K / 32, ng = nb / G, gl = 32 * G;
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t g = 0; g < ng; ++g) {
      const float* xs = x + m * K + g * gl;
      __m512 mx = _mm512_setzero_ps();
      for (int64_t i = 0; i < gl; i += 16)
        mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(xs + i)));
      const float amax = _mm512_reduce_max_ps(mx);
      const __m512 id = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
      const __m512 k254 = _mm512_set1_ps(254.0f);
      __m512i sum = _mm512_setzero_si512();
      for (int64_t i = 0; i < gl; i += 16) {
        const __m512 t = _mm512_mul_ps(_mm512_loadu_ps(xs + i), id);
        const __m512 r1 = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m512i q1 = _mm512_cvtps_epi32(r1);
        const __m512i q2 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_sub_ps(t, r1), k254));
        sum = _mm512_add_epi32(
            sum, _mm512_add_epi32(_mm512_mullo_epi32(q1, _mm512_set1_epi32(254)), q2));
        int8_t *d1, *d2;
        at(m, g * gl + i, d1, d2);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(d1), _mm512_cvtsepi32_epi8(q1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(d2), _mm512_cvtsepi32_epi8(q2));
      }
      a.d32[g * M + m] = amax / 127.0f / 254.0f;
      a.o32[g * M + m] = _mm512_reduce_add_epi32(sum);
    }
}

// KernelTable::packed_fine_acts: rows [m0, m1) of x in two int8 digits per group of 32 G values,
// in the tile-major layout above.
static void pkf_acts(const float* x, int64_t m0, int64_t m1, int G, const QActs& a) {
  const int64_t nb = a.K / 32;
  pkf_quantize(x, m0, m1, G, a, [&](int64_t m, int64_t k, int8_t*& d1, int8_t*& d2) {
    d1 = a.qs + ((m / PKF_MR * nb + k / 32) * PKF_MR + m % PKF_MR) * 64 + k % 32;
    d2 = d1 + 32;
  });
}

// One group's end in the arithmetic above: acc + f32(254 s1 + s2) * (scale * d32), s1 and s2
// the two digits' exact int32 sums (s2 holding the zero term). Every kernel of this layout (the
// VNNI tiles, the decode step, the AMX tiles in simd_amx.h) ends its groups here, which is what
// keeps their results bitwise the same.
static inline __m512 pkf_group(__m512 acc, __m512i s1, __m512i s2, __m512 sc, __m512 d) {
  const __m512i t = _mm512_add_epi32(_mm512_mullo_epi32(s1, _mm512_set1_epi32(254)), s2);
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(sc, d), acc);
}

// MR activation rows (from m0) x panel P (outputs y + i * ldy, lanes in mask k); M > 1.
template <int MR>
static inline void pkf_tile(const QActs& a, int64_t m0, const uint8_t* P, int64_t nb, int G,
                            float* y, int64_t ldy, __mmask16 k) {
  const int64_t M = a.M, ng = nb / G;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const int64_t step = static_cast<int64_t>(pkf_panel_bytes(a.K, G)) / nb;  // bytes per block
  __m512 acc[MR];
  for (int i = 0; i < MR; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const __m512i zero = _mm512_cvtepu8_epi32(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(P + 256 * nb + 32 * ng + 16 * g)));
    // Below 3 rows the high nibbles' products go to chains of their own (s3, s4; summed
    // exactly in int32 at the group's end).
    constexpr bool split = MR < 3;
    __m512i s1[MR], s2[MR], s3[MR], s4[MR];
    for (int i = 0; i < MR; ++i) {
      s1[i] = _mm512_setzero_si512();
      s2[i] = _mm512_mullo_epi32(zero, _mm512_set1_epi32(-a.o32[g * M + m0 + i]));
      s3[i] = s4[i] = _mm512_setzero_si512();
    }
    for (int64_t c = g * G; c < g * G + G; ++c) {
      const uint8_t* q = P + 256 * c;
      // 16 KiB ahead into L2, as pk_tile_q4 (one contiguous stream per run of panels).
      for (int o = 0; o < 320; o += 64)
        _mm_prefetch(reinterpret_cast<const char*>(P + 16384 + step * c + o), _MM_HINT_T1);
      const int8_t* xa = a.qs + ((m0 / PKF_MR * nb + c) * PKF_MR) * 64;  // row i at + 64 i
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const __m512i v = _mm512_load_si512(q + 64 * j);
        const __m512i lo = _mm512_and_si512(v, m4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
#pragma GCC unroll 8
        for (int i = 0; i < MR; ++i) {
          const int8_t* xr = xa + 64 * i + 4 * j;
          int32_t x1l, x1h, x2l, x2h;
          std::memcpy(&x1l, xr, 4);
          std::memcpy(&x1h, xr + 16, 4);
          std::memcpy(&x2l, xr + 32, 4);
          std::memcpy(&x2h, xr + 48, 4);
          s1[i] = _mm512_dpbusd_epi32(s1[i], lo, _mm512_set1_epi32(x1l));
          s2[i] = _mm512_dpbusd_epi32(s2[i], lo, _mm512_set1_epi32(x2l));
          if constexpr (split) {
            s3[i] = _mm512_dpbusd_epi32(s3[i], hi, _mm512_set1_epi32(x1h));
            s4[i] = _mm512_dpbusd_epi32(s4[i], hi, _mm512_set1_epi32(x2h));
          } else {
            s1[i] = _mm512_dpbusd_epi32(s1[i], hi, _mm512_set1_epi32(x1h));
            s2[i] = _mm512_dpbusd_epi32(s2[i], hi, _mm512_set1_epi32(x2h));
          }
        }
      }
    }
    const __m512 sc = _mm512_cvtph_ps(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(P + 256 * nb + 32 * g)));
    for (int i = 0; i < MR; ++i) {
      if constexpr (split) {
        s1[i] = _mm512_add_epi32(s1[i], s3[i]);
        s2[i] = _mm512_add_epi32(s2[i], s4[i]);
      }
      acc[i] = pkf_group(acc[i], s1[i], s2[i], sc, _mm512_set1_ps(a.d32[g * M + m0 + i]));
    }
  }
  for (int i = 0; i < MR; ++i) _mm512_mask_storeu_ps(y + i * ldy, k, acc[i]);
}

// One activation row (decode, M = 1) x NP panels Ps[h] (outputs ys[h], lanes in masks ks[h]),
// the panels' blocks in lockstep (NP DRAM streams per thread). The same int32 sums and float
// operations per (row, panel) as pkf_tile, so a decode row is bitwise the row of a batched step.
// Each activation dword is broadcast once for the NP panels (a block loop outside the panel
// loop): with the L1 prefetch below, 1.07-1.10x the decode rate of the panel-at-a-time loop on
// the 1.1B GPTQ shape (docs/quantization.md).
template <int NP>
static inline void pkf_tile_m1(const QActs& a, const uint8_t* const* Ps, int64_t nb, int G,
                               float* const* ys, const __mmask16* ks) {
  const int64_t ng = nb / G;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const int64_t step = static_cast<int64_t>(pkf_panel_bytes(a.K, G)) / nb;  // bytes per block
  __m512 acc[NP];
  for (int h = 0; h < NP; ++h) acc[h] = _mm512_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    __m512i s1[NP], s2[NP], s3[NP], s4[NP];
    for (int h = 0; h < NP; ++h) {
      const __m512i zero = _mm512_cvtepu8_epi32(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(Ps[h] + 256 * nb + 32 * ng + 16 * g)));
      s1[h] = s3[h] = s4[h] = _mm512_setzero_si512();
      s2[h] = _mm512_mullo_epi32(zero, _mm512_set1_epi32(-a.o32[g]));
    }
    for (int64_t c = g * G; c < g * G + G; ++c) {
      // 16 KiB ahead into L2 as pkf_tile, and 1 KiB ahead from there into L1 (without the
      // second: about 0.95x the decode rate on the 1.1B GPTQ shape).
      for (int h = 0; h < NP; ++h)
        for (int o = 0; o < 320; o += 64) {
          _mm_prefetch(reinterpret_cast<const char*>(Ps[h] + 16384 + step * c + o), _MM_HINT_T1);
          _mm_prefetch(reinterpret_cast<const char*>(Ps[h] + 1024 + step * c + o), _MM_HINT_T0);
        }
      const int8_t* xr = a.qs + c * PKF_MR * 64;  // row 0 of tile 0
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        int32_t x1l, x1h, x2l, x2h;
        std::memcpy(&x1l, xr + 4 * j, 4);
        std::memcpy(&x1h, xr + 4 * j + 16, 4);
        std::memcpy(&x2l, xr + 4 * j + 32, 4);
        std::memcpy(&x2h, xr + 4 * j + 48, 4);
        const __m512i b1l = _mm512_set1_epi32(x1l), b1h = _mm512_set1_epi32(x1h),
                      b2l = _mm512_set1_epi32(x2l), b2h = _mm512_set1_epi32(x2h);
        for (int h = 0; h < NP; ++h) {
          const __m512i v = _mm512_load_si512(Ps[h] + 256 * c + 64 * j);
          const __m512i lo = _mm512_and_si512(v, m4);
          const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
          s1[h] = _mm512_dpbusd_epi32(s1[h], lo, b1l);
          s2[h] = _mm512_dpbusd_epi32(s2[h], lo, b2l);
          s3[h] = _mm512_dpbusd_epi32(s3[h], hi, b1h);
          s4[h] = _mm512_dpbusd_epi32(s4[h], hi, b2h);
        }
      }
    }
    const __m512 d = _mm512_set1_ps(a.d32[g]);
    for (int h = 0; h < NP; ++h) {
      const __m512 sc = _mm512_cvtph_ps(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(Ps[h] + 256 * nb + 32 * g)));
      acc[h] =
          pkf_group(acc[h], _mm512_add_epi32(s1[h], s3[h]), _mm512_add_epi32(s2[h], s4[h]), sc, d);
    }
  }
  for (int h = 0; h < NP; ++h) _mm512_mask_storeu_ps(ys[h], ks[h], acc[h]);
}

// KernelTable::packed_fine_matmul: panels [p0, p1), every activation row, 6 rows per tile; at
// M = 1 four panels at a time (p + u * a quarter of the range).
static void pkf_matmul(const QActs& a, const Matrix& w, int64_t p0, int64_t p1, float* y,
                       int64_t ldy) {
  int32_t G;
  std::memcpy(&G, w.packed, 4);
  const int64_t nb = a.K / 32, M = a.M;
  const size_t pb = pkf_panel_bytes(a.K, G);
  const auto panel = [&](int64_t p, const uint8_t*& P, float*& yp, __mmask16& k) {
    pk_panel(w.packed + PKF_HEADER, pb, w.rows, y, p, P, yp, k);
  };
  if (M == 1) {
    // Four panels a quarter of the range apart: four DRAM streams per thread; then the 0-3
    // panels left over side by side.
    constexpr int S = 4;
    const int64_t h = (p1 - p0) / S;
    const uint8_t* Ps[S];
    float* ys[S];
    __mmask16 ks[S];
    for (int64_t p = p0; p < p0 + h; ++p) {
      for (int u = 0; u < S; ++u) panel(p + u * h, Ps[u], ys[u], ks[u]);
      pkf_tile_m1<S>(a, Ps, nb, G, ys, ks);
    }
    const int64_t left = p1 - p0 - S * h;
    for (int u = 0; u < left; ++u) panel(p0 + S * h + u, Ps[u], ys[u], ks[u]);
    if (left == 1) pkf_tile_m1<1>(a, Ps, nb, G, ys, ks);
    if (left == 2) pkf_tile_m1<2>(a, Ps, nb, G, ys, ks);
    if (left == 3) pkf_tile_m1<3>(a, Ps, nb, G, ys, ks);
    return;
  }
  using Tile =
      void (*)(const QActs&, int64_t, const uint8_t*, int64_t, int, float*, int64_t, __mmask16);
  // Up to 6 rows a tile: 3 accumulators a row (two digits' int32 sums and the float result) stay
  // in registers beside the unpacked weights.
  static_assert(PKF_MR == 6);
  static constexpr Tile kTiles[7] = {nullptr,      &pkf_tile<1>, &pkf_tile<2>, &pkf_tile<3>,
                                     &pkf_tile<4>, &pkf_tile<5>, &pkf_tile<6>};
  pk_row_blocks(M, pk_row_block(2 * a.K, PKF_MR), PKF_MR, p0, p1, ldy, panel,  // two digits
                [&](int64_t m, int64_t rows, const uint8_t* P, float* ym, __mmask16 k) {
                  kTiles[rows](a, m, P, nb, G, ym, ldy, k);
                });
}
#endif
