#include "ohm/formats/gguf.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <iterator>
#include <numeric>

#include <nlohmann/json.hpp>

#include "gguf_internal.h"
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

namespace detail {

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

}  // namespace detail

using namespace detail;

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
      // (appended piecewise: GCC 12's -Wrestrict misfires on "[" + std::string(...) here)
      std::string r = "[";
      r += type_name(elem_type_);
      r += " x ";
      r += std::to_string(count_);
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

namespace detail {
// "uint32", "array[string]", "array[array[int32]]" (for error messages and JSON type listings).
std::string describe(const Value& v) {
  if (!v.is_array()) return std::string(type_name(v.type()));
  if (v.array_type() == ValueType::ARRAY)
    return v.size() > 0 ? "array[" + describe(v.at(0)) + "]" : "array[array]";
  return "array[" + std::string(type_name(v.array_type())) + "]";
}
}  // namespace detail

// ---- GGUFFile (parsing: gguf_parse.cpp)
// --------------------------------------------------------------------------------

GGUFFile GGUFFile::open(const std::string& path) {
  return parse(MappedFile::open(path));
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
