// gguf_dequant FILE.gguf OUT.f32: ohm's own dequantization (ohm::quant::dequantize) of every
// tensor of a GGUF file, as little-endian f32, concatenated in the file's tensor order. The
// other side of tests/quant/test_quantize_gguf.py, which compares it with gguf-py's
// gguf.quants.dequantize of the same file bit for bit.
#include <cstdio>
#include <exception>
#include <memory>

#include "ohm/formats/gguf.h"
#include "ohm/quant/dequant.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: gguf_dequant FILE.gguf OUT.f32\n");
    return 2;
  }
  try {
    const auto f = ohm::gguf::GGUFFile::open(argv[1]);
    std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(argv[2], "wb"), &std::fclose);
    if (!out) {
      std::fprintf(stderr, "gguf_dequant: cannot write %s\n", argv[2]);
      return 1;
    }
    for (const auto& ti : f.tensors()) {
      const ohm::Tensor t = ohm::quant::dequantize(f.tensor(ti.name));
      if (std::fwrite(t.raw(), sizeof(float), t.numel(), out.get()) != t.numel()) {
        std::fprintf(stderr, "gguf_dequant: write failed\n");
        return 1;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gguf_dequant: %s\n", e.what());
    return 1;
  }
  return 0;
}
