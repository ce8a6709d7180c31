// Gemma 2. Mirrors transformers models/gemma2/modeling_gemma2.py.
//
// Differences from Gemma (embeddings scaled by sqrt(hidden_size), (1 + w) RMSNorms, GeGLU from
// hidden_activation, tied lm_head):
//   - sandwich norms: post_attention_layernorm on the attention output, pre_ / post_
//     feedforward_layernorm around the MLP;
//   - attention scores scaled by query_pre_attn_scalar^-0.5 and soft-capped:
//     attn_logit_softcapping * tanh(s / attn_logit_softcapping) before the mask;
//   - final logits soft-capped the same way (final_logit_softcapping);
//   - layer_types: sliding-window ("sliding_attention") and global layers alternate (by default
//     the even layers are sliding).
// GGUF: general.architecture "gemma2"; norms stored as 1 + w; post_attention_norm,
// ffn_norm (pre-feedforward), post_ffw_norm; gemma2.attn_logit_softcapping,
// final_logit_softcapping, attention.sliding_window. llama.cpp assumes the alternating layers
// and no query_pre_attn_scalar key (scale 1/sqrt(head_dim), 1/sqrt(hidden/heads) for 27B).
#include <cmath>

#include "builders.h"

namespace ohm::models {
namespace {

struct Gemma2Config : DecoderConfig {
  double query_pre_attn_scalar = 256;
  std::optional<double> attn_logit_softcapping, final_logit_softcapping;
  std::vector<std::string> layer_types;  // "full_attention" / "sliding_attention" per layer
  void summarize_extra(std::vector<std::pair<std::string, std::string>>& s) const override {
    int64_t full = 0, sliding = 0;
    for (const auto& t : layer_types) (t == "sliding_attention" ? sliding : full) += 1;
    s.emplace_back("layer_types",
                   std::to_string(full) + " full, " + std::to_string(sliding) + " sliding");
    auto num = [](const std::optional<double>& v) {
      if (!v) return std::string("none");
      std::string t = std::to_string(*v);  // "50.000000" -> "50", "0.500000" -> "0.5"
      t.erase(t.find_last_not_of('0') + 1);
      if (t.back() == '.') t.pop_back();
      return t;
    };
    s.emplace_back("query_pre_attn_scalar", num(query_pre_attn_scalar));
    s.emplace_back("attn_logit_softcapping", num(attn_logit_softcapping));
    s.emplace_back("final_logit_softcapping", num(final_logit_softcapping));
  }
};

std::optional<double> positive_or_null(const JsonReader& r, const std::string& key, double def) {
  if (r.raw().contains(key) && r.raw()[key].is_null()) return std::nullopt;
  const double v = r.get_double(key, def);
  if (!(v > 0)) r.fail(key, "must be > 0 (or null for none)");
  return v;
}

// Defaults from transformers configuration_gemma2.py.
std::shared_ptr<DecoderConfig> bind_gemma2(const JsonReader& r) {
  auto c = std::make_shared<Gemma2Config>();
  bind_decoder(
      r,
      {256000, 2304, 9216, 26, 8, 4, 8192, 1e-6, 10000.0, "gelu_pytorch_tanh", true, 2, 1, 0, 4096},
      *c);
  if (!r.has("head_dim")) c->head_dim = 256;
  // Gemma2MLP reads hidden_activation (hidden_act is not a Gemma2Config key).
  c->hidden_act = r.get_string("hidden_activation", "gelu_pytorch_tanh");
  c->query_pre_attn_scalar = r.get_double("query_pre_attn_scalar", 256);
  if (!(c->query_pre_attn_scalar > 0)) r.fail("query_pre_attn_scalar", "must be > 0");
  c->attn_logit_softcapping = positive_or_null(r, "attn_logit_softcapping", 50.0);
  c->final_logit_softcapping = positive_or_null(r, "final_logit_softcapping", 30.0);
  // without layer_types, the default of Gemma2Config.__post_init__
  c->layer_types =
      bind_layer_types(r, c->num_hidden_layers, [&](int64_t i) { return (i + 1) % 2 != 0; });
  require_heads_divide_hidden(r, *c);
  return c;
}

class Gemma2ForCausalLM : public DecoderLM {
 public:
  Gemma2ForCausalLM(const ModelConfig& config, nn::Weights& ws, const LoadOptions& opts)
      : DecoderLM(config, opts) {
    const auto& c = this->config().get<Gemma2Config>();
    const int64_t H = c.hidden_size;
    embed_ = ws.matrix("model.embed_tokens.weight", c.vocab_size, H);
    // normalizer = tensor(hidden_size**0.5, dtype=hidden.dtype)
    embed_scale_ = static_cast<float>(std::sqrt(static_cast<double>(H)));
    ropes_ = {nn::Rope(c)};
    nn::DecoderLayerSpec s = layer_spec(c);
    s.norm_offset = 1.0f;
    s.sandwich_norms = true;
    s.qkv_bias = s.o_bias = c.attention_bias ? nn::Bias::Required : nn::Bias::None;
    s.mlp_bias = nn::Bias::None;
    s.scale = static_cast<float>(std::pow(c.query_pre_attn_scalar, -0.5));
    s.softcap = static_cast<float>(c.attn_logit_softcapping.value_or(0.0));
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const bool sliding = c.layer_types[static_cast<size_t>(i)] == "sliding_attention";
      s.window = sliding && c.sliding_window ? *c.sliding_window : 0;
      layers_.push_back(nn::load_decoder_layer(ws, "model.layers." + std::to_string(i), s));
    }
    norm_ = nn::RMSNorm::load(ws, "model.norm.weight", H, c.norm_eps, 1.0f);
    final_logit_softcap_ = static_cast<float>(c.final_logit_softcapping.value_or(0.0));
    finish(ws);
  }
};

std::unique_ptr<CausalLM> build(const ModelConfig& config, nn::Weights& weights,
                                const LoadOptions& opts) {
  return std::make_unique<Gemma2ForCausalLM>(config, weights, opts);
}

void bind_gguf(const gguf::GGUFFile& f, nlohmann::json& j) {
  j["model_type"] = "gemma2";
  gguf_llama_like(f, "gemma2", j);
  j["hidden_activation"] = "gelu_pytorch_tanh";
  // llama.cpp: 1/sqrt(head_dim), except 1/sqrt(hidden/heads) for the 27B (46 layers).
  const int64_t layers = j["num_hidden_layers"].get<int64_t>();
  j["query_pre_attn_scalar"] =
      layers == 46 ? j["hidden_size"].get<int64_t>() / j["num_attention_heads"].get<int64_t>()
                   : j.value("head_dim", int64_t{256});
  const auto cap = [&](const char* key) -> nlohmann::json {
    if (auto v = f.get_float(std::string("gemma2.") + key)) return *v;
    return nullptr;
  };
  j["attn_logit_softcapping"] = cap("attn_logit_softcapping");
  j["final_logit_softcapping"] = cap("final_logit_softcapping");
  if (auto w = f.get_int("gemma2.attention.sliding_window")) j["sliding_window"] = *w;
}

// Not permuted (NEOX RoPE); every norm stored as 1 + w; the sandwich norms by their own names.
GgufTensorTable tensors(const gguf::GGUFFile& f, const ModelConfig& c) {
  (void)f;
  (void)c;
  return gguf_gemma_sandwich_tensors();
}

}  // namespace

const ArchSpec& gemma2_arch() {
  static const ArchSpec s{.model_type = "gemma2",
                          .aliases = {},
                          .hf_classes = {"Gemma2ForCausalLM"},
                          .bind_config = &bind_gemma2,
                          .build = &build,
                          .gguf_arch = "gemma2",
                          .bind_gguf = &bind_gguf,
                          .gguf_tensors = &tensors,
                          .tokenizer_pre = ""};  // SentencePiece
  return s;
}

}  // namespace ohm::models
