// Phi-3. Mirrors transformers models/phi3/modeling_phi3.py.
//
// Differences from LLaMA:
//   - fused qkv_proj [(n_head + 2*n_kv_head) * head_dim, hidden], split q | k | v;
//   - fused gate_up_proj [2*intermediate, hidden], split gate | up; y = down(up * silu(gate));
//   - partial rotary (partial_rotary_factor) and su/longrope scaling with short/long factors
//     chosen by original_max_position_embeddings;
//   - sliding-window attention when config.sliding_window is set.
#include <cmath>

#include "builders.h"
#include "ohm/core/error.h"

namespace ohm::models {
namespace {

struct Phi3Config : DecoderConfig {
  int64_t original_max_position_embeddings = 4096;
};

// Defaults from transformers configuration_phi3.py.
std::shared_ptr<DecoderConfig> bind_phi3(const JsonReader& r) {
  auto c = std::make_shared<Phi3Config>();
  bind_decoder(r,
               {32064, 3072, 8192, 32, 32, std::nullopt, 4096, 1e-5, 10000.0, "silu", false, 1,
                32000, 32000, std::nullopt},
               *c);
  c->original_max_position_embeddings = r.get_int("original_max_position_embeddings", 4096);
  return c;
}

class Phi3ForCausalLM : public DecoderLM {
 public:
  Phi3ForCausalLM(const ModelConfig& config, nn::Weights& ws, const LoadOptions& opts)
      : DecoderLM(config, opts) {
    const auto& c = this->config().get<Phi3Config>();
    embed_ = ws.matrix("model.embed_tokens.weight", c.vocab_size, c.hidden_size);
    ropes_ = {nn::Rope(c, c.original_max_position_embeddings)};
    nn::DecoderLayerSpec s = layer_spec(c);
    s.fused_qkv = s.fused_gate_up = true;
    s.mlp_bias = nn::Bias::None;
    s.window = c.sliding_window.value_or(0);
    for (int64_t i = 0; i < c.num_hidden_layers; ++i)
      layers_.push_back(nn::load_decoder_layer(ws, "model.layers." + std::to_string(i), s));
    norm_ = nn::RMSNorm::load(ws, "model.norm.weight", c.hidden_size, c.norm_eps);
    finish(ws);
  }

  // Phi3ForCausalLM.prepare_inputs_for_generation: the first time the sequence reaches
  // original_max_position_embeddings + 1 with no more than that many tokens cached, the cache is
  // dropped and the whole sequence recomputed (so its keys use the long RoPE factors).
  bool recompute_cache_before(int64_t cached, int64_t total) const override {
    const int64_t orig = config().get<Phi3Config>().original_max_position_embeddings;
    return total >= orig + 1 && cached <= orig;
  }
};

std::unique_ptr<CausalLM> build(const ModelConfig& config, nn::Weights& weights,
                                const LoadOptions& opts) {
  return std::make_unique<Phi3ForCausalLM>(config, weights, opts);
}

void bind_gguf_phi3(const gguf::GGUFFile& f, nlohmann::json& j) {
  const std::string p = "phi3.";
  j["model_type"] = "phi3";
  gguf_llama_like(f, "phi3", j);
  if (auto o = f.get_int(p + "rope.scaling.original_context_length"))
    j["original_max_position_embeddings"] = *o;
  // Long-context Phi-3 (su/longrope): convert_hf_to_gguf writes the factors as the F32 tensors
  // rope_factors_{long,short}.weight and the attention factor it derived as a key.
  const auto* lt = f.find_tensor("rope_factors_long.weight");
  const auto* st = f.find_tensor("rope_factors_short.weight");
  if (lt || st) {
    auto factors = [&](const gguf::TensorInfo* t, const char* name) {
      if (!t)
        throw FormatError(ErrorContext().file(f.path()).tensor(name),
                          "phi3 GGUF has only one of rope_factors_long/short");
      if (t->dtype != DType::F32 || t->shape.size() != 1)
        throw FormatError(ErrorContext().file(f.path()).tensor(name),
                          "rope factors must be a 1-D F32 tensor");
      const Tensor v = f.tensor(name);
      return std::vector<double>(v.data<float>(), v.data<float>() + v.numel());
    };
    nlohmann::json rs = {{"rope_type", "longrope"},
                         {"long_factor", factors(lt, "rope_factors_long.weight")},
                         {"short_factor", factors(st, "rope_factors_short.weight")}};
    if (auto a = f.get_float(p + "rope.scaling.attn_factor")) rs["attention_factor"] = *a;
    j["rope_scaling"] = rs;
  }
  // The converter writes 0 for "no window" (Phi3MiniModel: sliding_window None -> 0).
  if (auto w = f.get_int(p + "attention.sliding_window"); w && *w > 0) j["sliding_window"] = *w;
  const int64_t hd = j["hidden_size"].get<int64_t>() / j["num_attention_heads"].get<int64_t>();
  if (auto rd = f.get_int(p + "rope.dimension_count"); rd && *rd != hd)
    j["partial_rotary_factor"] = static_cast<double>(*rd) / static_cast<double>(hd);
}

// Not permuted (llama.cpp runs Phi-3 with NEOX RoPE); fused qkv and gate_up kept as is.
GgufTensorTable phi3_tensors(const gguf::GGUFFile& f, const ModelConfig& c) {
  (void)f;
  (void)c;
  GgufTensorTable t;
  t.global = {{"token_embd.weight", "model.embed_tokens.weight"},
              {"output_norm.weight", "model.norm.weight"},
              {"output.weight", "lm_head.weight"}};
  t.layer = {{"attn_norm.weight", "input_layernorm.weight"},
             {"ffn_norm.weight", "post_attention_layernorm.weight"},
             {"attn_qkv.weight", "self_attn.qkv_proj.weight"},
             {"attn_output.weight", "self_attn.o_proj.weight"},
             {"ffn_up.weight", "mlp.gate_up_proj.weight"},
             {"ffn_down.weight", "mlp.down_proj.weight"}};
  return t;
}

}  // namespace

const ArchSpec& phi3_arch() {
  static const ArchSpec s{.model_type = "phi3",
                          .aliases = {},
                          .hf_classes = {"Phi3ForCausalLM"},
                          .bind_config = &bind_phi3,
                          .build = &build,
                          .gguf_arch = "phi3",
                          .bind_gguf = &bind_gguf_phi3,
                          .gguf_tensors = &phi3_tensors,
                          .tokenizer_pre = ""};  // SentencePiece
  return s;
}

}  // namespace ohm::models
