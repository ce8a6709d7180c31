#include "ohm/serve/penalties.h"

#include <algorithm>
#include <unordered_map>
#include <utility>

namespace ohm::serve {

OpenAIPenalties::OpenAIPenalties(double frequency_penalty, double presence_penalty)
    : frequency_(static_cast<float>(frequency_penalty)),
      presence_(static_cast<float>(presence_penalty)) {}

void OpenAIPenalties::apply(std::span<const TokenId> seq, int64_t prompt_len,
                            std::span<float> scores) const {
  std::unordered_map<int64_t, int64_t> counts;
  for (size_t i = static_cast<size_t>(std::max<int64_t>(prompt_len, 0)); i < seq.size(); ++i) {
    ++counts[static_cast<int64_t>(seq[i])];
  }
  const auto vocab = static_cast<int64_t>(scores.size());
  for (const auto& [tok, n] : counts) {
    if (tok < 0 || tok >= vocab) continue;
    scores[static_cast<size_t>(tok)] -= frequency_ * static_cast<float>(n) + presence_;
  }
}

LogitBias::LogitBias(std::map<int64_t, double> bias) : bias_(std::move(bias)) {}

void LogitBias::apply(std::span<const TokenId>, int64_t, std::span<float> scores) const {
  const auto vocab = static_cast<int64_t>(scores.size());
  for (const auto& [tok, b] : bias_) {
    if (tok >= 0 && tok < vocab) scores[static_cast<size_t>(tok)] += static_cast<float>(b);
  }
}

generation::LogitsProcessorList openai_processors(const SamplingParams& s) {
  generation::LogitsProcessorList list;
  if (!s.logit_bias.empty()) list.add(std::make_unique<LogitBias>(s.logit_bias));
  if (s.frequency_penalty != 0 || s.presence_penalty != 0) {
    list.add(std::make_unique<OpenAIPenalties>(s.frequency_penalty, s.presence_penalty));
  }
  return list;
}

}  // namespace ohm::serve
