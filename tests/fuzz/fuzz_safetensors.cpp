// libFuzzer target: the safetensors header parser (and, when it accepts, every tensor view).
// Any input must either parse or throw ohm::Error; crashes, hangs and sanitizer reports are bugs.
#include <cstddef>
#include <cstdint>

#include "ohm/core/error.h"
#include "ohm/formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto file = ohm::MappedFile::from_bytes("fuzz.safetensors", data, size);
    auto f = ohm::safetensors::SafetensorsFile::parse(file);
    for (const auto& t : f.tensors()) {
      ohm::Tensor v = f.tensor(t.name);
      volatile uint8_t sink = 0;
      if (v.nbytes() > 0) sink = v.data<uint8_t>()[v.nbytes() - 1];  // must be in bounds
      (void)sink;
    }
  } catch (const ohm::Error&) {
  }
  return 0;
}
