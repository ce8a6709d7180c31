// Rotary position embeddings: inv_freq and the cos/sin tables for every HF rope_type
// (transformers modeling_rope_utils.py): default, linear, dynamic (NTK), llama3, yarn,
// longrope (su). Numerics mirror HF: inv_freq in f32, freqs = pos * inv_freq in f32,
// cos/sin in f32 times attention_scaling.
#pragma once

#include <cstdint>
#include <vector>

#include "ohm/formats/config.h"

namespace ohm::nn {

class Rope {
 public:
  Rope() = default;
  // rot_dim = int(head_dim * partial_rotary_factor). `original_max_position_embeddings`
  // falls back to the config's (Phi-3 keeps it at top level).
  explicit Rope(const DecoderConfig& c, std::optional<int64_t> original_max_pos = std::nullopt);

  int64_t rot_dim() const { return rot_dim_; }
  float attention_scaling() const { return attention_scaling_; }
  // inv_freq [rot_dim/2] for a forward whose largest position is seq_len - 1
  // (dynamic and longrope depend on it; the others ignore it).
  std::vector<float> inv_freq(int64_t seq_len) const;
  // cos/sin [n, rot_dim/2] for positions pos[0..n). The frequencies of dynamic and longrope
  // follow seq_len[t] per row when given (rows of several sequences in one step: the serving
  // engine), else max(pos) + 1 over the rows (one forward of one sequence, as transformers).
  void tables(const int32_t* pos, int64_t n, float* cos, float* sin,
              const int32_t* seq_len = nullptr) const;
  // Whether the frequencies at seq_len are the ones of short sequences (dynamic: seq_len <=
  // max_position_embeddings; longrope: <= original_max_position_embeddings; others: always),
  // so K/V computed at seq_len can be shared with any other sequence (prefix caching).
  bool base_at(int64_t seq_len) const;

 private:
  std::vector<float> base_inv_freq(double base) const;
  std::string type_ = "default";
  int64_t rot_dim_ = 0;
  double theta_ = 10000.0;
  int64_t max_pos_ = 0, orig_max_pos_ = 0;
  RopeScaling s_;
  float attention_scaling_ = 1.0f;
  std::vector<float> fixed_;  // inv_freq for the types that do not depend on seq_len
};

}  // namespace ohm::nn
