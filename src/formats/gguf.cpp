#include "ohm/formats/gguf.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <iterator>
#include <numeric>

#include <nlohmann/json.hpp>

#include "ohm/core/error.h"
#include "ohm/core/half.h"

namespace ohm::gguf {

// ---- names and type tables -------------------------------------------------------------------

std::string_view type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8:
      return "uint8";
    case ValueType::INT8:
      return "int8";
    case ValueType::UINT16:
      return "uint16";
    case ValueType::INT16:
      return "int16";
    case ValueType::UINT32:
      return "uint32";
    case ValueType::INT32:
      return "int32";
    case ValueType::FLOAT32:
      return "float32";
    case ValueType::BOOL:
      return "bool";
    case ValueType::STRING:
      return "string";
    case ValueType::ARRAY:
      return "array";
    case ValueType::UINT64:
      return "uint64";
    case ValueType::INT64:
      return "int64";
    case ValueType::FLOAT64:
      return "float64";
  }
  return "?";
}

namespace {

// Byte size of a fixed-size scalar type; 0 for STRING and ARRAY.
uint64_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::BOOL:
      return 1;
    case ValueType::UINT16:
    case ValueType::INT16:
      return 2;
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::FLOAT32:
      return 4;
    case ValueType::UINT64:
    case ValueType::INT64:
    case ValueType::FLOAT64:
      return 8;
    case ValueType::STRING:
    case ValueType::ARRAY:
      return 0;
  }
  return 0;
}

bool valid_value_type(uint32_t t) {
  return t <= static_cast<uint32_t>(ValueType::FLOAT64);
}

// ggml.h's enum ggml_type names, for messages about the ids ohm does not implement (ids 4, 5 and
// 31-33, 36-38 are retired). The ids ohm reads and writes come from DType's traits (the
// QuantTraits rows for the block types).
constexpr std::string_view kGgmlTypeNames[] = {
    "F32",         // 0
    "F16",         // 1
    "Q4_0",        // 2
    "Q4_1",        // 3
    "Q4_2",        // 4
    "Q4_3",        // 5
    "Q5_0",        // 6
    "Q5_1",        // 7
    "Q8_0",        // 8
    "Q8_1",        // 9
    "Q2_K",        // 10
    "Q3_K",        // 11
    "Q4_K",        // 12
    "Q5_K",        // 13
    "Q6_K",        // 14
    "Q8_K",        // 15
    "IQ2_XXS",     // 16
    "IQ2_XS",      // 17
    "IQ3_XXS",     // 18
    "IQ1_S",       // 19
    "IQ4_NL",      // 20
    "IQ3_S",       // 21
    "IQ2_S",       // 22
    "IQ4_XS",      // 23
    "I8",          // 24
    "I16",         // 25
    "I32",         // 26
    "I64",         // 27
    "F64",         // 28
    "IQ1_M",       // 29
    "BF16",        // 30
    "Q4_0_4_4",    // 31
    "Q4_0_4_8",    // 32
    "Q4_0_8_8",    // 33
    "TQ1_0",       // 34
    "TQ2_0",       // 35
    "IQ4_NL_4_4",  // 36
    "IQ4_NL_4_8",  // 37
    "IQ4_NL_8_8",  // 38
    "MXFP4",       // 39
};

// Length of the valid UTF-8 sequence at p (1-4), or 0 if it is not valid UTF-8 (overlong forms,
// surrogates and code points above U+10FFFF are invalid).
size_t utf8_len(const unsigned char* p, size_t n) {
  const unsigned char c = p[0];
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else
    return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    const size_t l = utf8_len(p + i, s.size() - i);
    if (l == 0) return false;
    i += l;
  }
  return true;
}

// Invalid bytes become U+FFFD (for JSON output, which must be valid UTF-8).
std::string sanitize_utf8(std::string_view s) {
  if (valid_utf8(s)) return std::string(s);
  std::string r;
  r.reserve(s.size() + 8);
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    const size_t l = utf8_len(p + i, s.size() - i);
    if (l == 0) {
      r += "\xEF\xBF\xBD";
      ++i;
    } else {
      r.append(s.data() + i, l);
      i += l;
    }
  }
  return r;
}

// A name as shown in an error message: invalid UTF-8 and control bytes as \xNN, cut at 200 bytes.
std::string display_name(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string r;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    if (r.size() >= 200) {
      r += "...";
      break;
    }
    const size_t l = utf8_len(p + i, s.size() - i);
    if (l == 0 || (l == 1 && (p[i] < 0x20 || p[i] == 0x7f))) {
      r += "\\x";
      r += kHex[p[i] >> 4];
      r += kHex[p[i] & 15];
      ++i;
    } else {
      r.append(s.data() + i, l);
      i += l;
    }
  }
  return r;
}

