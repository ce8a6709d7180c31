// OpenAI's sampling adjustments that transformers' chain lacks (generation/logits_process.h has
// only the multiplicative repetition_penalty): the additive frequency / presence penalties and
// logit_bias. Apply them to the raw logits before build_logits_processors(g)'s chain, as vLLM
// does (penalties, then temperature and the truncation warpers).
#pragma once

#include <map>
#include <memory>

#include "ohm/generation/logits_process.h"
#include "ohm/serve/openai.h"

namespace ohm::serve {

// logit[t] -= frequency_penalty * count(t) + presence_penalty * (count(t) > 0), where count(t)
// counts t among the generated tokens only (seq after prompt_len), as OpenAI and vLLM do.
class OpenAIPenalties : public generation::LogitsProcessor {
 public:
  OpenAIPenalties(double frequency_penalty, double presence_penalty);
  void apply(std::span<const TokenId> seq, int64_t prompt_len,
             std::span<float> scores) const override;
  std::string name() const override { return "frequency_presence_penalty"; }

 private:
  float frequency_, presence_;
};

// logit[t] += bias[t] for each listed token id inside the vocabulary.
class LogitBias : public generation::LogitsProcessor {
 public:
  explicit LogitBias(std::map<int64_t, double> bias);
  void apply(std::span<const TokenId> seq, int64_t prompt_len,
             std::span<float> scores) const override;
  std::string name() const override { return "logit_bias"; }

 private:
  std::map<int64_t, double> bias_;
};

// The stages `s` asks for (empty when penalties are 0 and there is no logit_bias): logit_bias,
// then the penalties.
generation::LogitsProcessorList openai_processors(const SamplingParams& s);

}  // namespace ohm::serve
