// AMX tile GEMMs for batched matmuls (M > 1): AMX-INT8 for the block-quantized weights of the
// qgemm path (Q4_0, Q8_0, Q4_K, Q6_K; plain and fine activations) and for the packed int4 groups
// of HF GPTQ / AWQ checkpoints (from 16 rows), and AMX-BF16 for f16 / bf16 weights. Included by
// avx512.cpp only, after simd_impl.h, inside its anonymous namespace (the ODR rule of simd_impl.h
// holds here too).
//
// The kernels are written against a tile backend TB with the operations of Intel's AMX
// (Intel SDM vol. 1 ch. 18 and vol. 2: LDTILECFG, TILELOADD, TILESTORED, TILEZERO, TDPBSUD,
// TDPBF16PS, TILERELEASE):
//   * AmxHw issues the instructions (built where the compiler has -mamx-tile/-int8/-bf16);
//   * AmxEmu runs the SDM's pseudocode in scalar C++ on a per-thread tile state, checking every
//     shape rule the hardware faults on. It is how the kernels are tested on CPUs without AMX
//     (kernels::amx_table(true)), and it is slow: a test and debugging aid only.
//
// Tiles (both kernels): C tiles 0..3 hold int32 / f32 sums for 2 row tiles x 2 halves of a 32-
// feature panel (C0 rows m.., features 0-15; C1 rows m.., 16-31; C2, C3 the same for rows
// m+16..), A tiles 4 and 5 the activations (rows m.. and m+16..; or, for fine activations, the
// two digits of rows m..), B tiles 6 and 7 the weights of features 0-15 and 16-31. The four
// products are always (C0 += A4 B6), (C1 += A4 B7), (C2 += A5 B6), (C3 += A5 B7).
//
// Numerics:
//   * INT8: TDPBSUD (signed activation bytes x unsigned weight bytes) gives each sub-block's
//     int32 sum exactly, then the f32 scaling is qg_tile's, operation for operation, so the
//     results are bitwise those of the AVX-512 qgemm (qg_gemm) for every M.
//   * BF16: each activation is split into two bf16 digits (x ~ h + l, |x - h - l| <= 2^-17 |x|)
//     and each f16 weight into two (exactly: f16 has 11 significant bits); bf16 weights are one
//     digit. The digit products are exact in f32 and summed in f32 tiles in k order (RNE, input
//     and output denormals flushed, as TDPBF16PS does): |diff| <= ~2^-16 sum|x*w| + f32
//     accumulation, within the float kernels' test tolerance.
#pragma once

#if OHM_SIMD_W512

