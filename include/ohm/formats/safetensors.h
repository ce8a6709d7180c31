// safetensors reader (https://github.com/huggingface/safetensors, format as the Rust crate
// validates it): 8-byte little-endian header length N, N bytes of JSON header, then the data.
// Files are memory-mapped; tensors are zero-copy views.
//
// Checkpoint adds the HF layouts around it: a single `model.safetensors`, or shards listed
// in `model.safetensors.index.json` ({"metadata": {...}, "weight_map": {tensor: shard file}}).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ohm/core/mapped_file.h"
#include "ohm/core/tensor.h"

namespace ohm::safetensors {

// Largest JSON header accepted (the Rust crate's limit).
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct TensorInfo {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0;  // byte offsets relative to the start of the data section
  uint64_t end = 0;
  uint64_t nbytes() const { return end - begin; }
};

struct Header {
  std::vector<TensorInfo> tensors;  // in file-offset order
  std::map<std::string, std::string> metadata;
  uint64_t data_offset = 0;  // 8 + N
};

// Parses and validates a header against a buffer of `size` bytes; `name` is used in errors.
// Throws FormatError / UnsupportedError; never reads outside [data, data+size).
Header parse_header(const uint8_t* data, uint64_t size, const std::string& name);

class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path);
  static SafetensorsFile parse(std::shared_ptr<const MappedFile> file);

  const std::string& path() const { return file_->path(); }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const TensorInfo* find(const std::string& name) const;
  // Zero-copy view; NotFoundError naming file and tensor if absent.
  Tensor tensor(const std::string& name) const;
  const std::shared_ptr<const MappedFile>& file() const { return file_; }

 private:
  std::shared_ptr<const MappedFile> file_;
  Header header_;
  std::unordered_map<std::string, size_t> index_;
};

// One tensor of a (possibly sharded) checkpoint.
struct CheckpointTensor {
  TensorInfo info;
  size_t shard = 0;  // index into Checkpoint::shards()
};

class Checkpoint {
 public:
  // `path`: a directory holding model.safetensors or model.safetensors.index.json, a
  // .safetensors file, or an index .json file.
  static Checkpoint open(const std::string& path);

  // All tensors sorted by name.
  const std::vector<CheckpointTensor>& tensors() const { return tensors_; }
  const std::vector<SafetensorsFile>& shards() const { return shards_; }
  // __metadata__ of a single file, or the index's "metadata" (values stringified).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& index_path() const { return index_path_; }  // empty when unsharded

  bool contains(const std::string& name) const { return by_name_.count(name) != 0; }
  const CheckpointTensor& info(const std::string& name) const;
  Tensor tensor(const std::string& name) const;

 private:
  std::vector<SafetensorsFile> shards_;
  std::vector<CheckpointTensor> tensors_;
  std::unordered_map<std::string, size_t> by_name_;
  std::map<std::string, std::string> metadata_;
  std::string index_path_;
};

}  // namespace ohm::safetensors
