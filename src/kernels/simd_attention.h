// One attention query (KernelTable::attn_query).
// Part of simd_impl.h: included once per ISA translation unit inside an anonymous namespace
// (see the ODR rule and the numerics there).
#pragma once

// ---------------------------------------------------------------- attention, one query
// q and the output accumulators stay in registers (head_dim = NV vectors); the softmax runs
// vectorized over the score row. The generic version (other head sizes) uses s_dot/s_axpy.
static void attn_softmax_row(const AttnQuery& a, float* scores, float mx, float& inv) {
  float* sc = scores + a.lo;
  const int64_t n = a.hi - a.lo + 1;
  const vf mv = vset1(mx);
  vf sv = vzero();
  int64_t i = 0;
  for (; i + VL <= n; i += VL) {
    const vf e = vexp(vsub(vload(sc + i), mv));
    vstore(sc + i, e);
    sv = vadd(sv, e);
  }
  double sum = vhsum(sv);
  for (; i < n; ++i) {
    sc[i] = __builtin_expf(sc[i] - mx);
    sum += sc[i];
  }
  if (a.kv_valid)  // masked keys were set to -inf; vexp clamps, so zero them exactly
    for (int64_t j = a.lo; j <= a.hi; ++j)
      if (!a.kv_valid[j]) {
        sum -= scores[j];
        scores[j] = 0.0f;
      }
  inv = static_cast<float>(1.0 / sum);
}

template <int NV>
static void attn_query_regs(const AttnQuery& a, float* scores, float* out) {
  constexpr float ninf = -__builtin_inff();
  vf qv[NV];
  for (int i = 0; i < NV; ++i) qv[i] = vload(a.q + i * VL);
  float mx = ninf;
  for (int64_t j = a.lo; j <= a.hi; ++j) {
    if (a.kv_valid && !a.kv_valid[j]) {
      scores[j] = ninf;
      continue;
    }
    const float* kj = a.key(j);
    vf acc = vmul(qv[0], vload(kj));
    for (int i = 1; i < NV; ++i) acc = vfma(qv[i], vload(kj + i * VL), acc);
    float s = vhsum(acc);
    if (a.alibi) s += a.alibi_slope * static_cast<float>(a.kv_pos ? a.kv_pos[j] : j);
    s *= a.scale;
    scores[j] = s;
    mx = s > mx ? s : mx;
  }
  vf o[NV];
  for (int i = 0; i < NV; ++i) o[i] = vzero();
  if (mx != ninf) {
    float inv;
    attn_softmax_row(a, scores, mx, inv);
    for (int64_t j = a.lo; j <= a.hi; ++j) {
      if (a.kv_valid && !a.kv_valid[j]) continue;
      const vf p = vset1(scores[j] * inv);
      const float* vj = a.value(j);
      for (int i = 0; i < NV; ++i) o[i] = vfma(p, vload(vj + i * VL), o[i]);
    }
  }
  for (int i = 0; i < NV; ++i) vstore(out + i * VL, o[i]);
}

static void attn_query_generic(const AttnQuery& a, float* scores, float* out) {
  constexpr float ninf = -__builtin_inff();
  const int64_t hd = a.head_dim;
  for (int64_t i = 0; i < hd; ++i) out[i] = 0.0f;
  float mx = ninf;
  for (int64_t j = a.lo; j <= a.hi; ++j) {
    if (a.kv_valid && !a.kv_valid[j]) {
      scores[j] = ninf;
      continue;
    }
    float s = s_dot(a.q, a.key(j), hd);
    if (a.alibi) s += a.alibi_slope * static_cast<float>(a.kv_pos ? a.kv_pos[j] : j);
    s *= a.scale;
    scores[j] = s;
    mx = s > mx ? s : mx;
  }
  if (mx == ninf) return;
  float inv;
  attn_softmax_row(a, scores, mx, inv);
  for (int64_t j = a.lo; j <= a.hi; ++j) {
    if (a.kv_valid && !a.kv_valid[j]) continue;
    s_axpy(scores[j] * inv, a.value(j), out, hd);
  }
}

static void s_attn_query(const AttnQuery& a, float* scores, float* out) {
  if (a.head_dim % VL == 0) switch (a.head_dim / VL) {
      case 2:
        return attn_query_regs<2>(a, scores, out);
      case 4:
        return attn_query_regs<4>(a, scores, out);
      case 6:
        return attn_query_regs<6>(a, scores, out);
      case 8:
        return attn_query_regs<8>(a, scores, out);
      default:
        break;
    }
  attn_query_generic(a, scores, out);
}

// ---------------------------------------------------------------- attention, a tile of rows
// (AttnTile.) Per block of kAttnBlock keys: K is packed transposed [hdp][BK] and V row-major
// [BK][hdp] (hdp = head_dim rounded up to VL, zero-padded), so that both products are small
// register-tiled GEMMs with broadcast A operands: scores [R][BK] = Q [R][hdp] x Kt, then
// O [R][hdp] = O * alpha + P [R][BK] x V. The online softmax keeps, per row, the running max m
// and sum l; the block's probabilities overwrite its scores. Scores are f32, the exponentials
// those of vexp (masked keys zeroed exactly), l sums in double, as in s_attn_query.
#if OHM_SIMD_W512
constexpr int ATT_MR = 6, ATT_NC = 4;
#else
constexpr int ATT_MR = 6, ATT_NC = 2;
#endif
constexpr int64_t ATT_BK = kAttnBlock;

