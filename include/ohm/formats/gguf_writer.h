// GGUF v3 writer (little-endian), the counterpart of gguf.h's reader and of gguf-py's
// GGUFWriter: header, metadata in insertion order, tensor infos, padding to `general.alignment`,
// then each tensor's bytes padded to the alignment.
//
//   ohm::gguf::GGUFWriter w("llama");                       // general.architecture
//   w.add_uint32("llama.block_count", 22);
//   w.add_tensor("token_embd.weight", embd);                // any ggml-typed contiguous Tensor
//   w.add_tensor_lazy("blk.0.attn_q.weight", DType::Q4_K, {2048, 2048},
//                     [&](uint8_t* dst) { ... });           // bytes produced while writing
//   w.write("model.gguf");
//
// Lazy tensors let multi-GB files be written with one tensor in memory at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ohm/core/dtype.h"
#include "ohm/core/tensor.h"
#include "ohm/formats/gguf.h"

namespace ohm::gguf {

class GGUFWriter {
 public:
  // Adds general.architecture (unless arch is empty) and, if alignment != 32,
  // general.alignment.
  explicit GGUFWriter(const std::string& arch = "", uint64_t alignment = kDefaultAlignment);

  void add_uint8(const std::string& key, uint8_t v);
  void add_int32(const std::string& key, int32_t v);
  void add_uint32(const std::string& key, uint32_t v);
  void add_uint64(const std::string& key, uint64_t v);
  void add_int64(const std::string& key, int64_t v);
  void add_float32(const std::string& key, float v);
  void add_float64(const std::string& key, double v);
  void add_bool(const std::string& key, bool v);
  void add_string(const std::string& key, const std::string& v);
  void add_string_array(const std::string& key, const std::vector<std::string>& v);
  void add_int32_array(const std::string& key, const std::vector<int32_t>& v);
  void add_float32_array(const std::string& key, const std::vector<float>& v);
  // A metadata value read from a GGUF file, copied with its type (arrays of any element type,
  // nested arrays included): `ohm quantize` copies an input file's metadata with it.
  void add_value(const std::string& key, const Value& v);

  // A contiguous tensor with a ggml type (row-major shape; written with ne0 = last dim).
  void add_tensor(const std::string& name, const Tensor& t);
  // A tensor whose bytes (row_bytes(dtype, numel)) `fill` writes when write() reaches it.
  void add_tensor_lazy(const std::string& name, DType dtype, const Shape& shape,
                       std::function<void(uint8_t* dst)> fill);

  // Writes the file (IoError on failure). InvalidArgument for duplicate keys/names, types
  // without a ggml id, or shapes with more than 4 dims.
  void write(const std::string& path) const;

 private:
  struct KV {
    std::string key;
    std::string bytes;  // type id + value, encoded
  };
  struct TensorEntry {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t nbytes = 0;
    Tensor data;                         // when given eagerly
    std::function<void(uint8_t*)> fill;  // when lazy
  };
  void add_kv(const std::string& key, std::string bytes);
  uint64_t alignment_;
  std::vector<KV> kv_;
  std::vector<TensorEntry> tensors_;
};

}  // namespace ohm::gguf
