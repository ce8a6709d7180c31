// Private to src/models: one builder per architecture file, and helpers they share.
#pragma once

#include <memory>

#include "ohm/models/causal_lm.h"

namespace ohm::models {

#define OHM_DECLARE_BUILDER(name)                                                 \
  std::unique_ptr<CausalLM> name(const ModelConfig& config, nn::Weights& weights, \
                                 const LoadOptions& opts);
OHM_DECLARE_BUILDER(build_llama)    // llama.cpp: llama, mistral, qwen2
OHM_DECLARE_BUILDER(build_mixtral)  // mixtral.cpp
OHM_DECLARE_BUILDER(build_gemma)    // gemma.cpp
OHM_DECLARE_BUILDER(build_phi3)     // phi3.cpp
OHM_DECLARE_BUILDER(build_falcon)   // falcon.cpp
OHM_DECLARE_BUILDER(build_gpt2)     // gpt2.cpp
#undef OHM_DECLARE_BUILDER

// lm_head: the embedding matrix when tie_word_embeddings and the checkpoint has no separate
// head (HF ties them), else the checkpoint's `name` [vocab, hidden].
inline nn::Linear lm_head_or_tied(nn::Weights& ws, const DecoderConfig& c, const Tensor& embed,
                                  const std::string& name = "lm_head.weight") {
  if (c.tie_word_embeddings && !ws.has(name)) return nn::Linear::from(embed);
  return nn::Linear::from(ws.matrix(name, c.vocab_size, c.hidden_size));
}

}  // namespace ohm::models