// C[MR][NC*VL] (= or +=) A[MR][K] (row stride lda) x B[K][NC*VL] (row stride ldb).
template <int MR, int NC>
static inline void att_micro(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t K,
                             float* C, int64_t ldc, bool accumulate) {
  vf c[MR][NC];
  for (int r = 0; r < MR; ++r)
    for (int n = 0; n < NC; ++n) c[r][n] = accumulate ? vload(C + r * ldc + n * VL) : vzero();
  for (int64_t k = 0; k < K; ++k) {
    vf b[NC];
    for (int n = 0; n < NC; ++n) b[n] = vload(B + k * ldb + n * VL);
    for (int r = 0; r < MR; ++r) {
      const vf av = vset1(A[r * lda + k]);
      for (int n = 0; n < NC; ++n) c[r][n] = vfma(av, b[n], c[r][n]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int n = 0; n < NC; ++n) vstore(C + r * ldc + n * VL, c[r][n]);
}

template <int NC>
static void att_gemm_cols(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t K,
                          float* C, int64_t ldc, int64_t M, bool acc) {
  row_tiles<ATT_MR>(M, [&]<int R>(int64_t r) {
    att_micro<R, NC>(A + r * lda, lda, B, ldb, K, C + r * ldc, ldc, acc);
  });
}

// C[M][N] (= or +=) A[M][K] x B[K][N]; N a multiple of VL.
static void att_gemm(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t K, float* C,
                     int64_t ldc, int64_t M, int64_t N, bool acc) {
  int64_t n = 0;
  for (; n + ATT_NC * VL <= N; n += ATT_NC * VL)
    att_gemm_cols<ATT_NC>(A, lda, B + n, ldb, K, C + n, ldc, M, acc);
  for (; n < N; n += VL) att_gemm_cols<1>(A, lda, B + n, ldb, K, C + n, ldc, M, acc);
}

// One typed K/V row (n values) to f32: F16 exactly, Q8_0 as ggml's dequantize_row_q8_0 (d * q).
static void att_row_f32(DType t, const uint8_t* src, float* dst, int64_t n) {
  if (t == DType::F16) {
    int64_t i = 0;
    for (; i + VL <= n; i += VL) vstore(dst + i, vload_f16(src + 2 * i));
    for (; i < n; ++i) dst[i] = f16s(src + 2 * i);
    return;
  }
  for (int64_t b = 0; b < n / 32; ++b) {  // Q8_0: 34-byte blocks
    const uint8_t* blk = src + b * 34;
    const float d = f16s(blk);
    const int8_t* qs = reinterpret_cast<const int8_t*>(blk + 2);
    for (int i = 0; i < 32; ++i) dst[b * 32 + i] = static_cast<float>(qs[i]) * d;
  }
}

static void s_attn_tile(const AttnTile& a, float* scratch) {
  constexpr float ninf = -__builtin_inff();
  const int64_t R = a.rows, hd = a.head_dim, hdp = (hd + VL - 1) / VL * VL;
  float* kt = scratch;                                       // [hdp][BK]
  float* vb = kt + hdp * ATT_BK;                             // [BK][hdp]
  float* sc = vb + ATT_BK * hdp;                             // [R][BK]
  float* oacc = sc + R * ATT_BK;                             // [R][hdp]
  double* lsum = reinterpret_cast<double*>(oacc + R * hdp);  // [R]
  float* qp = reinterpret_cast<float*>(lsum + R);            // [R][hdp] when hd < hdp
  float* krow = qp + R * hdp;                                // [hdp] a typed key, converted
  const bool typed = a.kv.kv_type != DType::F32;
  const float* q = a.q;
  if (hdp != hd) {
    for (int64_t r = 0; r < R; ++r) {
      for (int64_t d = 0; d < hd; ++d) qp[r * hdp + d] = a.q[r * hd + d];
      for (int64_t d = hd; d < hdp; ++d) qp[r * hdp + d] = 0.0f;
    }
    q = qp;
  }
  for (int64_t i = 0; i < R * hdp; ++i) oacc[i] = 0.0f;
  int64_t jlo = a.j1, jhi = a.j0 - 1;
  for (int64_t r = 0; r < R; ++r) {
    a.m[r] = ninf;
    lsum[r] = 0.0;
    jlo = a.lo[r] < jlo ? a.lo[r] : jlo;
    jhi = a.hi[r] > jhi ? a.hi[r] : jhi;
  }
  jlo = jlo > a.j0 ? jlo : a.j0;
  jhi = jhi < a.j1 - 1 ? jhi : a.j1 - 1;
  const vf vscale = vset1(a.scale);
  for (int64_t b0 = jlo; b0 <= jhi; b0 += ATT_BK) {
    const int64_t n = imin(ATT_BK, jhi - b0 + 1);
    bool all_valid = true;
    for (int64_t jj = 0; jj < n; ++jj) {
      const int64_t j = b0 + jj;
      const float* kj;
      if (typed) {
        const int64_t off = j * a.kv.row_bytes + a.kv.byte_offset;
        att_row_f32(a.kv.kv_type, a.kv.kb + off, krow, hd);
        att_row_f32(a.kv.kv_type, a.kv.vb + off, vb + jj * hdp, hd);
        kj = krow;
      } else {
        kj = a.kv.key(j);
        const float* vj = a.kv.value(j);
        for (int64_t d = 0; d < hd; ++d) vb[jj * hdp + d] = vj[d];
      }
      for (int64_t d = 0; d < hd; ++d) kt[d * ATT_BK + jj] = kj[d];
      for (int64_t d = hd; d < hdp; ++d) vb[jj * hdp + d] = 0.0f;
      if (a.kv.kv_valid && !a.kv.kv_valid[b0 + jj]) all_valid = false;
    }
    for (int64_t d = 0; d < hdp; ++d)
      for (int64_t jj = (d < hd ? n : 0); jj < ATT_BK; ++jj) kt[d * ATT_BK + jj] = 0.0f;
    att_gemm(q, hdp, kt, ATT_BK, hdp, sc, ATT_BK, R, ATT_BK, false);
    for (int64_t r = 0; r < R; ++r) {
      float* s = sc + r * ATT_BK;
      const int64_t rlo = (a.lo[r] > b0 ? a.lo[r] : b0) - b0;
      const int64_t rhi = (a.hi[r] < b0 + n - 1 ? a.hi[r] : b0 + n - 1) - b0;
      if (rlo > rhi) {
        for (int64_t jj = 0; jj < ATT_BK; jj += VL) vstore(s + jj, vzero());
        continue;
      }
      if (a.slope) {
        const float sl = a.slope[r];
        for (int64_t jj = rlo; jj <= rhi; ++jj) {
          const int64_t j = b0 + jj;
          s[jj] = (s[jj] + sl * static_cast<float>(a.kv.kv_pos ? a.kv.kv_pos[j] : j)) * a.scale;
        }
      } else {
        for (int64_t jj = 0; jj < ATT_BK; jj += VL) vstore(s + jj, vmul(vload(s + jj), vscale));
      }
      for (int64_t jj = 0; jj < rlo; ++jj) s[jj] = ninf;
      for (int64_t jj = rhi + 1; jj < ATT_BK; ++jj) s[jj] = ninf;
      if (!all_valid)
        for (int64_t jj = rlo; jj <= rhi; ++jj)
          if (!a.kv.kv_valid[b0 + jj]) s[jj] = ninf;
      vf mv = vset1(ninf);
      for (int64_t jj = 0; jj < ATT_BK; jj += VL) mv = vmax(mv, vload(s + jj));
      const float bm = vhmax(mv);
      if (bm == ninf) {  // every key of the block masked for this row
        for (int64_t jj = 0; jj < ATT_BK; jj += VL) vstore(s + jj, vzero());
        continue;
      }
      const float mnew = a.m[r] > bm ? a.m[r] : bm;
      const vf mnv = vset1(mnew);
      vf sv = vzero();
      for (int64_t jj = 0; jj < ATT_BK; jj += VL) {
        const vf e = vexp(vsub(vload(s + jj), mnv));
        vstore(s + jj, e);
        sv = vadd(sv, e);
      }
      double bsum = vhsum(sv);
      // masked keys were -inf and vexp clamps: zero them exactly
      for (int64_t jj = 0; jj < rlo; ++jj) {
        bsum -= s[jj];
        s[jj] = 0.0f;
      }
      for (int64_t jj = rhi + 1; jj < ATT_BK; ++jj) {
        bsum -= s[jj];
        s[jj] = 0.0f;
      }
      if (!all_valid)
        for (int64_t jj = rlo; jj <= rhi; ++jj)
          if (!a.kv.kv_valid[b0 + jj]) {
            bsum -= s[jj];
            s[jj] = 0.0f;
          }
      if (a.m[r] != ninf && a.m[r] != mnew) {
        const float alpha = __builtin_expf(a.m[r] - mnew);
        lsum[r] *= alpha;
        const vf av = vset1(alpha);
        float* o = oacc + r * hdp;
        for (int64_t d = 0; d < hdp; d += VL) vstore(o + d, vmul(vload(o + d), av));
      }
      lsum[r] += bsum;
      a.m[r] = mnew;
    }
    att_gemm(sc, ATT_BK, vb, hdp, n, oacc, hdp, R, hdp, true);
  }
  for (int64_t r = 0; r < R; ++r) {
    float* o = a.o + r * hd;
    const float inv = lsum[r] > 0.0 ? static_cast<float>(1.0 / lsum[r]) : 0.0f;
    for (int64_t d = 0; d < hd; ++d) o[d] = oacc[r * hdp + d] * inv;
    a.l[r] = static_cast<float>(lsum[r]);
  }
}