// LDTILECFG's 64-byte operand, palette 1: 8 tiles of up to 16 rows x 64 bytes.
struct AmxCfg {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved0[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(AmxCfg) == 64, "TILECFG is 64 bytes");

// The shapes both kernels use: r0 rows in row tile 0 (tiles 0, 1, 4), r1 in row tile 1 (2, 3,
// 5; 0 leaves them unconfigured), a_colsb bytes of K per A row, b_rows rows per B tile.
static inline AmxCfg amx_cfg(int r0, int r1, int a_colsb, int b_rows) {
  AmxCfg c;
  const auto set = [&c](int t, int rows, int colsb) {
    c.rows[t] = static_cast<uint8_t>(rows);
    c.colsb[t] = static_cast<uint16_t>(rows > 0 ? colsb : 0);
  };
  set(0, r0, 64);
  set(1, r0, 64);
  set(2, r1, 64);
  set(3, r1, 64);
  set(4, r0, a_colsb);
  set(5, r1, a_colsb);
  set(6, b_rows, 64);
  set(7, b_rows, 64);
  return c;
}

// ---------------------------------------------------------------- the emulated tile unit
struct AmxEmu {
  struct State {
    AmxCfg cfg;
    bool configured = false;
    alignas(64) uint8_t t[8][16][64];
  };
  static State& st() {
    static thread_local State s;
    return s;
  }
  [[noreturn]] static void fault(const char* what, int t) {
    std::fprintf(stderr, "ohm: emulated AMX: %s (tile %d); the hardware would fault here\n", what,
                 t);
    std::abort();
  }
  static void check(int t) {
    const State& s = st();
    if (!s.configured) fault("tile instruction before LDTILECFG", t);
    if (s.cfg.rows[t] == 0) fault("tile not configured", t);
  }
  static void config(const AmxCfg& c) {
    if (c.palette != 1) fault("palette other than 1", -1);
    for (int t = 0; t < 16; ++t) {
      if (t >= 8 && (c.rows[t] || c.colsb[t])) fault("palette 1 has 8 tiles", t);
      if (c.rows[t] > 16 || c.colsb[t] > 64 || (c.rows[t] == 0) != (c.colsb[t] == 0))
        fault("invalid tile shape", t);
    }
    State& s = st();
    s.cfg = c;
    s.configured = true;
    std::memset(s.t, 0, sizeof s.t);  // LDTILECFG zeroes the tile data
  }
  static void release() {
    State& s = st();
    s.configured = false;
    std::memset(s.t, 0, sizeof s.t);
  }
  // Bytes past colsb in a row, and rows past `rows`, read as zero (write_row_and_zero /
  // zero_upper_rows).
  static void zero(int t) {
    check(t);
    std::memset(st().t[t], 0, 16 * 64);
  }
  static void load(int t, const void* p, int64_t stride) {
    check(t);
    State& s = st();
    const int rows = s.cfg.rows[t], colsb = s.cfg.colsb[t];
    std::memset(s.t[t], 0, 16 * 64);
    for (int r = 0; r < rows; ++r)
      std::memcpy(s.t[t][r], static_cast<const uint8_t*>(p) + r * stride, colsb);
  }
  static void store(int t, void* p, int64_t stride) {
    check(t);
    const State& s = st();
    for (int r = 0; r < s.cfg.rows[t]; ++r)
      std::memcpy(static_cast<uint8_t*>(p) + r * stride, s.t[t][r], s.cfg.colsb[t]);
  }
  static void check_dp(int c, int a, int b) {
    check(c);
    check(a);
    check(b);
    const AmxCfg& g = st().cfg;
    if (c == a || c == b || a == b) fault("tile operands must differ", c);
    if (g.colsb[a] % 4 || g.colsb[a] / 4 != g.rows[b]) fault("A columns != 4 x B rows", a);
    if (g.colsb[c] != g.colsb[b]) fault("C columns != B columns", c);
    if (g.rows[c] != g.rows[a]) fault("C rows != A rows", c);
  }
  // TDPBSUD: C.dword[m][n] += sum over k, i < 4 of signed A.byte[m][4k+i] x unsigned
  // B.byte[k][4n+i] (32-bit wrap-around).
  static void dpbsud(int c, int a, int b) {
    check_dp(c, a, b);
    State& s = st();
    const int rows = s.cfg.rows[c], nk = s.cfg.colsb[a] / 4, nn = s.cfg.colsb[c] / 4;
    for (int m = 0; m < rows; ++m)
      for (int n = 0; n < nn; ++n) {
        uint32_t acc;
        std::memcpy(&acc, s.t[c][m] + 4 * n, 4);
        for (int k = 0; k < nk; ++k)
          for (int i = 0; i < 4; ++i)
            acc += static_cast<uint32_t>(
                static_cast<int32_t>(static_cast<int8_t>(s.t[a][m][4 * k + i])) *
                static_cast<int32_t>(s.t[b][k][4 * n + i]));
        std::memcpy(s.t[c][m] + 4 * n, &acc, 4);
      }
  }
  static float bf16_in(const uint8_t* p) {  // make_fp32 with input denormals as zero
    uint16_t h;
    std::memcpy(&h, p, 2);
    uint32_t u = static_cast<uint32_t>(h) << 16;
    if ((u & 0x7F800000u) == 0) u &= 0x80000000u;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  static float ftz(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7F800000u) == 0) u &= 0x80000000u;
    std::memcpy(&f, &u, 4);
    return f;
  }
  // TDPBF16PS: C.fp32[m][n] += A.bf16[m][2k] x B.bf16[k][2n], then += A.bf16[m][2k+1] x
  // B.bf16[k][2n+1], for k in order; each accumulation an FMA rounded to nearest even, output
  // denormals flushed.
  static void dpbf16ps(int c, int a, int b) {
    check_dp(c, a, b);
    State& s = st();
    const int rows = s.cfg.rows[c], nk = s.cfg.colsb[a] / 4, nn = s.cfg.colsb[c] / 4;
    for (int m = 0; m < rows; ++m)
      for (int n = 0; n < nn; ++n) {
        float acc;
        std::memcpy(&acc, s.t[c][m] + 4 * n, 4);
        for (int k = 0; k < nk; ++k)
          for (int i = 0; i < 2; ++i)
            acc = ftz(__builtin_fmaf(bf16_in(s.t[a][m] + 4 * k + 2 * i),
                                     bf16_in(s.t[b][k] + 4 * n + 2 * i), acc));
        std::memcpy(s.t[c][m] + 4 * n, &acc, 4);
      }
  }
  template <int T>
  static void tzero() {
    zero(T);
  }
  template <int T>
  static void tload(const void* p, int64_t stride) {
    load(T, p, stride);
  }
  template <int T>
  static void tstore(void* p, int64_t stride) {
    store(T, p, stride);
  }
  template <int C, int A, int B>
  static void tdp_int8() {
    dpbsud(C, A, B);
  }
  template <int C, int A, int B>
  static void tdp_bf16() {
    dpbf16ps(C, A, B);
  }
};

