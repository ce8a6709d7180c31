// libFuzzer target: the GGUF reader on arbitrary bytes, and, when it accepts, everything a
// caller can do with the result (metadata accessors and JSON, tensor views, dequantization).
// Any input must either parse or throw ohm::Error; crashes, hangs, leaks and sanitizer reports
// are bugs.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "ohm/core/error.h"
#include "ohm/formats/gguf.h"
#include "ohm/quant/dequant.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto f = ohm::gguf::GGUFFile::parse_buffer(data, size, "fuzz.gguf");
    (void)f.to_json(4).dump();
    for (const auto& [key, v] : f.metadata()) {
      (void)v.to_string(4);
      (void)v.as_int();
      (void)v.as_double();
      if (v.is_array() && v.size() > 0) (void)v.at(v.size() - 1).to_json(4);
      (void)f.get_string_array(key).has_value();
    }
  } catch (const ohm::Error&) {
    // expected for malformed input (get_* type mismatches included)
  }
  try {
    auto f = ohm::gguf::GGUFFile::parse_buffer(data, size, "fuzz.gguf");
    for (const auto& t : f.tensors()) {
      ohm::Tensor v = f.tensor(t.name);
      if (v.nbytes() <= (1u << 20)) (void)ohm::quant::dequantize(v);  // reads every byte
    }
  } catch (const ohm::Error&) {
  }
  return 0;
}
