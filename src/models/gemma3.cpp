// Gemma 3 text (Gemma3ForCausalLM, model_type gemma3_text). Mirrors transformers
// models/gemma3/modeling_gemma3.py.
//
// Differences from Gemma 2 (sandwich norms, query_pre_attn_scalar, local / global layers, on
// Gemma's (1 + w) norms, scaled embeddings and GeGLU):
//   - q_norm / k_norm: (1 + w) RMSNorms over each head's head_dim values before RoPE;
//   - two RoPE tables: local (sliding) layers use rope_local_base_freq (10000, no scaling),
//     global layers rope_theta (1e6) with rope_scaling; transformers 5 writes both as
//     rope_parameters keyed by layer type ({"sliding_attention": {...}, "full_attention": {...}});
//   - the local / global pattern: layer_types, by default 5 sliding then 1 global
//     (sliding_window_pattern 6);
//   - final_logit_softcapping applies (null: none); attn_logit_softcapping is read and checked
//     but, as in transformers, not applied.
// GGUF: general.architecture "gemma3"; attn_q_norm / attn_k_norm; norms stored as 1 + w;
// gemma3.rope.freq_base (global), rope.scaling.* (global), attention.sliding_window. llama.cpp
// assumes the local base 10000 and the pattern 6 (read here from rope.freq_base_swa and
// attention.sliding_window_pattern when a file has them), and no query_pre_attn_scalar key
// (scale 1/sqrt(head_dim), 1/sqrt(hidden/heads) for the 27B).
#include <cmath>

#include "builders.h"

namespace ohm::models {
namespace {

struct Gemma3Config : DecoderConfig {
  double query_pre_attn_scalar = 256;
  std::optional<double> attn_logit_softcapping, final_logit_softcapping;
  std::vector<std::string> layer_types;  // "full_attention" / "sliding_attention" per layer
  // The local (sliding) layers' RoPE; rope_theta / rope_scaling are the global layers'.
  double rope_local_theta = 10000.0;
  std::optional<RopeScaling> rope_local_scaling;
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
    s.emplace_back("rope_local_theta", num(rope_local_theta));
    s.emplace_back("query_pre_attn_scalar", num(query_pre_attn_scalar));
    s.emplace_back("attn_logit_softcapping", num(attn_logit_softcapping));
    s.emplace_back("final_logit_softcapping", num(final_logit_softcapping));
  }
};

// Absent or null: none.
std::optional<double> optional_cap(const JsonReader& r, const std::string& key) {
  if (!r.has(key)) return std::nullopt;
  const double v = r.get_double(key, 0.0);
  if (!(v > 0)) r.fail(key, "must be > 0 (or null for none)");
  return v;
}

// One layer type's entry of rope_parameters ({"rope_type", "rope_theta", "factor", ...}).
void bind_layer_rope(const JsonReader& entry, double default_theta, double& theta,
                     std::optional<RopeScaling>& scaling) {
  const nlohmann::json wrapped = {{"rope_parameters", entry.raw()}};
  const JsonReader r(wrapped, entry.file());
  DecoderConfig tmp;
  bind_rope(r, default_theta, tmp);
  theta = tmp.rope_theta;
  scaling = tmp.rope_scaling;
}

// Defaults from transformers configuration_gemma3.py (Gemma3TextConfig).
std::shared_ptr<DecoderConfig> bind_gemma3(const JsonReader& r) {
  auto c = std::make_shared<Gemma3Config>();
  bind_decoder(
      r,
      {262208, 2304, 9216, 26, 8, 4, 131072, 1e-6, 1e6, "gelu_pytorch_tanh", true, 2, 1, 0, 4096},
      *c);
  if (!r.has("head_dim")) c->head_dim = 256;
  // Gemma3MLP reads hidden_activation (hidden_act is not a Gemma3TextConfig key).
  c->hidden_act = r.get_string("hidden_activation", "gelu_pytorch_tanh");
  c->query_pre_attn_scalar = r.get_double("query_pre_attn_scalar", 256);
  if (!(c->query_pre_attn_scalar > 0)) r.fail("query_pre_attn_scalar", "must be > 0");
  c->attn_logit_softcapping = optional_cap(r, "attn_logit_softcapping");
  c->final_logit_softcapping = optional_cap(r, "final_logit_softcapping");
  // transformers 4: rope_theta + rope_scaling (global, bound above), rope_local_base_freq.
  c->rope_local_theta = r.get_double("rope_local_base_freq", 10000.0);
  if (auto rp = r.object("rope_parameters");
      rp && (rp->has("full_attention") || rp->has("sliding_attention"))) {
    // transformers 5: one entry per layer type.
    c->rope_theta = r.get_double("rope_theta", 1e6);
    c->rope_scaling.reset();
    if (auto g = rp->object("full_attention"))
      bind_layer_rope(*g, c->rope_theta, c->rope_theta, c->rope_scaling);
    if (auto l = rp->object("sliding_attention"))
      bind_layer_rope(*l, c->rope_local_theta, c->rope_local_theta, c->rope_local_scaling);
  }
  if (!(c->rope_local_theta > 0)) r.fail("rope_local_base_freq", "must be > 0");
  const int64_t pattern = r.get_int("sliding_window_pattern", 6);
  if (pattern <= 0) r.fail("sliding_window_pattern", "must be > 0");
  // without layer_types, the default of Gemma3TextConfig.__post_init__
  c->layer_types =
      bind_layer_types(r, c->num_hidden_layers, [&](int64_t i) { return (i + 1) % pattern != 0; });
  require_heads_divide_hidden(r, *c);
  return c;
}

class Gemma3ForCausalLM : public DecoderLM {
 public:
  Gemma3ForCausalLM(const ModelConfig& config, nn::Weights& ws, const LoadOptions& opts)
      : DecoderLM(config, opts) {
    const auto& c = this->config().get<Gemma3Config>();
    const int64_t H = c.hidden_size;
    embed_ = ws.matrix("model.embed_tokens.weight", c.vocab_size, H);
    // Gemma3TextScaledWordEmbedding: embed_scale = hidden_size**0.5 in the weights' dtype
    embed_scale_ = static_cast<float>(std::sqrt(static_cast<double>(H)));
    DecoderConfig local = c;
    local.rope_theta = c.rope_local_theta;
    local.rope_scaling = c.rope_local_scaling;
    ropes_ = {nn::Rope(c), nn::Rope(local)};  // 0: global layers, 1: local layers
    nn::DecoderLayerSpec s = layer_spec(c);
    s.norm_offset = 1.0f;
    s.sandwich_norms = true;
    s.qk_norm = true;
    s.qkv_bias = s.o_bias = c.attention_bias ? nn::Bias::Required : nn::Bias::None;
    s.mlp_bias = nn::Bias::None;
    s.scale = static_cast<float>(std::pow(c.query_pre_attn_scalar, -0.5));
    // No attention soft-capping: transformers' Gemma3Attention reads attn_logit_softcapping but
    // never passes it to the attention function (5.24), so the key changes nothing there.
    s.softcap = 0.0f;
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const bool sliding = c.layer_types[static_cast<size_t>(i)] == "sliding_attention";
      s.window = sliding && c.sliding_window ? *c.sliding_window : 0;
      s.rope = sliding ? 1 : 0;
      layers_.push_back(nn::load_decoder_layer(ws, "model.layers." + std::to_string(i), s));
    }
    norm_ = nn::RMSNorm::load(ws, "model.norm.weight", H, c.norm_eps, 1.0f);
    final_logit_softcap_ = static_cast<float>(c.final_logit_softcapping.value_or(0.0));
    finish(ws);
  }
};