// ---------------------------------------------------------------- the instructions
#if defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__AMX_BF16__)
#define OHM_AMX_HW 1
// GCC's tile intrinsics are inline asm taking the tile number as a literal (and without a memory
// clobber): each template below expands to the one literal it names, between compiler barriers.
#define OHM_AMX_BARRIER() __asm__ __volatile__("" ::: "memory")
struct AmxHw {
  static void config(const AmxCfg& c) {
    OHM_AMX_BARRIER();
    _tile_loadconfig(&c);
  }
  static void release() { _tile_release(); }
  template <int T>
  static void tzero() {
#define OHM_AMX_Z(i) \
  if constexpr (T == i) _tile_zero(i);
    OHM_AMX_Z(0) OHM_AMX_Z(1) OHM_AMX_Z(2) OHM_AMX_Z(3)
#undef OHM_AMX_Z
  }
  template <int T>
  static void tload(const void* p, int64_t stride) {
    OHM_AMX_BARRIER();
#define OHM_AMX_L(i) \
  if constexpr (T == i) _tile_loadd(i, p, stride);
    OHM_AMX_L(0)
    OHM_AMX_L(1) OHM_AMX_L(2) OHM_AMX_L(3) OHM_AMX_L(4) OHM_AMX_L(5) OHM_AMX_L(6) OHM_AMX_L(7)
#undef OHM_AMX_L
  }
  template <int T>
  static void tstore(void* p, int64_t stride) {
#define OHM_AMX_S(i) \
  if constexpr (T == i) _tile_stored(i, p, stride);
    OHM_AMX_S(0)
    OHM_AMX_S(1)
    OHM_AMX_S(2)
    OHM_AMX_S(3)
#undef OHM_AMX_S
    OHM_AMX_BARRIER();
  }
  template <int C, int A, int B>
  static void tdp_int8() {
#define OHM_AMX_D(c, a, b) \
  if constexpr (C == c && A == a && B == b) _tile_dpbsud(c, a, b);
    OHM_AMX_D(0, 4, 6) OHM_AMX_D(1, 4, 7) OHM_AMX_D(2, 5, 6) OHM_AMX_D(3, 5, 7)
#undef OHM_AMX_D
  }
  template <int C, int A, int B>
  static void tdp_bf16() {
#define OHM_AMX_D(c, a, b) \
  if constexpr (C == c && A == a && B == b) _tile_dpbf16ps(c, a, b);
    OHM_AMX_D(0, 4, 6) OHM_AMX_D(1, 4, 7) OHM_AMX_D(2, 5, 6) OHM_AMX_D(3, 5, 7)
#undef OHM_AMX_D
  }
};
#undef OHM_AMX_BARRIER
#endif

