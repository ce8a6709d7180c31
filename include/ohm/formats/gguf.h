// GGUF (llama.cpp / ggml) reader: versions 2 and 3, little-endian.
//
// Layout: "GGUF", u32 version, i64 n_tensors, i64 n_kv, n_kv x {string key, u32 type, value},
// n_tensors x {string name, u32 n_dims, i64 ne[n_dims], u32 ggml_type, u64 offset}, padding to
// `general.alignment` (default 32), then the tensor data. Strings are u64 length + bytes (no NUL).
//
// The file is memory-mapped and never copied: metadata strings and scalar arrays point into the
// mapping and tensor() returns zero-copy views. Every read is bounds-checked; a malformed file
// throws FormatError naming the file and the offending key or tensor (UnsupportedError for GGUF v1,
// big-endian files and ggml types ohm does not implement). Parsing never reads out of bounds and
// never allocates more than a small multiple of the file size.
//
//   auto f = ohm::gguf::GGUFFile::open("model.gguf");
//   auto arch = f.get_string("general.architecture");             // std::optional<std::string>
//   auto n_ctx = f.get_int(*arch + ".context_length");             // std::optional<int64_t>
//   auto tokens = f.get_string_array("tokenizer.ggml.tokens");     // optional<vector<string>>
//   ohm::Tensor w = f.tensor("blk.0.attn_q.weight");               // e.g. q4_k[4096, 4096]
//   ohm::Tensor wf = ohm::quant::dequantize(w);                    // f32, same shape
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ohm/core/dtype.h"
#include "ohm/core/mapped_file.h"
#include "ohm/core/tensor.h"

namespace ohm::gguf {

enum class ValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
// "uint8", "int32", "float32", "bool", "string", "array", ... ("?" for an invalid value).
std::string_view type_name(ValueType t);

// GGML_MAX_DIMS: tensors have at most 4 dimensions.
inline constexpr uint32_t kMaxDims = 4;
// Arrays of arrays may nest at most this deep (an array of scalars has depth 1).
inline constexpr int kMaxArrayDepth = 8;
inline constexpr uint64_t kDefaultAlignment = 32;

// ggml_type id <-> ohm::DType. nullopt for ids ohm does not implement (IQ*, TQ*, MXFP4...).
std::optional<DType> dtype_from_ggml(uint32_t ggml_type);
std::optional<uint32_t> ggml_type_of(DType t);
// ggml's upper-case name of a type id ("Q4_K", "IQ2_XXS"); empty for an unknown id.
std::string_view ggml_type_name(uint32_t ggml_type);

// A metadata value. Strings and scalar arrays borrow the file's bytes: a Value (and every
// string_view it returns) is valid as long as the GGUFFile it came from (or a copy of it) lives.
class Value {
 public:
  ValueType type() const { return type_; }
  bool is_array() const { return type_ == ValueType::ARRAY; }
  bool is_string() const { return type_ == ValueType::STRING; }
  bool is_integer() const;  // u8..i64 (not bool)
  bool is_float() const { return type_ == ValueType::FLOAT32 || type_ == ValueType::FLOAT64; }

  // Scalars. nullopt when the type does not fit: as_int on a float or string, a uint64 above
  // INT64_MAX, as_uint on a negative value. as_double accepts floats and integers.
  std::optional<int64_t> as_int() const;
  std::optional<uint64_t> as_uint() const;
  std::optional<double> as_double() const;
  std::optional<bool> as_bool() const;
  std::optional<std::string_view> as_string() const;

  // Arrays (size() is 0 for scalars). Element accessors take the same conversions as above and
  // throw InvalidArgument on a bad index.
  ValueType array_type() const { return elem_type_; }
  uint64_t size() const { return is_array() ? count_ : 0; }
  Value at(uint64_t i) const;  // any element, as a Value (nested arrays included)
  std::optional<std::vector<int64_t>> to_int_vector() const;
  std::optional<std::vector<double>> to_double_vector() const;
  std::optional<std::vector<std::string>> to_string_vector() const;
  std::optional<std::vector<std::string_view>> to_string_view_vector() const;
  // Raw little-endian bytes of an array of fixed-size scalars (e.g. the f32 token scores), any
  // alignment; nullptr for string arrays and nested arrays.
  const uint8_t* raw_array_data() const { return raw_; }

