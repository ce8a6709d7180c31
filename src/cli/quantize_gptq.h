// `ohm quantize MODEL OUT --method gptq|rtn ...`: an HF GPTQ checkpoint (quantize_gptq.cpp).
#pragma once

#include <cstdint>
#include <string>

namespace ohm::cli {

struct GptqCliOptions {
  std::string in, out, method, calibration, tokenizer, verify_key;
  int bits = 4;
  int64_t group_size = 128;
  bool desc_act = false, sym = false, quiet = false;
  int64_t samples = 128, seq_len = 2048;
  double damp = 0.01;
  int threads = 0;
};

// Quantizes every linear of the decoder blocks of the HF checkpoint o.in (GPTQ block by block
// on the calibration text, or round-to-nearest) and writes the HF GPTQ v1 checkpoint directory
// o.out (built in OUT.partial-PID, renamed at the end). Returns the exit status.
int run_quantize_gptq(const GptqCliOptions& o);

}  // namespace ohm::cli