// ---------------------------------------------------------------- AMX-INT8: the qgemm types
// qg_gemm's loop with the inner product on tiles: a 32-feature panel packed by qg_pack (per
// chunk of 32 values, 8 quads x 32 rows x 4 bytes: the B tile layout, 128 bytes a K quad) and
// 32-row blocks of activations (F: 16 rows, their two digits in A4 / A5).
template <QK T, bool F, class TB>
static void amx_qgemm(const QActs& a, const Matrix& w, int64_t n0, int64_t n1, float* y,
                      int64_t ldy) {
  constexpr int NS = T == QK::Q6_K ? 2 : 1;  // sub-blocks of 32 / NS values
  constexpr int SB = 32 / NS;
  constexpr int MB = F ? 16 : 32;  // rows a block
  const int64_t M = a.M, K = a.K, nc = K / 32;
  float* acc = thread_scratch(5, 32 * 32 + 4 * 256);  // [32 rows][32], then C as int32
  int32_t* ci = reinterpret_cast<int32_t*>(acc + 32 * 32);
  int cur0 = -1, cur1 = -1;
  qg_panels<T>(
      w, n0, n1, nc,
      [&](int64_t n, __mmask16 k0, __mmask16 k1, int64_t c0, int64_t c1, const uint8_t* pw,
          const float* ps, const float* po) {
        for (int64_t m = 0; m < M; m += MB) {
          const int rows = static_cast<int>(imin(MB, M - m));
          const int r0 = rows < 16 ? rows : 16, r1 = F ? r0 : rows - r0;
          if (r0 != cur0 || r1 != cur1) {
            const AmxCfg cfg = amx_cfg(r0, r1, SB, SB / 4);
            TB::config(cfg);
            cur0 = r0;
            cur1 = r1;
          }
          const int out_rows = F ? r0 : rows;
          for (int i = 0; i < out_rows; ++i) {
            float* ar = acc + i * 32;
            const float* yr = y + (m + i) * ldy + n;
            _mm512_storeu_ps(ar, c0 > 0 ? _mm512_maskz_loadu_ps(k0, yr) : _mm512_setzero_ps());
            _mm512_storeu_ps(ar + 16,
                             c0 > 0 ? _mm512_maskz_loadu_ps(k1, yr + 16) : _mm512_setzero_ps());
          }
          for (int64_t c = c0; c < c1; ++c)
            for (int h = 0; h < NS; ++h) {
              const int64_t ko = c * 32 + h * SB;
              TB::template tload<4>(a.qs + m * K + ko, K);
              if (r1 > 0) TB::template tload<5>((F ? a.qs2 + m * K : a.qs + (m + 16) * K) + ko, K);
              const uint8_t* pb = pw + (c - c0) * 1024 + h * (8 / NS) * 128;
              TB::template tload<6>(pb, 128);
              TB::template tload<7>(pb + 64, 128);
              TB::template tzero<0>();
              TB::template tzero<1>();
              TB::template tdp_int8<0, 4, 6>();
              TB::template tdp_int8<1, 4, 7>();
              TB::template tstore<0>(ci, 64);
              TB::template tstore<1>(ci + 256, 64);
              if (r1 > 0) {
                TB::template tzero<2>();
                TB::template tzero<3>();
                TB::template tdp_int8<2, 5, 6>();
                TB::template tdp_int8<3, 5, 7>();
                TB::template tstore<2>(ci + 512, 64);
                TB::template tstore<3>(ci + 768, 64);
              }
              // qg_tile's scaling, per row: y += cvt(is) * (s * xd) + o * xs (for Q4_0 / Q8_0
              // the offset in int32: y += cvt(is + o32 << ZS) * (s * xd)).
              const float* sc = ps + ((c - c0) * NS + h) * 32;
              const float* oc = po + ((c - c0) * NS + h) * 32;
              const __m512 s0 = _mm512_loadu_ps(sc), s1 = _mm512_loadu_ps(sc + 16);
              const __m512 o0 = _mm512_loadu_ps(oc), o1 = _mm512_loadu_ps(oc + 16);
              for (int i = 0; i < out_rows; ++i) {
                const int t = F ? 0 : i / 16, r = F ? i : i % 16;
                __m512i is0 = _mm512_loadu_si512(ci + (2 * t) * 256 + r * 16);
                __m512i is1 = _mm512_loadu_si512(ci + (2 * t + 1) * 256 + r * 16);
                if constexpr (F) {
                  const __m512i c254 = _mm512_set1_epi32(254);
                  is0 = _mm512_add_epi32(_mm512_mullo_epi32(is0, c254),
                                         _mm512_loadu_si512(ci + 512 + r * 16));
                  is1 = _mm512_add_epi32(_mm512_mullo_epi32(is1, c254),
                                         _mm512_loadu_si512(ci + 768 + r * 16));
                }
                const int64_t cidx = (m + i) * nc + c;
                constexpr int ZS = qg_int_offset<T, F>();
                if constexpr (ZS >= 0) {  // the weight offset in int32, as qg_tile
                  const __m512i z = _mm512_slli_epi32(_mm512_set1_epi32(a.o32[cidx]), ZS);
                  is0 = _mm512_add_epi32(is0, z);
                  is1 = _mm512_add_epi32(is1, z);
                }
                const __m512 xd = _mm512_set1_ps(a.d32[cidx]);
                float* ar = acc + i * 32;
                __m512 v0 = _mm512_loadu_ps(ar), v1 = _mm512_loadu_ps(ar + 16);
                v0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is0), _mm512_mul_ps(s0, xd), v0);
                v1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is1), _mm512_mul_ps(s1, xd), v1);
                if constexpr (ZS < 0) {
                  const __m512 xs = _mm512_set1_ps(NS == 1 ? a.sd32[cidx] : a.sd16[2 * cidx + h]);
                  v0 = _mm512_fmadd_ps(o0, xs, v0);
                  v1 = _mm512_fmadd_ps(o1, xs, v1);
                }
                _mm512_storeu_ps(ar, v0);
                _mm512_storeu_ps(ar + 16, v1);
              }
            }
          for (int i = 0; i < out_rows; ++i) {
            float* yr = y + (m + i) * ldy + n;
            _mm512_mask_storeu_ps(yr, k0, _mm512_loadu_ps(acc + i * 32));
            _mm512_mask_storeu_ps(yr + 16, k1, _mm512_loadu_ps(acc + i * 32 + 16));
          }
        }
      });
  TB::release();
}