  // JSON form: numbers, bools, strings (invalid UTF-8 replaced by U+FFFD), arrays as JSON arrays.
  // Arrays with more than `max_array_items` elements are summarised as
  //   {"type": "array", "element_type": "string", "count": 151936, "head": [first items...]}.
  nlohmann::json to_json(uint64_t max_array_items = UINT64_MAX) const;
  // One-line human-readable form (arrays summarised: "[string x 32000: "<unk>", "<s>", ...]").
  std::string to_string(uint64_t max_array_items = 8) const;

 private:
  friend class Parser;
  ValueType type_ = ValueType::UINT8;
  ValueType elem_type_ = ValueType::UINT8;  // arrays only
  uint64_t bits_ = 0;                       // scalar payload (little-endian bits, zero-extended)
  std::string_view str_;                    // STRING
  uint64_t count_ = 0;                      // arrays: number of elements
  const uint8_t* raw_ = nullptr;            // arrays of fixed-size scalars
  std::vector<std::string_view> strings_;   // arrays of strings
  std::vector<Value> items_;                // arrays of arrays
};

struct TensorInfo {
  std::string name;
  uint32_t ggml_type = 0;
  DType dtype = DType::F32;
  std::vector<int64_t> dims;  // GGUF order: ne0 (contiguous) first
  Shape shape;                // row-major (dims reversed), as ohm::Tensor uses
  uint64_t numel = 0;
  uint64_t relative_offset = 0;  // as stored: from the start of the data section
  uint64_t offset = 0;           // absolute byte offset in the file
  uint64_t nbytes = 0;
};

class GGUFFile {
 public:
  // Memory-maps and parses `path` (IoError if it cannot be opened).
  static GGUFFile open(const std::string& path);
  // Parses an existing mapping (error messages name file->path()).
  static GGUFFile parse(std::shared_ptr<const MappedFile> file);
  // Parses a copy of an in-memory buffer (MappedFile::from_bytes; fuzzing, tests); `name` stands
  // for the file in errors.
  static GGUFFile parse_buffer(const void* data, size_t size, const std::string& name = "<memory>");

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the tensor data section
  uint64_t file_size() const;

  // ---- metadata, in file order ----
  size_t n_kv() const { return kv_.size(); }
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  bool has(std::string_view key) const { return find(key) != nullptr; }
  const Value* find(std::string_view key) const;  // nullptr if absent
  const Value& at(std::string_view key) const;    // NotFoundError naming the file and key

  // Typed getters: nullopt when the key is absent; FormatError naming the file and key when it
  // is present with an incompatible type (e.g. get_int on a string, or a uint64 > INT64_MAX).
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<uint64_t> get_uint(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;  // floats and integers
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::vector<std::string>> get_string_array(std::string_view key) const;
  std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;
  std::optional<std::vector<double>> get_float_array(std::string_view key) const;

  // ---- tensors, in file order ----
  size_t n_tensors() const { return tensors_.size(); }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;  // nullptr if absent
  const TensorInfo& tensor_info(std::string_view name) const;  // NotFoundError
  // A zero-copy view of the tensor's bytes (row-major shape, ggml dtype). Views keep the mapping
  // alive after the GGUFFile is gone.
  Tensor tensor(std::string_view name) const;

  // {"file", "version", "alignment", "data_offset", "metadata": {key: value...},
  //  "metadata_types": {key: "uint32" | "array[string]"...},
  //  "tensors": [{"name", "type" (ohm's name), "ggml_type" (id), "ggml_type_name", "shape",
  //               "dims", "offset" (absolute), "nbytes"}...]}
  // Arrays longer than max_array_items are summarised (see Value::to_json).
  nlohmann::json to_json(uint64_t max_array_items = 16) const;

 private:
  friend class Parser;
  std::string name_;
  std::shared_ptr<Storage> storage_;  // a view of the whole file
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace ohm::gguf
