// The scalar reference kernels: plain loops, written for clarity. They are the oracle that the
// SIMD tables are tested against (tests/unit/test_kernels.cpp), and the portable fallback.
//
// Accumulation uses 8 independent float partial sums: still plain C++, but the order matches
// what an 8-lane SIMD kernel does, so optimised kernels land within a few ulps of this one.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels_internal.h"
#include "ohm/core/half.h"
#include "ohm/core/quant_traits.h"

namespace ohm::kernels {
namespace {

float ref_dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  for (; i < n; ++i) acc[i & 7] += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// One row of a float weight converted to f32 (the f32 case never copies).
template <DType D>
const float* row_f32(const Matrix& w, int64_t r, int64_t K, float* scratch) {
  const uint8_t* src = w.row(r);
  if constexpr (D == DType::F32) {
    return reinterpret_cast<const float*>(src);
  } else if constexpr (D == DType::F16) {
    for (int64_t k = 0; k < K; ++k) {
      uint16_t h;
      std::memcpy(&h, src + 2 * k, 2);
      scratch[k] = f16_to_f32(h);
    }
    return scratch;
  } else if constexpr (D == DType::BF16) {
    for (int64_t k = 0; k < K; ++k) {
      uint16_t h;
      std::memcpy(&h, src + 2 * k, 2);
      scratch[k] = bf16_to_f32(h);
    }
    return scratch;
  }
}

// Weight-row outer loop: each weight row is converted once and reused for all M activations.
template <DType D>
void ref_matmul(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0, int64_t n1,
                float* y, int64_t ldy, float* scratch) {
  for (int64_t n = n0; n < n1; ++n) {
    const float* wr = row_f32<D>(w, n, K, scratch);
    for (int64_t m = 0; m < M; ++m) y[m * ldy + n] = ref_dot(x + m * K, wr, K);
  }
}

// The reference entry of every block-quantized type: its QuantTraits row's to_float per weight
// row, then f32 dot products.
void ref_matmul_block(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0, int64_t n1,
                      float* y, int64_t ldy, float* scratch) {
  const QuantTraits& q = *quant_traits(w.dtype);
  const int64_t nb = K / q.block_size;
  for (int64_t n = n0; n < n1; ++n) {
    q.to_float(w.row(n), scratch, nb);
    for (int64_t m = 0; m < M; ++m) y[m * ldy + n] = ref_dot(x + m * K, scratch, K);
  }
}

void ref_rms_norm(const float* x, const float* w, float w_offset, float eps, float* y, int64_t n) {
  // HF: x * rsqrt(mean(x^2) + eps) in f32, then weight * x.
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float var = static_cast<float>(ss / static_cast<double>(n));
  const float inv = 1.0f / std::sqrt(var + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * inv) * (w ? w[i] + w_offset : 1.0f);
}

void ref_layer_norm(const float* x, const float* w, const float* b, float eps, float* y,
                    int64_t n) {
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) mean += x[i];
  mean /= static_cast<double>(n);
  double var = 0;
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= static_cast<double>(n);
  const double inv = 1.0 / std::sqrt(var + eps);
  for (int64_t i = 0; i < n; ++i) {
    float v = static_cast<float>((x[i] - mean) * inv);
    if (w) v *= w[i];
    if (b) v += b[i];
    y[i] = v;
  }
}

void ref_softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void ref_silu(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + std::exp(-x[i]));
}
void ref_gelu(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752440f));
}
void ref_gelu_tanh(const float* x, float* y, int64_t n) {
  const float k = 0.79788456080286535588f;  // sqrt(2/pi)
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v)));
  }
}
void ref_relu(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
void ref_add(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}
void ref_mul(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}
void ref_axpy(float s, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += s * x[i];
}

void ref_rope(float* x, int64_t n_head, int64_t head_dim, int64_t rot_dim, const float* cos,
              const float* sin) {
  // HF: q*cos + rotate_half(q)*sin, rotate_half(q) = cat(-q2, q1).
  const int64_t half = rot_dim / 2;
  for (int64_t h = 0; h < n_head; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float x1 = v[i], x2 = v[i + half];
      v[i] = x1 * cos[i] - x2 * sin[i];
      v[i + half] = x2 * cos[i] + x1 * sin[i];
    }
  }
}

void ref_attn_query(const AttnQuery& a, float* scores, float* out) {
  const int64_t hd = a.head_dim;
  std::fill(out, out + hd, 0.0f);
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = a.lo; j <= a.hi; ++j) {
    if (a.kv_valid && !a.kv_valid[j]) continue;
    float s = ref_dot(a.q, a.key(j), hd);
    if (a.alibi) s += a.alibi_slope * static_cast<float>(a.kv_pos ? a.kv_pos[j] : j);
    s *= a.scale;
    scores[j] = s;
    mx = std::max(mx, s);
  }
  if (mx == -std::numeric_limits<float>::infinity()) return;  // nothing visible
  double sum = 0;
  for (int64_t j = a.lo; j <= a.hi; ++j) {
    if (a.kv_valid && !a.kv_valid[j]) continue;
    scores[j] = std::exp(scores[j] - mx);
    sum += scores[j];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t j = a.lo; j <= a.hi; ++j) {
    if (a.kv_valid && !a.kv_valid[j]) continue;
    ref_axpy(scores[j] * inv, a.value(j), out, hd);
  }
}

void ref_rope_interleaved(float* x, int64_t n_head, int64_t head_dim, int64_t rot_dim,
                          const float* cos, const float* sin) {
  const int64_t half = rot_dim / 2;
  for (int64_t h = 0; h < n_head; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float x1 = v[2 * i], x2 = v[2 * i + 1];
      v[2 * i] = x1 * cos[i] - x2 * sin[i];
      v[2 * i + 1] = x2 * cos[i] + x1 * sin[i];
    }
  }
}

KernelTable make_reference() {
  KernelTable t;
  t.isa = Isa::Scalar;
#define OHM_MM(D) t.matmul[static_cast<int>(DType::D)] = &ref_matmul<DType::D>
  OHM_MM(F32);
  OHM_MM(F16);
  OHM_MM(BF16);
#undef OHM_MM
  for (const QuantTraits& q : quant_types())
    t.matmul[static_cast<int>(q.dtype)] = &ref_matmul_block;
  t.rms_norm = &ref_rms_norm;
  t.layer_norm = &ref_layer_norm;
  t.softmax = &ref_softmax;
  t.silu = &ref_silu;
  t.gelu = &ref_gelu;
  t.gelu_tanh = &ref_gelu_tanh;
  t.relu = &ref_relu;
  t.add = &ref_add;
  t.mul = &ref_mul;
  t.axpy = &ref_axpy;
  t.dot = &ref_dot;
  t.rope = &ref_rope;
  t.rope_interleaved = &ref_rope_interleaved;
  t.attn_query = &ref_attn_query;
  return t;
}

}  // namespace

const KernelTable& reference() {
  static const KernelTable t = make_reference();
  return t;
}

}  // namespace ohm::kernels