// KernelTable::matmul for the qgemm types on the AMX table: M = 1 as the AVX-512 table (decode
// stays on VNNI: one activation row cannot fill a tile), else the activations quantized once
// (qg_prepare) and amx_qgemm.
template <QK T, class TB>
static void mm_quant_amx(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0,
                         int64_t n1, float* y, int64_t ldy, float* scratch) {
  if (M < QGEMM_MIN_ROWS) return mm_quant<T>(x, M, K, w, n0, n1, y, ldy, scratch);
  const QActs a = qacts_in(thread_scratch(2, qacts_floats(M, K)), M, K);
  qg_prepare(x, 0, M, a);
  amx_qgemm<T, false, TB>(a, w, n0, n1, y, ldy);
}

// KernelTable::matmul_fine for Q4_0 / Q8_0 on the AMX table (mm_q32_fine's paths).
template <bool Q8, class TB>
static void mm_q32_fine_amx(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0,
                            int64_t n1, float* y, int64_t ldy, float* scratch) {
  if (M == 1) return mm_q32_fine<Q8>(x, M, K, w, n0, n1, y, ldy, scratch);
  const size_t nf = qacts_floats(M, K);
  float* buf = thread_scratch(2, nf + static_cast<size_t>(M * K + 3) / 4 + 16);
  QActs a = qacts_in(buf, M, K);
  a.qs2 = reinterpret_cast<int8_t*>(buf + nf);
  qg_prepare_fine(x, 0, M, a);
  amx_qgemm<Q8 ? QK::Q8_0 : QK::Q4_0, true, TB>(a, w, n0, n1, y, ldy);
}

// ---------------------------------------------------------------- AMX-INT8: packed int4 groups
// The GPTQ / AWQ panels of simd_packed.h (KernelTable::pack_fine's layout, shared with the
// AVX-512 tables) on INT8 tiles from AMX_PKF_MIN_ROWS activation rows; below that, and for
// decode, pkf_matmul's VNNI tiles. Two panels at a time, their nibbles unpacked once per call
// into B tile rows (block c of a panel: 8 rows of 64 bytes, the low nibbles of its four quant
// vectors then the high ones: K quads in order); 16-row blocks of activations, digit 1 in A4 and
// digit 2 in A5; per group C0 / C1 (digit 1 x panels 0 / 1) and C2 / C3 (digit 2), zeroed at the
// group's start, then pkf_tile's arithmetic on their int32 sums (the same exact S, the same f32
// operations in group order): the results are bitwise pkf_matmul's, so batch invariant.
// The row threshold is not tuned on AMX hardware (none was at hand).
constexpr int64_t AMX_PKF_MIN_ROWS = 16;

// KernelTable::packed_fine_acts of the AMX tables: from AMX_PKF_MIN_ROWS rows the two digits
// row-major (digit 1 of row m at qs + m K, digit 2 at qs + (M + m) K: the A tiles' rows), else
// pkf_acts' tiles; the same digits, d32 and o32 either way.
static void amx_pkf_acts(const float* x, int64_t m0, int64_t m1, int G, const QActs& a) {
  if (a.M < AMX_PKF_MIN_ROWS) return pkf_acts(x, m0, m1, G, a);
  const int64_t M = a.M, K = a.K;
  pkf_quantize(x, m0, m1, G, a, [&](int64_t m, int64_t k, int8_t*& d1, int8_t*& d2) {
    d1 = a.qs + m * K + k;
    d2 = a.qs + (M + m) * K + k;
  });
}

// A panel's u4 values as B tile rows (above): block c's 512 bytes at U + 512 c.
static void amx_pkf_unpack(const uint8_t* P, int64_t nb, uint8_t* U) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  for (int64_t c = 0; c < nb; ++c)
    for (int j = 0; j < 4; ++j) {
      const __m512i v = _mm512_loadu_si512(P + 256 * c + 64 * j);
      _mm512_storeu_si512(U + 512 * c + 64 * j, _mm512_and_si512(v, m4));
      _mm512_storeu_si512(U + 512 * c + 256 + 64 * j,
                          _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
    }
}

