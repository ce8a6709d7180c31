// Private to src/formats: the GGUF helpers gguf.cpp (values, accessors) and gguf_parse.cpp
// (the parser) share.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ohm/formats/gguf.h"

namespace ohm::gguf::detail {

// Byte size of a fixed-size scalar type; 0 for STRING and ARRAY.
uint64_t scalar_size(ValueType t);
bool valid_value_type(uint32_t t);
bool valid_utf8(std::string_view s);
// A name as shown in an error message: invalid UTF-8 and control bytes as \xNN, cut at 200 bytes.
std::string display_name(std::string_view s);
uint64_t load_le(const uint8_t* p, uint64_t n);
// "uint32", "array[string]", "array[array[int32]]".
std::string describe(const Value& v);

}  // namespace ohm::gguf::detail
