// f32 / f16 / bf16 matmul row tiles and decode_rows (the M = 1 row walk every matmul
// entry shares, with the shared row queue).
// Part of simd_impl.h: included once per ISA translation unit inside an anonymous namespace
// (see the ODR rule and the numerics there).
#pragma once

// ---------------------------------------------------------------- f32 / f16 / bf16 matmul
enum class WF { F32, F16, BF16 };

template <WF T>
static inline vf wload(const uint8_t* row, int64_t k) {
  if constexpr (T == WF::F32)
    return vload(reinterpret_cast<const float*>(row) + k);
  else if constexpr (T == WF::F16)
    return vload_f16(row + 2 * k);
  else
    return vload_bf16(row + 2 * k);
}
template <WF T>
static inline float wscalar(const uint8_t* row, int64_t k) {
  if constexpr (T == WF::F32) {
    float v;
    __builtin_memcpy(&v, row + 4 * k, 4);
    return v;
  } else {
    uint16_t h;
    __builtin_memcpy(&h, row + 2 * k, 2);
    if constexpr (T == WF::F16) return _cvtsh_ss(h);
    uint32_t b = static_cast<uint32_t>(h) << 16;
    float v;
    __builtin_memcpy(&v, &b, 4);
    return v;
  }
}

// Row order of the decode (M = 1) matvecs, which stream every weight byte once from DRAM. A
// step works on R rows at once (R independent accumulators), taken from R equal sub-ranges of
// [n0, n1): rows n0 + i, n0 + Q + i, ... (Q = (n1 - n0) / R). Each of the R memory streams walks
// consecutive rows, which lie end to end, and stays sequential; steps of R neighbouring rows
// instead make R interleaved streams inside the same pages, which the hardware prefetchers do not
// follow (Q4_0 at K = 2048: 17.5 -> 23.5 GB/s on 2 threads). Software prefetch runs one row ahead
// in each stream. step(rows, pf) runs R rows, one(rows, pf) a single leftover row. Then, with a
// RowQueue installed for this thread, chunks of the queue's rows the same way until none are left
// (KernelTable::matvec_row_queue).
template <int R, class Step, class One>
static inline void decode_rows(int64_t n0, int64_t n1, size_t rb, Step&& step, One&& one) {
  RowQueue* rq = row_queue();
  for (;;) {
    const int64_t q = (n1 - n0) / R;
    for (int64_t i = 0; i < q; ++i) {
      int64_t rows[R];
      for (int r = 0; r < R; ++r) rows[r] = n0 + r * q + i;
      step(rows, rb);
    }
    for (int64_t n = n0 + R * q; n < n1; ++n) one(&n, rb);
    if (!rq) return;
    n0 = __atomic_fetch_add(&rq->next, rq->chunk, __ATOMIC_RELAXED);
    if (n0 >= rq->end) return;
    n1 = imin(rq->end, n0 + rq->chunk);
  }
}

// MT activation rows x NT weight rows, full K.
template <WF T, int MT, int NT>
static inline void float_tile(const float* x, int64_t K, const uint8_t* w, size_t rb,
                              const int64_t* rows, size_t pf, float* y, int64_t ldy) {
  vf acc[MT][NT];
  for (int i = 0; i < MT; ++i)
    for (int j = 0; j < NT; ++j) acc[i][j] = vzero();
  const uint8_t* wr[NT];
  for (int j = 0; j < NT; ++j) wr[j] = w + static_cast<size_t>(rows[j]) * rb;
  int64_t k = 0;
  for (; k + VL <= K; k += VL) {
    vf wv[NT];
    if (pf)
      for (int j = 0; j < NT; ++j)
        _mm_prefetch(reinterpret_cast<const char*>(wr[j]) + pf + k * (T == WF::F32 ? 4 : 2),
                     _MM_HINT_T0);
    for (int j = 0; j < NT; ++j) wv[j] = wload<T>(wr[j], k);
    for (int i = 0; i < MT; ++i) {
      const vf xv = vload(x + i * K + k);
      for (int j = 0; j < NT; ++j) acc[i][j] = vfma(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MT; ++i)
    for (int j = 0; j < NT; ++j) {
      float s = vhsum(acc[i][j]);
      for (int64_t kk = k; kk < K; ++kk) s += x[i * K + kk] * wscalar<T>(wr[j], kk);
      y[i * ldy + rows[j]] = s;
    }
}

template <WF T, int MT>
static void float_rows(const float* x, int64_t K, const uint8_t* w, size_t rb, int64_t n0,
                       int64_t n1, float* y, int64_t ldy) {
  if (MT == 1) {  // decode: prefetching streams (decode_rows)
    decode_rows<4>(
        n0, n1, rb,
        [&](const int64_t* rows, size_t pf) { float_tile<T, 1, 4>(x, K, w, rb, rows, pf, y, ldy); },
        [&](const int64_t* rows, size_t pf) {
          float_tile<T, 1, 1>(x, K, w, rb, rows, pf, y, ldy);
        });
    return;
  }
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) {
    const int64_t rows[4] = {n, n + 1, n + 2, n + 3};
    float_tile<T, MT, 4>(x, K, w, rb, rows, 0, y, ldy);
  }
  for (; n < n1; ++n) float_tile<T, MT, 1>(x, K, w, rb, &n, 0, y, ldy);
}

template <WF T>
static void mm_float(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0, int64_t n1,
                     float* y, int64_t ldy, float*) {
  constexpr int MB = OHM_SIMD_W512 ? 4 : 2;
  int64_t m = 0;
  // Tile over activation rows inside a band of weight rows, so the band stays in L1/L2.
  const int64_t band = M > 1 ? 16 : (n1 - n0);
  for (int64_t b0 = n0; b0 < n1; b0 += band) {
    const int64_t b1 = imin(n1, b0 + band);
    for (m = 0; m + MB <= M; m += MB)
      float_rows<T, MB>(x + m * K, K, w.data, w.row_bytes, b0, b1, y + m * ldy, ldy);
    for (; m < M; ++m)
      float_rows<T, 1>(x + m * K, K, w.data, w.row_bytes, b0, b1, y + m * ldy, ldy);
  }
}