std::unique_ptr<CausalLM> build(const ModelConfig& config, nn::Weights& weights,
                                const LoadOptions& opts) {
  return std::make_unique<Gemma3ForCausalLM>(config, weights, opts);
}

void bind_gguf(const gguf::GGUFFile& f, nlohmann::json& j) {
  j["model_type"] = "gemma3_text";
  gguf_llama_like(f, "gemma3", j);
  if (!f.get_float("gemma3.rope.freq_base")) j["rope_theta"] = 1e6;  // the converter's default
  gguf_rope_scaling(f, "gemma3", j);                                 // global layers only
  j["rope_local_base_freq"] = f.get_float("gemma3.rope.freq_base_swa").value_or(10000.0);
  if (auto w = f.get_int("gemma3.attention.sliding_window")) j["sliding_window"] = *w;
  if (auto p = f.get_int("gemma3.attention.sliding_window_pattern"))
    j["sliding_window_pattern"] = *p;
  j["hidden_activation"] = "gelu_pytorch_tanh";
  // llama.cpp: 1/sqrt(head_dim), except 1/sqrt(hidden/heads) for the 27B (62 layers).
  const int64_t layers = j["num_hidden_layers"].get<int64_t>();
  j["query_pre_attn_scalar"] =
      layers == 62 ? j["hidden_size"].get<int64_t>() / j["num_attention_heads"].get<int64_t>()
                   : j.value("head_dim", int64_t{256});
}

// Not permuted (NEOX RoPE); every norm (q/k norms included) stored as 1 + w.
GgufTensorTable tensors(const gguf::GGUFFile& f, const ModelConfig& c) {
  (void)f;
  (void)c;
  using K = GgufTensorKind;
  GgufTensorTable t = gguf_gemma_sandwich_tensors();
  t.layer.push_back({"attn_q_norm.weight", "self_attn.q_norm.weight", K::MinusOne});
  t.layer.push_back({"attn_k_norm.weight", "self_attn.k_norm.weight", K::MinusOne});
  return t;
}

}  // namespace

const ArchSpec& gemma3_arch() {
  static const ArchSpec s{.model_type = "gemma3_text",
                          .aliases = {},
                          .hf_classes = {"Gemma3ForCausalLM"},
                          .bind_config = &bind_gemma3,
                          .build = &build,
                          .gguf_arch = "gemma3",
                          .bind_gguf = &bind_gguf,
                          .gguf_tensors = &tensors,
                          .tokenizer_pre = ""};  // SentencePiece
  return s;
}

}  // namespace ohm::models
