#include "ohm/core/dtype.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace ohm {

namespace {
constexpr std::array<DTypeTraits, static_cast<size_t>(DType::Count_)> kTraits = {{
    {"f32", 1, 4, true, false},
    {"f16", 1, 2, true, false},
    {"bf16", 1, 2, true, false},
    {"f64", 1, 8, true, false},
    {"i8", 1, 1, false, false},
    {"i16", 1, 2, false, false},
    {"i32", 1, 4, false, false},
    {"i64", 1, 8, false, false},
    {"u8", 1, 1, false, false},
    {"u16", 1, 2, false, false},
    {"u32", 1, 4, false, false},
    {"u64", 1, 8, false, false},
    {"bool", 1, 1, false, false},
    {"f8_e4m3", 1, 1, true, false},
    {"f8_e5m2", 1, 1, true, false},
    // ggml block layouts (ggml-common.h): QK4_0 = 32 -> 2 + 16 bytes, etc.
    {"q4_0", 32, 18, true, true},
    {"q4_1", 32, 20, true, true},
    {"q5_0", 32, 22, true, true},
    {"q5_1", 32, 24, true, true},
    {"q8_0", 32, 34, true, true},
    {"q8_1", 32, 36, true, true},
    {"q2_k", 256, 84, true, true},
    {"q3_k", 256, 110, true, true},
    {"q4_k", 256, 144, true, true},
    {"q5_k", 256, 176, true, true},
    {"q6_k", 256, 210, true, true},
    {"q8_k", 256, 292, true, true},
}};

std::string lower(std::string_view s) {
  std::string r(s);
  std::transform(r.begin(), r.end(), r.begin(), [](unsigned char c) { return std::tolower(c); });
  return r;
}
}  // namespace

const DTypeTraits& traits(DType t) {
  return kTraits.at(static_cast<size_t>(t));
}

std::optional<uint64_t> row_bytes(DType t, uint64_t n) {
  const auto& tr = traits(t);
  if (n % static_cast<uint64_t>(tr.block_size) != 0) return std::nullopt;
  uint64_t blocks = n / static_cast<uint64_t>(tr.block_size);
  if (blocks != 0 && tr.type_size > UINT64_MAX / blocks) return std::nullopt;
  return blocks * tr.type_size;
}

std::optional<DType> dtype_from_name(std::string_view s) {
  std::string l = lower(s);
  if (l == "float32" || l == "float") return DType::F32;
  if (l == "float16" || l == "half") return DType::F16;
  if (l == "bfloat16") return DType::BF16;
  for (size_t i = 0; i < kTraits.size(); ++i)
    if (kTraits[i].name == l) return static_cast<DType>(i);
  return std::nullopt;
}

std::string_view safetensors_name(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
    case DType::F64:
      return "F64";
    case DType::I8:
      return "I8";
    case DType::I16:
      return "I16";
    case DType::I32:
      return "I32";
    case DType::I64:
      return "I64";
    case DType::U8:
      return "U8";
    case DType::U16:
      return "U16";
    case DType::U32:
      return "U32";
    case DType::U64:
      return "U64";
    case DType::Bool:
      return "BOOL";
    case DType::F8_E4M3:
      return "F8_E4M3";
    case DType::F8_E5M2:
      return "F8_E5M2";
    default:
      return "";
  }
}

}  // namespace ohm
