// GGUF parsing: header, metadata, tensor infos and the data section, validated as read (every
// error names the file, key or tensor). Values and accessors: gguf.cpp.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "gguf_internal.h"
#include "ohm/core/error.h"
#include "ohm/core/half.h"
#include "ohm/formats/gguf.h"

namespace ohm::gguf {

using namespace detail;

// ---- Parser ----------------------------------------------------------------------------------

class Parser {
 public:
  Parser(GGUFFile& f, const uint8_t* data, uint64_t size) : f_(f), data_(data), size_(size) {}

  void run() {
    header();
    for (uint64_t i = 0; i < n_kv_; ++i) kv(i);
    alignment();
    for (uint64_t i = 0; i < n_tensors_; ++i) tensor_info(i);
    key_.clear();
    tensor_.clear();
    data_section();
  }

 private:
  ErrorContext where() const {
    ErrorContext c;
    c.file(f_.name_);
    if (!key_.empty()) c.key(key_);
    if (!tensor_.empty()) c.tensor(tensor_);
    return c;
  }
  [[noreturn]] void fail(const std::string& msg) const { throw FormatError(where(), msg); }
  uint64_t remaining() const { return size_ - pos_; }

  void need(uint64_t n, const char* what) const {
    if (n > remaining())
      fail(std::string("truncated: ") + what + " needs " + std::to_string(n) + " bytes at offset " +
           std::to_string(pos_) + " but the file has " + std::to_string(size_) + " bytes");
  }
  uint64_t uint(uint64_t n, const char* what) {
    need(n, what);
    const uint64_t v = load_le(data_ + pos_, n);
    pos_ += n;
    return v;
  }
  uint32_t u32(const char* what) { return static_cast<uint32_t>(uint(4, what)); }
  uint64_t u64(const char* what) { return uint(8, what); }

  std::string_view str(const char* what) {
    const uint64_t len = u64(what);
    if (len > remaining())
      fail(std::string("truncated: ") + what + " has length " + std::to_string(len) + " but only " +
           std::to_string(remaining()) + " bytes remain at offset " + std::to_string(pos_));
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return s;
  }

  // Bounds a count read from the file by the bytes left, before anything is reserved.
  void check_count(uint64_t count, uint64_t min_bytes_each, const char* what) const {
    if (count > remaining() / min_bytes_each)
      fail(std::string(what) + " count " + std::to_string(count) + " is impossible: only " +
           std::to_string(remaining()) + " bytes remain at offset " + std::to_string(pos_));
  }

  void header() {
    need(4, "the magic");
    if (std::memcmp(data_, "GGUF", 4) != 0) {
      std::string got = display_name(std::string_view(reinterpret_cast<const char*>(data_), 4));
      fail("bad magic \"" + got + "\": not a GGUF file");
    }
    pos_ = 4;
    const uint32_t v = u32("the version");
    f_.version_ = v;
    if (v == 1)
      throw UnsupportedError(ErrorContext().file(f_.name_),
                             "GGUF version 1 is not supported (it used 32-bit lengths); "
                             "re-convert the model with a current llama.cpp");
    if (v != 0 && (v & 0xFFFFu) == 0)
      throw UnsupportedError(
          ErrorContext().file(f_.name_),
          "big-endian GGUF files are not supported (version field " + std::to_string(v) + ")");
    if (v == 0) fail("invalid GGUF version 0");
    if (v > 3)
      throw UnsupportedError(
          ErrorContext().file(f_.name_),
          "GGUF version " + std::to_string(v) + " is not supported (ohm reads versions 2 and 3)");
    const uint64_t nt = u64("the tensor count");
    const uint64_t nkv = u64("the metadata key/value count");
    if (nt > static_cast<uint64_t>(INT64_MAX)) fail("negative tensor count");
    if (nkv > static_cast<uint64_t>(INT64_MAX)) fail("negative metadata key/value count");
    // Smallest key/value: u64 key length + u32 type + 1-byte value. Smallest tensor info: u64 name
    // length + u32 n_dims + u32 type + u64 offset.
    check_count(nkv, 13, "metadata key/value");
    check_count(nt, 24, "tensor");
    n_kv_ = nkv;
    n_tensors_ = nt;
  }

