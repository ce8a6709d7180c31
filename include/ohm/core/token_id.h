// ohm::TokenId: the one type of a token id across modules. Tokenizers produce it, models read
// it (input_ids tensors may be i32 or i64), and generation, eval and the CLI pass it around.
//
// int32_t because that is what the tokenizers store and return throughout (vocab tables, BPE
// merges, added tokens) and every vocabulary is far below 2^31 (the largest today ~256k);
// HF tokenizers uses u32 and llama.cpp's llama_token is int32_t. Id vectors are half the size
// of int64_t ones. Values read from JSON configs (generation_config.json's eos_token_id, ...)
// stay int64_t in GenerationConfig and compare with TokenId as integers.
#pragma once

#include <cstdint>

namespace ohm {

using TokenId = int32_t;

}  // namespace ohm