// KernelTable::packed_fine_matmul of the AMX tables: panels [p0, p1) (see above).
template <class TB>
static void amx_pkf_matmul(const QActs& a, const Matrix& w, int64_t p0, int64_t p1, float* y,
                           int64_t ldy) {
  if (a.M < AMX_PKF_MIN_ROWS) return pkf_matmul(a, w, p0, p1, y, ldy);
  int32_t G;
  std::memcpy(&G, w.packed, 4);
  const int64_t M = a.M, K = a.K, nb = K / 32, ng = nb / G, gl = 32 * G;
  const size_t pb = pkf_panel_bytes(K, G);
  const int kq = G >= 2 ? 64 : 32;  // K values a tile step (TDPBSUD takes up to 64)
  // Two panels' B rows (512 bytes a block each), then the C tiles' int32 sums and the 16 rows' f32
  // results (two panels of 16), per thread.
  uint8_t* U = reinterpret_cast<uint8_t*>(thread_scratch(3, static_cast<size_t>(nb) * 256));
  float* acc = thread_scratch(5, 4 * 256 + 16 * 32);
  int32_t* ci = reinterpret_cast<int32_t*>(acc + 16 * 32);
  const int8_t* x1 = a.qs;
  const int8_t* x2 = a.qs + M * K;
  int cur = -1;
  for (int64_t p = p0; p < p1; p += 2) {
    const int np = p + 1 < p1 ? 2 : 1;
    const uint8_t* P[2] = {};
    float* yp[2] = {};
    __mmask16 km[2] = {};
    for (int h = 0; h < np; ++h) {
      pk_panel(w.packed + PKF_HEADER, pb, w.rows, y, p + h, P[h], yp[h], km[h]);
      amx_pkf_unpack(P[h], nb, U + static_cast<size_t>(h * nb) * 512);
    }
    const uint8_t* U1 = U + static_cast<size_t>(nb) * 512;
    for (int64_t m = 0; m < M; m += 16) {
      const int rows = static_cast<int>(imin(16, M - m));
      if (rows != cur) {
        TB::config(amx_cfg(rows, rows, kq, kq / 4));
        cur = rows;
      }
      for (int i = 0; i < 32 * rows; i += 16) _mm512_storeu_ps(acc + i, _mm512_setzero_ps());
      for (int64_t g = 0; g < ng; ++g) {
        TB::template tzero<0>();
        TB::template tzero<2>();
        if (np == 2) {
          TB::template tzero<1>();
          TB::template tzero<3>();
        }
        for (int64_t k0 = g * gl; k0 < (g + 1) * gl; k0 += kq) {
          TB::template tload<4>(x1 + m * K + k0, K);
          TB::template tload<5>(x2 + m * K + k0, K);
          TB::template tload<6>(U + 16 * k0, 64);  // K quad k0 / 4, 64 bytes a row
          TB::template tdp_int8<0, 4, 6>();
          TB::template tdp_int8<2, 5, 6>();
          if (np == 2) {
            TB::template tload<7>(U1 + 16 * k0, 64);
            TB::template tdp_int8<1, 4, 7>();
            TB::template tdp_int8<3, 5, 7>();
          }
        }
        TB::template tstore<0>(ci, 64);
        TB::template tstore<2>(ci + 512, 64);
        if (np == 2) {
          TB::template tstore<1>(ci + 256, 64);
          TB::template tstore<3>(ci + 768, 64);
        }
        // pkf_group, as the VNNI tiles: S2 gets the zero term -zero * o32 first.
        __m512i zero[2];
        __m512 sc[2];
        for (int h = 0; h < np; ++h) {
          zero[h] = _mm512_cvtepu8_epi32(_mm_loadu_si128(
              reinterpret_cast<const __m128i*>(P[h] + 256 * nb + 32 * ng + 16 * g)));
          sc[h] = _mm512_cvtph_ps(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(P[h] + 256 * nb + 32 * g)));
        }
        for (int i = 0; i < rows; ++i) {
          const __m512i o = _mm512_set1_epi32(-a.o32[g * M + m + i]);
          const __m512 d = _mm512_set1_ps(a.d32[g * M + m + i]);
          for (int h = 0; h < np; ++h) {
            const __m512i s1 = _mm512_loadu_si512(ci + h * 256 + i * 16);
            const __m512i s2 = _mm512_add_epi32(_mm512_mullo_epi32(zero[h], o),
                                                _mm512_loadu_si512(ci + (2 + h) * 256 + i * 16));
            float* ar = acc + i * 32 + 16 * h;
            _mm512_storeu_ps(ar, pkf_group(_mm512_loadu_ps(ar), s1, s2, sc[h], d));
          }
        }
      }
      for (int i = 0; i < rows; ++i)
        for (int h = 0; h < np; ++h)
          _mm512_mask_storeu_ps(yp[h] + (m + i) * ldy, km[h],
                                _mm512_loadu_ps(acc + i * 32 + 16 * h));
    }
  }
  TB::release();
}

