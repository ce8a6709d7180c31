// Shared by `ohm quantize` (quantize.cpp, quantize_gptq.cpp, quantize_report.cpp) and
// `ohm imatrix` (imatrix.cpp).
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ohm/core/error.h"
#include "quantize_gptq.h"

namespace ohm::cli {

// `ohm quantize IN OUT --type TYPE ...` (quantize.cpp): writes OUT as a GGUF file and prints
// the per-tensor summary on stdout.
struct QuantizeOptions {
  std::string in, out, type, imatrix, verify_key;
  std::vector<std::string> keep;
  bool pure = false, quiet = false;
  int threads = 0;
  GptqCliOptions gptq;  // --method gptq|rtn: an HF GPTQ checkpoint instead of GGUF
  // --report DIR (quantize_report.cpp): quantize IN to each of report_types and compare sizes
  // and perplexities on report_text; OUT is then not used.
  std::string report, report_text;
  std::vector<std::string> report_types, report_compare;
  int64_t report_ctx = 512, report_chunks = -1;
};
int run_quantize(const QuantizeOptions& o);
// UsageError naming `name` and listing the choices when it is not a --type.
void check_quantize_type(const std::string& name);
int run_quantize_report(const QuantizeOptions& o);

// A JSON file as J (nlohmann::json, or ordered_json where a file is written back in its key
// order); IoError / FormatError naming the file.
template <class J>
J read_json_as(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError(ErrorContext().file(path), "cannot open");
  try {
    return J::parse(in);
  } catch (const typename J::exception& e) {
    throw FormatError(ErrorContext().file(path), std::string("invalid JSON: ") + e.what());
  }
}

// The GGUF name (llama.cpp's convert_hf_to_gguf.py) of a llama-family checkpoint tensor
// ("model.layers.3.mlp.down_proj.weight" -> "blk.3.ffn_down.weight"), with the rotary
// permutation it needs when `permute` (LLaMA q/k: 1 = by n_head, 2 = by n_head_kv; else 0).
std::optional<std::pair<std::string, int>> hf_to_gguf_name(const std::string& hf, bool permute);

// An importance matrix as llama-quantize reads it: per GGUF weight name, the mean squared
// activation of each input column (in_sum2 / counts; 1 where a matrix saw no input).
struct Imatrix {
  std::string file;
  std::vector<std::string> datasets;
  int64_t chunk_count = 0;
  std::map<std::string, std::vector<float>> values;
};
// Reads llama-imatrix's GGUF format (general.type "imatrix", NAME.in_sum2 and NAME.counts
// tensors); FormatError naming the file and tensor or key at fault.
Imatrix load_imatrix(const std::string& path);

}  // namespace ohm::cli