std::string quoted(std::string_view s, size_t max_len = 60) {
  std::string d = display_name(s.substr(0, std::min(s.size(), max_len)));
  std::string r = "\"";
  for (char c : d) {
    if (c == '"' || c == '\\') r += '\\';
    r += c;
  }
  r += '"';
  if (s.size() > max_len) r += "...";
  return r;
}

std::string fmt_double(double v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, res.ptr);
}

// Shortest decimal that round-trips the f32 ("1e-05", not "9.999999747378752e-06").
std::string fmt_float(float v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, res.ptr);
}

// An f32 as a JSON number: the double nearest to its shortest decimal form, so that dumps read
// 1e-05 rather than 9.999999747378752e-06 (converting back to f32 gives the same value).
nlohmann::json f32_json(float v) {
  if (!std::isfinite(v)) return static_cast<double>(v);
  const std::string s = fmt_float(v);
  double d = 0;
  std::from_chars(s.data(), s.data() + s.size(), d);
  return d;
}

uint64_t load_le(const uint8_t* p, uint64_t n) {
  uint64_t v = 0;
  for (uint64_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

std::optional<DType> dtype_from_ggml(uint32_t ggml_type) {
  for (int i = 0; i < static_cast<int>(DType::Count_); ++i)
    if (traits(static_cast<DType>(i)).ggml_type == ggml_type) return static_cast<DType>(i);
  return std::nullopt;
}

std::optional<uint32_t> ggml_type_of(DType d) {
  const uint32_t id = traits(d).ggml_type;
  if (id == kNoGgmlType) return std::nullopt;
  return id;
}

std::string_view ggml_type_name(uint32_t ggml_type) {
  if (ggml_type < std::size(kGgmlTypeNames)) return kGgmlTypeNames[ggml_type];
  return {};
}

// ---- Value -----------------------------------------------------------------------------------

bool Value::is_integer() const {
  switch (type_) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::UINT16:
    case ValueType::INT16:
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::UINT64:
    case ValueType::INT64:
      return true;
    default:
      return false;
  }
}

std::optional<int64_t> Value::as_int() const {
  switch (type_) {
    case ValueType::UINT8:
    case ValueType::UINT16:
    case ValueType::UINT32:
      return static_cast<int64_t>(bits_);
    case ValueType::UINT64:
      if (bits_ > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
      return static_cast<int64_t>(bits_);
    case ValueType::INT8:
      return static_cast<int8_t>(static_cast<uint8_t>(bits_));
    case ValueType::INT16:
      return static_cast<int16_t>(static_cast<uint16_t>(bits_));
    case ValueType::INT32:
      return static_cast<int32_t>(static_cast<uint32_t>(bits_));
    case ValueType::INT64:
      return static_cast<int64_t>(bits_);
    default:
      return std::nullopt;
  }
}

std::optional<uint64_t> Value::as_uint() const {
  switch (type_) {
    case ValueType::UINT8:
    case ValueType::UINT16:
    case ValueType::UINT32:
    case ValueType::UINT64:
      return bits_;
    case ValueType::INT8:
    case ValueType::INT16:
    case ValueType::INT32:
    case ValueType::INT64: {
      const int64_t v = *as_int();
      if (v < 0) return std::nullopt;
      return static_cast<uint64_t>(v);
    }
    default:
      return std::nullopt;
  }
}

std::optional<double> Value::as_double() const {
  if (type_ == ValueType::FLOAT32) return bits_to_f32(static_cast<uint32_t>(bits_));
  if (type_ == ValueType::FLOAT64) {
    double d;
    std::memcpy(&d, &bits_, 8);
    return d;
  }
  if (type_ == ValueType::UINT64) return static_cast<double>(bits_);
  if (auto i = as_int()) return static_cast<double>(*i);
  return std::nullopt;
}

std::optional<bool> Value::as_bool() const {
  if (type_ != ValueType::BOOL) return std::nullopt;
  return bits_ != 0;
}

std::optional<std::string_view> Value::as_string() const {
  if (type_ != ValueType::STRING) return std::nullopt;
  return str_;
}

Value Value::at(uint64_t i) const {
  if (!is_array() || i >= count_)
    throw InvalidArgument(ErrorContext().op("gguf::Value::at"),
                          "index " + std::to_string(i) + " out of range for " +
                              (is_array() ? "an array of " + std::to_string(count_) : "a scalar"));
  if (elem_type_ == ValueType::ARRAY) return items_[i];
  Value v;
  v.type_ = elem_type_;
  if (elem_type_ == ValueType::STRING) {
    v.str_ = strings_[i];
  } else {
    const uint64_t sz = scalar_size(elem_type_);
    v.bits_ = load_le(raw_ + i * sz, sz);
  }
  return v;
}

std::optional<std::vector<int64_t>> Value::to_int_vector() const {
  if (!is_array()) return std::nullopt;
  Value probe;
  probe.type_ = elem_type_;
  if (!probe.is_integer()) return std::nullopt;
  std::vector<int64_t> r;
  r.reserve(count_);
  for (uint64_t i = 0; i < count_; ++i) {
    auto v = at(i).as_int();
    if (!v) return std::nullopt;
    r.push_back(*v);
  }
  return r;
}

std::optional<std::vector<double>> Value::to_double_vector() const {
  if (!is_array()) return std::nullopt;
  Value probe;
  probe.type_ = elem_type_;
  if (!probe.is_integer() && !probe.is_float()) return std::nullopt;
  std::vector<double> r;
  r.reserve(count_);
  for (uint64_t i = 0; i < count_; ++i) r.push_back(*at(i).as_double());
  return r;
}

std::optional<std::vector<std::string>> Value::to_string_vector() const {
  if (!is_array() || elem_type_ != ValueType::STRING) return std::nullopt;
  return std::vector<std::string>(strings_.begin(), strings_.end());
}

std::optional<std::vector<std::string_view>> Value::to_string_view_vector() const {
  if (!is_array() || elem_type_ != ValueType::STRING) return std::nullopt;
  return strings_;
}

nlohmann::json Value::to_json(uint64_t max_array_items) const {
  switch (type_) {
    case ValueType::BOOL:
      return bits_ != 0;
    case ValueType::STRING:
      return sanitize_utf8(str_);
    case ValueType::FLOAT32:
      return f32_json(bits_to_f32(static_cast<uint32_t>(bits_)));
    case ValueType::FLOAT64:
      return *as_double();
    case ValueType::UINT8:
    case ValueType::UINT16:
    case ValueType::UINT32:
    case ValueType::UINT64:
      return bits_;
    case ValueType::INT8:
    case ValueType::INT16:
    case ValueType::INT32:
    case ValueType::INT64:
      return *as_int();
    case ValueType::ARRAY: {
      const uint64_t n = std::min(count_, max_array_items);
      nlohmann::json arr = nlohmann::json::array();
      for (uint64_t i = 0; i < n; ++i) arr.push_back(at(i).to_json(max_array_items));
      if (n == count_) return arr;
      nlohmann::json o = nlohmann::json::object();
      o["type"] = "array";
      o["element_type"] = std::string(type_name(elem_type_));
      o["count"] = count_;
      o["head"] = std::move(arr);
      return o;
    }
  }
  return nullptr;
}

std::string Value::to_string(uint64_t max_array_items) const {
  switch (type_) {
    case ValueType::BOOL:
      return bits_ ? "true" : "false";
    case ValueType::STRING:
      return quoted(str_, 200);
    case ValueType::FLOAT32:
      return fmt_float(bits_to_f32(static_cast<uint32_t>(bits_)));
    case ValueType::FLOAT64:
      return fmt_double(*as_double());
    case ValueType::UINT64:
      return std::to_string(bits_);
    case ValueType::ARRAY: {
      std::string r = "[" + std::string(type_name(elem_type_)) + " x " + std::to_string(count_);
      if (count_ == 0) return r + "]";
      r += ":";
      const uint64_t n = std::min(count_, max_array_items);
      for (uint64_t i = 0; i < n; ++i) r += (i ? ", " : " ") + at(i).to_string(max_array_items);
      if (n < count_) r += ", ...";
      return r + "]";
    }
    default:
      return std::to_string(*as_int());
  }
}

namespace {
// "uint32", "array[string]", "array[array[int32]]" (for error messages and JSON type listings).
std::string describe(const Value& v) {
  if (!v.is_array()) return std::string(type_name(v.type()));
  if (v.array_type() == ValueType::ARRAY)
    return v.size() > 0 ? "array[" + describe(v.at(0)) + "]" : "array[array]";
  return "array[" + std::string(type_name(v.array_type())) + "]";
}
}  // namespace

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

// ---- GGUFFile --------------------------------------------------------------------------------

GGUFFile GGUFFile::open(const std::string& path) {
  return parse(MappedFile::open(path));
}

GGUFFile GGUFFile::parse(std::shared_ptr<const MappedFile> file) {
  if (!file) throw InvalidArgument(ErrorContext().op("gguf::parse"), "null file");
  GGUFFile f;
  f.name_ = file->path();
  const uint64_t size = file->size();
  f.storage_ = Storage::map_view(std::move(file), 0, size);
  Parser(f, f.storage_->data(), f.storage_->size()).run();
  return f;
}

GGUFFile GGUFFile::parse_buffer(const void* data, size_t size, const std::string& name) {
  return parse(MappedFile::from_bytes(name, data, size));
}

uint64_t GGUFFile::file_size() const {
  return storage_ ? storage_->size() : 0;
}

const Value* GGUFFile::find(std::string_view key) const {
  auto it = kv_index_.find(std::string(key));
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const Value& GGUFFile::at(std::string_view key) const {
  if (const Value* v = find(key)) return *v;
  throw NotFoundError(ErrorContext().file(name_).key(key), "no such metadata key");
}

namespace {
[[noreturn]] void type_mismatch(const std::string& file, std::string_view key, const Value& v,
                                const char* expected) {
  std::string found = describe(v);
  if (v.is_integer() || v.is_float()) found += " " + v.to_string();
  throw FormatError(ErrorContext().file(file).key(key),
                    std::string("expected ") + expected + ", found " + found);
}
}  // namespace

std::optional<std::string> GGUFFile::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (auto s = v->as_string()) return std::string(*s);
  type_mismatch(name_, key, *v, "a string");
}

std::optional<int64_t> GGUFFile::get_int(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (auto i = v->as_int()) return i;
  type_mismatch(name_, key, *v, "an integer (in int64 range)");
}

std::optional<uint64_t> GGUFFile::get_uint(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (auto i = v->as_uint()) return i;
  type_mismatch(name_, key, *v, "a non-negative integer");
}

std::optional<double> GGUFFile::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (auto d = v->as_double()) return d;
  type_mismatch(name_, key, *v, "a number");
}

std::optional<bool> GGUFFile::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (auto b = v->as_bool()) return b;
  type_mismatch(name_, key, *v, "a bool");
}

