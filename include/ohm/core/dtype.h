// Element types: plain scalars and the block-quantized formats of GGUF.
//
// A block-quantized type packs `block_size` consecutive elements of a row into `type_size`
// bytes (ggml's type traits; its row in ohm/core/quant_traits.h, which this table reads).
// Plain types have block_size 1. Byte sizes are therefore computed
// per row: bytes(row of n) = n / block_size * type_size, and n must be a multiple of block_size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ohm {

enum class DType : uint8_t {
  F32,
  F16,
  BF16,
  F64,
  I8,
  I16,
  I32,
  I64,
  U8,
  U16,
  U32,
  U64,
  Bool,
  F8_E4M3,
  F8_E5M2,
  // GGUF block-quantized types: each has one row in kQuantTypes (ohm/core/quant_traits.h).
  Q4_0,
  Q4_1,
  Q5_0,
  Q5_1,
  Q8_0,
  Q8_1,
  Q2_K,
  Q3_K,
  Q4_K,
  Q5_K,
  Q6_K,
  Q8_K,
  TQ2_0,
  Count_,
};

struct DTypeTraits {
  std::string_view name;  // ohm's lower-case name: "f32", "bf16", "q4_k"
  int64_t block_size;     // elements per block (1 for plain types)
  size_t type_size;       // bytes per block
  bool is_float;          // floating point (incl. quantized floats)
  bool is_quantized;      // a block-quantized GGUF type
  uint32_t ggml_type;     // ggml.h's enum ggml_type id (GGUF); kNoGgmlType where GGUF has none
};
inline constexpr uint32_t kNoGgmlType = UINT32_MAX;

const DTypeTraits& traits(DType t);
inline std::string_view name(DType t) {
  return traits(t).name;
}
inline bool is_quantized(DType t) {
  return traits(t).is_quantized;
}

// Bytes for `n` consecutive elements (n must be a multiple of the block size; returns nullopt
// otherwise or on overflow).
std::optional<uint64_t> row_bytes(DType t, uint64_t n);

// Parses ohm names ("bf16") and, case-insensitively, safetensors names ("BF16", "BOOL",
// "F8_E4M3") and ggml names ("Q4_K").
std::optional<DType> dtype_from_name(std::string_view s);
// The safetensors spelling ("F32", "BF16", "BOOL", ...); empty for types safetensors lacks.
std::string_view safetensors_name(DType t);

}  // namespace ohm
