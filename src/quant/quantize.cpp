// Reference quantizers. Each function reproduces the arithmetic of ggml's quantize_row_*_ref
// (same operations in the same order, f32 throughout) so the output bytes match ggml's; see
// include/ohm/quant/quantize.h.
#include "ohm/quant/quantize.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "ohm/core/error.h"
#include "ohm/core/half.h"
#include "ohm/core/quant_traits.h"
#include "ohm/quant/dequant.h"

namespace ohm::quant {
namespace {

constexpr int QK = 32;
constexpr int QK_K = 256;
constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest via the 1.5*2^23 trick (ggml's nearest_int): ties to even, |x| < 2^22.
inline int nearest_int(float fval) {
  const float val = fval + 12582912.f;
  int32_t i;
  std::memcpy(&i, &val, sizeof(i));
  return (i & 0x007fffff) - 0x00400000;
}

inline void put_f16(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}
inline float get_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

}  // namespace

// ---- the per-type rows of kQuantTypes (ohm/core/quant_traits.h) -------------------------

namespace rows {

// ---- 32-element blocks ------------------------------------------------------------------

void q4_0_from_float(const float* x, uint8_t* y, int64_t nb) {  // {f16 d; u8 qs[16]}
  for (int64_t i = 0; i < nb; ++i, x += QK, y += 18) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK; ++j)
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(y, d);
    for (int j = 0; j < QK / 2; ++j) {
      const float x0 = x[j] * id, x1 = x[QK / 2 + j] * id;
      const uint8_t q0 = static_cast<uint8_t>(std::min<int>(15, static_cast<int8_t>(x0 + 8.5f)));
      const uint8_t q1 = static_cast<uint8_t>(std::min<int>(15, static_cast<int8_t>(x1 + 8.5f)));
      y[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void q4_1_from_float(const float* x, uint8_t* y, int64_t nb) {  // {f16 d; f16 m; u8 qs[16]}
  for (int64_t i = 0; i < nb; ++i, x += QK, y += 20) {
    float min = 3.402823466e+38f, max = -3.402823466e+38f;
    for (int j = 0; j < QK; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(y, d);
    put_f16(y + 2, min);
    for (int j = 0; j < QK / 2; ++j) {
      const float x0 = (x[j] - min) * id, x1 = (x[QK / 2 + j] - min) * id;
      const uint8_t q0 = static_cast<uint8_t>(std::min<int>(15, static_cast<int8_t>(x0 + 0.5f)));
      const uint8_t q1 = static_cast<uint8_t>(std::min<int>(15, static_cast<int8_t>(x1 + 0.5f)));
      y[4 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void q5_0_from_float(const float* x, uint8_t* y, int64_t nb) {  // {f16 d; u8 qh[4]; u8 qs[16]}
  for (int64_t i = 0; i < nb; ++i, x += QK, y += 22) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK; ++j)
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    const float d = max / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(y, d);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; ++j) {
      const float x0 = x[j] * id, x1 = x[QK / 2 + j] * id;
      const uint8_t q0 = static_cast<uint8_t>(std::min<int>(31, static_cast<int8_t>(x0 + 16.5f)));
      const uint8_t q1 = static_cast<uint8_t>(std::min<int>(31, static_cast<int8_t>(x1 + 16.5f)));
      y[6 + j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= ((q0 & 0x10u) >> 4) << j;
      qh |= ((q1 & 0x10u) >> 4) << (j + QK / 2);
    }
    std::memcpy(y + 2, &qh, 4);
  }
}

void q5_1_from_float(const float* x, uint8_t* y,
                     int64_t nb) {  // {f16 d; f16 m; u8 qh[4]; u8 qs[16]}
  for (int64_t i = 0; i < nb; ++i, x += QK, y += 24) {
    float min = 3.402823466e+38f, max = -3.402823466e+38f;
    for (int j = 0; j < QK; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / ((1 << 5) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(y, d);
    put_f16(y + 2, min);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; ++j) {
      const float x0 = (x[j] - min) * id, x1 = (x[QK / 2 + j] - min) * id;
      const uint8_t q0 = static_cast<uint8_t>(x0 + 0.5f);
      const uint8_t q1 = static_cast<uint8_t>(x1 + 0.5f);
      y[8 + j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= ((q0 & 0x10u) >> 4) << j;
      qh |= ((q1 & 0x10u) >> 4) << (j + QK / 2);
    }
    std::memcpy(y + 4, &qh, 4);
  }
}

void q8_0_from_float(const float* x, uint8_t* y, int64_t nb) {  // {f16 d; i8 qs[32]}
  for (int64_t i = 0; i < nb; ++i, x += QK, y += 34) {
    float amax = 0.0f;
    for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(y, d);
    for (int j = 0; j < QK; ++j)
      y[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::round(x[j] * id)));
  }
}

// ---- k-quants ---------------------------------------------------------------------------

namespace {

// The candidate scales of the searches below run side by side, one per lane of an 8-float
// vector (GCC/Clang vector extensions: SSE on the baseline, AVX with -mavx2). Each lane does the
// scalar code's float operations in the scalar code's order (no reassociation, no fused
// multiply-add: the file is built with -ffp-contract=off), so every lane's sums are the scalar
// ones bit for bit; only the candidates are interleaved.
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
constexpr int kLanes = 8;
// (Macros, not functions: a function taking or returning a 32-byte vector changes the ABI
// without AVX, which GCC warns about. Scalars in vector expressions are broadcast exactly.)
// nearest_int per lane (the same 1.5*2^23 trick).
#define OHM_NEAREST8(f) ((((v8i)((f) + 12582912.f)) & 0x007fffff) - 0x00400000)
#define OHM_CLAMP8(l, lo, hi)        \
  do {                               \
    l = l < (lo) ? v8i{} + (lo) : l; \
    l = l > (hi) ? v8i{} + (hi) : l; \
  } while (0)
#define OHM_FLOAT8(l) __builtin_convertvector(l, v8f)
// Several candidates per call on AVX2 when the CPU has it (the scalar code's results either way).
#if defined(__x86_64__) && defined(__GNUC__)
#define OHM_KQ_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define OHM_KQ_CLONES
#endif

// Weighted least-squares fit of x ~ scale*L + min (min <= 0) over L in [0, nmax], searching
// nstep+1 candidate inverse scales (ggml's make_qkx2_quants). Returns scale, *the_min = -min.
// n <= 32, nstep < 32.
OHM_KQ_CLONES float make_qkx2_quants(int n, int nmax, const float* x, const float* weights,
                                     uint8_t* L, float* the_min, uint8_t* Laux, float rmin,
                                     float rdelta, int nstep, bool use_mad) {
  (void)Laux;
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    float diff = scale * L[i] + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  // The candidates from `first` on at once, lane c holding is = first + c: the scalar loop's
  // sums, fit and error for each. A better candidate changes min, which the later candidates'
  // grids depend on: they are then computed again from the next one on (min rarely stays).
  v8f isc[4], sum_l[4], sum_l2[4], sum_xl[4], err[4], tsc[4], tmin[4], D[4];
  v8i laux[4][32];
  int first = 0;
  while (first <= nstep) {
    const int ns = nstep + 1 - first, nv = (ns + kLanes - 1) / kLanes;
    for (int v = 0; v < nv; ++v) {
      for (int k = 0; k < kLanes; ++k) {
        const int is = std::min(first + v * kLanes + k, nstep);  // padding repeats the last
        isc[v][k] = (rmin + rdelta * is + nmax) / (max - min);
      }
      sum_l[v] = sum_l2[v] = sum_xl[v] = err[v] = v8f{};
    }
    for (int i = 0; i < n; ++i) {
      const float xm = x[i] - min, w = weights[i], xi = x[i];
      for (int v = 0; v < nv; ++v) {
        v8i l = OHM_NEAREST8(isc[v] * xm);
        OHM_CLAMP8(l, 0, nmax);
        laux[v][i] = l;
        const v8f lf = OHM_FLOAT8(l);
        sum_l[v] += w * lf;
        sum_l2[v] += w * lf * lf;
        sum_xl[v] += w * lf * xi;
      }
    }
    for (int v = 0; v < nv; ++v) {
      D[v] = sum_w * sum_l2[v] - sum_l[v] * sum_l[v];
      const v8f ts = (sum_w * sum_xl[v] - sum_x * sum_l[v]) / D[v];
      const v8f tm = (sum_l2[v] * sum_x - sum_l[v] * sum_xl[v]) / D[v];
      const v8i pos = tm > 0.f;
      tmin[v] = pos ? v8f{} : tm;
      tsc[v] = pos ? sum_xl[v] / sum_l2[v] : ts;
    }
    for (int i = 0; i < n; ++i) {
      const float w = weights[i], xi = x[i];
      for (int v = 0; v < nv; ++v) {
        v8f diff = tsc[v] * OHM_FLOAT8(laux[v][i]) + tmin[v] - xi;
        diff = use_mad ? (v8f)((v8i)diff & 0x7fffffff) : diff * diff;
        err[v] += w * diff;
      }
    }
    int next = nstep + 1;
    for (int c = 0; c < ns; ++c) {
      const int v = c / kLanes, k = c % kLanes;
      if (!(D[v][k] > 0) || !(err[v][k] < best_error)) continue;
      for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(laux[v][i][k]);
      best_error = err[v][k];
      scale = tsc[v][k];
      const bool same_min = tmin[v][k] == min && std::signbit(tmin[v][k]) == std::signbit(min);
      min = tmin[v][k];
      if (!same_min) {
        next = first + c + 1;
        break;
      }
    }
    first = next;
  }
  *the_min = -min;
  return scale;
}

// Symmetric fit x ~ scale*(L - nmax), L in [0, 2*nmax), with x^2 weights and a search over 18
// nearby scales (ggml's make_qx_quants with rmse_type 1 and no importance weights). The 18
// candidates' sums run side by side (as above); the choice among them stays in order.
OHM_KQ_CLONES float make_qx_quants_rmse1(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  // Candidates is = -9..-1, 1..9 in lanes 0..17 (3 vectors; lanes 18..23 repeat is = 9).
  constexpr int kCand = 18, kNv = 3;
  v8f isc[kNv], slx[kNv], sl2[kNv];
  for (int c = 0; c < kNv * kLanes; ++c) {
    const int k = std::min(c, kCand - 1);
    const int is = k < 9 ? k - 9 : k - 8;
    isc[c / kLanes][c % kLanes] = -(nmax + 0.1f * is) / max;
  }
  for (int v = 0; v < kNv; ++v) slx[v] = sl2[v] = v8f{};
  for (int i = 0; i < n; ++i) {
    const float xi = x[i], w = x[i] * x[i];
    for (int v = 0; v < kNv; ++v) {
      v8i l = OHM_NEAREST8(isc[v] * xi);
      OHM_CLAMP8(l, -nmax, nmax - 1);
      const v8f lf = OHM_FLOAT8(l);
      slx[v] += w * xi * lf;
      sl2[v] += w * lf * lf;
    }
  }
  for (int c = 0; c < kCand; ++c) {
    const float sx = slx[c / kLanes][c % kLanes], s2 = sl2[c / kLanes][c % kLanes];
    if (s2 > 0 && sx * sx > best * s2) {
      const float is_scale = isc[c / kLanes][c % kLanes];
      for (int i = 0; i < n; ++i) {
        const int l = nearest_int(is_scale * x[i]);
        L[i] = static_cast<int8_t>(nmax + std::max(-nmax, std::min(nmax - 1, l)));
      }
      scale = sx / s2;
      best = scale * sx;
    }
  }
  return scale;
}

// Symmetric 3-bit-style fit x ~ scale*(L - nmax), L in [0, 2*nmax), x^2 weights, then up to
// five passes that move single values to a better level (ggml's make_q3_quants with do_rmse).
float make_q3_quants_rmse(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * static_cast<float>(L[i]);
      if (slx > 0) {
        float sl2 = suml2 - w * static_cast<float>(L[i]) * static_cast<float>(L[i]);
        int new_l = nearest_int(x[i] * sl2 / slx);
        new_l = std::max(-nmax, std::min(nmax - 1, new_l));
        if (new_l != L[i]) {
          slx += w * x[i] * static_cast<float>(new_l);
          sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return sumlx / suml2;
}

inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

}  // namespace

// {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]} = 144 bytes
void q4_k_from_float(const float* x, uint8_t* y, int64_t nb) {
  uint8_t L[QK_K], Laux[32];
  float weights[32], mins[QK_K / 32], scales[QK_K / 32];
  for (int64_t i = 0; i < nb; ++i, x += QK_K, y += 144) {
    uint8_t* sc = y + 4;
    uint8_t* qs = y + 16;
    std::memset(sc, 0, 12);
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; ++j) {
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
      scales[j] = make_qkx2_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f,
                                   0.1f, 20, false);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; ++j) {
      uint8_t ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
      uint8_t lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
      ls = std::min<uint8_t>(63, ls);
      lm = std::min<uint8_t>(63, lm);
      if (j < 4) {
        sc[j] = ls;
        sc[j + 4] = lm;
      } else {
        sc[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
        sc[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
        sc[j - 0] |= static_cast<uint8_t>((lm >> 4) << 6);
      }
    }
    put_f16(y, max_scale / 63.f);
    put_f16(y + 2, max_min / 63.f);
    for (int j = 0; j < QK_K / 32; ++j) {
      uint8_t s, m;
      get_scale_min_k4(j, sc, &s, &m);
      const float d = get_f16(y) * s;
      if (d == 0.0f) continue;
      const float dm = get_f16(y + 2) * m;
      for (int ii = 0; ii < 32; ++ii) {
        const int l = nearest_int((x[32 * j + ii] + dm) / d);
        L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(15, l)));
      }
    }
    uint8_t* q = qs;
    for (int j = 0; j < QK_K; j += 64, q += 32)
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  }
}

// The tails that the reference quantizers (quantize_row_qN_K_ref) and the weighted ones
// (quantize_row_qN_K_impl) share: once a block's scales are stored, the values are re-quantized
// against the stored (f16-rounded) scales and packed.

// Four 2-bit values per byte, 32 bytes per 128 values (q2_k's and q3_k's low bits).
template <typename T>
void pack_2bit(const T* L, uint8_t* qs) {
  for (int j = 0; j < QK_K; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                           (L[j + l + 96] << 6));
}

// q2_k {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin}: 4-bit scale | 4-bit min per sub-block stored.
void q2_k_finish(const float* x, uint8_t* y, uint8_t* L) {
  const uint8_t* sc = y;
  for (int j = 0; j < QK_K / 16; ++j) {
    const float d = get_f16(y + 80) * static_cast<float>(sc[j] & 0xF);
    if (d == 0.0f) continue;
    const float dm = get_f16(y + 82) * static_cast<float>(sc[j] >> 4);
    for (int ii = 0; ii < 16; ++ii) {
      const int l = nearest_int((x[16 * j + ii] + dm) / d);
      L[16 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(3, l)));
    }
  }
  pack_2bit(L, y + 16);
}

// q3_k: the 6-bit scales and d stored; 3-bit values, the high bit into hmask.
void q3_k_finish(const float* x, uint8_t* y, int8_t* L) {
  uint8_t* hmask = y;
  const uint8_t* sc = y + 96;
  for (int j = 0; j < QK_K / 16; ++j) {
    int s = j < 8 ? (sc[j] & 0xF) : (sc[j - 8] >> 4);
    s = (s | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
    const float d = get_f16(y + 108) * static_cast<float>(s);
    if (d == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      int l = nearest_int(x[16 * j + ii] / d);
      l = std::max(-4, std::min(3, l));
      L[16 * j + ii] = static_cast<int8_t>(l + 4);
    }
  }
  std::memset(hmask, 0, QK_K / 8);
  int m = 0;
  uint8_t hm = 1;
  for (int j = 0; j < QK_K; ++j) {
    if (L[j] > 3) {
      hmask[m] = static_cast<uint8_t>(hmask[m] | hm);
      L[j] = static_cast<int8_t>(L[j] - 4);
    }
    if (++m == QK_K / 8) {
      m = 0;
      hm = static_cast<uint8_t>(hm << 1);
    }
  }
  pack_2bit(L, y + 32);
}

// q6_k {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: from the 16 sub-block scales (max_scale
// the one of largest magnitude, not 0).
void q6_k_finish(const float* x, uint8_t* y, const float* scales, float max_scale, int8_t* L) {
  uint8_t* ql = y;
  uint8_t* qh = y + 128;
  int8_t* sc = reinterpret_cast<int8_t*>(y + 192);
  const float iscale = -128.f / max_scale;
  put_f16(y + 208, 1 / iscale);
  for (int ib = 0; ib < QK_K / 16; ++ib)
    sc[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  for (int j = 0; j < QK_K / 16; ++j) {
    const float d = get_f16(y + 208) * sc[j];
    if (d == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      int l = nearest_int(x[16 * j + ii] / d);
      l = std::max(-32, std::min(31, l));
      L[16 * j + ii] = static_cast<int8_t>(l + 32);
    }
  }
  for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32)
    for (int l = 0; l < 32; ++l) {
      const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
      const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
      ql[l + 0] = static_cast<uint8_t>(q1 | (q3 << 4));
      ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
      qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                   ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
    }
}

// {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin} = 84 bytes: 16 sub-blocks of 16, 2-bit values with
// a 4-bit scale and min each (make_qkx2_quants with |x| weights and absolute errors).
void q2_k_from_float(const float* x, uint8_t* y, int64_t nb) {
  uint8_t L[QK_K], Laux[16];
  float weights[16], mins[QK_K / 16], scales[QK_K / 16];
  constexpr float q4scale = 15.f;
  for (int64_t i = 0; i < nb; ++i, x += QK_K, y += 84) {
    uint8_t* sc = y;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f,
                                   0.1f, 15, true);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (int j = 0; j < QK_K / 16; ++j)
        sc[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
      put_f16(y + 80, max_scale / q4scale);
    } else {
      std::memset(sc, 0, 16);
      put_f16(y + 80, 0.f);
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (int j = 0; j < QK_K / 16; ++j)
        sc[j] = static_cast<uint8_t>(sc[j] | (nearest_int(iscale * mins[j]) << 4));
      put_f16(y + 82, max_min / q4scale);
    } else {
      put_f16(y + 82, 0.f);
    }
    q2_k_finish(x, y, L);
  }
}

// {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d} = 110 bytes: 16 sub-blocks of 16, 3-bit values
// (2 low bits in qs, the high bit in hmask) with 6-bit signed scales.
void q3_k_from_float(const float* x, uint8_t* y, int64_t nb) {
  int8_t L[QK_K];
  float scales[QK_K / 16];
  for (int64_t i = 0; i < nb; ++i, x += QK_K, y += 110) {
    uint8_t* sc = y + 96;
    float max_scale = 0, amax = 0;
    for (int j = 0; j < QK_K / 16; ++j) {
      scales[j] = make_q3_quants_rmse(16, 4, x + 16 * j, L + 16 * j);
      const float scale = std::fabs(scales[j]);
      if (scale > amax) {
        amax = scale;
        max_scale = scales[j];
      }
    }
    std::memset(sc, 0, 12);
    if (max_scale != 0.0f) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < QK_K / 16; ++j) {
        int l = nearest_int(iscale * scales[j]);  // in [-32, 32]: ggml's int8_t holds it
        l = std::max(-32, std::min(31, l)) + 32;
        if (j < 8)
          sc[j] = static_cast<uint8_t>(l & 0xF);
        else
          sc[j - 8] = static_cast<uint8_t>(sc[j - 8] | ((l & 0xF) << 4));
        l >>= 4;
        sc[j % 4 + 8] = static_cast<uint8_t>(sc[j % 4 + 8] | (l << (2 * (j / 4))));
      }
      put_f16(y + 108, 1 / iscale);
    } else {
      put_f16(y + 108, 0.f);
    }
    q3_k_finish(x, y, L);
  }
}

// {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]} = 176 bytes: as q4_k with 5-bit values
// (the fifth bit in qh).
void q5_k_from_float(const float* x, uint8_t* y, int64_t nb) {
  uint8_t L[QK_K], Laux[32];
  float weights[32], mins[QK_K / 32], scales[QK_K / 32];
  for (int64_t i = 0; i < nb; ++i, x += QK_K, y += 176) {
    uint8_t* sc = y + 4;
    uint8_t* qh = y + 16;
    uint8_t* ql = y + 48;
    std::memset(sc, 0, 12);
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; ++j) {
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
      scales[j] = make_qkx2_quants(32, 31, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.5f,
                                   0.1f, 15, false);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; ++j) {
      uint8_t ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
      uint8_t lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
      ls = std::min<uint8_t>(63, ls);
      lm = std::min<uint8_t>(63, lm);
      if (j < 4) {
        sc[j] = ls;
        sc[j + 4] = lm;
      } else {
        sc[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
        sc[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
        sc[j - 0] |= static_cast<uint8_t>((lm >> 4) << 6);
      }
    }
    put_f16(y, max_scale / 63.f);
    put_f16(y + 2, max_min / 63.f);
    for (int j = 0; j < QK_K / 32; ++j) {
      uint8_t s, m;
      get_scale_min_k4(j, sc, &s, &m);
      const float d = get_f16(y) * s;
      if (d == 0.0f) continue;
      const float dm = get_f16(y + 2) * m;
      for (int ii = 0; ii < 32; ++ii) {
        const int l = nearest_int((x[32 * j + ii] + dm) / d);
        L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(31, l)));
      }
    }
    std::memset(qh, 0, QK_K / 8);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < QK_K; n += 64, ql += 32) {
      for (int j = 0; j < 32; ++j) {
        int l1 = L[n + j], l2 = L[n + j + 32];
        if (l1 > 15) {
          l1 -= 16;
          qh[j] = static_cast<uint8_t>(qh[j] | m1);
        }
        if (l2 > 15) {
          l2 -= 16;
          qh[j] = static_cast<uint8_t>(qh[j] | m2);
        }
        ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
      }
      m1 = static_cast<uint8_t>(m1 << 2);
      m2 = static_cast<uint8_t>(m2 << 2);
    }
  }
}

// {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d} = 210 bytes
void q6_k_from_float(const float* x, uint8_t* y, int64_t nb) {
  int8_t L[QK_K];
  float scales[QK_K / 16];
  for (int64_t i = 0; i < nb; ++i, x += QK_K, y += 210) {
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < QK_K / 16; ++ib) {
      const float scale = make_qx_quants_rmse1(16, 32, x + 16 * ib, L + 16 * ib);
      scales[ib] = scale;
      const float abs_scale = std::fabs(scale);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scale;
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(y, 0, 210);
      put_f16(y + 208, 0.f);
      continue;
    }
    q6_k_finish(x, y, scales, max_scale, L);
  }
}

// ---- ternary ----------------------------------------------------------------------------

// {u8 qs[64]; f16 d}: d = max|x|, q = round(x / d) + 1 in {0, 1, 2} (lroundf: ties away from
// zero), four values per byte as tq2_0_to_float reads them.
void tq2_0_from_float(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 66) {
    float amax = 0.0f;
    for (int j = 0; j < QK_K; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(y + 64, d);
    for (int j = 0; j < 64; j += 32) {
      for (int m = 0; m < 32; ++m) {
        int q = 0;
        for (int n = 0; n < 4; ++n) {
          const int xi = static_cast<int>(std::lround(x[m + n * 32] * id)) + 1;
          q += (xi & 3) << (2 * n);
        }
        y[j + m] = static_cast<uint8_t>(q);
      }
      x += 4 * 32;
    }
  }
}

}  // namespace rows

bool can_quantize(DType t) {
  if (t == DType::F32 || t == DType::F16 || t == DType::BF16) return true;
  const QuantTraits* q = quant_traits(t);
  return q && q->from_float;
}

std::vector<std::string> quantize_type_names() {
  std::vector<std::string> r;
  for (const QuantTraits& q : quant_types())
    if (q.from_float) r.emplace_back(q.name);
  return r;
}

std::string quantize_type_list(std::string_view sep) {
  std::string r;
  for (const std::string& n : quantize_type_names()) {
    if (!r.empty()) r += sep;
    r += n;
  }
  return r;
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  if (!can_quantize(t))
    throw InvalidArgument(ErrorContext().op("quantize"),
                          "cannot quantize to " + std::string(name(t)));
  const int64_t bs = traits(t).block_size;
  if (n < 0 || n % bs != 0)
    throw InvalidArgument(ErrorContext().op("quantize"),
                          std::to_string(n) + " elements is not a multiple of the " +
                              std::string(name(t)) + " block size " + std::to_string(bs));
  uint8_t* y = static_cast<uint8_t*>(dst);
  if (const QuantTraits* q = quant_traits(t)) return q->from_float(src, y, n / bs);
  switch (t) {
    case DType::F32:
      std::memcpy(y, src, static_cast<size_t>(n) * 4);
      break;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_f16(src[i]);
        std::memcpy(y + 2 * i, &h, 2);
      }
      break;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_bf16(src[i]);
        std::memcpy(y + 2 * i, &h, 2);
      }
      break;
    default:
      break;
  }
}

