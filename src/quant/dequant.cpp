// Scalar reference dequantization, transcribed from ggml's dequantize_row_* (ggml-quants.c).
// The float expressions keep ggml's operand order; see dequant.h for why that matters.
#include "ohm/quant/dequant.h"

#include <cfloat>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>

#include "ohm/core/error.h"
#include "ohm/core/half.h"
#include "ohm/core/quant_traits.h"

// a*b+c must round twice, as in ggml's reference build and in numpy: never fuse into an FMA.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace ohm::quant {

namespace {

constexpr int QK = 32;     // block size of the legacy quants
constexpr int QK_K = 256;  // block size of the k-quants

inline uint16_t ld_u16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
inline uint32_t ld_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
inline float ld_f16(const uint8_t* p) {
  return f16_to_f32(ld_u16(p));
}
inline float ld_f32(const uint8_t* p) {
  return bits_to_f32(ld_u32(p));
}

}  // namespace

// ---- the per-type rows of kQuantTypes (ohm/core/quant_traits.h) ----------------------------

namespace rows {

// ---- legacy 32-element quants ----------------------------------------------------------------

void q4_0_to_float(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 18, y += QK) {
    const float d = ld_f16(x);
    const uint8_t* qs = x + 2;
    for (int j = 0; j < QK / 2; ++j) {
      const int x0 = (qs[j] & 0x0F) - 8;
      const int x1 = (qs[j] >> 4) - 8;
      y[j] = static_cast<float>(x0) * d;
      y[j + QK / 2] = static_cast<float>(x1) * d;
    }
  }
}

void q4_1_to_float(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 20, y += QK) {
    const float d = ld_f16(x);
    const float m = ld_f16(x + 2);
    const uint8_t* qs = x + 4;
    for (int j = 0; j < QK / 2; ++j) {
      const int x0 = qs[j] & 0x0F;
      const int x1 = qs[j] >> 4;
      y[j] = static_cast<float>(x0) * d + m;
      y[j + QK / 2] = static_cast<float>(x1) * d + m;
    }
  }
}

void q5_0_to_float(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 22, y += QK) {
    const float d = ld_f16(x);
    const uint32_t qh = ld_u32(x + 2);
    const uint8_t* qs = x + 6;
    for (int j = 0; j < QK / 2; ++j) {
      const uint8_t xh_0 = static_cast<uint8_t>(((qh >> (j + 0)) << 4) & 0x10);
      const uint8_t xh_1 = static_cast<uint8_t>((qh >> (j + 12)) & 0x10);
      const int32_t x0 = ((qs[j] & 0x0F) | xh_0) - 16;
      const int32_t x1 = ((qs[j] >> 4) | xh_1) - 16;
      y[j] = static_cast<float>(x0) * d;
      y[j + QK / 2] = static_cast<float>(x1) * d;
    }
  }
}

void q5_1_to_float(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 24, y += QK) {
    const float d = ld_f16(x);
    const float m = ld_f16(x + 2);
    const uint32_t qh = ld_u32(x + 4);
    const uint8_t* qs = x + 8;
    for (int j = 0; j < QK / 2; ++j) {
      const uint8_t xh_0 = static_cast<uint8_t>(((qh >> (j + 0)) << 4) & 0x10);
      const uint8_t xh_1 = static_cast<uint8_t>((qh >> (j + 12)) & 0x10);
      const int x0 = (qs[j] & 0x0F) | xh_0;
      const int x1 = (qs[j] >> 4) | xh_1;
      y[j] = static_cast<float>(x0) * d + m;
      y[j + QK / 2] = static_cast<float>(x1) * d + m;
    }
  }
}

namespace {
// q8_0 and q8_1 share the layout except for q8_1's extra f16 `s` (= d * sum(qs)) after `d`.
void deq_q8(const uint8_t* x, float* y, int64_t nb, int block_bytes) {
  const int qs_off = block_bytes - QK;
  for (int64_t i = 0; i < nb; ++i, x += block_bytes, y += QK) {
    const float d = ld_f16(x);
    const uint8_t* qs = x + qs_off;
    for (int j = 0; j < QK; ++j) y[j] = static_cast<float>(static_cast<int8_t>(qs[j])) * d;
  }
}
}  // namespace

void q8_0_to_float(const uint8_t* x, float* y, int64_t nb) {
  deq_q8(x, y, nb, 34);
}
void q8_1_to_float(const uint8_t* x, float* y, int64_t nb) {
  deq_q8(x, y, nb, 36);
}

// ---- k-quants (256-element super-blocks) -----------------------------------------------------

