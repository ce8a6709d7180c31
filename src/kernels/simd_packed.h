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

// KernelTable::packed_acts: activation rows [m0, m1) of x quantized per 32 values (quant32),
// block-major so that a tile's rows of one block lie together: row m's block c at qs + 32 (c M +
// m), its scale at d32[c M + m] and its offset term at o32[c M + m] (-8 x the sum of the int8
// values).
static void pk_acts(const float* x, int64_t m0, int64_t m1, const QActs& a) {
  const int64_t K = a.K, M = a.M, nc = K / 32;
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t c = 0; c < nc; ++c) {
      const Q32 q = quant32(x + m * K + c * 32);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(a.qs + (c * M + m) * 32), q.q0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(a.qs + (c * M + m) * 32 + 16), q.q1);
      a.d32[c * M + m] = q.d;
      a.o32[c * M + m] = -8 * (q.s0 + q.s1);
    }
}

// MR activation rows (from m0) x NP panels Ps[h] (outputs ys[h] + i * ldy, lanes in masks ks[h]),
// the panels' blocks in lockstep: at M = 1 two panels far apart are two DRAM streams per thread.
template <int MR, int NP = 1>
static inline void pk_tile_q4(const QActs& a, int64_t m0, const uint8_t* const* Ps, int64_t nb,
                              float* const* ys, int64_t ldy, const __mmask16* ks) {
  constexpr int CH = MR < 4 ? 2 : 1;
  const int64_t M = a.M;
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
      for (int o = 0; o < 320; o += 64)
        _mm_prefetch(reinterpret_cast<const char*>(P + 16384 + 288 * c + o), _MM_HINT_T1);
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
      __m512i sv[CH][MR];
      for (int i = 0; i < MR; ++i) {
        sv[0][i] = _mm512_set1_epi32(a.o32[c * M + m0 + i]);
        if constexpr (CH == 2) sv[1][i] = _mm512_setzero_si512();
      }
      for (int j = 0; j < 8; ++j)
        for (int i = 0; i < MR; ++i) {
          int32_t x;
          std::memcpy(&x, a.qs + (c * M + m0 + i) * 32 + 4 * j, 4);
          sv[j % CH][i] = _mm512_dpbusd_epi32(sv[j % CH][i], w[j], _mm512_set1_epi32(x));
        }
      for (int i = 0; i < MR; ++i) {
        __m512i t = sv[0][i];
        if constexpr (CH == 2) t = _mm512_add_epi32(t, sv[1][i]);
        const __m512 scale = _mm512_mul_ps(wd, _mm512_set1_ps(a.d32[c * M + m0 + i]));
        acc[h][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), scale, acc[h][i]);
      }
    }
  }
  for (int h = 0; h < NP; ++h)
    for (int i = 0; i < MR; ++i) _mm512_mask_storeu_ps(ys[h] + i * ldy, ks[h], acc[h][i]);
}

// KernelTable::packed_matmul for Q4_0: panels [p0, p1), every activation row, 8 rows per tile;
// at M = 1 the panels in pairs (p, p + half the range).
static void pk_matmul_q4_0(const QActs& a, const Matrix& w, int64_t p0, int64_t p1, float* y,
                           int64_t ldy) {
  const int64_t nb = a.K / 32, M = a.M;
  const size_t pb = pk_panel_bytes(a.K);
  const auto panel = [&](int64_t p, const uint8_t*& P, float*& yp, __mmask16& k) {
    P = w.packed + static_cast<size_t>(p) * pb;
    const int64_t n = p * PK_ROWS, left = w.rows - n;
    k = static_cast<__mmask16>(left >= 16 ? 0xFFFF : (1u << left) - 1);
    yp = y + n;
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
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* P;
    float* yp;
    __mmask16 k;
    panel(p, P, yp, k);
    for (int64_t m = 0; m < M; m += 8) {
      float* ym = yp + m * ldy;
      kTiles[imin(8, M - m)](a, m, &P, nb, &ym, ldy, &k);
    }
  }
}
#endif
