#include "ohm/nn/weights.h"

#include <cstdlib>
#include <cstring>

#include "ohm/core/error.h"
#include "ohm/quant/dequant.h"
#include "ohm/quant/quantize.h"

namespace ohm::nn {

std::optional<Tensor> CheckpointSource::find(const std::string& name) const {
  if (!ckpt_.contains(name)) return std::nullopt;
  return ckpt_.tensor(name);
}

std::vector<std::string> CheckpointSource::names() const {
  std::vector<std::string> out;
  for (const auto& t : ckpt_.tensors()) out.push_back(t.info.name);
  return out;
}

Weights::Weights(const WeightSource& src, std::optional<DType> matrix_dtype)
    : src_(src), matrix_dtype_(matrix_dtype) {}

bool Weights::has(const std::string& name) const {
  return src_.find(name).has_value();
}

Tensor Weights::fetch(const std::string& name, const Shape& shape) {
  std::optional<Tensor> t;
  if (rope_interleaved_) t = src_.find_rope_interleaved(name);
  if (!t) t = src_.find(name);
  if (!t) {
    missing_.push_back(name);
    return Tensor();
  }
  used_.insert(name);
  if (t->shape() != shape)
    throw ShapeError(ErrorContext()
                         .file(src_.describe())
                         .tensor(src_.stored_as(name))
                         .shape("expected", shape)
                         .shape("found", t->shape()),
                     "tensor has the wrong shape");
  if (!traits(t->dtype()).is_float)
    throw DTypeError(ErrorContext().file(src_.describe()).tensor(name),
                     "weight stored as " + std::string(ohm::name(t->dtype())) +
                         " (expected a float or quantized type)");
  // f64 has no kernels: converted to f32 here, as transformers does loading with dtype=float32.
  if (t->dtype() == DType::F64) return t->to(DType::F32);
  return *t;
}

namespace {
Tensor convert(const Tensor& t, DType to) {
  if (t.dtype() == to) return t;
  Tensor f = is_quantized(t.dtype()) ? quant::dequantize(t) : t;
  return f.dtype() == to ? f : f.to(to);
}
// Quantize-on-load: rows that do not split into whole blocks stay as they are.
Tensor maybe_quantize(const Tensor& t, DType q) {
  if (t.dtype() == q || t.ndim() != 2 || t.dim(1) % traits(q).block_size != 0) return t;
  return quant::quantize(t, q);
}
}  // namespace

Tensor Weights::tensor(const std::string& name, const Shape& shape) {
  Tensor t = fetch(name, shape);
  if (!t.defined()) return Tensor::empty(DType::F32, shape);  // placeholder; check() throws
  if (matrix_dtype_) t = convert(t, *matrix_dtype_);
  if (quantize_ && shape.size() == 2) t = maybe_quantize(t, *quantize_);
  return t;
}

Tensor Weights::matrix(const std::string& name, int64_t rows, int64_t cols) {
  return tensor(name, {rows, cols});
}

Tensor Weights::matrix_transposed(const std::string& name, int64_t rows, int64_t cols) {
  if (auto pre = src_.find_pretransposed(name)) {
    used_.insert(name);
    if (pre->shape() != Shape{rows, cols})
      throw ShapeError(ErrorContext()
                           .file(src_.describe())
                           .tensor(name)
                           .shape("expected", Shape{rows, cols})
                           .shape("found", pre->shape()),
                       "tensor has the wrong shape");
    Tensor t = *pre;
    if (matrix_dtype_) t = convert(t, *matrix_dtype_);
    if (quantize_) t = maybe_quantize(t, *quantize_);
    return t;
  }
  Tensor t = fetch(name, {cols, rows});
  if (!t.defined()) return Tensor::empty(DType::F32, {rows, cols});
  if (is_quantized(t.dtype()))
    throw UnsupportedError(ErrorContext().file(src_.describe()).tensor(name),
                           "cannot transpose a block-quantized weight");
  if (matrix_dtype_) t = convert(t, *matrix_dtype_);
  const size_t es = traits(t.dtype()).type_size;
  Tensor out = Tensor::empty(t.dtype(), {rows, cols});
  const uint8_t* src = static_cast<const uint8_t*>(t.raw());
  uint8_t* dst = static_cast<uint8_t*>(out.mutable_raw());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      std::memcpy(dst + (r * cols + c) * es, src + (c * rows + r) * es, es);
  if (quantize_) out = maybe_quantize(out, *quantize_);
  return out;
}

std::vector<float> Weights::vector(const std::string& name, int64_t n) {
  Tensor t = fetch(name, {n});
  std::vector<float> out(static_cast<size_t>(n), 0.0f);
  if (!t.defined()) return out;
  quant::dequantize_row(t.dtype(), t.raw(), out.data(), n);
  return out;
}

std::optional<std::vector<float>> Weights::optional_vector(const std::string& name, int64_t n) {
  if (!has(name)) return std::nullopt;
  return vector(name, n);
}

void Weights::check() const {
  if (missing_.empty()) return;
  std::string list;
  for (size_t i = 0; i < missing_.size() && i < 20; ++i) list += (i ? ", " : "") + missing_[i];
  if (missing_.size() > 20) list += ", ... (" + std::to_string(missing_.size()) + " in all)";
  throw NotFoundError(ErrorContext().file(src_.describe()), "missing tensors: " + list);
}

std::vector<int32_t> Weights::input_permutation(const std::string& name) const {
  return src_.find_input_permutation(name).value_or(std::vector<int32_t>{});
}

bool Weights::float_activations(const std::string& name) const {
  static const int forced = [] {
    const char* v = std::getenv("OHM_FINE_ACTS");
    return v && *v ? (std::string(v) == "0" ? 0 : 1) : -1;
  }();
  return forced >= 0 ? forced == 1 : src_.find_float_activations(name);
}

std::vector<std::string> Weights::unused() const {
  std::vector<std::string> out;
  for (const auto& n : src_.names())
    if (!used_.count(n)) out.push_back(n);
  return out;
}

}  // namespace ohm::nn