Tensor quantize(const Tensor& t, DType to) {
  if (!can_quantize(to))
    throw InvalidArgument(ErrorContext().op("quantize"),
                          "cannot quantize to " + std::string(name(to)));
  if (!t.is_contiguous())
    throw InvalidArgument(ErrorContext().op("quantize"), "input must be contiguous");
  const int64_t bs = traits(to).block_size;
  const int64_t cols = t.ndim() == 0 ? 1 : t.dim(t.ndim() - 1);
  if (cols % bs != 0)
    throw ShapeError(ErrorContext().op("quantize").shape("input", t.shape()),
                     "last dimension " + std::to_string(cols) + " is not a multiple of the " +
                         std::string(name(to)) + " block size " + std::to_string(bs));
  const int64_t rows = cols == 0 ? 0 : static_cast<int64_t>(t.numel()) / cols;
  Tensor out = Tensor::empty(to, t.shape());
  const size_t in_row = *row_bytes(t.dtype(), static_cast<uint64_t>(cols));
  const size_t out_row = *row_bytes(to, static_cast<uint64_t>(cols));
  const uint8_t* src = static_cast<const uint8_t*>(t.raw());
  uint8_t* dst = static_cast<uint8_t*>(out.mutable_raw());
  std::vector<float> f(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row;
    if (t.dtype() == DType::F32) {
      row = reinterpret_cast<const float*>(src + r * in_row);
      if (reinterpret_cast<uintptr_t>(row) % alignof(float) != 0) {
        std::memcpy(f.data(), row, in_row);
        row = f.data();
      }
    } else {
      dequantize_row(t.dtype(), src + r * in_row, f.data(), cols);
      row = f.data();
    }
    quantize_row(to, row, dst + r * out_row, cols);
  }
  return out;
}

