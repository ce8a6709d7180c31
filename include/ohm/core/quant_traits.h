// The table of GGUF block-quantized types: one QuantTraits row per type, and everything else
// reads it (ggml's type_traits, as one row per type).
//
//   core/dtype      the type's name, block size and bytes (DType's traits)
//   quant           dequantize_row (to_float) and quantize_row (from_float)
//   kernels         the reference matmul (to_float per weight row) for every row; the SIMD tables
//                   add their kernels for the row's `simd` family (src/kernels/simd_quant.h)
//   formats/gguf    the ggml type id, read and written; the GGUF name is the upper-cased name
//   cli             every --quantize / --type choice and its help text (rows with a from_float)
//
// Adding a type: docs/contributing.md ("Add a quant type").
//
// The to_float / from_float functions are defined in libohm_quant (src/quant/); this header only
// declares them. Core reads the data columns of the table at compile time (src/core/dtype.cpp),
// so libohm_core never refers to them; code that calls them links libohm_quant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "ohm/core/dtype.h"

namespace ohm {

namespace quant::rows {
// Per-type block math (src/quant/dequant.cpp, src/quant/quantize.cpp): `nb` whole blocks.
void q4_0_to_float(const uint8_t* x, float* y, int64_t nb);
void q4_1_to_float(const uint8_t* x, float* y, int64_t nb);
void q5_0_to_float(const uint8_t* x, float* y, int64_t nb);
void q5_1_to_float(const uint8_t* x, float* y, int64_t nb);
void q8_0_to_float(const uint8_t* x, float* y, int64_t nb);
void q8_1_to_float(const uint8_t* x, float* y, int64_t nb);
void q2_k_to_float(const uint8_t* x, float* y, int64_t nb);
void q3_k_to_float(const uint8_t* x, float* y, int64_t nb);
void q4_k_to_float(const uint8_t* x, float* y, int64_t nb);
void q5_k_to_float(const uint8_t* x, float* y, int64_t nb);
void q6_k_to_float(const uint8_t* x, float* y, int64_t nb);
void q8_k_to_float(const uint8_t* x, float* y, int64_t nb);
void tq2_0_to_float(const uint8_t* x, float* y, int64_t nb);

void q4_0_from_float(const float* x, uint8_t* y, int64_t nb);
void q4_1_from_float(const float* x, uint8_t* y, int64_t nb);
void q5_0_from_float(const float* x, uint8_t* y, int64_t nb);
void q5_1_from_float(const float* x, uint8_t* y, int64_t nb);
void q8_0_from_float(const float* x, uint8_t* y, int64_t nb);
void q2_k_from_float(const float* x, uint8_t* y, int64_t nb);
void q3_k_from_float(const float* x, uint8_t* y, int64_t nb);
void q4_k_from_float(const float* x, uint8_t* y, int64_t nb);
void q5_k_from_float(const float* x, uint8_t* y, int64_t nb);
void q6_k_from_float(const float* x, uint8_t* y, int64_t nb);
void tq2_0_from_float(const float* x, uint8_t* y, int64_t nb);
}  // namespace quant::rows

// The SIMD kernel family a row's matmul (and batched qgemm) uses in the AVX2/AVX-512 tables.
// None: only the reference matmul (dequantize a weight row with to_float, f32 dot products).
enum class SimdKernel : uint8_t { None, Q4_0, Q8_0, Q4_K, Q6_K };

// llama_ftype (GGUF general.file_type) for "every matrix of this type"; kNoFileType: none.
inline constexpr uint32_t kNoFileType = UINT32_MAX;

struct QuantTraits {
  using ToFloat = void (*)(const uint8_t* x, float* y, int64_t nb);
  using FromFloat = void (*)(const float* x, uint8_t* y, int64_t nb);

