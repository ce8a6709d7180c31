#include "ohm/core/dtype.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include "ohm/core/quant_traits.h"

namespace ohm {

namespace {
constexpr size_t kCount = static_cast<size_t>(DType::Count_);
constexpr uint32_t kNone = kNoGgmlType;

// The plain types here; the block-quantized ones from their QuantTraits rows (at compile time:
// libohm_core never refers to the rows' functions).
constexpr std::array<DTypeTraits, kCount> make_traits() {
  std::array<DTypeTraits, kCount> t{};
  const auto set = [&t](DType d, DTypeTraits tr) { t[static_cast<size_t>(d)] = tr; };
  set(DType::F32, {"f32", 1, 4, true, false, 0});
  set(DType::F16, {"f16", 1, 2, true, false, 1});
  set(DType::BF16, {"bf16", 1, 2, true, false, 30});
  set(DType::F64, {"f64", 1, 8, true, false, 28});
  set(DType::I8, {"i8", 1, 1, false, false, 24});
  set(DType::I16, {"i16", 1, 2, false, false, 25});
  set(DType::I32, {"i32", 1, 4, false, false, 26});
  set(DType::I64, {"i64", 1, 8, false, false, 27});
  set(DType::U8, {"u8", 1, 1, false, false, kNone});
  set(DType::U16, {"u16", 1, 2, false, false, kNone});
  set(DType::U32, {"u32", 1, 4, false, false, kNone});
  set(DType::U64, {"u64", 1, 8, false, false, kNone});
  set(DType::Bool, {"bool", 1, 1, false, false, kNone});
  set(DType::F8_E4M3, {"f8_e4m3", 1, 1, true, false, kNone});
  set(DType::F8_E5M2, {"f8_e5m2", 1, 1, true, false, kNone});
  for (const QuantTraits& q : kQuantTypes)
    set(q.dtype, {q.name, q.block_size, q.block_bytes, true, true, q.ggml_type});
  return t;
}
constexpr std::array<DTypeTraits, kCount> kTraits = make_traits();

constexpr bool every_dtype_has_a_row() {
  for (const DTypeTraits& t : kTraits)
    if (t.name.empty() || t.block_size < 1 || t.type_size < 1) return false;
  return true;
}
static_assert(every_dtype_has_a_row(),
              "a DType has no traits: add its row (block types: ohm/core/quant_traits.h)");

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
