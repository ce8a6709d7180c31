// Reference (scalar) dequantization of GGUF block-quantized types and plain dtypes to f32.
//
// This is the oracle that optimised (SIMD) kernels are tested against: every function computes
// exactly what ggml's dequantize_row_* (ggml/src/ggml-quants.c) computes, in the same float
// operation order, so the results are bit-identical to ggml's reference and to gguf-py's
// gguf.quants.dequantize (as long as the compiler does not contract a*b+c into an FMA, which it
// does not with -std=c++20 / -ffp-contract=off, the project default).
//
// Block layouts (ggml-common.h), little-endian, QK_K = 256:
//   q4_0  {f16 d; u8 qs[16]}                              x = d * (nibble - 8)
//   q4_1  {f16 d; f16 m; u8 qs[16]}                       x = d * nibble + m
//   q5_0  {f16 d; u8 qh[4]; u8 qs[16]}                    x = d * (q5 - 16)
//   q5_1  {f16 d; f16 m; u8 qh[4]; u8 qs[16]}             x = d * q5 + m
//   q8_0  {f16 d; i8 qs[32]}                              x = d * q
//   q8_1  {f16 d; f16 s; i8 qs[32]}                       x = d * q        (s = d*sum(q), unused)
//   q2_k  {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin}     x = d*sc * q2 - dmin*m
//   q3_k  {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d} x = d*(sc-32) * (q2 - 4*!hbit)
//   q4_k  {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}    x = d*sc * q4 - dmin*m
//   q5_k  {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}
//   q6_k  {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}   x = d*sc * (q6 - 32)
//   q8_k  {f32 d; i8 qs[256]; i16 bsums[16]}              x = d * q
#pragma once

#include <cstdint>

#include "ohm/core/dtype.h"
#include "ohm/core/tensor.h"

namespace ohm::quant {

// Whether dequantize_row handles `t` (every DType except Count_ does: the block-quantized types,
// the float types, and the integer/bool types, which are converted with a plain cast).
bool can_dequantize(DType t);

// Converts `n` consecutive elements starting at `src` (raw bytes of dtype `t`, any alignment) to
// f32 in `dst`. `n` must be a non-negative multiple of the block size (InvalidArgument otherwise).
void dequantize_row(DType t, const void* src, float* dst, int64_t n);

// Returns a new contiguous f32 tensor with the same shape holding the dequantized values.
// Works for quantized and plain dtypes (an f32 input is copied). The input must be contiguous.
Tensor dequantize(const Tensor& t);

}  // namespace ohm::quant
