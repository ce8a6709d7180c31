// Internal: the tokenizer call of map_tokenize, in a file without Arrow's headers (Arrow's
// arrow::internal::ThreadPool forward declaration and ohm::ThreadPool in one translation unit
// trip clang-tidy's bugprone-forward-declaration-namespace inside Arrow's headers).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace ohm::tokenizers {
class AutoTokenizer;
}

namespace ohm::datasets::detail {

// Appends the ids of each text to `values` and the running end offset to `offsets` (which the
// caller starts with 0). A null text (has[i] false) gets no ids.
void encode_texts(const tokenizers::AutoTokenizer& tok, const std::vector<std::string_view>& texts,
                  const std::vector<bool>& has, bool add_special_tokens,
                  std::vector<int32_t>& offsets, std::vector<int32_t>& values);

}  // namespace ohm::datasets::detail
