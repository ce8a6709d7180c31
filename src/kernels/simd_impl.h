// SIMD kernel bodies shared by the per-ISA translation units (avx2.cpp, avx512.cpp). Each TU
// defines OHM_SIMD_W512 (0 or 1) and includes this file once, inside an anonymous namespace, so
// every function here has internal linkage and is compiled with that TU's -m flags only. The
// bodies are split per op family into the simd_*.h files below, in dependency order.
//
// ODR rule for these files: no std:: templates, no calls to inline functions of other headers
// (they would be emitted as weak symbols compiled with AVX-512 flags and could be picked by the
// linker for scalar code). Only intrinsics, plain C++ and non-inline ohm functions.
//
// Numerics (tolerances are stated and tested in tests/unit/test_kernels_simd.cpp):
//   * f32/f16/bf16 matmul: exact weight conversion, f32 FMA accumulation in a different order
//     than the reference: |diff| <= ~1e-6 * sum|x*w|.
//   * block-quantized matmul (Q4_0, Q8_0, Q4_K, Q6_K): like llama.cpp, the activation row is
//     quantized once per call to int8 with one f32 scale per 32 elements (per 256 for the
//     K-quants on the AVX2 row tiles; round to nearest), then int8 x int4/int6/int8 dot
//     products in int32 (VNNI vpdpbusd where available) with block scales applied in f32.
//     Error vs the exact-f32 reference is bounded by sum_k |w_k| * amax(x block of k) / 254
//     (the rounding error of the activation) plus f32 rounding.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels_internal.h"

#ifndef OHM_SIMD_W512
#error "define OHM_SIMD_W512 before including simd_impl.h"
#endif

// clang-format off
#include "simd_common.h"        // vf abstraction, horizontal sums, vexp
#include "simd_matmul_float.h"  // f32/f16/bf16 row tiles, decode_rows
#include "simd_quant_dot.h"     // int8 activations, block-quant row tiles
#include "simd_qgemm.h"         // batched block-quant GEMM (AVX-512)
#include "simd_packed.h"        // packed Q4_0 panels (AVX-512)
#include "simd_gemm_float.h"    // batched float GEMM (AVX-512), mm_floatb
#include "simd_matvec_q32.h"    // Q4_0 / Q8_0 decode
#include "simd_matvec_k.h"      // Q4_K / Q6_K decode (AVX-512)
#include "simd_norm_act.h"      // elementwise, norms, softmax, silu, rope
#include "simd_attention.h"     // one attention query
#include "simd_table.h"         // mm_quant, the QuantTraits SIMD families, fill_table
// clang-format on
