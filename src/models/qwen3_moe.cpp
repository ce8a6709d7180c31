// Qwen3-MoE. Mirrors transformers models/qwen3_moe/modeling_qwen3_moe.py.
//
// Differences from Qwen3 (q_norm / k_norm, head_dim its own key): the MLP of layer i is a sparse
// MoE block unless i is in mlp_only_layers or (i + 1) % decoder_sparse_step != 0 (those keep a
// dense SwiGLU MLP of intermediate_size). The block: router `mlp.gate` [E, hidden], softmax over
// experts in f32, top-k (num_experts_per_tok), renormalised to sum 1 only if norm_topk_prob, each
// expert a SwiGLU of moe_intermediate_size, stored one by one as
// mlp.experts.{e}.{gate,up,down}_proj.weight (the published layout, and what transformers 5's
// save_pretrained writes from its fused parameters). The sliding window, when
// use_sliding_window, covers every layer.
// GGUF: general.architecture "qwen3moe", ffn_gate_inp (router), ffn_{gate,up,down}_exps stacked
// [E, rows, cols], qwen3moe.expert_count / expert_used_count / expert_feed_forward_length.
// llama.cpp always renormalises the top-k weights for qwen3moe (norm_topk_prob true).
#include <algorithm>

#include "builders.h"

namespace ohm::models {
namespace {

struct Qwen3MoeConfig : DecoderConfig {
  bool use_sliding_window = false;
  int64_t num_experts = 128;
  int64_t num_experts_per_tok = 8;
  int64_t moe_intermediate_size = 768;
  int64_t decoder_sparse_step = 1;
  bool norm_topk_prob = false;
  std::vector<int64_t> mlp_only_layers;

  bool sparse(int64_t i) const {  // Qwen3MoeDecoderLayer.__init__
    return std::find(mlp_only_layers.begin(), mlp_only_layers.end(), i) == mlp_only_layers.end() &&
           num_experts > 0 && (i + 1) % decoder_sparse_step == 0;
  }
  void summarize_extra(std::vector<std::pair<std::string, std::string>>& s) const override {
    s.emplace_back("num_experts", std::to_string(num_experts));
    s.emplace_back("num_experts_per_tok", std::to_string(num_experts_per_tok));
    s.emplace_back("moe_intermediate_size", std::to_string(moe_intermediate_size));
    s.emplace_back("norm_topk_prob", norm_topk_prob ? "true" : "false");
    int64_t n = 0;
    for (int64_t i = 0; i < num_hidden_layers; ++i) n += sparse(i) ? 1 : 0;
    s.emplace_back("moe_layers", std::to_string(n) + " of " + std::to_string(num_hidden_layers));
  }
};

// Defaults from transformers configuration_qwen3_moe.py.
std::shared_ptr<DecoderConfig> bind_qwen3_moe(const JsonReader& r) {
  auto c = std::make_shared<Qwen3MoeConfig>();
  bind_decoder(r,
               {151936, 2048, 6144, 24, 32, 4, 32768, 1e-6, 10000.0, "silu", false, std::nullopt,
                std::nullopt, std::nullopt, 4096},
               *c);
  if (!r.has("head_dim")) c->head_dim = c->hidden_size / c->num_attention_heads;
  c->use_sliding_window = r.get_bool("use_sliding_window", false);
  if (!c->use_sliding_window) c->sliding_window.reset();  // as Qwen3MoeConfig.__post_init__
  // config.json of the published models says num_experts; transformers 5 writes its
  // attribute_map name, num_local_experts.
  c->num_experts = r.opt_int("num_experts").value_or(r.get_int("num_local_experts", 128));
  c->num_experts_per_tok = r.get_int("num_experts_per_tok", 8);
  c->moe_intermediate_size = r.get_int("moe_intermediate_size", 768);
  c->decoder_sparse_step = r.get_int("decoder_sparse_step", 1);
  c->norm_topk_prob = r.get_bool("norm_topk_prob", false);
  c->mlp_only_layers = r.opt_int_list("mlp_only_layers").value_or(std::vector<int64_t>{});
  if (c->num_experts < 0) r.fail("num_experts", "must be >= 0");
  if (c->num_experts > 0 &&
      (c->num_experts_per_tok <= 0 || c->num_experts_per_tok > c->num_experts))
    r.fail("num_experts_per_tok", "must be in [1, num_experts]");
  if (c->moe_intermediate_size <= 0) r.fail("moe_intermediate_size", "must be > 0");
  if (c->decoder_sparse_step <= 0) r.fail("decoder_sparse_step", "must be > 0");
  // Before mlp_only_layers, whose range follows it (a bad count is num_hidden_layers' fault).
  if (c->num_hidden_layers <= 0)
    r.fail("num_hidden_layers", "must be > 0, got " + std::to_string(c->num_hidden_layers));
  for (int64_t i : c->mlp_only_layers)
    if (i < 0 || i >= c->num_hidden_layers)
      r.fail("mlp_only_layers", "layer " + std::to_string(i) + " outside [0, " +
                                    std::to_string(c->num_hidden_layers) + ")");
  return c;
}

class Qwen3MoeForCausalLM : public DecoderLM {
 public:
  Qwen3MoeForCausalLM(const ModelConfig& config, nn::Weights& ws, const LoadOptions& opts)
      : DecoderLM(config, opts) {
    const auto& c = this->config().get<Qwen3MoeConfig>();
    const int64_t H = c.hidden_size, I = c.moe_intermediate_size, E = c.num_experts;
    embed_ = ws.matrix("model.embed_tokens.weight", c.vocab_size, H);
    ropes_ = {nn::Rope(c)};
    nn::DecoderLayerSpec s = layer_spec(c);
    s.qk_norm = true;
    s.qkv_bias = s.o_bias = c.attention_bias ? nn::Bias::Required : nn::Bias::None;
    s.window = c.sliding_window.value_or(0);
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i);
      s.mlp = !c.sparse(i);
      nn::DecoderLayer L = nn::load_decoder_layer(ws, p, s);
      if (c.sparse(i)) {
        auto& moe = L.moe.emplace();
        moe.top_k = c.num_experts_per_tok;
        moe.normalize = c.norm_topk_prob;
        // The router stays as stored under quantize-on-load, as llama.cpp keeps ffn_gate_inp
        // F32: a quantized router flips near-tie expert choices.
        ws.set_quantize(std::nullopt);
        moe.router = nn::Linear::load(ws, p + ".mlp.gate", E, H);
        ws.set_quantize(opts.quantize);
        for (int64_t e = 0; e < E; ++e) {
          const std::string xp = p + ".mlp.experts." + std::to_string(e);
          nn::GatedMLP x;
          x.gate = nn::Linear::load(ws, xp + ".gate_proj", I, H);
          x.up = nn::Linear::load(ws, xp + ".up_proj", I, H);
          x.down = nn::Linear::load(ws, xp + ".down_proj", H, I);
          x.inter = I;
          x.act = s.act;
          moe.experts.push_back(std::move(x));
        }
      }
      layers_.push_back(std::move(L));
    }
    norm_ = nn::RMSNorm::load(ws, "model.norm.weight", H, c.norm_eps);
    finish(ws);
  }

