// model_diff_logits: the ohm side of tests/diff/model_diff.py. Loads checkpoints the way
// `ohm generate` does (ohm::load_causal_lm: config.json + safetensors, weights kept in their
// stored dtype, f32 compute) and prints the raw logits of a prompt.
//
//   model_diff_logits --batch FILE.jsonl
//
// Each input line is {"model": DIR, "ids": [id, ...]}; each output line (same order) is
// {"logits": [[v0, ..., vV-1], ...]} (one row per prompt position, %.9g) or, when loading or
// running fails, {"error": "<kind>: <message>"} with ohm's error text. Exit status 0 unless the
// batch file itself cannot be read (2).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "ohm/core/error.h"
#include "ohm/models/causal_lm.h"

namespace {

using json = nlohmann::json;

std::string fmt(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}

std::string run_one(const json& item) {
  const std::string dir = item.at("model").get<std::string>();
  const auto ids = item.at("ids").get<std::vector<int64_t>>();
  auto model = ohm::load_causal_lm(dir, {.threads = 1});
  ohm::Tensor input = ohm::Tensor::empty(ohm::DType::I64, {1, static_cast<int64_t>(ids.size())});
  for (size_t i = 0; i < ids.size(); ++i) input.mutable_data<int64_t>()[i] = ids[i];
  auto cache = model->make_cache(1);
  const ohm::Tensor logits = model->forward(input, ohm::Tensor(), ohm::Tensor(), cache);
  const int64_t T = logits.dim(1), V = logits.dim(2);
  const float* l = logits.data<float>();
  std::string out = "{\"logits\": [";
  for (int64_t t = 0; t < T; ++t) {
    out += t ? ", [" : "[";
    for (int64_t v = 0; v < V; ++v) out += (v ? ", " : "") + fmt(l[t * V + v]);
    out += "]";
  }
  return out + "]}";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || std::string(argv[1]) != "--batch") {
    std::cerr << "usage: model_diff_logits --batch FILE.jsonl\n";
    return 2;
  }
  std::ifstream in(argv[2]);
  if (!in) {
    std::cerr << "model_diff_logits: cannot read " << argv[2] << "\n";
    return 2;
  }
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::string answer;
    try {
      answer = run_one(json::parse(line));
    } catch (const ohm::Error& e) {
      answer = json{{"error", std::string(ohm::to_string(e.kind())) + ": " + e.what()}}.dump();
    } catch (const std::exception& e) {
      answer = json{{"error", std::string("error: ") + e.what()}}.dump();
    }
    std::cout << answer << "\n" << std::flush;
  }
  return 0;
}
