// Private to src/models: what the architecture files share. The shared decoder model
// (DecoderLM), the config binder helpers and the GGUF helpers. Each architecture file defines
// its config, binder, builder and ArchSpec, and is listed once in registry.cpp.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ohm/formats/json_reader.h"
#include "ohm/models/arch.h"
#include "ohm/models/causal_lm.h"
#include "ohm/nn/decoder.h"

namespace ohm::models {

// lm_head: the embedding matrix when tie_word_embeddings and the checkpoint has no separate
// head (HF ties them), else the checkpoint's `name` [vocab, hidden].
inline nn::Linear lm_head_or_tied(nn::Weights& ws, const DecoderConfig& c, const Tensor& embed,
                                  const std::string& name = "lm_head.weight") {
  if (c.tie_word_embeddings && !ws.has(name)) return nn::Linear::from(embed);
  nn::Linear head = nn::Linear::from(ws.matrix(name, c.vocab_size, c.hidden_size));
  head.in_perm = ws.input_permutation(name);  // a GPTQ act-order lm_head (lm_head: true)
  return head;
}

// A decoder-only model made of nn::DecoderLayer blocks (LLaMA and the architectures that
// differ from it only inside the layer):
//   h = embed_tokens(ids) [* embed_scale]; per layer: DecoderLayer; out = norm(h)
// The architecture's constructor fills embed_, ropes_, layers_ and norm_, then calls finish().
class DecoderLM : public CausalLM {
 protected:
  DecoderLM(const ModelConfig& config, const LoadOptions& opts) : CausalLM(config, opts) {}

  // The per-layer spec every LLaMA-like layer starts from (sizes, eps, activation).
  static nn::DecoderLayerSpec layer_spec(const DecoderConfig& c);
  // Sets the cache window (when every layer has the same one) and the lm_head.
  void finish(nn::Weights& ws);

  void forward_hidden(const Step& s, nn::KVCache& cache, float* out) override;

 public:
  int64_t layerwise_layers() const override { return static_cast<int64_t>(layers_.size()); }
  void embed_layers(std::span<const int64_t> ids, float* hidden) override;
  void run_layer(int64_t layer, int64_t T, float* hidden) override;
  bool rope_base_at(int64_t seq_len) const override {
    for (const auto& r : ropes_)
      if (!r.base_at(seq_len)) return false;
    return true;
  }

 protected:
  Tensor embed_;                 // [vocab, H]
  float embed_scale_ = 0.0f;     // Gemma: sqrt(hidden_size) in the activation dtype (0: none)
  std::vector<nn::Rope> ropes_;  // layer.rope indexes this (one table for most models)
  std::vector<nn::DecoderLayer> layers_;
  nn::RMSNorm norm_;

 private:
  nn::Buffer h_, x_, y_;
  std::vector<nn::Buffer> cos_, sin_;
};

// hidden_size must be a multiple of num_attention_heads even when head_dim is explicit (the
// validate_architecture of transformers 5's Llama, Gemma 2 and Gemma 3 configs; ConfigError
// naming num_attention_heads). (decoder_lm.cpp)
void require_heads_divide_hidden(const JsonReader& r, const DecoderConfig& c);
// config.layer_types ("full_attention" / "sliding_attention" per layer) as read, else the
// architecture's default (`sliding(i)` for layer i); ConfigError naming the key when the list has
// the wrong length or an unknown type. (decoder_lm.cpp)
std::vector<std::string> bind_layer_types(const JsonReader& r, int64_t n_layers,
                                          const std::function<bool(int64_t)>& sliding);

// ---- GGUF helpers (gguf_loader.cpp) ---------------------------------------------------------

int64_t gguf_need_int(const gguf::GGUFFile& f, const std::string& key);
// Rows of token_embd, else {arch}.vocab_size, else the token list's length.
int64_t gguf_vocab_size(const gguf::GGUFFile& f, const std::string& arch);
// The fields shared by the LLaMA-like RMSNorm decoders (HF names) from `{arch}.*`.
void gguf_llama_like(const gguf::GGUFFile& f, const std::string& arch, nlohmann::json& j);
// `{arch}.rope.scaling.*` -> rope_scaling (when the type is not "none").
void gguf_rope_scaling(const gguf::GGUFFile& f, const std::string& arch, nlohmann::json& j);
// Gemma 2/3's names: LLaMA's with every norm stored as 1 + w and the sandwich norms
// (ffn_norm is pre_feedforward_layernorm; post_attention_norm, post_ffw_norm).
GgufTensorTable gguf_gemma_sandwich_tensors();
// The LLaMA tensor names (attn_q..ffn_down), `qk` the kind of attn_q/attn_k.
GgufTensorTable gguf_llama_tensors(GgufTensorKind qk = GgufTensorKind::Plain,
                                   GgufTensorKind norm = GgufTensorKind::Plain);

}  // namespace ohm::models
