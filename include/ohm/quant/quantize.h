// Reference (scalar) quantization of f32 rows into GGUF block types, computing exactly what
// ggml's quantize_row_*_ref (ggml/src/ggml-quants.c) computes, in the same float operation order,
// so that the bytes are identical to ggml's and to gguf-py's gguf.quants.quantize (for the types
// gguf-py implements: those in scripts/make_quantize_fixtures.py's TYPES). Q4_K and Q6_K follow
// ggml's reference quantizers (make_qkx2_quants / make_qx_quants with the default, importance-free
// weights), i.e. what `llama-quantize` writes without an imatrix. Requires -ffp-contract=off
// (project default).
//
//   ohm::Tensor q = ohm::quant::quantize(w, ohm::DType::Q4_K);  // [rows, cols], cols % 256 == 0
//   ohm::Tensor back = ohm::quant::dequantize(q);               // f32, same shape
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ohm/core/dtype.h"
#include "ohm/core/tensor.h"

namespace ohm::quant {

// Types quantize_row can produce: the block types whose QuantTraits row has a from_float
// (ohm/core/quant_traits.h; docs/quantization.md lists them), and the plain float types F32,
// F16, BF16 (rounded to nearest even, as ggml).
bool can_quantize(DType t);

// The names of the block types quantize_row can produce, in table order ("q4_0", "q4_1", ...):
// the CLI's --quantize / --type choices.
std::vector<std::string> quantize_type_names();
// The same joined by `sep`, for help texts ("q4_0|q4_1|...").
std::string quantize_type_list(std::string_view sep = "|");

// Quantizes `n` floats (a multiple of t's block size) into `dst` (row_bytes(t, n) bytes).
// InvalidArgument for an unsupported type or a bad n.
void quantize_row(DType t, const float* src, void* dst, int64_t n);

// The importance-weighted quantizers llama-quantize uses with an imatrix (ggml's
// quantize_row_<type>_impl with quant_weights, bit-exact with ggml's quantize_<type>): one row of
// `n` floats with one weight per column in qw[n] (the imatrix's mean squared activations).
// q4_0, q4_1, q5_0, q5_1 and the k-quants have one; other types (q8_0, tq2_0, floats) and
// qw == nullptr are quantize_row.
bool has_weighted_quantizer(DType t);
void quantize_row_weighted(DType t, const float* src, void* dst, int64_t n, const float* qw);

// A new contiguous tensor of dtype `to`, same shape; the input (any dtype dequantize handles,
// contiguous) is converted to f32 first. The last dimension must be a multiple of the block size
// (ShapeError otherwise).
Tensor quantize(const Tensor& t, DType to);

// "q8_0", "q4_0", "q4_k", ... (case-insensitive, also "Q4_K_M"-free plain ggml names) -> DType,
// nullopt unless can_quantize.
std::optional<DType> quant_type_from_name(std::string_view s);

}  // namespace ohm::quant
