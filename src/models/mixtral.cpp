// Mixtral (sparse mixture of experts). Mirrors transformers models/mixtral/modeling_mixtral.py.
//
// Differences from LLaMA/Mistral: the MLP is a SparseMoE block: router `gate` [E, hidden],
// softmax over experts in f32, top-k (num_experts_per_tok), weights renormalised to sum 1,
// each expert a SwiGLU (w1 = gate, w3 = up, w2 = down). Checkpoints store experts one by one
// (block_sparse_moe.experts.{e}.w{1,2,3}.weight, the published layout) or, when written by
// transformers 5, fused as mlp.experts.gate_up_proj [E, 2I, H] / down_proj [E, H, I].
#include <cmath>

#include "builders.h"

namespace ohm::models {
namespace {

struct MixtralConfig : DecoderConfig {
  int64_t num_local_experts = 8;
  int64_t num_experts_per_tok = 2;
  double router_aux_loss_coef = 0.001;
  double router_jitter_noise = 0.0;
  void summarize_extra(std::vector<std::pair<std::string, std::string>>& s) const override {
    s.emplace_back("num_local_experts", std::to_string(num_local_experts));
    s.emplace_back("num_experts_per_tok", std::to_string(num_experts_per_tok));
  }
};

// Defaults from transformers configuration_mixtral.py.
std::shared_ptr<DecoderConfig> bind_mixtral(const JsonReader& r) {
  auto c = std::make_shared<MixtralConfig>();
  bind_decoder(r,
               {32000, 4096, 14336, 32, 32, 8, 4096 * 32, 1e-5, 1e6, "silu", false, 1, 2,
                std::nullopt, std::nullopt},
               *c);
  c->num_local_experts = r.get_int("num_local_experts", 8);
  c->num_experts_per_tok = r.get_int("num_experts_per_tok", 2);
  c->router_aux_loss_coef = r.get_double("router_aux_loss_coef", 0.001);
  c->router_jitter_noise = r.get_double("router_jitter_noise", 0.0);
  if (c->num_local_experts <= 0) r.fail("num_local_experts", "must be > 0");
  if (c->num_experts_per_tok <= 0 || c->num_experts_per_tok > c->num_local_experts)
    r.fail("num_experts_per_tok", "must be in [1, num_local_experts]");
  return c;
}

// Expert e of a fused 3-D weight [E, rows, cols] as a 2-D view (zero copy).
Tensor expert_slice(const Tensor& t, int64_t e) {
  const int64_t rows = t.dim(1), cols = t.dim(2);
  const uint64_t bytes = *row_bytes(t.dtype(), static_cast<uint64_t>(cols)) * rows;
  return Tensor::view(t.storage(), t.dtype(), {rows, cols}, t.offset() + e * bytes);
}

class MixtralForCausalLM : public DecoderLM {
 public:
  MixtralForCausalLM(const ModelConfig& config, nn::Weights& ws, const LoadOptions& opts)
      : DecoderLM(config, opts) {
    const auto& c = this->config().get<MixtralConfig>();
    const int64_t H = c.hidden_size, I = c.intermediate_size, E = c.num_local_experts;
    embed_ = ws.matrix("model.embed_tokens.weight", c.vocab_size, H);
    ropes_ = {nn::Rope(c)};
    nn::DecoderLayerSpec s = layer_spec(c);
    // LLaMA GGUF: q/k as stored (interleaved RoPE pairs), no permuted copy (full rotary only).
    s.rope_interleaved = ropes_[0].rot_dim() == c.head_dim && ws.use_rope_interleaved_qk();
    s.window = c.sliding_window.value_or(0);
    s.mlp = false;
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i);
      nn::DecoderLayer L = nn::load_decoder_layer(ws, p, s);
      auto& moe = L.moe.emplace();
      moe.top_k = c.num_experts_per_tok;
      const bool fused = ws.has(p + ".mlp.experts.gate_up_proj");
      const std::string mp = fused ? p + ".mlp" : p + ".block_sparse_moe";
      moe.router = nn::Linear::load(ws, mp + ".gate", E, H);
      if (fused) {
        // [E, 2I, H] and [E, H, I] (transformers 5 layout)
        const Tensor gu = ws.tensor(mp + ".experts.gate_up_proj", {E, 2 * I, H});
        const Tensor dn = ws.tensor(mp + ".experts.down_proj", {E, H, I});
        for (int64_t e = 0; e < E; ++e) {
          nn::GatedMLP x;
          x.fused = true;
          x.gate_up = nn::Linear::from(expert_slice(gu, e));
          x.down = nn::Linear::from(expert_slice(dn, e));
          x.inter = I;
          x.act = s.act;
          moe.experts.push_back(std::move(x));
        }
      } else {
        for (int64_t e = 0; e < E; ++e) {
          const std::string ep = mp + ".experts." + std::to_string(e);
          nn::GatedMLP x;
          x.gate = nn::Linear::load(ws, ep + ".w1", I, H);
          x.down = nn::Linear::load(ws, ep + ".w2", H, I);
          x.up = nn::Linear::load(ws, ep + ".w3", I, H);
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
      out["model.layers." + std::to_string(l) + ".mlp.gate"] = layers_[l].moe->counts;
    return out;
  }
};

std::unique_ptr<CausalLM> build(const ModelConfig& config, nn::Weights& weights,
                                const LoadOptions& opts) {
  return std::make_unique<MixtralForCausalLM>(config, weights, opts);
}

// Written by llama.cpp as general.architecture "llama" (llama.cpp's bind_gguf_llama picks
// mixtral from llama.expert_count): LLaMA's names, the router F32, and the experts stacked
// [E, rows, cols] (w1 = gate, w2 = down, w3 = up).
GgufTensorTable mixtral_tensors(const gguf::GGUFFile& f, const ModelConfig& c) {
  const auto arch = f.get_string("general.architecture");
  GgufTensorTable t = gguf_llama_tensors(arch && *arch == "llama" ? GgufTensorKind::UnpermuteRows
                                                                  : GgufTensorKind::Plain);
  t.layer.push_back({"ffn_gate_inp.weight", "block_sparse_moe.gate.weight"});
  t.experts = {{"ffn_gate_exps.weight", "w1.weight"},
               {"ffn_down_exps.weight", "w2.weight"},
               {"ffn_up_exps.weight", "w3.weight"}};
  t.expert_prefix = "block_sparse_moe.experts.";
  t.n_experts = c.get<MixtralConfig>().num_local_experts;
  return t;
}

}  // namespace

const ArchSpec& mixtral_arch() {
  static const ArchSpec s{.model_type = "mixtral",
                          .aliases = {},
                          .hf_classes = {"MixtralForCausalLM"},
                          .bind_config = &bind_mixtral,
                          .build = &build,
                          .gguf_arch = "",  // written as "llama"
                          .bind_gguf = nullptr,
                          .gguf_tensors = &mixtral_tensors,
                          .tokenizer_pre = ""};
  return s;
}

}  // namespace ohm::models
