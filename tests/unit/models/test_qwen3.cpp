// Qwen3's config binding (the logits, batch, cache and greedy checks against transformers are
// the shared fixture tests in test_models.cpp / test_gguf_models.cpp).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ohm/core/error.h"
#include "ohm/models/arch.h"

namespace ohm {
namespace {

using json = nlohmann::json;

std::string summary_value(const ModelConfig& mc, const std::string& key) {
  for (const auto& [k, v] : summarize(mc))
    if (k == key) return v;
  return "(absent)";
}

TEST(Qwen3, DefaultsMatchTransformers) {
  const ModelConfig mc = parse_model_config(json{{"model_type", "qwen3"}}, "config.json");
  const DecoderConfig& c = common(mc);
  EXPECT_EQ(c.vocab_size, 151936);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 22016);
  EXPECT_EQ(c.head_dim, 128);  // its own key, not hidden_size / heads
  EXPECT_EQ(c.num_key_value_heads, 32);
  EXPECT_EQ(c.max_position_embeddings, 32768);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.sliding_window.has_value());  // use_sliding_window false
  EXPECT_EQ(summary_value(mc, "layer_types"), "32 full");
}

TEST(Qwen3, ArchitecturesNameTheClass) {
  const ModelConfig mc =
      parse_model_config(json{{"architectures", {"Qwen3ForCausalLM"}}}, "config.json");
  EXPECT_EQ(common(mc).model_type, "qwen3");
}

TEST(Qwen3, SlidingLayersFromMaxWindowLayers) {
  const ModelConfig mc = parse_model_config(json{{"model_type", "qwen3"},
                                                 {"num_hidden_layers", 4},
                                                 {"use_sliding_window", true},
                                                 {"sliding_window", 8},
                                                 {"max_window_layers", 2}},
                                            "config.json");
  EXPECT_EQ(common(mc).sliding_window, 8);
  EXPECT_EQ(summary_value(mc, "layer_types"), "2 full, 2 sliding");
}

TEST(Qwen3, BadLayerTypesNameTheKey) {
  try {
    parse_model_config(json{{"model_type", "qwen3"},
                            {"num_hidden_layers", 2},
                            {"layer_types", {"full_attention", "chunked"}}},
                       "dir/config.json");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("dir/config.json"), std::string::npos) << m;
    EXPECT_NE(m.find("layer_types"), std::string::npos) << m;
    EXPECT_NE(m.find("chunked"), std::string::npos) << m;
  }
  EXPECT_THROW(parse_model_config(json{{"model_type", "qwen3"},
                                       {"num_hidden_layers", 3},
                                       {"layer_types", {"full_attention"}}},
                                  "c"),
               ConfigError);
}

}  // namespace
}  // namespace ohm
