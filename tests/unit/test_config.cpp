#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ohm/core/error.h"
#include "ohm/formats/config.h"
#include "ohm/models/arch.h"
#include "test_util.h"

using namespace ohm;
using json = nlohmann::json;

namespace {
// An architecture-specific config value, as `ohm inspect` shows it.
std::string summary_value(const ohm::ModelConfig& mc, const std::string& key) {
  for (const auto& [k, v] : ohm::summarize(mc))
    if (k == key) return v;
  return "(absent)";
}
}  // namespace

TEST(Config, LlamaDefaultsMatchTransformers) {
  auto mc = parse_model_config(json{{"model_type", "llama"}}, "config.json");
  const auto& c = common(mc);
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.vocab_size, 32000);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 11008);
  EXPECT_EQ(c.num_key_value_heads, 32);  // defaults to num_attention_heads
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-6);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_id, std::vector<int64_t>{2});
  EXPECT_FALSE(c.rope_scaling.has_value());
}

TEST(Config, RealMistralConfig) {
  const auto path = ohm::test::shared_data_dir() / "tokenizers" / "mistral-7b-v0.1" / "config.json";
  OHM_REQUIRE_SHARED(std::filesystem::exists(path), path);
  auto mc = load_model_config(path.string());
  const auto& c = common(mc);
  EXPECT_EQ(c.model_type, "mistral");
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.intermediate_size, 14336);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
}

TEST(Config, PerArchDefaults) {
  const auto mixc = parse_model_config(json{{"model_type", "mixtral"}}, "c");
  const auto& mix = common(mixc);
  EXPECT_EQ(summary_value(mixc, "num_local_experts"), "8");
  EXPECT_EQ(summary_value(mixc, "num_experts_per_tok"), "2");
  EXPECT_DOUBLE_EQ(mix.rope_theta, 1e6);
  EXPECT_FALSE(mix.sliding_window.has_value());
  auto g = common(parse_model_config(json{{"model_type", "gemma"}}, "c"));
  EXPECT_EQ(g.head_dim, 256);
  EXPECT_TRUE(g.tie_word_embeddings);
  EXPECT_EQ(g.hidden_act, "gelu_pytorch_tanh");
  auto q = common(parse_model_config(json{{"model_type", "qwen2"}}, "c"));
  EXPECT_TRUE(q.attention_bias);
  EXPECT_FALSE(q.sliding_window.has_value());  // use_sliding_window false
  auto gpt = common(parse_model_config(
      json{{"model_type", "gpt2"}, {"n_embd", 64}, {"n_head", 4}, {"n_layer", 2}}, "c"));
  EXPECT_EQ(gpt.hidden_size, 64);
  EXPECT_EQ(gpt.intermediate_size, 256);
  EXPECT_EQ(gpt.head_dim, 16);
  EXPECT_TRUE(gpt.tie_word_embeddings);
  // Falcon 7B: multi-query -> one KV head; 40B layout: num_kv_heads.
  auto f7 = common(parse_model_config(
      json{{"model_type", "falcon"}, {"hidden_size", 64}, {"num_attention_heads", 4}}, "c"));
  EXPECT_EQ(f7.num_key_value_heads, 1);
  EXPECT_EQ(f7.intermediate_size, 256);
  auto f40 = common(parse_model_config(json{{"model_type", "falcon"},
                                            {"hidden_size", 64},
                                            {"num_attention_heads", 4},
                                            {"new_decoder_architecture", true},
                                            {"num_kv_heads", 2}},
                                       "c"));
  EXPECT_EQ(f40.num_key_value_heads, 2);
  auto f5 = common(
      parse_model_config(json{{"model_type", "falcon"},
                              {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 5e5}}}},
                         "c"));
  EXPECT_DOUBLE_EQ(f5.rope_theta, 5e5);
  auto p3 = common(parse_model_config(
      json{
          {"model_type", "phi3"},
          {"rope_scaling", {{"type", "su"}, {"short_factor", {1.0, 2.0}}, {"long_factor", {3.0}}}}},
      "c"));
  EXPECT_EQ(p3.rope_scaling->rope_type, "longrope");
  EXPECT_EQ(p3.rope_scaling->short_factor.size(), 2u);
}

TEST(Config, Transformers5RopeParameters) {
  auto c = common(parse_model_config(json{{"model_type", "llama"},
                                          {"dtype", "float32"},
                                          {"rope_parameters",
                                           {{"rope_type", "llama3"},
                                            {"rope_theta", 500000.0},
                                            {"factor", 8.0},
                                            {"low_freq_factor", 1.0},
                                            {"high_freq_factor", 4.0},
                                            {"original_max_position_embeddings", 8192}}}},
                                     "c"));
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  ASSERT_TRUE(c.rope_scaling.has_value());
  EXPECT_EQ(c.rope_scaling->rope_type, "llama3");
  EXPECT_EQ(c.rope_scaling->original_max_position_embeddings, 8192);
  EXPECT_EQ(c.torch_dtype, "float32");
  auto d = common(
      parse_model_config(json{{"model_type", "llama"},
                              {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 1e4}}}},
                         "c"));
  EXPECT_FALSE(d.rope_scaling.has_value());
}

