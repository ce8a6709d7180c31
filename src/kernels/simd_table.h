// The block-quantized matmul entry (mm_quant), the SIMD family of each QuantTraits row,
// and fill_table.
// Part of simd_impl.h: included once per ISA translation unit inside an anonymous namespace
// (see the ODR rule and the numerics there).
#pragma once

// The row-tile paths of mm_quant (act_quantize once per call, then qtile / the AVX2 Q4_0 and
// Q8_0 kernels): the same per-row arithmetic at every M. The AVX-512 batch-invariant table runs
// the K-quants through it.
template <QK T>
static void mm_quant_rows(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0,
                          int64_t n1, float* y, int64_t ldy) {
  constexpr int B = (T == QK::Q4_0 || T == QK::Q8_0) ? 32 : 256;
  const ActQ a = act_quantize(x, M, K, B);
#if !OHM_SIMD_W512
  if constexpr (T == QK::Q4_0 || T == QK::Q8_0)
    if (M == 1) {
      constexpr bool Q8 = T == QK::Q8_0;
      const int64_t nb = K / 32;
      const size_t rb = w.row_bytes;
      const ActT at = Q8 ? ActT{nullptr, nullptr, nullptr, 0} : act_transpose(a, 1, K);
      decode_rows<4>(
          n0, n1, rb,
          [&](const int64_t* rows, size_t pf) {
            q32_rows8<Q8, 4>(a, at, nb, w.data, rb, rows, pf, y);
          },
          [&](const int64_t* rows, size_t pf) {
            q32_rows8<Q8, 1>(a, at, nb, w.data, rb, rows, pf, y);
          });
      return;
    }
  if constexpr (T == QK::Q4_0 || T == QK::Q8_0) {
    // M > 1: each activation row gets the M = 1 kernel's arithmetic, so a row's result is
    // bitwise the same whatever else is in the batch (the serving engine's batch invariance:
    // docs/serving.md) through a block-parallel transposed layout (q32_gemm_t).
    const ActT at = act_transpose(a, M, K);
    q32_gemm_t<T == QK::Q8_0>(a, at, M, K, w.data, w.row_bytes, n0, n1, y, ldy);
    return;
  }
#endif
  if (M == 1) {  // one sequential stream of rows, then the shared row queue
    const auto row = [&](const int64_t* rows, size_t) {
      const uint8_t* wr = w.data + rows[0] * w.row_bytes;
      // the row after next, whole (the hardware prefetchers alone leave the scale loads
      // waiting on DRAM)
      for (size_t o = 0; o < w.row_bytes; o += 64)
        _mm_prefetch(reinterpret_cast<const char*>(wr) + 2 * w.row_bytes + o, _MM_HINT_T0);
      qtile<T, 1>(a, K, wr, y, ldy, rows[0]);
    };
    decode_rows<1>(n0, n1, w.row_bytes, row, row);
    return;
  }
  const int64_t band = 8;
  for (int64_t b0 = n0; b0 < n1; b0 += band) {
    const int64_t b1 = imin(n1, b0 + band);
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) {
      const ActQ am{a.qs + m * K, a.d + m * K / B, a.s16 + m * K / 16, nullptr, nullptr};
      for (int64_t n = b0; n < b1; ++n)
        qtile<T, 4>(am, K, w.data + n * w.row_bytes, y + m * ldy, ldy, n);
    }
    for (; m < M; ++m) {
      const ActQ am{a.qs + m * K, a.d + m * K / B, a.s16 + m * K / 16, nullptr, nullptr};
      for (int64_t n = b0; n < b1; ++n)
        qtile<T, 1>(am, K, w.data + n * w.row_bytes, y + m * ldy, ldy, n);
    }
  }
}

template <QK T>
static void mm_quant(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0, int64_t n1,
                     float* y, int64_t ldy, float*) {
#if OHM_SIMD_W512
  if constexpr (T == QK::Q4_0 || T == QK::Q8_0)
    if (M == 1) return q32_matvec<T == QK::Q8_0>(x, K, w, n0, n1, y);
  if constexpr (T == QK::Q4_K)
    if (M == 1) return q4k_matvec(x, K, w, n0, n1, y);
  if constexpr (T == QK::Q6_K)
    if (M == 1) return q6k_matvec(x, K, w, n0, n1, y);
  if (M >= QGEMM_MIN_ROWS) {
    const QActs a = qacts_in(thread_scratch(2, qacts_floats(M, K)), M, K);
    qg_prepare(x, 0, M, a);
    qg_gemm<T>(a, w, n0, n1, y, ldy);
    return;
  }
#endif
  mm_quant_rows<T>(x, M, K, w, n0, n1, y, ldy);
}

// The matmul / qgemm entries of a block type's SIMD family (QuantTraits::simd).
static KernelTable::MatmulFn simd_matmul(SimdKernel k) {
  switch (k) {
    case SimdKernel::Q4_0:
      return &mm_quant<QK::Q4_0>;
    case SimdKernel::Q8_0:
      return &mm_quant<QK::Q8_0>;
    case SimdKernel::Q4_K:
      return &mm_quant<QK::Q4_K>;
    case SimdKernel::Q6_K:
      return &mm_quant<QK::Q6_K>;
    case SimdKernel::None:
      break;
  }
  return nullptr;
}
#if OHM_SIMD_W512
static KernelTable::QGemmFn simd_qgemm(SimdKernel k) {
  switch (k) {
    case SimdKernel::Q4_0:
      return &qg_gemm<QK::Q4_0>;
    case SimdKernel::Q8_0:
      return &qg_gemm<QK::Q8_0>;
    case SimdKernel::Q4_K:
      return &qg_gemm<QK::Q4_K>;
    case SimdKernel::Q6_K:
      return &qg_gemm<QK::Q6_K>;
    case SimdKernel::None:
      break;
  }
  return nullptr;
}
#endif

