// libohm's top-level header: the transformers-shaped API.
//
//   #include <ohm/ohm.h>
//   auto tok = ohm::AutoTokenizer::from_pretrained("meta-llama/Llama-2-7b-hf");  // HF cache
//   auto model = ohm::AutoModelForCausalLM::from_pretrained("meta-llama/Llama-2-7b-hf",
//                                                           {.dtype = ohm::DType::BF16});
//   auto cfg = model.generation_config();
//   cfg.max_new_tokens = 50;
//   auto out = model.generate(tok("The capital of France is"), cfg);
//   std::cout << tok.decode(out[0], /*skip_special_tokens=*/true);
#pragma once

#include "ohm/chat/chat_template.h"
#include "ohm/generation/auto_model.h"
#include "ohm/generation/generate.h"
#include "ohm/models/causal_lm.h"
#include "ohm/tokenizers/tokenizer.h"