// ---------------------------------------------------------------- AMX-BF16: f16 / bf16 weights
// 16 floats to bf16, rounded to nearest even (NaN kept quiet).
static inline __m256i amx_bf16_rne(__m512 v) {
  const __m512i b = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(b, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)));
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(b, _mm512_set1_epi32(0x00400000)));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}
static inline __m512 amx_bf16_f32(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
// x [16] -> its two bf16 digits hi, lo (x ~ hi + lo).
static inline void amx_split16(__m512 v, uint16_t* hi, uint16_t* lo) {
  const __m256i h = amx_bf16_rne(v);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(hi), h);
  if (lo)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(lo),
                        amx_bf16_rne(_mm512_sub_ps(v, amx_bf16_f32(h))));
}

constexpr int64_t AMX_FKC = 256;  // K values a packed slice

// Packs rows [n, n+nr) (missing rows zero) x values [k0, k0 + AMX_FKC) into B tiles: digit d,
// chunk kc of 32 values, half hf: pw[((d * 8 + kc) * 2 + hf) * 512 + r * 32 + j * 2 + e] (u16)
// = digit d of w[n + 16 hf + j][k0 + 32 kc + 2 r + e] (16 rows of 16 bf16 pairs).
template <WF T>
static void amx_fpack(const Matrix& w, int64_t n, int nr, int64_t k0, int64_t kc, uint16_t* pw) {
  constexpr int ND = T == WF::F16 ? 2 : 1;
  const int64_t nch = kc / 32;
  alignas(64) uint16_t hi[32], lo[32];
  for (int j = 0; j < 32; ++j) {
    const int hf = j / 16, jj = j % 16;
    for (int64_t c = 0; c < nch; ++c) {
      if (j < nr) {
        const uint8_t* row = w.row(n + j) + 2 * (k0 + 32 * c);
        if constexpr (T == WF::BF16) {
          std::memcpy(hi, row, 64);
        } else {
          amx_split16(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row))),
                      hi, lo);
          amx_split16(
              _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 32))),
              hi + 16, lo + 16);
        }
      } else {
        std::memset(hi, 0, sizeof hi);
        std::memset(lo, 0, sizeof lo);
      }
      for (int d = 0; d < ND; ++d) {
        const uint16_t* src = d == 0 ? hi : lo;
        uint32_t* dst = reinterpret_cast<uint32_t*>(pw + ((d * 8 + c) * 2 + hf) * 512);
        for (int r = 0; r < 16; ++r) std::memcpy(dst + r * 16 + jj, src + 2 * r, 4);
      }
    }
  }
}