  ValueType value_type(const char* what) {
    const uint32_t t = u32(what);
    if (!valid_value_type(t)) fail(std::string("invalid ") + what + " " + std::to_string(t));
    return static_cast<ValueType>(t);
  }

  Value value(ValueType t, int depth) {
    Value v;
    v.type_ = t;
    if (t == ValueType::STRING) {
      v.str_ = str("string value");
    } else if (t != ValueType::ARRAY) {
      v.bits_ = uint(scalar_size(t), "the value");
      if (t == ValueType::BOOL && v.bits_ > 1)
        fail("invalid bool byte " + std::to_string(v.bits_) + " (must be 0 or 1)");
    } else {
      if (depth + 1 > kMaxArrayDepth)
        fail("arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels");
      v.elem_type_ = value_type("array element type");
      const uint64_t count = u64("the array length");
      v.count_ = count;
      const uint64_t esz = scalar_size(v.elem_type_);
      if (esz != 0) {
        check_count(count, esz, "array element");
        v.raw_ = data_ + pos_;
        if (v.elem_type_ == ValueType::BOOL) {
          for (uint64_t i = 0; i < count; ++i)
            if (v.raw_[i] > 1)
              fail("invalid bool byte " + std::to_string(v.raw_[i]) + " at array index " +
                   std::to_string(i) + " (must be 0 or 1)");
        }
        pos_ += count * esz;
      } else if (v.elem_type_ == ValueType::STRING) {
        check_count(count, 8, "array element");
        v.strings_.reserve(count);
        for (uint64_t i = 0; i < count; ++i) v.strings_.push_back(str("string array element"));
      } else {
        check_count(count, 12, "array element");
        // A Value is ~8x larger than its 12-byte minimum encoding: grow instead of trusting count.
        v.items_.reserve(std::min<uint64_t>(count, 1024));
        for (uint64_t i = 0; i < count; ++i) v.items_.push_back(value(ValueType::ARRAY, depth + 1));
      }
    }
    return v;
  }

  void kv(uint64_t i) {
    key_.clear();
    const std::string what = "the name of metadata key #" + std::to_string(i);
    std::string_view key = str(what.c_str());
    key_ = display_name(key);
    if (key_.empty()) key_ = "#" + std::to_string(i) + " (empty name)";
    if (!valid_utf8(key)) fail("key name is not valid UTF-8");
    std::string k(key);
    if (f_.kv_index_.count(k)) fail("duplicate metadata key");
    const ValueType t = value_type("value type");
    Value v = value(t, 0);
    f_.kv_index_.emplace(k, f_.kv_.size());
    f_.kv_.emplace_back(std::move(k), std::move(v));
  }

  void alignment() {
    key_.clear();
    auto it = f_.kv_index_.find("general.alignment");
    if (it == f_.kv_index_.end()) return;
    key_ = "general.alignment";
    const Value& v = f_.kv_[it->second].second;
    const auto a = v.as_uint();
    if (!v.is_integer() || !a)
      fail("alignment must be an unsigned integer (uint32), found " + describe(v) +
           (v.is_integer() ? " " + v.to_string() : ""));
    if (*a == 0 || (*a & (*a - 1)) != 0 || *a > (uint64_t{1} << 30))
      fail("alignment " + std::to_string(*a) + " is not a power of two (up to 2^30)");
    f_.alignment_ = *a;
  }