void q2_k_to_float(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 84) {
    const uint8_t* scales = x;
    const uint8_t* q = x + 16;
    const float d = ld_f16(x + 80);
    const float min = ld_f16(x + 82);
    int is = 0;
    for (int n = 0; n < QK_K; n += 128) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        uint8_t sc = scales[is++];
        float dl = d * static_cast<float>(sc & 0xF);
        float ml = min * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l)
          *y++ = dl * static_cast<float>(static_cast<int8_t>((q[l] >> shift) & 3)) - ml;
        sc = scales[is++];
        dl = d * static_cast<float>(sc & 0xF);
        ml = min * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l)
          *y++ = dl * static_cast<float>(static_cast<int8_t>((q[l + 16] >> shift) & 3)) - ml;
        shift += 2;
      }
      q += 32;
    }
  }
}

void q3_k_to_float(const uint8_t* x, float* y, int64_t nb) {
  constexpr uint32_t kmask1 = 0x03030303;
  constexpr uint32_t kmask2 = 0x0f0f0f0f;
  for (int64_t i = 0; i < nb; ++i, x += 110) {
    const uint8_t* hm = x;
    const uint8_t* q = x + 32;
    const uint8_t* sc_raw = x + 96;
    const float d_all = ld_f16(x + 108);

    // Unpack the sixteen 6-bit scales exactly as ggml does (on little-endian words).
    uint32_t aux[4] = {ld_u32(sc_raw), ld_u32(sc_raw + 4), ld_u32(sc_raw + 8), 0};
    const uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    int8_t scales[16];
    for (int k = 0; k < 16; ++k)
      scales[k] = static_cast<int8_t>((aux[k / 4] >> (8 * (k % 4))) & 0xFF);

    uint8_t m = 1;
    int is = 0;
    for (int n = 0; n < QK_K; n += 128) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        float dl = d_all * static_cast<float>(scales[is++] - 32);
        for (int l = 0; l < 16; ++l)
          *y++ = dl * static_cast<float>(static_cast<int8_t>((q[l + 0] >> shift) & 3) -
                                         ((hm[l + 0] & m) ? 0 : 4));
        dl = d_all * static_cast<float>(scales[is++] - 32);
        for (int l = 0; l < 16; ++l)
          *y++ = dl * static_cast<float>(static_cast<int8_t>((q[l + 16] >> shift) & 3) -
                                         ((hm[l + 16] & m) ? 0 : 4));
        shift += 2;
        m = static_cast<uint8_t>(m << 1);
      }
      q += 32;
    }
  }
}