TEST(Config, ModelTypeFromArchitectures) {
  auto c = parse_model_config(json{{"architectures", {"MistralForCausalLM"}}}, "c");
  EXPECT_EQ(common(c).model_type, "mistral");
}

static std::string config_error(const json& j) {
  try {
    parse_model_config(j, "dir/config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Config, ErrorsNameFileAndKey) {
  EXPECT_NE(config_error(json{{"model_type", "bert"}}).find("unknown model_type 'bert'"),
            std::string::npos);
  EXPECT_NE(config_error(json::object()).find("key 'model_type'"), std::string::npos);
  const std::string e1 = config_error(json{{"model_type", "llama"}, {"hidden_size", "big"}});
  EXPECT_NE(e1.find("dir/config.json: key 'hidden_size'"), std::string::npos) << e1;
  const std::string e2 = config_error(json{{"model_type", "llama"}, {"num_key_value_heads", 5}});
  EXPECT_NE(e2.find("key 'num_key_value_heads'"), std::string::npos) << e2;
  const std::string e3 = config_error(json{{"model_type", "llama"}, {"num_hidden_layers", 0}});
  EXPECT_NE(e3.find("key 'num_hidden_layers'"), std::string::npos) << e3;
  const std::string e4 =
      config_error(json{{"model_type", "llama"}, {"rope_scaling", {{"type", "weird"}}}});
  EXPECT_NE(e4.find("key 'rope_scaling.rope_type'"), std::string::npos) << e4;
  const std::string e5 = config_error(json{{"model_type", "llama"}, {"eos_token_id", 99999}});
  EXPECT_NE(e5.find("key 'eos_token_id'"), std::string::npos) << e5;
  const std::string e6 = config_error(json{{"model_type", "llama"}, {"rope_scaling", 3}});
  EXPECT_NE(e6.find("key 'rope_scaling'"), std::string::npos) << e6;
}

TEST(Config, BadJsonFile) {
  ohm::test::TempDir d;
  ohm::test::write_file(d.file("config.json"), "{\"model_type\": \"llama\",");
  try {
    load_model_config(d.file("config.json"));
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(d.file("config.json")), std::string::npos);
  }
  EXPECT_THROW(load_model_config(d.file("missing.json")), IoError);
}

TEST(GenerationConfig, DefaultsAndFields) {
  auto g = parse_generation_config(json::object(), "g");
  EXPECT_EQ(g.max_length, 20);
  EXPECT_FALSE(g.do_sample);
  EXPECT_EQ(g.top_k, 50);
  EXPECT_DOUBLE_EQ(g.top_p, 1.0);
  auto path =
      ohm::test::shared_data_dir() / "tokenizers" / "mistral-7b-v0.1" / "generation_config.json";
  if (std::filesystem::exists(path)) {
    auto m = load_generation_config(path.string());
    EXPECT_EQ(m.bos_token_id, 1);
    EXPECT_EQ(m.eos_token_id, std::vector<int64_t>{2});
  }
  auto h = parse_generation_config(json{{"eos_token_id", {128001, 128009}},
                                        {"do_sample", true},
                                        {"temperature", 0.6},
                                        {"top_p", 0.9},
                                        {"early_stopping", "never"},
                                        {"bad_words_ids", {{1, 2}, {3}}},
                                        {"stop_strings", "###"}},
                                   "g");
  EXPECT_EQ(h.eos_token_id.size(), 2u);
  EXPECT_EQ(h.early_stopping, "never");
  EXPECT_EQ(h.bad_words_ids.size(), 2u);
  EXPECT_EQ(h.stop_strings, std::vector<std::string>{"###"});
  EXPECT_THROW(parse_generation_config(json{{"top_p", 2.0}}, "g"), ConfigError);
  EXPECT_THROW(parse_generation_config(json{{"bad_words_ids", {1, 2}}}, "g"), ConfigError);
}

TEST(TokenizerConfig, LoadsRaw) {
  auto path =
      ohm::test::shared_data_dir() / "tokenizers" / "mistral-7b-v0.1" / "tokenizer_config.json";
  OHM_REQUIRE_SHARED(std::filesystem::exists(path), path);
  auto j = load_tokenizer_config(path.string());
  EXPECT_TRUE(j.contains("bos_token"));
  ohm::test::TempDir d;
  ohm::test::write_file(d.file("t.json"), R"({"chat_template": 5})");
  EXPECT_THROW(load_tokenizer_config(d.file("t.json")), ConfigError);
}