// y = x W^T for f16 / bf16 W on BF16 tiles (K a multiple of 32): the activations split into two
// bf16 digits once per call, then per 32-feature panel and K slice the weights' B tiles, and
// 32-row blocks accumulating in f32 tiles across the whole K (kept in a per-thread buffer between
// slices).
template <WF T, class TB>
static void amx_fgemm(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0, int64_t n1,
                      float* y, int64_t ldy) {
  constexpr int ND = T == WF::F16 ? 2 : 1;
  uint16_t* xh = reinterpret_cast<uint16_t*>(thread_scratch(7, static_cast<size_t>(M * K)));
  uint16_t* xl = xh + M * K;
  for (int64_t i = 0; i < M * K; i += 16) amx_split16(_mm512_loadu_ps(x + i), xh + i, xl + i);
  const int64_t mpad = (M + 31) / 32 * 32;
  float* acc = thread_scratch(5, static_cast<size_t>(mpad * 32));
  uint16_t* pw = reinterpret_cast<uint16_t*>(
      thread_scratch(3, static_cast<size_t>(ND * (AMX_FKC / 32) * 2 * 512 / 2)));
  int cur0 = -1, cur1 = -1;
  for (int64_t n = n0; n < n1; n += 32) {
    const int nr = static_cast<int>(imin(32, n1 - n));
    for (int64_t k0 = 0; k0 < K; k0 += AMX_FKC) {
      const int64_t kc = imin(AMX_FKC, K - k0);
      amx_fpack<T>(w, n, nr, k0, kc, pw);
      for (int64_t m = 0; m < M; m += 32) {
        const int rows = static_cast<int>(imin(32, M - m));
        const int r0 = rows < 16 ? rows : 16, r1 = rows - r0;
        if (r0 != cur0 || r1 != cur1) {
          const AmxCfg cfg = amx_cfg(r0, r1, 64, 16);
          TB::config(cfg);
          cur0 = r0;
          cur1 = r1;
        }
        float* a0 = acc + m * 32;
        float* a1 = a0 + 16 * 32;
        if (k0 == 0) {
          TB::template tzero<0>();
          TB::template tzero<1>();
          if (r1 > 0) {
            TB::template tzero<2>();
            TB::template tzero<3>();
          }
        } else {
          TB::template tload<0>(a0, 128);
          TB::template tload<1>(a0 + 16, 128);
          if (r1 > 0) {
            TB::template tload<2>(a1, 128);
            TB::template tload<3>(a1 + 16, 128);
          }
        }
        for (int64_t c = 0; c < kc / 32; ++c)
          for (int d = 0; d < ND; ++d) {
            const uint16_t* pb = pw + ((d * 8 + c) * 2) * 512;
            TB::template tload<6>(pb, 64);
            TB::template tload<7>(pb + 512, 64);
            for (int e = 0; e < 2; ++e) {  // the activation digits
              const uint16_t* xs = (e == 0 ? xh : xl) + m * K + k0 + 32 * c;
              TB::template tload<4>(xs, 2 * K);
              TB::template tdp_bf16<0, 4, 6>();
              TB::template tdp_bf16<1, 4, 7>();
              if (r1 > 0) {
                TB::template tload<5>(xs + 16 * K, 2 * K);
                TB::template tdp_bf16<2, 5, 6>();
                TB::template tdp_bf16<3, 5, 7>();
              }
            }
          }
        TB::template tstore<0>(a0, 128);
        TB::template tstore<1>(a0 + 16, 128);
        if (r1 > 0) {
          TB::template tstore<2>(a1, 128);
          TB::template tstore<3>(a1 + 16, 128);
        }
      }
    }
    __mmask16 k0m, k1m;
    panel_masks(nr, k0m, k1m);
    for (int64_t m = 0; m < M; ++m) {
      _mm512_mask_storeu_ps(y + m * ldy + n, k0m, _mm512_loadu_ps(acc + m * 32));
      _mm512_mask_storeu_ps(y + m * ldy + n + 16, k1m, _mm512_loadu_ps(acc + m * 32 + 16));
    }
  }
  TB::release();
}

// KernelTable::matmul for f16 / bf16 on the AMX table: BF16 tiles where M >= FG_MIN_ROWS and K
// is a multiple of 32, else the AVX-512 entry.
template <WF T, class TB>
static void mm_float_amx(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0,
                         int64_t n1, float* y, int64_t ldy, float* scratch) {
  if (M < FG_MIN_ROWS || K % 32 != 0) return mm_floatb<T>(x, M, K, w, n0, n1, y, ldy, scratch);
  amx_fgemm<T, TB>(x, M, K, w, n0, n1, y, ldy);
}

// Points the AMX-capable entries of a filled AVX-512 table at the tile kernels on backend TB.
template <class TB>
static void fill_amx(KernelTable& t) {
  t.packed_fine_acts = &amx_pkf_acts;
  t.packed_fine_matmul = &amx_pkf_matmul<TB>;
  t.matmul[static_cast<int>(DType::F16)] = &mm_float_amx<WF::F16, TB>;
  t.matmul[static_cast<int>(DType::BF16)] = &mm_float_amx<WF::BF16, TB>;
  for (const QuantTraits& q : kQuantTypes) {
    const auto d = static_cast<int>(q.dtype);
    switch (q.simd) {
      case SimdKernel::Q4_0:
        t.matmul[d] = &mm_quant_amx<QK::Q4_0, TB>;
        t.qgemm[d] = &amx_qgemm<QK::Q4_0, false, TB>;
        t.matmul_fine[d] = &mm_q32_fine_amx<false, TB>;
        break;
      case SimdKernel::Q8_0:
        t.matmul[d] = &mm_quant_amx<QK::Q8_0, TB>;
        t.qgemm[d] = &amx_qgemm<QK::Q8_0, false, TB>;
        t.matmul_fine[d] = &mm_q32_fine_amx<true, TB>;
        break;
      case SimdKernel::Q4_K:
        t.matmul[d] = &mm_quant_amx<QK::Q4_K, TB>;
        t.qgemm[d] = &amx_qgemm<QK::Q4_K, false, TB>;
        break;
      case SimdKernel::Q6_K:
        t.matmul[d] = &mm_quant_amx<QK::Q6_K, TB>;
        t.qgemm[d] = &amx_qgemm<QK::Q6_K, false, TB>;
        break;
      case SimdKernel::None:
        break;
    }
  }
}

#endif  // OHM_SIMD_W512
