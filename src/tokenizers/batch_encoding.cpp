// AutoTokenizer's call operator (transformers' `tokenizer(text)`) and decode of 64-bit ids.
#include <limits>

#include "ohm/core/error.h"
#include "ohm/tokenizers/tokenizer.h"

namespace ohm::tokenizers {

BatchEncoding AutoTokenizer::operator()(std::string_view text, bool add_special_tokens) const {
  BatchEncoding b;
  b.input_ids.push_back(encode(text, add_special_tokens));
  b.attention_mask.emplace_back(b.input_ids.back().size(), 1);
  return b;
}

BatchEncoding AutoTokenizer::operator()(const std::vector<std::string>& texts,
                                        bool add_special_tokens) const {
  BatchEncoding b;
  for (const auto& t : texts) {
    b.input_ids.push_back(encode(t, add_special_tokens));
    b.attention_mask.emplace_back(b.input_ids.back().size(), 1);
  }
  return b;
}

std::string AutoTokenizer::decode(std::span<const int64_t> ids, bool skip_special_tokens,
                                  std::optional<bool> clean_up_tokenization_spaces) const {
  std::vector<int32_t> v;
  v.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] > std::numeric_limits<int32_t>::max())
      throw InvalidArgument(ErrorContext().note("index", std::to_string(i)),
                            "decode: token id " + std::to_string(ids[i]) + " out of range");
    v.push_back(static_cast<int32_t>(ids[i]));
  }
  return decode(v, skip_special_tokens, clean_up_tokenization_spaces);
}

}  // namespace ohm::tokenizers