std::optional<std::vector<std::string>> GGUFFile::get_string_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (auto a = v->to_string_vector()) return a;
  type_mismatch(name_, key, *v, "an array of strings");
}

std::optional<std::vector<int64_t>> GGUFFile::get_int_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (auto a = v->to_int_vector()) return a;
  type_mismatch(name_, key, *v, "an array of integers (in int64 range)");
}

std::optional<std::vector<double>> GGUFFile::get_float_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (auto a = v->to_double_vector()) return a;
  type_mismatch(name_, key, *v, "an array of numbers");
}

const TensorInfo* GGUFFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& GGUFFile::tensor_info(std::string_view name) const {
  if (const TensorInfo* t = find_tensor(name)) return *t;
  throw NotFoundError(ErrorContext().file(name_).tensor(name), "no such tensor");
}

Tensor GGUFFile::tensor(std::string_view name) const {
  const TensorInfo& ti = tensor_info(name);
  return Tensor::view(storage_, ti.dtype, ti.shape, ti.offset);
}

nlohmann::json GGUFFile::to_json(uint64_t max_array_items) const {
  nlohmann::json j;
  j["file"] = sanitize_utf8(name_);
  j["version"] = version_;
  j["alignment"] = alignment_;
  j["data_offset"] = data_offset_;
  nlohmann::json md = nlohmann::json::object();
  nlohmann::json types = nlohmann::json::object();
  for (const auto& [k, v] : kv_) {
    md[k] = v.to_json(max_array_items);
    types[k] = describe(v);
  }
  j["metadata"] = std::move(md);
  j["metadata_types"] = std::move(types);
  nlohmann::json ts = nlohmann::json::array();
  for (const auto& t : tensors_) {
    ts.push_back({{"name", t.name},
                  {"type", std::string(name(t.dtype))},
                  {"ggml_type", t.ggml_type},
                  {"ggml_type_name", std::string(ggml_type_name(t.ggml_type))},
                  {"shape", t.shape},
                  {"dims", t.dims},
                  {"offset", t.offset},
                  {"nbytes", t.nbytes}});
  }
  j["tensors"] = std::move(ts);
  return j;
}

}  // namespace ohm::gguf