  DType dtype;
  std::string_view name;  // ohm's and the CLI's spelling; ggml's is its upper case ("Q4_K")
  int64_t block_size;     // elements per block
  size_t block_bytes;     // bytes per block (ggml-common.h's block_* structs)
  uint32_t ggml_type;     // ggml.h's enum ggml_type id, as stored in GGUF tensor infos
  ToFloat to_float;       // dequantize nb blocks (bit-exact with ggml's dequantize_row_*)
  FromFloat from_float;   // quantize nb blocks; nullptr where ohm has no quantizer
  DType vec_dot_type;     // the activation type of ggml's dot product (F32: none)
  uint32_t file_type;     // llama_ftype of a file of this type (ohm make-bench-model)
  SimdKernel simd;        // SIMD kernel family (see SimdKernel)
};

// ggml's block layouts (ggml-common.h), QK = 32, QK_K = 256.
inline constexpr QuantTraits kQuantTypes[] = {
    // clang-format off
    // dtype        name    blk  bytes id  to_float                   from_float                 vec_dot      ftype        simd
    {DType::Q4_0, "q4_0",  32,  18,  2, &quant::rows::q4_0_to_float, &quant::rows::q4_0_from_float, DType::Q8_0, 2,           SimdKernel::Q4_0},
    {DType::Q4_1, "q4_1",  32,  20,  3, &quant::rows::q4_1_to_float, &quant::rows::q4_1_from_float, DType::Q8_1, 3,           SimdKernel::None},
    {DType::Q5_0, "q5_0",  32,  22,  6, &quant::rows::q5_0_to_float, &quant::rows::q5_0_from_float, DType::Q8_0, 8,           SimdKernel::None},
    {DType::Q5_1, "q5_1",  32,  24,  7, &quant::rows::q5_1_to_float, &quant::rows::q5_1_from_float, DType::Q8_1, 9,           SimdKernel::None},
    {DType::Q8_0, "q8_0",  32,  34,  8, &quant::rows::q8_0_to_float, &quant::rows::q8_0_from_float, DType::Q8_0, 7,           SimdKernel::Q8_0},
    {DType::Q8_1, "q8_1",  32,  36,  9, &quant::rows::q8_1_to_float, nullptr,                       DType::Q8_1, kNoFileType, SimdKernel::None},
    {DType::Q2_K, "q2_k", 256,  84, 10, &quant::rows::q2_k_to_float, &quant::rows::q2_k_from_float, DType::Q8_K, 10,          SimdKernel::None},
    {DType::Q3_K, "q3_k", 256, 110, 11, &quant::rows::q3_k_to_float, &quant::rows::q3_k_from_float, DType::Q8_K, 12,          SimdKernel::None},
    {DType::Q4_K, "q4_k", 256, 144, 12, &quant::rows::q4_k_to_float, &quant::rows::q4_k_from_float, DType::Q8_K, 15,          SimdKernel::Q4_K},
    {DType::Q5_K, "q5_k", 256, 176, 13, &quant::rows::q5_k_to_float, &quant::rows::q5_k_from_float, DType::Q8_K, 17,          SimdKernel::None},
    {DType::Q6_K, "q6_k", 256, 210, 14, &quant::rows::q6_k_to_float, &quant::rows::q6_k_from_float, DType::Q8_K, 18,          SimdKernel::Q6_K},
    {DType::Q8_K, "q8_k", 256, 292, 15, &quant::rows::q8_k_to_float, nullptr,                       DType::F32,  kNoFileType, SimdKernel::None},
    {DType::TQ2_0, "tq2_0", 256, 66, 35, &quant::rows::tq2_0_to_float, &quant::rows::tq2_0_from_float, DType::Q8_K, 37,     SimdKernel::None},
    // clang-format on
};

inline constexpr std::span<const QuantTraits> quant_types() {
  return kQuantTypes;
}

// The row of `t`; nullptr for a plain (not block-quantized) type.
inline constexpr const QuantTraits* quant_traits(DType t) {
  for (const QuantTraits& q : kQuantTypes)
    if (q.dtype == t) return &q;
  return nullptr;
}

}  // namespace ohm
