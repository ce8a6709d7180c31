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
