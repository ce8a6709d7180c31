// Qwen3-MoE's config binding (which layers are sparse, the experts' keys) and its routing on the
// fixture (the logits, batch, cache and greedy checks against transformers are the shared
// fixture tests in test_models.cpp / test_gguf_models.cpp).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ohm/core/error.h"
#include "ohm/formats/safetensors.h"
#include "ohm/models/arch.h"
#include "ohm/models/causal_lm.h"
#include "test_util.h"

namespace ohm {
namespace {

using json = nlohmann::json;

std::string summary_value(const ModelConfig& mc, const std::string& key) {
  for (const auto& [k, v] : summarize(mc))
    if (k == key) return v;
  return "(absent)";
}

TEST(Qwen3Moe, DefaultsMatchTransformers) {
  const ModelConfig mc = parse_model_config(json{{"model_type", "qwen3_moe"}}, "config.json");
  const DecoderConfig& c = common(mc);
  EXPECT_EQ(c.vocab_size, 151936);
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.intermediate_size, 6144);
  EXPECT_EQ(c.num_hidden_layers, 24);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 64);  // hidden_size / heads when absent
  EXPECT_FALSE(c.sliding_window.has_value());
  EXPECT_EQ(summary_value(mc, "num_experts"), "128");
  EXPECT_EQ(summary_value(mc, "num_experts_per_tok"), "8");
  EXPECT_EQ(summary_value(mc, "moe_intermediate_size"), "768");
  EXPECT_EQ(summary_value(mc, "norm_topk_prob"), "false");
  EXPECT_EQ(summary_value(mc, "moe_layers"), "24 of 24");
}

TEST(Qwen3Moe, ExpertCountUnderEitherName) {
  // Published configs say num_experts; transformers 5 writes num_local_experts.
  const auto n = [](const json& j) {
    return summary_value(parse_model_config(j, "config.json"), "num_experts");
  };
  EXPECT_EQ(n(json{{"model_type", "qwen3_moe"}, {"num_experts", 16}}), "16");
  EXPECT_EQ(n(json{{"model_type", "qwen3_moe"}, {"num_local_experts", 12}}), "12");
  EXPECT_EQ(
      common(parse_model_config(json{{"architectures", {"Qwen3MoeForCausalLM"}}}, "c")).model_type,
      "qwen3_moe");
}

TEST(Qwen3Moe, DenseLayersFromSparseStepAndMlpOnlyLayers) {
  // Layer i is sparse unless i in mlp_only_layers or (i + 1) % decoder_sparse_step != 0.
  const ModelConfig mc = parse_model_config(json{{"model_type", "qwen3_moe"},
                                                 {"num_hidden_layers", 6},
                                                 {"decoder_sparse_step", 2},
                                                 {"mlp_only_layers", {3}}},
                                            "config.json");
  EXPECT_EQ(summary_value(mc, "moe_layers"), "2 of 6");  // layers 1 and 5
}

TEST(Qwen3Moe, BadValuesNameTheKey) {
  const auto key_of = [](const json& j) {
    try {
      parse_model_config(j, "dir/config.json");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string a =
      key_of(json{{"model_type", "qwen3_moe"}, {"num_experts", 4}, {"num_experts_per_tok", 5}});
  EXPECT_NE(a.find("num_experts_per_tok"), std::string::npos) << a;
  EXPECT_NE(a.find("dir/config.json"), std::string::npos) << a;
  const std::string b =
      key_of(json{{"model_type", "qwen3_moe"}, {"num_hidden_layers", 2}, {"mlp_only_layers", {2}}});
  EXPECT_NE(b.find("mlp_only_layers"), std::string::npos) << b;
  const std::string c = key_of(json{{"model_type", "qwen3_moe"}, {"decoder_sparse_step", 0}});
  EXPECT_NE(c.find("decoder_sparse_step"), std::string::npos) << c;
}

TEST(Qwen3Moe, FixtureRoutesToEveryExpert) {
  const std::string dir = (test::fixtures_dir() / "models/qwen3_moe/f32").string();
  auto model = load_causal_lm(dir);
  const auto ref = safetensors::SafetensorsFile::open(dir + "/reference.safetensors");
  auto cache = model->make_cache(1);
  model->forward(ref.tensor("prompt_len64.input_ids"), Tensor(), Tensor(), cache);
  const auto counts = model->router_counts();
  ASSERT_EQ(counts.size(), 2u);
  for (const auto& [name, c] : counts) {
    ASSERT_EQ(c.size(), 4u) << name;
    int64_t total = 0;
    for (size_t e = 0; e < c.size(); ++e) {
      EXPECT_GT(c[e], 0) << name << " expert " << e;
      total += c[e];
    }
    EXPECT_EQ(total, 64 * 2) << name;  // top-2 of 64 tokens
  }
}

}  // namespace
}  // namespace ohm
