// Weight lookup by checkpoint name, with explicit shapes (STYLE.md, "Weights are looked up by
// checkpoint name"). Model files ask for HF tensor names exactly as transformers writes them;
// shapes are checked on lookup, and every missing tensor is reported by name in one error.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ohm/core/tensor.h"
#include "ohm/formats/safetensors.h"

namespace ohm::nn {

// Where tensors come from (safetensors now; GGUF plugs in by mapping its names to HF's).
class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual std::optional<Tensor> find(const std::string& name) const = 0;
  virtual std::vector<std::string> names() const = 0;
  virtual std::string describe() const = 0;  // for error messages (the path)
  // A weight that the checkpoint stores as [cols, rows] (GPT-2's Conv1D) and this source holds
  // already transposed as [rows, cols] (GGUF files do): returned as is by
  // Weights::matrix_transposed, so block-quantized Conv1D weights work. nullopt by default.
  virtual std::optional<Tensor> find_pretransposed(const std::string& name) const {
    (void)name;
    return std::nullopt;
  }
  // True when the source holds the q/k projections (and biases) with their rows in ggml's
  // interleaved-pair RoPE order (llama.cpp's LLaMA converter) and find_rope_interleaved returns
  // them as stored: a model that rotates interleaved pairs then needs no permuted copy.
  virtual bool has_rope_interleaved_qk() const { return false; }
  virtual std::optional<Tensor> find_rope_interleaved(const std::string& name) const {
    (void)name;
    return std::nullopt;
  }
  // The order in which a matrix's input columns are stored when it is not the checkpoint's
  // (GPTQ act-order, ohm/nn/quantized_source.h): column j of the returned weight multiplies
  // input element perm[j]. nullopt by default (stored order).
  virtual std::optional<std::vector<int32_t>> find_input_permutation(
      const std::string& name) const {
    (void)name;
    return std::nullopt;
  }
  // Whether matrix `name` was made for float activations: transformers runs HF GPTQ / AWQ
  // weights against f32 / f16 inputs, so nn::Linear sets kernels::Matrix::fine_acts on them
  // (the int8 activation rounding of the Q4_0 / Q8_0 kernels stays out of their results).
  virtual bool find_float_activations(const std::string& name) const {
    (void)name;
    return false;
  }
  // How the checkpoint stores `name`, for error messages (a GPTQ weight: its qweight).
  virtual std::string stored_as(const std::string& name) const { return name; }
  // The caller keeps what it needs of `name` in another form (nn::Linear packed it): a source
  // holding a converted copy may free it (a later find makes it again). No-op by default.
  virtual void release(const std::string& name) const { (void)name; }
};

class CheckpointSource : public WeightSource {
 public:
  explicit CheckpointSource(safetensors::Checkpoint ckpt, std::string path)
      : ckpt_(std::move(ckpt)), path_(std::move(path)) {}
  std::optional<Tensor> find(const std::string& name) const override;
  std::vector<std::string> names() const override;
  std::string describe() const override { return path_; }

 private:
  safetensors::Checkpoint ckpt_;
  std::string path_;
};

class Weights {
 public:
  // `matrix_dtype`: convert 2-D weights to this dtype at load (nullopt: keep them as stored,
  // zero-copy from the mmap). Vectors (norms, biases) are always converted to f32.
  Weights(const WeightSource& src, std::optional<DType> matrix_dtype);

  // Quantize every 2-D weight to this GGUF block type at load (ohm::quant::quantize; rows whose
  // length is not a multiple of the block size are kept as stored). Applied after matrix_dtype.
  void set_quantize(std::optional<DType> q) { quantize_ = q; }
  // Fetch q/k projections in the source's interleaved RoPE order when it has one
  // (WeightSource::has_rope_interleaved_qk); the model must then rotate interleaved pairs.
  // Returns whether that order is in effect.
  bool use_rope_interleaved_qk() {
    rope_interleaved_ = src_.has_rope_interleaved_qk();
    return rope_interleaved_;
  }

  bool has(const std::string& name) const;
  // A weight of any rank with the given shape (dtype converted like matrices).
  Tensor tensor(const std::string& name, const Shape& shape);
  // A 2-D weight [rows, cols] (ShapeError on mismatch; a missing one is recorded, see check()).
  Tensor matrix(const std::string& name, int64_t rows, int64_t cols);
  // Stored as [cols, rows] (GPT-2's Conv1D): returns the transpose [rows, cols].
  Tensor matrix_transposed(const std::string& name, int64_t rows, int64_t cols);
  // A 1-D tensor of n values as f32.
  std::vector<float> vector(const std::string& name, int64_t n);
  std::optional<std::vector<float>> optional_vector(const std::string& name, int64_t n);

  // Throws NotFoundError naming every missing tensor (and the source).
  void check() const;
  // The input column order of matrix `name` (WeightSource::find_input_permutation); empty when
  // the columns are in the checkpoint's order.
  std::vector<int32_t> input_permutation(const std::string& name) const;
  // WeightSource::find_float_activations; OHM_FINE_ACTS=0 or 1 overrides it for every matrix.
  bool float_activations(const std::string& name) const;
  // WeightSource::release.
  void release(const std::string& name) const { src_.release(name); }
  // Tensors of the source never asked for.
  std::vector<std::string> unused() const;
  const WeightSource& source() const { return src_; }

 private:
  Tensor fetch(const std::string& name, const Shape& shape);
  const WeightSource& src_;
  std::optional<DType> matrix_dtype_;
  std::optional<DType> quantize_;
  bool rope_interleaved_ = false;
  std::vector<std::string> missing_;
  std::set<std::string> used_;
};

}  // namespace ohm::nn
