#include "encode.h"

#include "ohm/tokenizers/tokenizer.h"

namespace ohm::datasets::detail {

void encode_texts(const tokenizers::AutoTokenizer& tok, const std::vector<std::string_view>& texts,
                  const std::vector<bool>& has, bool add_special_tokens,
                  std::vector<int32_t>& offsets, std::vector<int32_t>& values) {
  for (size_t i = 0; i < texts.size(); ++i) {
    if (has[i]) {
      const auto ids = tok.encode(texts[i], add_special_tokens);
      values.insert(values.end(), ids.begin(), ids.end());
    }
    offsets.push_back(static_cast<int32_t>(values.size()));
  }
}

}  // namespace ohm::datasets::detail
