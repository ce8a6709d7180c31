// GPTQ and AWQ checkpoints as Hugging Face publishes them (config.json `quantization_config`):
// a WeightSource over the checkpoint that answers `<module>.weight` for every quantized linear
// from its `qweight` / `qzeros` / `scales` (/ `g_idx`) tensors, repacked at load into ohm's GGUF
// block types, so they run on the existing integer kernels. Everything else passes through.
//
// Repacking (docs/quantization.md, "GPTQ and AWQ checkpoints"); every case is exact, i.e. each
// weight's value scales[g, n] * (q - zero) is reproduced bit for bit:
//   4-bit, every zero 8 (GPTQ sym)        -> Q4_0 (d = the group's f16 scale, nibble = q)
//   4-bit, other zeros (GPTQ asym, AWQ)   -> Q5_0 (d = scale, 5-bit value q - zero + 16); or,
//                                            where the active kernel table has no fine-activation
//                                            kernel for Q5_0 but one for Q8_0 (AVX2), Q8_0
//                                            (d = scale, int8 value q - zero in [-15, 15]):
//                                            asym4_block_type()
//   8-bit, every zero 128 (GPTQ sym)      -> Q8_0 (d = scale, int8 value q - 128)
//   8-bit, other zeros (GPTQ asym)        -> F32 (scale * (q - zero); no int8 block holds it)
// A block of 32 input columns needs one group: group_size a multiple of 32 (or -1). With
// act-order (`desc_act`, a g_idx that is not i / group_size) the input columns are sorted by
// g_idx at load and find_input_permutation returns the order; nn::Linear gathers its input in
// that order before the matmul. Once repacked, the checkpoint's pages of the module's tensors go
// back to the page cache (a mapped file; they fault back in if read again).
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ohm/formats/config.h"
#include "ohm/kernels/kernels.h"
#include "ohm/nn/weights.h"

namespace ohm::nn {

// The block type 4-bit checkpoints with zeros other than 8 repack to under `kt`: Q5_0 where kt
// packs Q5_0 for its int4 group kernel (AVX-512) or has no fine-activation Q8_0 kernel either
// (the reference table), else Q8_0, which the AVX2 table runs on its SIMD kernel instead of
// the reference one (1.55x the bytes of Q5_0, the same exact values).
DType asym4_block_type(const kernels::KernelTable& kt);

class QuantizedSource : public WeightSource {
 public:
  // `base` must outlive this source.
  QuantizedSource(const WeightSource& base, QuantizationConfig q);

  std::optional<Tensor> find(const std::string& name) const override;
  std::vector<std::string> names() const override;
  std::string describe() const override { return base_.describe(); }
  std::optional<std::vector<int32_t>> find_input_permutation(
      const std::string& name) const override;
  std::string stored_as(const std::string& name) const override;
  bool find_float_activations(const std::string& name) const override;
  // Frees the repacked copy of `<module>.weight` (its permutation stays); a later find repacks
  // again.
  void release(const std::string& name) const override;

  const QuantizationConfig& config() const { return q_; }

 private:
  struct Repacked {
    Tensor weight;
    std::vector<int32_t> perm;  // empty: input columns in stored order
  };
  // The repacked `prefix.weight`, nullptr when prefix has no qweight.
  const Repacked* repack(const std::string& prefix) const;

  const WeightSource& base_;
  QuantizationConfig q_;
  mutable std::mutex mu_;
  mutable std::map<std::string, Repacked> cache_;
};

}  // namespace ohm::nn
