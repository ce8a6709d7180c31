#include "ohm/core/tensor.h"

#include <cstdlib>
#include <cstring>

#include "ohm/core/error.h"
#include "ohm/core/half.h"

namespace ohm {

std::optional<uint64_t> checked_numel(const Shape& s) {
  uint64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) return std::nullopt;
    const auto ud = static_cast<uint64_t>(d);
    if (ud != 0 && n > UINT64_MAX / ud) return std::nullopt;
    n *= ud;
  }
  return n;
}

// ---- Storage -------------------------------------------------------------------------------

std::shared_ptr<Storage> Storage::allocate(uint64_t bytes) {
  std::shared_ptr<Storage> s(new Storage());
  const uint64_t rounded = (bytes + 63) / 64 * 64;
  if (rounded > 0) {
    void* p = std::aligned_alloc(64, rounded);
    if (!p) throw IoError(ErrorContext().note("bytes", std::to_string(bytes)), "out of memory");
    std::memset(p, 0, rounded);
    s->data_ = static_cast<uint8_t*>(p);
  }
  s->size_ = bytes;
  s->owned_ = true;
  return s;
}

std::shared_ptr<Storage> Storage::map_view(std::shared_ptr<const MappedFile> file, uint64_t offset,
                                           uint64_t len) {
  if (offset > file->size() || len > file->size() - offset)
    throw FormatError(ErrorContext().file(file->path()),
                      "byte range [" + std::to_string(offset) + ", +" + std::to_string(len) +
                          ") is outside the file (" + std::to_string(file->size()) + " bytes)");
  std::shared_ptr<Storage> s(new Storage());
  s->data_ = const_cast<uint8_t*>(file->data()) + offset;
  s->size_ = len;
  s->file_ = std::move(file);
  return s;
}

Storage::~Storage() {
  if (owned_) std::free(data_);
}

uint8_t* Storage::mutable_data() {
  if (!owned_) throw InvalidArgument("cannot write to a read-only memory-mapped tensor");
  return data_;
}

// ---- Tensor --------------------------------------------------------------------------------

static Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t acc = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    st[i] = acc;
    acc *= shape[i];
  }
  return st;
}

static uint64_t bytes_for(DType dtype, const Shape& shape) {
  auto n = checked_numel(shape);
  if (!n) throw ShapeError(ErrorContext().shape("shape", shape), "invalid or overflowing shape");
  const int64_t last = shape.empty() ? 1 : shape.back();
  if (traits(dtype).block_size > 1 && last % traits(dtype).block_size != 0)
    throw ShapeError(ErrorContext().shape("shape", shape).note("dtype", std::string(name(dtype))),
                     "last dimension is not a multiple of the block size " +
                         std::to_string(traits(dtype).block_size));
  auto b = row_bytes(dtype, *n);
  if (!b) throw ShapeError(ErrorContext().shape("shape", shape), "byte size overflows");
  return *b;
}

Tensor Tensor::empty(DType dtype, Shape shape) {
  const uint64_t bytes = bytes_for(dtype, shape);
  return view(Storage::allocate(bytes), dtype, std::move(shape), 0);
}

Tensor Tensor::view(std::shared_ptr<Storage> storage, DType dtype, Shape shape, uint64_t offset) {
  const uint64_t bytes = bytes_for(dtype, shape);
  if (offset > storage->size() || bytes > storage->size() - offset)
    throw ShapeError(ErrorContext().shape("shape", shape).note("dtype", std::string(name(dtype))),
                     "view of " + std::to_string(bytes) + " bytes at offset " +
                         std::to_string(offset) + " exceeds storage of " +
                         std::to_string(storage->size()) + " bytes");
  Tensor t;
  t.dtype_ = dtype;
  t.strides_ = contiguous_strides(shape);
  t.shape_ = std::move(shape);
  t.storage_ = std::move(storage);
  t.offset_ = offset;
  return t;
}

int64_t Tensor::dim(int i) const {
  const int n = ndim();
  if (i < 0) i += n;
  if (i < 0 || i >= n)
    throw InvalidArgument(ErrorContext().shape("shape", shape_), "dim index out of range");
  return shape_[static_cast<size_t>(i)];
}

uint64_t Tensor::numel() const {
  return checked_numel(shape_).value_or(0);
}
uint64_t Tensor::nbytes() const {
  return row_bytes(dtype_, numel()).value_or(0);
}
bool Tensor::is_contiguous() const {
  return strides_ == contiguous_strides(shape_);
}

