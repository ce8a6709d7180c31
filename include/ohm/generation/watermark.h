// Text watermarking as transformers implements it (Kirchenbauer et al. 2023, "A Watermark for
// Large Language Models"): WatermarkLogitsProcessor and WatermarkDetector
// (transformers/generation/logits_process.py, watermarking.py), reproduced exactly:
//   - green lists are prefixes of torch.randperm(vocab_size) drawn from torch's CPU generator
//     (MT19937 seeded with the low 32 bits of the seed; randperm swaps r[i] and r[i + u32 %
//     (n-i)]);
//   - lefthash seeds with hashing_key * previous token; selfhash with
//     min(hashing_key * a_j * b) over the context window (int64 products that wrap, as torch's),
//     a_j / b from a fixed randperm(1,000,003) table, and checks the 40 best candidates;
//   - the bias is added in f32 as the last logits processor (after the warpers);
//   - the detector counts green n-grams and gives z = (green - gamma T) / sqrt(T gamma (1-gamma))
//     and p = erfc(z / sqrt 2) / 2.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ohm/core/token_id.h"
#include "ohm/formats/config.h"
#include "ohm/generation/logits_process.h"

namespace ohm::generation {

// "gamma=0.25,delta=2,seeding_scheme=selfhash,context_width=4,hashing_key=15485863" (each part
// optional; also greenlist_ratio= / bias=). "" gives transformers' defaults. InvalidArgument
// naming the part at fault, or a value out of range.
WatermarkingConfig parse_watermark_spec(const std::string& spec);

// The green-list ids for the tokens seen so far (`seq`: the context the seed comes from; for
// selfhash it ends with the candidate token), in the permutation's order.
std::vector<TokenId> watermark_greenlist(const WatermarkingConfig& w, int64_t vocab_size,
                                         std::span<const TokenId> seq);

class WatermarkProcessor : public LogitsProcessor {
 public:
  explicit WatermarkProcessor(WatermarkingConfig w);
  void apply(std::span<const TokenId> seq, int64_t prompt_len,
             std::span<float> scores) const override;
  std::string name() const override { return "watermark"; }

 private:
  WatermarkingConfig w_;
};

struct WatermarkDetection {
  int64_t num_tokens_scored = 0;
  int64_t num_green_tokens = 0;
  double green_fraction = 0, z_score = 0, p_value = 1;
  bool prediction = false;  // z_score > z_threshold
};

// transformers' WatermarkDetector(...)(ids, z_threshold, return_dict=True) for one sequence:
// a leading bos_token_id is dropped; InvalidArgument when fewer than context_width + 1 tokens
// remain.
WatermarkDetection detect_watermark(const WatermarkingConfig& w, int64_t vocab_size,
                                    std::vector<TokenId> ids, std::optional<int64_t> bos_token_id,
                                    double z_threshold = 3.0, bool ignore_repeated_ngrams = false);

}  // namespace ohm::generation
