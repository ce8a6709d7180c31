// The transformers-shaped entry point:
//
//   auto tok = ohm::AutoTokenizer::from_pretrained(id);
//   auto model = ohm::AutoModelForCausalLM::from_pretrained(id, {.dtype = ohm::DType::BF16,
//                                                                .device_map = "auto",
//                                                                .threads = 2});
//   auto cfg = model.generation_config();   // generation_config.json defaults
//   cfg.max_new_tokens = 50;
//   auto out = model.generate(tok(prompt), cfg);
//   std::string text = tok.decode(out[0], /*skip_special_tokens=*/true);
//
// `id` is a local directory (config.json + safetensors, sharded or not), a .gguf file, or a Hub
// id in the HF cache (ohm::resolve_model). The returned PreTrainedModel owns the CausalLM
// (model->forward(...), *model) and its GenerationConfig.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ohm/formats/config.h"
#include "ohm/formats/model_source.h"
#include "ohm/generation/generate.h"
#include "ohm/models/causal_lm.h"
#include "ohm/tokenizers/tokenizer.h"

namespace ohm {

class PreTrainedModel {
 public:
  PreTrainedModel(std::unique_ptr<CausalLM> model, GenerationConfig generation_config);

  CausalLM* operator->() const { return model_.get(); }
  CausalLM& operator*() const { return *model_; }
  CausalLM* get() const { return model_.get(); }
  explicit operator bool() const { return model_ != nullptr; }
  std::unique_ptr<CausalLM> release() && { return std::move(model_); }

  // generation_config.json when the model has one, else derived from config.json / GGUF
  // metadata (transformers' GenerationConfig.from_model_config).
  const GenerationConfig& generation_config() const { return generation_config_; }
  GenerationConfig& generation_config() { return generation_config_; }

  // model.generate(**tokenizer(texts), generation_config=cfg): per row (x num_return_sequences)
  // the prompt followed by the generated ids; out[i] is row i (GenerateOutput::operator[]).
  // Rows may differ in length (they are left-padded internally as transformers does);
  // attention_mask zeros mark tokens to drop.
  generation::GenerateOutput generate(const tokenizers::BatchEncoding& inputs) const;
  generation::GenerateOutput generate(const tokenizers::BatchEncoding& inputs,
                                      const GenerationConfig& cfg) const;
  // Full control: streaming callback, cancellation, stop criteria, seed, scores.
  generation::GenerateOutput generate(const std::vector<std::vector<TokenId>>& input_ids,
                                      const generation::GenerateOptions& opt) const;

 private:
  std::unique_ptr<CausalLM> model_;
  GenerationConfig generation_config_;
};

class AutoModelForCausalLM {
 public:
  static PreTrainedModel from_pretrained(const std::string& path_or_id,
                                         const LoadOptions& opts = {});
  // From a model already resolved (ohm::resolve_model): a command that also loads the
  // tokenizer and chat template from it resolves the argument once.
  static PreTrainedModel from_pretrained(const ModelSource& source, const LoadOptions& opts = {});
};

using tokenizers::AutoTokenizer;
using tokenizers::BatchEncoding;

}  // namespace ohm