Tensor Tensor::reshape(Shape shape) const {
  if (!is_contiguous()) throw ShapeError(ErrorContext().op("reshape"), "tensor is not contiguous");
  if (checked_numel(shape) != checked_numel(shape_))
    throw ShapeError(ErrorContext().op("reshape").shape("from", shape_).shape("to", shape),
                     "element counts differ");
  return view(storage_, dtype_, std::move(shape), offset_);
}

double element_as_double(const void* data, DType dtype, uint64_t i) {
  const auto* p = static_cast<const uint8_t*>(data);
  auto ld = [&](auto tag) {
    decltype(tag) v;
    std::memcpy(&v, p + i * sizeof(v), sizeof(v));
    return v;
  };
  switch (dtype) {
    case DType::F32:
      return ld(float{});
    case DType::F64:
      return ld(double{});
    case DType::F16:
      return f16_to_f32(ld(uint16_t{}));
    case DType::BF16:
      return bf16_to_f32(ld(uint16_t{}));
    case DType::I8:
      return ld(int8_t{});
    case DType::I16:
      return ld(int16_t{});
    case DType::I32:
      return ld(int32_t{});
    case DType::I64:
      return static_cast<double>(ld(int64_t{}));
    case DType::U8:
      return ld(uint8_t{});
    case DType::U16:
      return ld(uint16_t{});
    case DType::U32:
      return ld(uint32_t{});
    case DType::U64:
      return static_cast<double>(ld(uint64_t{}));
    case DType::Bool:
      return p[i] ? 1.0 : 0.0;
    case DType::F8_E4M3:
      return f8e4m3_to_f32(p[i]);
    case DType::F8_E5M2:
      return f8e5m2_to_f32(p[i]);
    default:
      throw DTypeError(ErrorContext().note("dtype", std::string(name(dtype))),
                       "element access needs a plain dtype (dequantize first)");
  }
}

static void store_from_double(void* data, DType dtype, uint64_t i, double v) {
  auto* p = static_cast<uint8_t*>(data);
  auto st = [&](auto x) { std::memcpy(p + i * sizeof(x), &x, sizeof(x)); };
  switch (dtype) {
    case DType::F32:
      return st(static_cast<float>(v));
    case DType::F64:
      return st(v);
    case DType::F16:
      return st(f32_to_f16(static_cast<float>(v)));
    case DType::BF16:
      return st(f32_to_bf16(static_cast<float>(v)));
    case DType::I8:
      return st(static_cast<int8_t>(v));
    case DType::I16:
      return st(static_cast<int16_t>(v));
    case DType::I32:
      return st(static_cast<int32_t>(v));
    case DType::I64:
      return st(static_cast<int64_t>(v));
    case DType::U8:
      return st(static_cast<uint8_t>(v));
    case DType::U16:
      return st(static_cast<uint16_t>(v));
    case DType::U32:
      return st(static_cast<uint32_t>(v));
    case DType::U64:
      return st(static_cast<uint64_t>(v));
    case DType::Bool:
      return st(static_cast<uint8_t>(v != 0.0));
    default:
      throw DTypeError(ErrorContext().note("dtype", std::string(name(dtype))),
                       "cannot convert into this dtype");
  }
}

Tensor Tensor::to(DType dtype) const {
  if (is_quantized(dtype_) || is_quantized(dtype))
    throw DTypeError(ErrorContext()
                         .op("to")
                         .note("from", std::string(name(dtype_)))
                         .note("to", std::string(name(dtype))),
                     "quantized conversions live in ohm::quant");
  if (!is_contiguous()) throw ShapeError(ErrorContext().op("to"), "tensor is not contiguous");
  Tensor out = empty(dtype, shape_);
  const uint64_t n = numel();
  if (dtype == dtype_) {
    std::memcpy(out.mutable_raw(), raw(), nbytes());
  } else if (dtype == DType::F32 && dtype_ == DType::BF16) {
    const auto* s = data<uint16_t>();
    auto* d = out.mutable_data<float>();
    for (uint64_t i = 0; i < n; ++i) d[i] = bf16_to_f32(s[i]);
  } else if (dtype == DType::F32 && dtype_ == DType::F16) {
    const auto* s = data<uint16_t>();
    auto* d = out.mutable_data<float>();
    for (uint64_t i = 0; i < n; ++i) d[i] = f16_to_f32(s[i]);
  } else {
    for (uint64_t i = 0; i < n; ++i)
      store_from_double(out.mutable_raw(), dtype, i, element_as_double(raw(), dtype_, i));
  }
  return out;
}

std::string Tensor::str() const {
  return std::string(name(dtype_)) + shape_str(shape_);
}

}  // namespace ohm