namespace {
// ggml's get_scale_min_k4: eight 6-bit scales and mins packed into 12 bytes.
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

void q4_k_to_float(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 144) {
    const float d = ld_f16(x);
    const float min = ld_f16(x + 2);
    const uint8_t* scales = x + 4;
    const uint8_t* q = x + 16;
    int is = 0;
    uint8_t sc, m;
    for (int j = 0; j < QK_K; j += 64) {
      get_scale_min_k4(is + 0, scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = min * static_cast<float>(m);
      get_scale_min_k4(is + 1, scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
      q += 32;
      is += 2;
    }
  }
}

void q5_k_to_float(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 176) {
    const float d = ld_f16(x);
    const float min = ld_f16(x + 2);
    const uint8_t* scales = x + 4;
    const uint8_t* qh = x + 16;
    const uint8_t* ql = x + 48;
    int is = 0;
    uint8_t sc, m;
    unsigned u1 = 1, u2 = 2;
    for (int j = 0; j < QK_K; j += 64) {
      get_scale_min_k4(is + 0, scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = min * static_cast<float>(m);
      get_scale_min_k4(is + 1, scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l)
        *y++ = d1 * static_cast<float>((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l)
        *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
      ql += 32;
      is += 2;
      u1 <<= 2;
      u2 <<= 2;
    }
  }
}

void q6_k_to_float(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 210) {
    const uint8_t* ql = x;
    const uint8_t* qh = x + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(x + 192);
    const float d = ld_f16(x + 208);
    for (int n = 0; n < QK_K; n += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const auto q1 = static_cast<int8_t>(((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        const auto q2 = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        const auto q3 = static_cast<int8_t>(((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        const auto q4 = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        y[l + 0] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

void q8_k_to_float(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 292) {
    const float d = ld_f32(x);
    const uint8_t* qs = x + 4;
    for (int j = 0; j < QK_K; ++j) *y++ = d * static_cast<float>(static_cast<int8_t>(qs[j]));
  }
}

// ---- ternary -----------------------------------------------------------------------------------

// {u8 qs[64]; f16 d}: x = d * (q2 - 1), q2 in {0, 1, 2}; byte j of each 32-byte half holds the
// values j, j+32, j+64, j+96 of its 128 in bits 0-1, 2-3, 4-5, 6-7.
void tq2_0_to_float(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 66) {
    const float d = ld_f16(x + 64);
    for (int j = 0; j < 64; j += 32)
      for (int l = 0; l < 4; ++l)
        for (int m = 0; m < 32; ++m) {
          const int q = (x[j + m] >> (2 * l)) & 3;
          *y++ = static_cast<float>(q - 1) * d;
        }
  }
}

}  // namespace rows

namespace {

// ---- plain types -----------------------------------------------------------------------------

template <typename T>
void deq_cast(const uint8_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, x + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
    if constexpr (std::is_floating_point_v<T>) {
      // Out-of-range double -> float is undefined behaviour in C++: round as IEEE does
      // (values from FLT_MAX + half an ulp up overflow to inf, smaller ones give FLT_MAX).
      const double a = std::fabs(static_cast<double>(v));
      if (a > static_cast<double>(FLT_MAX)) {
        const double overflow = static_cast<double>(FLT_MAX) + std::ldexp(1.0, 103);
        const float r = a >= overflow ? INFINITY : FLT_MAX;
        y[i] = std::signbit(v) ? -r : r;
        continue;
      }
    }
    y[i] = static_cast<float>(v);
  }
}

}  // namespace

bool can_dequantize(DType t) {
  return static_cast<int>(t) < static_cast<int>(DType::Count_);
}

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  if (!can_dequantize(t)) throw InvalidArgument(ErrorContext().op("dequantize_row"), "bad dtype");
  const auto& tr = traits(t);
  if (n < 0 || n % tr.block_size != 0)
    throw InvalidArgument(ErrorContext().op("dequantize_row").note("dtype", std::string(tr.name)),
                          "element count " + std::to_string(n) +
                              " is not a non-negative multiple of the block size " +
                              std::to_string(tr.block_size));
  if (n == 0) return;
  const auto* x = static_cast<const uint8_t*>(src);
  if (const QuantTraits* q = quant_traits(t)) return q->to_float(x, dst, n / tr.block_size);
  switch (t) {
    case DType::F32:
      std::memcpy(dst, x, static_cast<size_t>(n) * 4);
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(ld_u16(x + 2 * i));
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(ld_u16(x + 2 * i));
      return;
    case DType::F64:
      return deq_cast<double>(x, dst, n);
    case DType::I8:
      return deq_cast<int8_t>(x, dst, n);
    case DType::I16:
      return deq_cast<int16_t>(x, dst, n);
    case DType::I32:
      return deq_cast<int32_t>(x, dst, n);
    case DType::I64:
      return deq_cast<int64_t>(x, dst, n);
    case DType::U8:
      return deq_cast<uint8_t>(x, dst, n);
    case DType::U16:
      return deq_cast<uint16_t>(x, dst, n);
    case DType::U32:
      return deq_cast<uint32_t>(x, dst, n);
    case DType::U64:
      return deq_cast<uint64_t>(x, dst, n);
    case DType::Bool:
      for (int64_t i = 0; i < n; ++i) dst[i] = x[i] ? 1.0f : 0.0f;
      return;
    case DType::F8_E4M3:
      for (int64_t i = 0; i < n; ++i) dst[i] = f8e4m3_to_f32(x[i]);
      return;
    case DType::F8_E5M2:
      for (int64_t i = 0; i < n; ++i) dst[i] = f8e5m2_to_f32(x[i]);
      return;
    default:
      break;
  }
  throw InvalidArgument(ErrorContext().op("dequantize_row"), "bad dtype");
}

Tensor dequantize(const Tensor& t) {
  if (!t.defined()) throw InvalidArgument(ErrorContext().op("dequantize"), "undefined tensor");
  if (!t.is_contiguous())
    throw ShapeError(ErrorContext().op("dequantize").shape("shape", t.shape()),
                     "tensor is not contiguous");
  Tensor out = Tensor::empty(DType::F32, t.shape());
  const uint64_t n = t.numel();
  if (n > static_cast<uint64_t>(INT64_MAX))
    throw ShapeError(ErrorContext().op("dequantize").shape("shape", t.shape()),
                     "too many elements");
  dequantize_row(t.dtype(), t.raw(), out.mutable_data<float>(), static_cast<int64_t>(n));
  return out;
}

}  // namespace ohm::quant