  void tensor_info(uint64_t i) {
    tensor_.clear();
    const std::string what = "the name of tensor #" + std::to_string(i);
    std::string_view name = str(what.c_str());
    tensor_ = display_name(name);
    if (tensor_.empty()) tensor_ = "#" + std::to_string(i) + " (empty name)";
    if (!valid_utf8(name)) fail("tensor name is not valid UTF-8");
    TensorInfo ti;
    ti.name = std::string(name);
    if (f_.tensor_index_.count(ti.name)) fail("duplicate tensor name");
    const uint32_t n_dims = u32("n_dims");
    if (n_dims > kMaxDims)
      fail("n_dims " + std::to_string(n_dims) + " exceeds the maximum of " +
           std::to_string(kMaxDims));
    for (uint32_t d = 0; d < n_dims; ++d)
      ti.dims.push_back(static_cast<int64_t>(u64("a dimension")));
    ti.ggml_type = u32("the ggml type");
    ti.relative_offset = u64("the data offset");

    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const int64_t ne = ti.dims[d];
      if (ne <= 0)
        fail("dimension " + std::to_string(d) + " is " + std::to_string(ne) +
             " (must be positive), dims " + shape_str(ti.dims));
      if (numel > static_cast<uint64_t>(INT64_MAX) / static_cast<uint64_t>(ne))
        fail("element count overflows, dims " + shape_str(ti.dims));
      numel *= static_cast<uint64_t>(ne);
    }
    ti.numel = numel;
    const auto dt = dtype_from_ggml(ti.ggml_type);
    if (!dt) {
      const auto nm = ggml_type_name(ti.ggml_type);
      throw UnsupportedError(where(),
                             "ggml type id " + std::to_string(ti.ggml_type) +
                                 (nm.empty() ? " (unknown)" : " (" + std::string(nm) + ")") +
                                 " is not supported");
    }
    ti.dtype = *dt;
    const int64_t block = traits(ti.dtype).block_size;
    const int64_t ne0 = n_dims ? ti.dims[0] : 1;
    if (ne0 % block != 0)
      fail("ne0 = " + std::to_string(ne0) + " is not a multiple of the " +
           std::string(ggml_type_name(ti.ggml_type)) + " block size " + std::to_string(block));
    const auto nb = row_bytes(ti.dtype, numel);
    if (!nb) fail("byte size overflows, dims " + shape_str(ti.dims));
    ti.nbytes = *nb;
    ti.shape.assign(ti.dims.rbegin(), ti.dims.rend());
    f_.tensor_index_.emplace(ti.name, f_.tensors_.size());
    f_.tensors_.push_back(std::move(ti));
  }

  void data_section() {
    const uint64_t a = f_.alignment_;
    f_.data_offset_ = (pos_ + a - 1) / a * a;  // pos_ <= size_ < 2^64 - 2^30
    std::vector<size_t> order(f_.tensors_.size());
    std::iota(order.begin(), order.end(), size_t{0});
    for (auto& ti : f_.tensors_) {
      tensor_ = display_name(ti.name);
      if (ti.relative_offset % a != 0)
        fail("data offset " + std::to_string(ti.relative_offset) +
             " is not a multiple of the alignment " + std::to_string(a));
      if (ti.relative_offset > UINT64_MAX - f_.data_offset_ ||
          f_.data_offset_ + ti.relative_offset > size_ ||
          ti.nbytes > size_ - (f_.data_offset_ + ti.relative_offset))
        fail("tensor data [" + std::to_string(f_.data_offset_) + " + " +
             std::to_string(ti.relative_offset) + ", +" + std::to_string(ti.nbytes) +
             " bytes) extends past the end of the file (" + std::to_string(size_) + " bytes)");
      ti.offset = f_.data_offset_ + ti.relative_offset;
    }
    std::sort(order.begin(), order.end(),
              [&](size_t x, size_t y) { return f_.tensors_[x].offset < f_.tensors_[y].offset; });
    for (size_t k = 1; k < order.size(); ++k) {
      const auto& prev = f_.tensors_[order[k - 1]];
      const auto& cur = f_.tensors_[order[k]];
      if (prev.offset + prev.nbytes > cur.offset) {
        tensor_ = display_name(cur.name);
        fail("tensor data [" + std::to_string(cur.offset) + ", +" + std::to_string(cur.nbytes) +
             ") overlaps tensor '" + display_name(prev.name) + "' [" + std::to_string(prev.offset) +
             ", +" + std::to_string(prev.nbytes) + ")");
      }
    }
    tensor_.clear();
  }

  GGUFFile& f_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  uint64_t n_kv_ = 0, n_tensors_ = 0;
  std::string key_, tensor_;  // what is being parsed, for error messages
};

GGUFFile GGUFFile::parse(std::shared_ptr<const MappedFile> file) {
  if (!file) throw InvalidArgument(ErrorContext().op("gguf::parse"), "null file");
  GGUFFile f;
  f.name_ = file->path();
  const uint64_t size = file->size();
  f.storage_ = Storage::map_view(std::move(file), 0, size);
  Parser(f, f.storage_->data(), f.storage_->size()).run();
  return f;
}

}  // namespace ohm::gguf
