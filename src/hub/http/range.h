// Byte ranges of file downloads (one "bytes=" range, as huggingface_hub resumes and reads
// safetensors headers). Private to src/hub.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ohm::hub::http {

struct ByteRange {
  uint64_t start = 0, end = 0;  // [start, end)
};

// "bytes=A-B", "bytes=A-" or "bytes=-N" against a file of `size` bytes; std::nullopt when the
// header is malformed, has several ranges or starts past the end (416 for the caller).
std::optional<ByteRange> parse_byte_range(std::string_view header, uint64_t size);

}  // namespace ohm::hub::http
