// The tensor core: a typed, shaped view over bytes that are either owned (aligned heap) or
// borrowed from a memory-mapped checkpoint (zero copy; the mapping lives as long as any view).
//
// Shapes are row-major as in PyTorch/HF: the last dimension is contiguous. Strides count
// elements. Block-quantized tensors are always contiguous and their last dimension is a
// multiple of the block size.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ohm/core/dtype.h"
#include "ohm/core/mapped_file.h"

namespace ohm {

using Shape = std::vector<int64_t>;

// Number of elements; nullopt on overflow or a negative dimension.
std::optional<uint64_t> checked_numel(const Shape& s);

class Storage {
 public:
  // Owned, 64-byte aligned, zero-filled.
  static std::shared_ptr<Storage> allocate(uint64_t bytes);
  // A view of [offset, offset+len) of a mapped file (checked against the file size).
  static std::shared_ptr<Storage> map_view(std::shared_ptr<const MappedFile> file, uint64_t offset,
                                           uint64_t len);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  const uint8_t* data() const { return data_; }
  uint8_t* mutable_data();  // throws InvalidArgument on a read-only mapped view
  uint64_t size() const { return size_; }
  bool is_mapped() const { return file_ != nullptr; }
  const std::shared_ptr<const MappedFile>& file() const { return file_; }

 private:
  Storage() = default;
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  bool owned_ = false;
  std::shared_ptr<const MappedFile> file_;
};

class Tensor {
 public:
  Tensor() = default;
  // A new zero-filled contiguous tensor.
  static Tensor empty(DType dtype, Shape shape);
  // A contiguous view of `storage` starting at byte `offset` (bounds-checked).
  static Tensor view(std::shared_ptr<Storage> storage, DType dtype, Shape shape,
                     uint64_t offset = 0);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  uint64_t numel() const;
  uint64_t nbytes() const;  // bytes of the (contiguous) data
  bool defined() const { return storage_ != nullptr; }
  bool is_contiguous() const;
  bool is_mapped() const { return storage_ && storage_->is_mapped(); }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  uint64_t offset() const { return offset_; }

  const void* raw() const { return storage_->data() + offset_; }
  void* mutable_raw() { return storage_->mutable_data() + offset_; }
  template <typename T>
  const T* data() const {
    return static_cast<const T*>(raw());
  }
  template <typename T>
  T* mutable_data() {
    return static_cast<T*>(mutable_raw());
  }

  // Same data, new shape with the same numel (contiguous tensors only).
  Tensor reshape(Shape shape) const;
  // Copy converted to a plain dtype (f32/f16/bf16/f64/int types). Quantized sources: see
  // quant::dequantize.
  Tensor to(DType dtype) const;

  std::string str() const;  // "bf16[32000, 4096]"

 private:
  DType dtype_ = DType::F32;
  Shape shape_, strides_;
  std::shared_ptr<Storage> storage_;
  uint64_t offset_ = 0;
};

// Reads element i of a contiguous plain-typed buffer as double (for tests and printing).
double element_as_double(const void* data, DType dtype, uint64_t i);

}  // namespace ohm