  std::map<std::string, std::vector<int64_t>> router_counts() const override {
    std::map<std::string, std::vector<int64_t>> out;
    for (size_t l = 0; l < layers_.size(); ++l)
      if (layers_[l].moe)
        out["model.layers." + std::to_string(l) + ".mlp.gate"] = layers_[l].moe->counts;
    return out;
  }
};

std::unique_ptr<CausalLM> build(const ModelConfig& config, nn::Weights& weights,
                                const LoadOptions& opts) {
  return std::make_unique<Qwen3MoeForCausalLM>(config, weights, opts);
}

void bind_gguf(const gguf::GGUFFile& f, nlohmann::json& j) {
  j["model_type"] = "qwen3_moe";
  gguf_llama_like(f, "qwen3moe", j);
  gguf_rope_scaling(f, "qwen3moe", j);
  j["num_experts"] = gguf_need_int(f, "qwen3moe.expert_count");
  j["num_experts_per_tok"] = gguf_need_int(f, "qwen3moe.expert_used_count");
  j["moe_intermediate_size"] = gguf_need_int(f, "qwen3moe.expert_feed_forward_length");
  j["norm_topk_prob"] = f.get_bool("qwen3moe.expert_weights_norm").value_or(true);
  j["decoder_sparse_step"] = 1;  // llama.cpp's qwen3moe: every layer is MoE
}

GgufTensorTable tensors(const gguf::GGUFFile& f, const ModelConfig& c) {
  (void)f;
  GgufTensorTable t = gguf_llama_tensors();
  t.layer.push_back({"attn_q_norm.weight", "self_attn.q_norm.weight"});
  t.layer.push_back({"attn_k_norm.weight", "self_attn.k_norm.weight"});
  t.layer.push_back({"ffn_gate_inp.weight", "mlp.gate.weight"});
  t.experts = {{"ffn_gate_exps.weight", "gate_proj.weight"},
               {"ffn_up_exps.weight", "up_proj.weight"},
               {"ffn_down_exps.weight", "down_proj.weight"}};
  t.expert_prefix = "mlp.experts.";
  t.n_experts = c.get<Qwen3MoeConfig>().num_experts;
  return t;
}

}  // namespace

const ArchSpec& qwen3_moe_arch() {
  static const ArchSpec s{.model_type = "qwen3_moe",
                          .aliases = {},
                          .hf_classes = {"Qwen3MoeForCausalLM"},
                          .bind_config = &bind_qwen3_moe,
                          .build = &build,
                          .gguf_arch = "qwen3moe",
                          .bind_gguf = &bind_gguf,
                          .gguf_tensors = &tensors,
                          .tokenizer_pre = "qwen2"};
  return s;
}

}  // namespace ohm::models
