// LLaMA (LLaMA-1/2/3, CodeLlama, TinyLlama, Llama 3.2), Mistral and Qwen2.
// Mirrors transformers models/llama/modeling_llama.py (and mistral/, qwen2/).
//
//   h = embed_tokens(ids)
//   per layer:  h = h + o_proj(attn(rope(q_proj(rms(h))), rope(k_proj(..)), v_proj(..)))
//               h = h + down_proj(silu(gate_proj(rms(h))) * up_proj(rms(h)))
//   logits = lm_head(rms(h))
//
// Differences handled here:
//   - Mistral: sliding-window attention on every layer (config.sliding_window).
//   - Qwen2: q/k/v projections have biases; sliding window (if use_sliding_window) only on
//     layers >= max_window_layers.
//   - rope_scaling (linear, dynamic, llama3, yarn, longrope) lives in nn::Rope.
// GGUF: llama.cpp writes LLaMA, Mistral and Mixtral as general.architecture "llama" (q/k rows
// permuted into ggml's interleaved RoPE order), Qwen2 as "qwen2" (not permuted).
#include "builders.h"

namespace ohm::models {
namespace {

struct LlamaConfig : DecoderConfig {  // also CodeLlama, TinyLlama, LLaMA-2/3
  int64_t pretraining_tp = 1;
};
struct MistralConfig : DecoderConfig {};
struct Qwen2Config : DecoderConfig {
  bool use_sliding_window = false;
  int64_t max_window_layers = 28;
};

// Defaults from transformers configuration_{llama,mistral,qwen2}.py.
std::shared_ptr<DecoderConfig> bind_llama(const JsonReader& r) {
  auto c = std::make_shared<LlamaConfig>();
  bind_decoder(r,
               {32000, 4096, 11008, 32, 32, std::nullopt, 2048, 1e-6, 10000.0, "silu", false, 1, 2,
                std::nullopt, std::nullopt},
               *c);
  c->pretraining_tp = r.get_int("pretraining_tp", 1);
  require_heads_divide_hidden(r, *c);
  return c;
}

std::shared_ptr<DecoderConfig> bind_mistral(const JsonReader& r) {
  auto c = std::make_shared<MistralConfig>();
  bind_decoder(r,
               {32000, 4096, 14336, 32, 32, 8, 4096 * 32, 1e-6, 10000.0, "silu", false, 1, 2,
                std::nullopt, 4096},
               *c);
  return c;
}

std::shared_ptr<DecoderConfig> bind_qwen2(const JsonReader& r) {
  auto c = std::make_shared<Qwen2Config>();
  bind_decoder(r,
               {151936, 4096, 22016, 32, 32, 32, 32768, 1e-6, 10000.0, "silu", false, std::nullopt,
                std::nullopt, std::nullopt, 4096},
               *c);
  c->use_sliding_window = r.get_bool("use_sliding_window", false);
  c->max_window_layers = r.get_int("max_window_layers", 28);
  if (!c->use_sliding_window) c->sliding_window.reset();  // as Qwen2Config.__init__ does
  c->attention_bias = true;  // Qwen2 always has q/k/v biases (o_proj has none)
  return c;
}

class LlamaForCausalLM : public DecoderLM {
 public:
  LlamaForCausalLM(const ModelConfig& config, nn::Weights& ws, const LoadOptions& opts)
      : DecoderLM(config, opts) {
    const DecoderConfig& c = decoder_config();
    const auto* qwen2 = this->config().get_if<Qwen2Config>();
    embed_ = ws.matrix("model.embed_tokens.weight", c.vocab_size, c.hidden_size);
    ropes_ = {nn::Rope(c)};
    nn::DecoderLayerSpec s = layer_spec(c);
    // LLaMA GGUF: q/k as stored (interleaved RoPE pairs), no permuted copy (full rotary only).
    s.rope_interleaved = ropes_[0].rot_dim() == c.head_dim && ws.use_rope_interleaved_qk();
    s.qkv_bias = (qwen2 || c.attention_bias) ? nn::Bias::Required : nn::Bias::None;
    s.o_bias = (!qwen2 && c.attention_bias) ? nn::Bias::Required : nn::Bias::None;
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      s.window = 0;
      if (c.sliding_window && c.model_type == "mistral") s.window = *c.sliding_window;
      if (qwen2 && c.sliding_window && qwen2->use_sliding_window && i >= qwen2->max_window_layers)
        s.window = *c.sliding_window;
      layers_.push_back(nn::load_decoder_layer(ws, "model.layers." + std::to_string(i), s));
    }
    norm_ = nn::RMSNorm::load(ws, "model.norm.weight", c.hidden_size, c.norm_eps);
    finish(ws);
  }
};

std::unique_ptr<CausalLM> build(const ModelConfig& config, nn::Weights& weights,
                                const LoadOptions& opts) {
  return std::make_unique<LlamaForCausalLM>(config, weights, opts);
}

// general.architecture "llama": LLaMA, or Mistral (a sliding window) or Mixtral (experts).
void bind_gguf_llama(const gguf::GGUFFile& f, nlohmann::json& j) {
  const std::string p = "llama.";
  const auto window = f.get_int(p + "attention.sliding_window");
  const auto experts = f.get_int(p + "expert_count");
  j["model_type"] = experts && *experts > 0 ? "mixtral" : window ? "mistral" : "llama";
  gguf_llama_like(f, "llama", j);
  if (experts && *experts > 0) {
    j["num_local_experts"] = *experts;
    j["num_experts_per_tok"] = gguf_need_int(f, p + "expert_used_count");
  }
  gguf_rope_scaling(f, "llama", j);
  if (window) j["sliding_window"] = *window;
  if (f.find_tensor("blk.0.attn_q.bias")) j["attention_bias"] = true;
}

void bind_gguf_qwen2(const gguf::GGUFFile& f, nlohmann::json& j) {
  j["model_type"] = "qwen2";
  gguf_llama_like(f, "qwen2", j);
  gguf_rope_scaling(f, "qwen2", j);
  if (auto window = f.get_int("qwen2.attention.sliding_window")) j["sliding_window"] = *window;
}

GgufTensorTable llama_tensors(const gguf::GGUFFile& f, const ModelConfig& c) {
  (void)c;
  // llama.cpp's LLaMA converter permutes q/k rows; its Qwen2 converter does not.
  const auto arch = f.get_string("general.architecture");
  return gguf_llama_tensors(arch && *arch == "llama" ? GgufTensorKind::UnpermuteRows
                                                     : GgufTensorKind::Plain);
}

}  // namespace

