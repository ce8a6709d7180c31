// Elementwise ops, RMS norm, softmax, SiLU and RoPE.
// Part of simd_impl.h: included once per ISA translation unit inside an anonymous namespace
// (see the ODR rule and the numerics there).
#pragma once

// ---------------------------------------------------------------- elementwise ops
static float s_dot(const float* a, const float* b, int64_t n) {
  vf a0 = vzero(), a1 = vzero();
  int64_t i = 0;
  for (; i + 2 * VL <= n; i += 2 * VL) {
    a0 = vfma(vload(a + i), vload(b + i), a0);
    a1 = vfma(vload(a + i + VL), vload(b + i + VL), a1);
  }
  for (; i + VL <= n; i += VL) a0 = vfma(vload(a + i), vload(b + i), a0);
  float s = vhsum(vadd(a0, a1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

static void s_axpy(float s, const float* x, float* y, int64_t n) {
  const vf sv = vset1(s);
  int64_t i = 0;
  for (; i + VL <= n; i += VL) vstore(y + i, vfma(sv, vload(x + i), vload(y + i)));
  for (; i < n; ++i) y[i] += s * x[i];
}

static void s_add(const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + VL <= n; i += VL) vstore(y + i, vadd(vload(a + i), vload(b + i)));
  for (; i < n; ++i) y[i] = a[i] + b[i];
}

static void s_mul(const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + VL <= n; i += VL) vstore(y + i, vmul(vload(a + i), vload(b + i)));
  for (; i < n; ++i) y[i] = a[i] * b[i];
}

static void s_rms_norm(const float* x, const float* w, float w_offset, float eps, float* y,
                       int64_t n) {
  // Sum of squares in double (as the reference), 4 lanes at a time.
  __m256d acc = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
    acc = _mm256_fmadd_pd(v, v, acc);
  }
  alignas(32) double t[4];
  _mm256_store_pd(t, acc);
  double ss = (t[0] + t[1]) + (t[2] + t[3]);
  for (; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float var = static_cast<float>(ss / static_cast<double>(n));
  const float inv = 1.0f / __builtin_sqrtf(var + eps);
  const vf iv = vset1(inv), off = vset1(w_offset);
  i = 0;
  if (w) {
    for (; i + VL <= n; i += VL)
      vstore(y + i, vmul(vmul(vload(x + i), iv), vadd(vload(w + i), off)));
    for (; i < n; ++i) y[i] = (x[i] * inv) * (w[i] + w_offset);
  } else {
    for (; i + VL <= n; i += VL) vstore(y + i, vmul(vload(x + i), iv));
    for (; i < n; ++i) y[i] = x[i] * inv;
  }
}

static void s_softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float mx = x[0];
  int64_t i = 0;
  if (n >= VL) {
    vf m = vload(x);
    for (i = VL; i + VL <= n; i += VL) m = vmax(m, vload(x + i));
    mx = vhmax(m);
  }
  for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  const vf mv = vset1(mx);
  vf sv = vzero();
  for (i = 0; i + VL <= n; i += VL) {
    const vf e = vexp(vsub(vload(x + i), mv));
    vstore(x + i, e);
    sv = vadd(sv, e);
  }
  double sum = vhsum(sv);
  for (; i < n; ++i) {
    x[i] = __builtin_expf(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  const vf iv = vset1(inv);
  for (i = 0; i + VL <= n; i += VL) vstore(x + i, vmul(vload(x + i), iv));
  for (; i < n; ++i) x[i] *= inv;
}

static void s_silu(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  const vf one = vset1(1.0f), zero = vzero();
  for (; i + VL <= n; i += VL) {
    const vf v = vload(x + i);
    vstore(y + i, vdiv(v, vadd(one, vexp(vsub(zero, v)))));
  }
  for (; i < n; ++i) y[i] = x[i] / (1.0f + __builtin_expf(-x[i]));
}

static void s_rope(float* x, int64_t n_head, int64_t head_dim, int64_t rot_dim, const float* cos,
                   const float* sin) {
  const int64_t half = rot_dim / 2;
  for (int64_t h = 0; h < n_head; ++h) {
    float* v = x + h * head_dim;
    int64_t i = 0;
    for (; i + VL <= half; i += VL) {
      const vf x1 = vload(v + i), x2 = vload(v + i + half);
      const vf c = vload(cos + i), s = vload(sin + i);
      vstore(v + i, vsub(vmul(x1, c), vmul(x2, s)));
      vstore(v + i + half, vadd(vmul(x2, c), vmul(x1, s)));
    }
    for (; i < half; ++i) {
      const float x1 = v[i], x2 = v[i + half];
      v[i] = x1 * cos[i] - x2 * sin[i];
      v[i + half] = x2 * cos[i] + x1 * sin[i];
    }
  }
}