// Fills the entries this ISA accelerates (the rest stay as copied from the reference). Every
// matmul entry's M = 1 path runs through decode_rows (matvec_row_queue). The block types come
// from their QuantTraits rows (kQuantTypes is read as data: no inline function of another header
// is called here, see the ODR rule above).
static void fill_table(KernelTable& t) {
  t.matmul[static_cast<int>(DType::F32)] = &mm_floatb<WF::F32>;
  t.matmul[static_cast<int>(DType::F16)] = &mm_floatb<WF::F16>;
  t.matmul[static_cast<int>(DType::BF16)] = &mm_floatb<WF::BF16>;
  static constexpr DType kFloat[] = {DType::F32, DType::F16, DType::BF16};
  for (DType d : kFloat) t.matvec_row_queue[static_cast<int>(d)] = true;
#if OHM_SIMD_W512
  t.qgemm_min_rows = QGEMM_MIN_ROWS;
  t.qacts_prepare = &qg_prepare;
  // HF GPTQ / AWQ int4 groups on fine activations: one batch-invariant panel kernel for every M,
  // in this table and in its batch-invariant variant.
  t.pack_rows = PK_ROWS;
  t.pack_fine[static_cast<int>(DType::Q4_0)] = &pkf_pack;
  t.pack_fine[static_cast<int>(DType::Q5_0)] = &pkf_pack;
  t.packed_fine_acts = &pkf_acts;
  t.packed_fine_matmul = &pkf_matmul;
#endif
  for (const QuantTraits& q : kQuantTypes) {
    const auto d = static_cast<int>(q.dtype);
    if (const auto mm = simd_matmul(q.simd)) {
      t.matmul[d] = mm;
      t.matvec_row_queue[d] = true;
    }
    if (q.simd == SimdKernel::Q4_0) t.matmul_fine[d] = &mm_q32_fine<false>;
    if (q.simd == SimdKernel::Q8_0) t.matmul_fine[d] = &mm_q32_fine<true>;
#if OHM_SIMD_W512
    t.qgemm[d] = simd_qgemm(q.simd);
#endif
  }
  t.dot = &s_dot;
  t.axpy = &s_axpy;
  t.add = &s_add;
  t.mul = &s_mul;
  t.rms_norm = &s_rms_norm;
  t.softmax = &s_softmax;
  t.silu = &s_silu;
  t.rope = &s_rope;
  t.attn_query = &s_attn_query;
  t.attn_tile = &s_attn_tile;
}

#if OHM_SIMD_W512
template <QK T>
static void mm_quant_rows_entry(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0,
                                int64_t n1, float* y, int64_t ldy, float*) {
  mm_quant_rows<T>(x, M, K, w, n0, n1, y, ldy);
}

// The batch-invariant variant of a filled AVX-512 table (kernels::batch_invariant_table): every
// matmul entry gives a row bitwise the same result at any M. Q4_0 / Q8_0 (plain and fine
// activations) run the decode kernels' arithmetic at every M (q32_rows: VNNI, the weights of a
// step shared by the activation rows); f32/f16/bf16 the row tiles (mm_float) instead of the
// batched GEMM; Q4_K / Q6_K the row tiles of mm_quant_rows. No qgemm front-end path. Q4_0
// weights packed for this table (pack_weights) run the panel kernel (pk_matmul_q4_0) at every M.
static void make_batch_invariant(KernelTable& t) {
  t.qgemm_min_rows = 0;
  t.qacts_prepare = nullptr;
  for (auto& q : t.qgemm) q = nullptr;
  t.pack_rows = PK_ROWS;
  t.packed_bytes = &pk_packed_bytes;
  t.packed_acts = &pk_acts;
  t.pack[static_cast<int>(DType::Q4_0)] = &pk_pack_q4_0;
  t.packed_matmul[static_cast<int>(DType::Q4_0)] = &pk_matmul_q4_0;
  t.matmul[static_cast<int>(DType::F32)] = &mm_float<WF::F32>;
  t.matmul[static_cast<int>(DType::F16)] = &mm_float<WF::F16>;
  t.matmul[static_cast<int>(DType::BF16)] = &mm_float<WF::BF16>;
  for (const QuantTraits& q : kQuantTypes) {
    const auto d = static_cast<int>(q.dtype);
    switch (q.simd) {
      case SimdKernel::Q4_0:
        t.matmul[d] = &mm_q32_invariant<false, false>;
        t.matmul_fine[d] = &mm_q32_invariant<false, true>;
        break;
      case SimdKernel::Q8_0:
        t.matmul[d] = &mm_q32_invariant<true, false>;
        t.matmul_fine[d] = &mm_q32_invariant<true, true>;
        break;
      case SimdKernel::Q4_K:
        t.matmul[d] = &mm_quant_rows_entry<QK::Q4_K>;
        break;
      case SimdKernel::Q6_K:
        t.matmul[d] = &mm_quant_rows_entry<QK::Q6_K>;
        break;
      case SimdKernel::None:
        break;
    }
  }
}
#endif
