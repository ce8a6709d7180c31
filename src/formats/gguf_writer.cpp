// GGUF v3 writer; see include/ohm/formats/gguf_writer.h.
#include "ohm/formats/gguf_writer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>

#include "ohm/core/error.h"

namespace ohm::gguf {
namespace {

template <typename T>
void put(std::string& s, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  s.append(b, sizeof(T));
}
void put_str(std::string& s, const std::string& v) {
  put<uint64_t>(s, v.size());
  s += v;
}
template <typename T>
std::string scalar(ValueType t, T v) {
  std::string s;
  put<uint32_t>(s, static_cast<uint32_t>(t));
  put<T>(s, v);
  return s;
}
// The payload of `v` (no type id for scalars; arrays with their element type and count).
void put_value(std::string& s, const Value& v, const std::string& key) {
  auto bad = [&] { throw InvalidArgument(ErrorContext().key(key), "cannot copy this value"); };
  switch (v.type()) {
    case ValueType::UINT8:
      put<uint8_t>(s, static_cast<uint8_t>(*v.as_uint()));
      break;
    case ValueType::INT8:
      put<int8_t>(s, static_cast<int8_t>(*v.as_int()));
      break;
    case ValueType::UINT16:
      put<uint16_t>(s, static_cast<uint16_t>(*v.as_uint()));
      break;
    case ValueType::INT16:
      put<int16_t>(s, static_cast<int16_t>(*v.as_int()));
      break;
    case ValueType::UINT32:
      put<uint32_t>(s, static_cast<uint32_t>(*v.as_uint()));
      break;
    case ValueType::INT32:
      put<int32_t>(s, static_cast<int32_t>(*v.as_int()));
      break;
    case ValueType::UINT64:
      put<uint64_t>(s, *v.as_uint());
      break;
    case ValueType::INT64:
      put<int64_t>(s, *v.as_int());
      break;
    case ValueType::FLOAT32:
      put<float>(s, static_cast<float>(*v.as_double()));
      break;
    case ValueType::FLOAT64:
      put<double>(s, *v.as_double());
      break;
    case ValueType::BOOL:
      put<uint8_t>(s, *v.as_bool() ? 1 : 0);
      break;
    case ValueType::STRING:
      put_str(s, std::string(*v.as_string()));
      break;
    case ValueType::ARRAY: {
      put<uint32_t>(s, static_cast<uint32_t>(v.array_type()));
      put<uint64_t>(s, v.size());
      if (v.raw_array_data()) {  // fixed-size scalars: the bytes as stored
        size_t width = 0;
        switch (v.array_type()) {
          case ValueType::UINT8:
          case ValueType::INT8:
          case ValueType::BOOL:
            width = 1;
            break;
          case ValueType::UINT16:
          case ValueType::INT16:
            width = 2;
            break;
          case ValueType::UINT32:
          case ValueType::INT32:
          case ValueType::FLOAT32:
            width = 4;
            break;
          case ValueType::UINT64:
          case ValueType::INT64:
          case ValueType::FLOAT64:
            width = 8;
            break;
          default:
            bad();
        }
        s.append(reinterpret_cast<const char*>(v.raw_array_data()),
                 static_cast<size_t>(v.size()) * width);
      } else {
        for (uint64_t i = 0; i < v.size(); ++i) put_value(s, v.at(i), key);
      }
      break;
    }
    default:
      bad();
  }
}

uint64_t pad_to(uint64_t n, uint64_t a) {
  return (n + a - 1) / a * a;
}

}  // namespace

GGUFWriter::GGUFWriter(const std::string& arch, uint64_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    throw InvalidArgument(ErrorContext().key("general.alignment"), "must be a power of two");
  if (!arch.empty()) add_string("general.architecture", arch);
  if (alignment != kDefaultAlignment)
    add_uint32("general.alignment", static_cast<uint32_t>(alignment));
}

void GGUFWriter::add_kv(const std::string& key, std::string bytes) {
  for (const auto& kv : kv_)
    if (kv.key == key) throw InvalidArgument(ErrorContext().key(key), "duplicate metadata key");
  kv_.push_back({key, std::move(bytes)});
}

void GGUFWriter::add_uint8(const std::string& k, uint8_t v) {
  add_kv(k, scalar(ValueType::UINT8, v));
}
void GGUFWriter::add_int32(const std::string& k, int32_t v) {
  add_kv(k, scalar(ValueType::INT32, v));
}
void GGUFWriter::add_uint32(const std::string& k, uint32_t v) {
  add_kv(k, scalar(ValueType::UINT32, v));
}
void GGUFWriter::add_uint64(const std::string& k, uint64_t v) {
  add_kv(k, scalar(ValueType::UINT64, v));
}
void GGUFWriter::add_int64(const std::string& k, int64_t v) {
  add_kv(k, scalar(ValueType::INT64, v));
}
void GGUFWriter::add_float32(const std::string& k, float v) {
  add_kv(k, scalar(ValueType::FLOAT32, v));
}
void GGUFWriter::add_float64(const std::string& k, double v) {
  add_kv(k, scalar(ValueType::FLOAT64, v));
}
void GGUFWriter::add_bool(const std::string& k, bool v) {
  add_kv(k, scalar(ValueType::BOOL, static_cast<uint8_t>(v ? 1 : 0)));
}
void GGUFWriter::add_string(const std::string& k, const std::string& v) {
  std::string s;
  put<uint32_t>(s, static_cast<uint32_t>(ValueType::STRING));
  put_str(s, v);
  add_kv(k, std::move(s));
}
void GGUFWriter::add_string_array(const std::string& k, const std::vector<std::string>& v) {
  std::string s;
  put<uint32_t>(s, static_cast<uint32_t>(ValueType::ARRAY));
  put<uint32_t>(s, static_cast<uint32_t>(ValueType::STRING));
  put<uint64_t>(s, v.size());
  for (const auto& x : v) put_str(s, x);
  add_kv(k, std::move(s));
}
void GGUFWriter::add_int32_array(const std::string& k, const std::vector<int32_t>& v) {
  std::string s;
  put<uint32_t>(s, static_cast<uint32_t>(ValueType::ARRAY));
  put<uint32_t>(s, static_cast<uint32_t>(ValueType::INT32));
  put<uint64_t>(s, v.size());
  for (int32_t x : v) put<int32_t>(s, x);
  add_kv(k, std::move(s));
}
void GGUFWriter::add_float32_array(const std::string& k, const std::vector<float>& v) {
  std::string s;
  put<uint32_t>(s, static_cast<uint32_t>(ValueType::ARRAY));
  put<uint32_t>(s, static_cast<uint32_t>(ValueType::FLOAT32));
  put<uint64_t>(s, v.size());
  for (float x : v) put<float>(s, x);
  add_kv(k, std::move(s));
}

void GGUFWriter::add_value(const std::string& k, const Value& v) {
  std::string s;
  put<uint32_t>(s, static_cast<uint32_t>(v.type()));
  put_value(s, v, k);
  add_kv(k, std::move(s));
}

void GGUFWriter::add_tensor(const std::string& name, const Tensor& t) {
  if (!t.is_contiguous())
    throw InvalidArgument(ErrorContext().tensor(name), "tensor must be contiguous");
  add_tensor_lazy(name, t.dtype(), t.shape(), nullptr);
  tensors_.back().data = t;
}

void GGUFWriter::add_tensor_lazy(const std::string& name, DType dtype, const Shape& shape,
                                 std::function<void(uint8_t*)> fill) {
  for (const auto& e : tensors_)
    if (e.name == name) throw InvalidArgument(ErrorContext().tensor(name), "duplicate tensor name");
  if (!ggml_type_of(dtype))
    throw InvalidArgument(ErrorContext().tensor(name),
                          "dtype " + std::string(ohm::name(dtype)) + " has no ggml type");
  if (shape.empty() || shape.size() > kMaxDims)
    throw InvalidArgument(ErrorContext().tensor(name), "GGUF tensors have 1 to 4 dimensions");
  uint64_t numel = 1;
  for (int64_t d : shape) numel *= static_cast<uint64_t>(d);
  const auto nb = row_bytes(dtype, numel);
  if (!nb || shape.back() % traits(dtype).block_size != 0)
    throw InvalidArgument(ErrorContext().tensor(name),
                          "last dimension is not a multiple of the block size");
  tensors_.push_back({name, dtype, shape, *nb, Tensor(), std::move(fill)});
}

void GGUFWriter::write(const std::string& path) const {
  std::string head = "GGUF";
  put<uint32_t>(head, 3);
  put<int64_t>(head, static_cast<int64_t>(tensors_.size()));
  put<int64_t>(head, static_cast<int64_t>(kv_.size()));
  for (const auto& kv : kv_) {
    put_str(head, kv.key);
    head += kv.bytes;
  }
  uint64_t off = 0;
  for (const auto& e : tensors_) {
    put_str(head, e.name);
    put<uint32_t>(head, static_cast<uint32_t>(e.shape.size()));
    for (auto it = e.shape.rbegin(); it != e.shape.rend(); ++it) put<int64_t>(head, *it);
    put<uint32_t>(head, *ggml_type_of(e.dtype));
    put<uint64_t>(head, off);
    off += pad_to(e.nbytes, alignment_);
  }
  head.resize(pad_to(head.size(), alignment_), '\0');

  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) throw IoError(ErrorContext().file(path), "cannot open for writing");
  auto out = [&](const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f.get()) != n)
      throw IoError(ErrorContext().file(path), "write failed");
  };
  out(head.data(), head.size());
  std::vector<uint8_t> buf;
  static const char zeros[256] = {};
  for (const auto& e : tensors_) {
    if (e.data.defined()) {
      out(e.data.raw(), e.nbytes);
    } else {
      buf.assign(e.nbytes, 0);
      if (e.fill) e.fill(buf.data());
      out(buf.data(), buf.size());
    }
    for (uint64_t pad = pad_to(e.nbytes, alignment_) - e.nbytes; pad > 0;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(pad, sizeof(zeros)));
      out(zeros, n);
      pad -= n;
    }
  }
  if (std::fflush(f.get()) != 0) throw IoError(ErrorContext().file(path), "write failed");
}

}  // namespace ohm::gguf