// ---- importance-weighted quantizers (llama-quantize --imatrix) --------------------------
//
// ggml's quantize_row_*_impl with quant_weights (ggml-quants.c), restated: the same float
// operations in the same order, so the bytes equal ggml's quantize_<type>(src, dst, nrow,
// n_per_row, imatrix). qw holds one weight per column of the row.

namespace {

// make_qx_quants with rmse_type 1: weights qw (x^2 when null), 18 nearby scales tried.
float make_qx_quants_w(int n, int nmax, const float* x, int8_t* L, const float* qw) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = qw ? qw[i] : x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * x[i]);
      l = std::max(-nmax, std::min(nmax - 1, l));
      const float w = qw ? qw[i] : x[i] * x[i];
      sumlx += w * x[i] * static_cast<float>(l);
      suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * x[i]);
        L[i] = static_cast<int8_t>(nmax + std::max(-nmax, std::min(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// make_qkx3_quants: asymmetric fit with given weights and squared errors, 37 scale candidates.
float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max <= min) {
    std::memset(L, 0, static_cast<size_t>(n));
    *the_min = -min;
    return 0.f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_mad = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    diff = diff * diff;
    best_mad += weights[i] * diff;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * (x[i] - min));
      l = std::max(0, std::min(nmax, l));
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      const float lf = static_cast<float>(l);
      sum_l += w * lf;
      sum_l2 += w * lf * lf;
      sum_xl += w * lf * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float mad = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
        diff = diff * diff;
        mad += weights[i] * diff;
      }
      if (mad < best_mad) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_mad = mad;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// make_qp_quants: non-negative values x (sub-block scales or mins) on [0, nmax] with weights.
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* qw) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = std::max(max, x[i]);
  if (max == 0.0f) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = static_cast<float>(nmax) / max;
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(nearest_int(iscale * x[i]));
  const float scale = 1 / iscale;
  float best_mse = 0;
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - scale * static_cast<float>(L[i]);
    best_mse += qw[i] * diff * diff;
  }
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * static_cast<float>(is) + static_cast<float>(nmax)) / max;
    const float scale_is = 1 / iscale_is;
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::min(nmax, nearest_int(iscale_is * x[i]));
      const float diff = x[i] - scale_is * static_cast<float>(l);
      mse += qw[i] * diff * diff;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::min(nmax, nearest_int(iscale * x[i]));
    L[i] = static_cast<uint8_t>(l);
    const float w = qw[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = qw[i];
      const float li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      float sl2 = suml2 - w * li * li;
      if (slx > 0 && sl2 > 0) {
        const int new_l = std::min(nmax, nearest_int(x[i] * sl2 / slx));
        if (new_l != L[i]) {
          slx += w * x[i] * static_cast<float>(new_l);
          sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<uint8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  return sumlx / suml2;
}

// Packs 4-bit (q4_k) or 5-bit (q5_k) values L of a super-block whose 6-bit scales/mins are set.
void pack_qk_values(const float* x, uint8_t* y, uint8_t* L, bool five_bit) {
  const uint8_t* sc = y + 4;
  const int nmax = five_bit ? 31 : 15;
  for (int j = 0; j < QK_K / 32; ++j) {
    uint8_t s, m;
    rows::get_scale_min_k4(j, sc, &s, &m);
    const float d = get_f16(y) * s;
    if (d == 0.0f) continue;
    const float dm = get_f16(y + 2) * m;
    for (int ii = 0; ii < 32; ++ii) {
      const int l = nearest_int((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    }
  }
  if (!five_bit) {
    uint8_t* q = y + 16;
    for (int j = 0; j < QK_K; j += 64, q += 32)
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    return;
  }
  uint8_t* qh = y + 16;
  uint8_t* ql = y + 48;
  std::memset(qh, 0, QK_K / 8);
  uint8_t m1 = 1, m2 = 2;
  for (int n = 0; n < QK_K; n += 64, ql += 32) {
    for (int j = 0; j < 32; ++j) {
      int l1 = L[n + j], l2 = L[n + j + 32];
      if (l1 > 15) {
        l1 -= 16;
        qh[j] = static_cast<uint8_t>(qh[j] | m1);
      }
      if (l2 > 15) {
        l2 -= 16;
        qh[j] = static_cast<uint8_t>(qh[j] | m2);
      }
      ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
    m1 = static_cast<uint8_t>(m1 << 2);
    m2 = static_cast<uint8_t>(m2 << 2);
  }
}

// quantize_row_q4_K_impl / quantize_row_q5_K_impl.
void qk_weighted(const float* x, uint8_t* y, int64_t nb, const float* qw, bool five_bit) {
  const int nmax = five_bit ? 31 : 15;
  const size_t bytes = five_bit ? 176 : 144;
  uint8_t L[QK_K], Laux[32], Ls[QK_K / 32], Lm[QK_K / 32];
  float weights[32], sw[QK_K / 32], mins[QK_K / 32], scales[QK_K / 32];
  for (int64_t i = 0; i < nb; ++i, x += QK_K, y += bytes, qw += QK_K) {
    float sum_x2 = 0;
    for (int l = 0; l < QK_K; ++l) sum_x2 += x[l] * x[l];
    const float sigma2 = 2 * sum_x2 / QK_K;
    for (int j = 0; j < QK_K / 32; ++j) {
      for (int l = 0; l < 32; ++l)
        weights[l] = qw[32 * j + l] * std::sqrt(sigma2 + x[32 * j + l] * x[32 * j + l]);
      float sumw = 0;
      for (int l = 0; l < 32; ++l) sumw += weights[l];
      sw[j] = sumw;
      scales[j] = make_qkx3_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.9f,
                                   0.05f, 36);
    }
    const float d_block = make_qp_quants(QK_K / 32, 63, scales, Ls, sw);
    const float m_block = make_qp_quants(QK_K / 32, 63, mins, Lm, sw);
    uint8_t* sc = y + 4;
    std::memset(sc, 0, 12);
    for (int j = 0; j < QK_K / 32; ++j) {
      uint8_t ls = Ls[j], lm = Lm[j];
      if (five_bit) {
        ls = std::min<uint8_t>(63, ls);
        lm = std::min<uint8_t>(63, lm);
      }
      if (j < 4) {
        sc[j] = ls;
        sc[j + 4] = lm;
      } else {
        sc[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
        sc[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
        sc[j - 0] |= static_cast<uint8_t>((lm >> 4) << 6);
      }
    }
    put_f16(y, d_block);
    put_f16(y + 2, m_block);
    pack_qk_values(x, y, L, five_bit);
  }
}

// quantize_row_q2_K_impl.
void q2_k_weighted(const float* x, uint8_t* y, int64_t nb, const float* qw) {
  uint8_t L[QK_K], Laux[16], Ls[QK_K / 16], Lm[QK_K / 16];
  float mins[QK_K / 16], scales[QK_K / 16], sw[QK_K / 16], weight[16];
  for (int64_t i = 0; i < nb; ++i, x += QK_K, y += 84, qw += QK_K) {
    std::memset(sw, 0, sizeof(sw));
    float sumx2 = 0;
    for (int j = 0; j < QK_K; ++j) sumx2 += x[j] * x[j];
    const float sigma2 = sumx2 / QK_K;
    for (int j = 0; j < QK_K / 16; ++j) {
      for (int l = 0; l < 16; ++l)
        weight[l] = qw[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
      for (int l = 0; l < QK_K / 16; ++l) sw[j] += weight[l];
      scales[j] =
          make_qkx3_quants(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36);
    }
    float dm = make_qp_quants(QK_K / 16, 15, scales, Ls, sw);
    float mm = make_qp_quants(QK_K / 16, 15, mins, Lm, sw);
    put_f16(y + 80, dm);
    put_f16(y + 82, mm);
    dm = get_f16(y + 80);
    mm = get_f16(y + 82);
    uint8_t* sc = y;
    for (int j = 0; j < QK_K / 16; ++j) sc[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
    rows::q2_k_finish(x, y, L);
  }
}

// quantize_row_q3_K_impl.
void q3_k_weighted(const float* x, uint8_t* y, int64_t nb, const float* qw) {
  int8_t L[QK_K], Ls[QK_K / 16];
  float scales[QK_K / 16], weight[16], sw[QK_K / 16];
  for (int64_t i = 0; i < nb; ++i, x += QK_K, y += 110, qw += QK_K) {
    float sumx2 = 0;
    for (int j = 0; j < QK_K; ++j) sumx2 += x[j] * x[j];
    const float sigma2 = 2 * sumx2 / QK_K;
    for (int j = 0; j < QK_K / 16; ++j) {
      for (int l = 0; l < 16; ++l)
        weight[l] = qw[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
      float sumw = 0;
      for (int l = 0; l < 16; ++l) sumw += weight[l];
      sw[j] = sumw;
      scales[j] = make_qx_quants_w(16, 4, x + 16 * j, L + 16 * j, weight);
    }
    uint8_t* sc = y + 96;
    std::memset(sc, 0, 12);
    const float d_block = make_qx_quants_w(QK_K / 16, 32, scales, Ls, sw);
    for (int j = 0; j < QK_K / 16; ++j) {
      int l = static_cast<uint8_t>(Ls[j]);  // in [0, 63]
      if (j < 8)
        sc[j] = static_cast<uint8_t>(l & 0xF);
      else
        sc[j - 8] = static_cast<uint8_t>(sc[j - 8] | ((l & 0xF) << 4));
      l >>= 4;
      sc[j % 4 + 8] = static_cast<uint8_t>(sc[j % 4 + 8] | (l << (2 * (j / 4))));
    }
    put_f16(y + 108, d_block);
    rows::q3_k_finish(x, y, L);
  }
}

// quantize_row_q6_K_impl: the reference with make_qx_quants weighted by qw.
void q6_k_weighted(const float* x, uint8_t* y, int64_t nb, const float* qw) {
  int8_t L[QK_K];
  float scales[QK_K / 16];
  for (int64_t i = 0; i < nb; ++i, x += QK_K, y += 210, qw += QK_K) {
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < QK_K / 16; ++ib) {
      const float scale = make_qx_quants_w(16, 32, x + 16 * ib, L + 16 * ib, qw + 16 * ib);
      scales[ib] = scale;
      if (std::fabs(scale) > max_abs_scale) {
        max_abs_scale = std::fabs(scale);
        max_scale = scale;
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(y, 0, 210);
      continue;
    }
    rows::q6_k_finish(x, y, scales, max_scale, L);
  }
}

// quantize_row_q{4,5}_{0,1}_impl: sigma2 over the whole row.
void q32_weighted(DType t, const float* x, uint8_t* y, int64_t n, const float* qw) {
  float sum_x2 = 0;
  for (int64_t j = 0; j < n; ++j) sum_x2 += x[j] * x[j];
  const float sigma2 = sum_x2 / static_cast<float>(n);
  const bool five = t == DType::Q5_0 || t == DType::Q5_1;
  const bool with_min = t == DType::Q4_1 || t == DType::Q5_1;
  const size_t bytes = traits(t).type_size;
  float weight[QK];
  for (int64_t ib = 0; ib < n / QK; ++ib, y += bytes) {
    const float* xb = x + QK * ib;
    const float* w = qw + QK * ib;
    for (int j = 0; j < QK; ++j) weight[j] = w[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
    uint8_t L[QK];
    if (with_min) {
      uint8_t Laux[QK];
      float min;
      const float d =
          make_qkx3_quants(QK, five ? 31 : 15, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36);
      put_f16(y, d);
      put_f16(y + 2, -min);
    } else {
      int8_t Ls[QK];
      put_f16(y, make_qx_quants_w(QK, five ? 16 : 8, xb, Ls, weight));
      for (int j = 0; j < QK; ++j) L[j] = static_cast<uint8_t>(Ls[j]);
    }
    uint8_t* qs = y + (with_min ? 4 : 2) + (five ? 4 : 0);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4));
      qh |= static_cast<uint32_t>((L[j] & 0x10u) >> 4) << j;
      qh |= static_cast<uint32_t>((L[j + 16] & 0x10u) >> 4) << (j + 16);
    }
    if (five) std::memcpy(y + (with_min ? 4 : 2), &qh, 4);
  }
}

}  // namespace

bool has_weighted_quantizer(DType t) {
  switch (t) {
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

void quantize_row_weighted(DType t, const float* src, void* dst, int64_t n, const float* qw) {
  if (!qw || !has_weighted_quantizer(t)) return quantize_row(t, src, dst, n);
  const int64_t bs = traits(t).block_size;
  if (n <= 0 || n % bs != 0)
    throw InvalidArgument(ErrorContext().op("quantize"),
                          std::to_string(n) + " elements is not a multiple of the " +
                              std::string(name(t)) + " block size " + std::to_string(bs));
  uint8_t* y = static_cast<uint8_t*>(dst);
  const int64_t nb = n / bs;
  switch (t) {
    case DType::Q2_K:
      return q2_k_weighted(src, y, nb, qw);
    case DType::Q3_K:
      return q3_k_weighted(src, y, nb, qw);
    case DType::Q4_K:
      return qk_weighted(src, y, nb, qw, false);
    case DType::Q5_K:
      return qk_weighted(src, y, nb, qw, true);
    case DType::Q6_K:
      return q6_k_weighted(src, y, nb, qw);
    default:
      return q32_weighted(t, src, y, n, qw);
  }
}

std::optional<DType> quant_type_from_name(std::string_view s) {
  std::string l(s);
  for (auto& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto t = dtype_from_name(l);
  if (!t || !can_quantize(*t)) return std::nullopt;
  return t;
}

}  // namespace ohm::quant