const ArchSpec& llama_arch() {
  static const ArchSpec s{.model_type = "llama",
                          .aliases = {},
                          .hf_classes = {"LlamaForCausalLM"},
                          .bind_config = &bind_llama,
                          .build = &build,
                          .gguf_arch = "llama",
                          .bind_gguf = &bind_gguf_llama,
                          .gguf_tensors = &llama_tensors,
                          .tokenizer_pre = ""};  // SentencePiece (Llama 3: "llama-bpe")
  return s;
}

const ArchSpec& mistral_arch() {
  static const ArchSpec s{.model_type = "mistral",
                          .aliases = {},
                          .hf_classes = {"MistralForCausalLM"},
                          .bind_config = &bind_mistral,
                          .build = &build,
                          .gguf_arch = "",  // written as "llama"
                          .bind_gguf = nullptr,
                          .gguf_tensors = &llama_tensors,
                          .tokenizer_pre = ""};
  return s;
}

const ArchSpec& qwen2_arch() {
  static const ArchSpec s{.model_type = "qwen2",
                          .aliases = {},
                          .hf_classes = {"Qwen2ForCausalLM"},
                          .bind_config = &bind_qwen2,
                          .build = &build,
                          .gguf_arch = "qwen2",
                          .bind_gguf = &bind_gguf_qwen2,
                          .gguf_tensors = &llama_tensors,
                          .tokenizer_pre = "qwen2"};
  return s;
}

}  // namespace ohm::models
