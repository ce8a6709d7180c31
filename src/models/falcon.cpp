// Falcon. Mirrors transformers models/falcon/modeling_falcon.py (eager attention).
//
// Two layouts of the fused query_key_value projection:
//   - Falcon-7B (multi_query, !new_decoder_architecture): [n_head + 2, head_dim] per token:
//     all query heads, then ONE key head and ONE value head (config.num_kv_heads is ignored);
//   - Falcon-40B/180B (new_decoder_architecture): [n_kv, n_head/n_kv + 2, head_dim]: per KV
//     group its query heads, then that group's key and value;
//   - (!multi_query, old layout: [n_head, 3, head_dim].)
// Blocks use LayerNorm with bias and GELU (erf) MLPs. With parallel_attn the attention and the
// MLP read the same normed input (or ln_attn / ln_mlp when num_ln_in_parallel_attn == 2) and
// out = x + (mlp + attn). lm_head is tied to word_embeddings. ALiBi replaces RoPE when
// config.alibi (no fixture exercises ALiBi yet).
#include <cmath>
#include <cstring>

#include "builders.h"
#include "ohm/core/error.h"

namespace ohm::models {
namespace {

struct FalconConfig : DecoderConfig {
  bool new_decoder_architecture = false;
  bool multi_query = true;
  bool parallel_attn = true;
  bool alibi = false;
  bool bias = false;
  std::optional<int64_t> num_ln_in_parallel_attn;
  int64_t ffn_hidden_size = 0;
  void summarize_extra(std::vector<std::pair<std::string, std::string>>& s) const override {
    s.emplace_back("new_decoder_architecture", new_decoder_architecture ? "true" : "false");
    s.emplace_back("multi_query", multi_query ? "true" : "false");
    s.emplace_back("parallel_attn", parallel_attn ? "true" : "false");
    s.emplace_back("alibi", alibi ? "true" : "false");
    if (num_ln_in_parallel_attn)
      s.emplace_back("num_ln_in_parallel_attn", std::to_string(*num_ln_in_parallel_attn));
  }
};

// Defaults from transformers configuration_falcon.py. Old Falcon configs (model_type
// RefinedWeb/RefinedWebModel) use n_head/n_layer/n_head_kv.
std::shared_ptr<DecoderConfig> bind_falcon(const JsonReader& r) {
  auto cp = std::make_shared<FalconConfig>();
  FalconConfig& c = *cp;
  c.architectures = r.opt_string_list("architectures").value_or(std::vector<std::string>{});
  c.vocab_size = r.get_int("vocab_size", 65024);
  c.hidden_size = r.get_int("hidden_size", 4544);
  c.num_hidden_layers = r.opt_int("num_hidden_layers").value_or(r.get_int("n_layer", 32));
  c.num_attention_heads = r.opt_int("num_attention_heads").value_or(r.get_int("n_head", 71));
  c.norm_eps = r.get_double("layer_norm_epsilon", 1e-5);
  c.new_decoder_architecture =
      r.get_bool("new_decoder_architecture", r.raw().value("model_type", "") == "RefinedWeb");
  c.multi_query = r.get_bool("multi_query", true);
  c.parallel_attn = r.get_bool("parallel_attn", true);
  c.alibi = r.get_bool("alibi", false);
  c.bias = r.get_bool("bias", false);
  c.num_ln_in_parallel_attn = r.opt_int("num_ln_in_parallel_attn");
  const int64_t n_kv =
      r.opt_int("num_kv_heads").value_or(r.get_int("n_head_kv", c.num_attention_heads));
  // FalconAttention: kv heads = num_kv_heads if new_decoder_architecture or not multi_query,
  // else 1 (multi-query).
  c.num_key_value_heads = (c.new_decoder_architecture || !c.multi_query) ? n_kv : 1;
  c.max_position_embeddings = r.get_int("max_position_embeddings", 2048);
  bind_rope(r, 10000.0, c);
  c.hidden_act = r.get_string("activation", "gelu");
  c.ffn_hidden_size = r.get_int("ffn_hidden_size", 4 * c.hidden_size);
  c.intermediate_size = c.ffn_hidden_size;
  c.tie_word_embeddings = r.get_bool("tie_word_embeddings", true);
  c.attention_bias = c.bias;
  c.mlp_bias = c.bias;
  c.bos_token_id = r.has("bos_token_id") ? r.opt_int("bos_token_id") : 11;
  c.pad_token_id = r.opt_int("pad_token_id");
  c.eos_token_id = r.opt_int_list("eos_token_id").value_or(std::vector<int64_t>{11});
  c.torch_dtype = r.opt_string("torch_dtype").value_or(r.get_string("dtype", ""));
  c.head_dim = c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0;
  return cp;
}

struct FalconLayer {
  nn::LayerNorm ln_attn, ln_mlp;           // ln_attn is input_layernorm when there is only one
  nn::LayerNorm post_attention_layernorm;  // sequential (!parallel_attn) blocks only
  bool two_ln = false;
  nn::Linear query_key_value, dense;
  nn::MLP mlp;
};

class FalconForCausalLM : public CausalLM {
 public:
  bool rope_base_at(int64_t seq_len) const override { return c_.alibi || rope_.base_at(seq_len); }
  FalconForCausalLM(const ModelConfig& config, nn::Weights& ws, const LoadOptions& opts)
      : CausalLM(config, opts), c_(this->config().get<FalconConfig>()) {
    const int64_t H = c_.hidden_size, nh = c_.num_attention_heads, hd = c_.head_dim;
    nkv_ = c_.num_key_value_heads;  // 1 for the multi-query layout (config.cpp derives it)
    embed_ = ws.matrix("transformer.word_embeddings.weight", c_.vocab_size, H);
    if (!c_.alibi)
      rope_ = nn::Rope(c_);
    else
      slopes_ = nn::alibi_slopes(nh);
    const int64_t qkv_out = c_.new_decoder_architecture ? (2 * nkv_ + nh) * hd
                            : c_.multi_query            ? H + 2 * hd
                                                        : 3 * H;
    const auto bias = c_.bias ? nn::Bias::Required : nn::Bias::None;
    const int64_t n_ln = c_.num_ln_in_parallel_attn.value_or(c_.new_decoder_architecture ? 2 : 1);
    const auto act = kernels::activation_from_name(c_.hidden_act);
    for (int64_t i = 0; i < c_.num_hidden_layers; ++i) {
      const std::string p = "transformer.h." + std::to_string(i);
      FalconLayer L;
      if (c_.new_decoder_architecture && n_ln == 2) {
        L.two_ln = true;
        L.ln_attn = nn::LayerNorm::load(ws, p + ".ln_attn", H, c_.norm_eps);
        L.ln_mlp = nn::LayerNorm::load(ws, p + ".ln_mlp", H, c_.norm_eps);
      } else {
        L.ln_attn = nn::LayerNorm::load(ws, p + ".input_layernorm", H, c_.norm_eps);
        if (!c_.parallel_attn)
          L.post_attention_layernorm =
              nn::LayerNorm::load(ws, p + ".post_attention_layernorm", H, c_.norm_eps);
      }
      L.query_key_value =
          nn::Linear::load(ws, p + ".self_attention.query_key_value", qkv_out, H, bias);
      L.dense = nn::Linear::load(ws, p + ".self_attention.dense", H, H, bias);
      L.mlp.fc = nn::Linear::load(ws, p + ".mlp.dense_h_to_4h", c_.ffn_hidden_size, H, bias);
      L.mlp.proj = nn::Linear::load(ws, p + ".mlp.dense_4h_to_h", H, c_.ffn_hidden_size, bias);
      L.mlp.act = act;
      layers_.push_back(std::move(L));
    }
    ln_f_ = nn::LayerNorm::load(ws, "transformer.ln_f", H, c_.norm_eps);
    lm_head_ = lm_head_or_tied(ws, c_, embed_);
    spec_ = {nh, nkv_,
             hd, static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd))),
             0,  slopes_.empty() ? nullptr : slopes_.data()};
  }

 protected:
  int64_t kv_dim() const override { return nkv_ * c_.head_dim; }

  void forward_hidden(const Step& s, nn::KVCache& cache, float* out) override {
    const int64_t M = s.B * s.T, H = c_.hidden_size, nh = c_.num_attention_heads, hd = c_.head_dim,
                  half = rope_.rot_dim() / 2;
    const int64_t qkv_out = layers_.empty() ? 0 : layers_[0].query_key_value.out_features();
    const backends::Context& ctx = context();
    float* h = h_.get(M * H);
    float* xa = xa_.get(M * H);  // normed input of attention
    float* xm = xm_.get(M * H);  // normed input of the MLP
    float* ya = ya_.get(M * H);  // attention output
    float* ym = ym_.get(M * H);  // MLP output
    float* qkv = qkv_.get(M * qkv_out);
    float* q = q_.get(M * nh * hd);
    float* k = k_.get(M * nkv_ * hd);
    float* v = v_.get(M * nkv_ * hd);
    float* a = a_.get(M * nh * hd);
    float* cos = cos_.get(M * half);
    float* sin = sin_.get(M * half);
    ctx.embedding(kernels::matrix_view(embed_), s.ids, M, h);
    if (!c_.alibi) rope_.tables(s.pos, M, cos, sin, s.rope_len);
    for (size_t l = 0; l < layers_.size(); ++l) {
      FalconLayer& L = layers_[l];
      L.ln_attn.forward(h, M, xa, ctx);
      if (L.two_ln) L.ln_mlp.forward(h, M, xm, ctx);
      // ---- attention
      L.query_key_value.forward(xa, M, qkv, ctx);  // [M, qkv_out]
      split_heads(ctx, qkv, qkv_out, M, q, k, v);  // q [M, nh*hd], k/v [M, nkv*hd]
      if (!c_.alibi) {
        ctx.rope(false, q, M, nh * hd, nh, hd, rope_.rot_dim(), cos, sin);
        ctx.rope(false, k, M, nkv_ * hd, nkv_, hd, rope_.rot_dim(), cos, sin);
      }
      nn::attend(spec_, q, nh * hd, k, v, nkv_ * hd, cache, l, s.B, s.T, a, ctx);
      L.dense.forward(a, M, ya, ctx);
      // ---- MLP and residual
      if (!c_.new_decoder_architecture && !c_.parallel_attn) {
        ctx.add(h, ya, h, M * H);  // residual = attn + residual
        L.post_attention_layernorm.forward(h, M, xm, ctx);
        L.mlp.forward(xm, M, ym, ctx);
        ctx.add(h, ym, h, M * H);
      } else {
        L.mlp.forward(L.two_ln ? xm : xa, M, ym, ctx);
        ctx.add(ym, ya, ym, M * H);  // mlp_output += attention_output
        ctx.add(h, ym, h, M * H);    // output = residual + mlp_output
      }
    }
    ln_f_.forward(h, M, out, ctx);
  }

 private:
  // Gathers q/k/v from the fused projection into contiguous per-token rows.
  // Gathers q/k/v from the fused projection [M, qkv_out] into contiguous per-token rows, as
  // strided copies over all M tokens at once (one per head group).
  void split_heads(const backends::Context& ctx, const float* qkv, int64_t qkv_out, int64_t M,
                   float* q, float* k, float* v) const {
    const int64_t nh = c_.num_attention_heads, hd = c_.head_dim, qd = nh * hd, kvd = nkv_ * hd;
    if (c_.new_decoder_architecture) {
      const int64_t qpg = nh / nkv_;  // query heads per KV group: [q x qpg, k, v] per group
      for (int64_t g = 0; g < nkv_; ++g) {
        const float* gr = qkv + g * (qpg + 2) * hd;
        ctx.copy_2d(q + g * qpg * hd, qd, gr, qkv_out, M, qpg * hd);
        ctx.copy_2d(k + g * hd, kvd, gr + qpg * hd, qkv_out, M, hd);
        ctx.copy_2d(v + g * hd, kvd, gr + (qpg + 1) * hd, qkv_out, M, hd);
      }
    } else if (c_.multi_query) {  // [q x nh, k, v]
      ctx.copy_2d(q, qd, qkv, qkv_out, M, qd);
      ctx.copy_2d(k, kvd, qkv + qd, qkv_out, M, hd);
      ctx.copy_2d(v, kvd, qkv + qd + hd, qkv_out, M, hd);
    } else {  // [q, k, v] per head
      for (int64_t i = 0; i < nh; ++i) {
        ctx.copy_2d(q + i * hd, qd, qkv + (3 * i) * hd, qkv_out, M, hd);
        ctx.copy_2d(k + i * hd, kvd, qkv + (3 * i + 1) * hd, qkv_out, M, hd);
        ctx.copy_2d(v + i * hd, kvd, qkv + (3 * i + 2) * hd, qkv_out, M, hd);
      }
    }
  }

  const FalconConfig& c_;
  int64_t nkv_ = 1;
  Tensor embed_;
  nn::Rope rope_;
  std::vector<float> slopes_;
  nn::AttentionSpec spec_;
  std::vector<FalconLayer> layers_;
  nn::LayerNorm ln_f_;
  nn::Buffer h_, xa_, xm_, ya_, ym_, qkv_, q_, k_, v_, a_, cos_, sin_;
};

std::unique_ptr<CausalLM> build(const ModelConfig& config, nn::Weights& weights,
                                const LoadOptions& opts) {
  return std::make_unique<FalconForCausalLM>(config, weights, opts);
}

// Falcon's query_key_value layout, told by the tensors (llama.cpp runs every falcon file with
// q | k | v rows): a second per-layer norm (attn_norm_2 = ln_attn) is Falcon-40B's
// new_decoder_architecture with two norms; a single KV head without it is Falcon-7B's
// multi-query layout; more KV heads with one norm is new_decoder_architecture with one norm.
void bind_gguf_falcon(const gguf::GGUFFile& f, nlohmann::json& j) {
  const std::string p = "falcon.";
  if (auto layout = f.get_string(p + "tensor_data_layout"); layout && *layout != "jploski")
    throw UnsupportedError(ErrorContext().file(f.path()).key(p + "tensor_data_layout"),
                           "unknown falcon tensor layout '" + *layout + "'");
  j["model_type"] = "falcon";
  j["vocab_size"] = gguf_vocab_size(f, "falcon");
  j["hidden_size"] = gguf_need_int(f, p + "embedding_length");
  j["num_hidden_layers"] = gguf_need_int(f, p + "block_count");
  const int64_t nh = gguf_need_int(f, p + "attention.head_count");
  const int64_t nkv = f.get_int(p + "attention.head_count_kv").value_or(1);
  j["num_attention_heads"] = nh;
  j["num_kv_heads"] = nkv;
  const bool two_norms = f.find_tensor("blk.0.attn_norm_2.weight") != nullptr;
  j["new_decoder_architecture"] = two_norms || nkv != 1;
  j["multi_query"] = true;  // read only without new_decoder_architecture (then nkv == 1)
  j["num_ln_in_parallel_attn"] = two_norms ? 2 : 1;
  j["parallel_attn"] = true;  // llama.cpp's falcon graph is parallel attention + MLP
  j["alibi"] = false;         // ... with RoPE
  j["bias"] = f.find_tensor("blk.0.attn_qkv.bias") != nullptr;
  j["max_position_embeddings"] = f.get_int(p + "context_length").value_or(2048);
  if (auto e = f.get_float(p + "attention.layer_norm_epsilon")) j["layer_norm_epsilon"] = *e;
  if (auto r = f.get_float(p + "rope.freq_base")) j["rope_theta"] = *r;
  // feed_forward_length is the converter's constant 4 * hidden_size, not the config's
  // ffn_hidden_size: take the width from the tensor.
  if (const auto* t = f.find_tensor("blk.0.ffn_up.weight"); t && t->dims.size() == 2)
    j["ffn_hidden_size"] = t->dims[1];
  j["tie_word_embeddings"] = f.find_tensor("output.weight") == nullptr;
}

GgufTensorTable falcon_tensors(const gguf::GGUFFile& f, const ModelConfig& config) {
  (void)f;
  const auto& fc = config.get<FalconConfig>();
  using K = GgufTensorKind;
  // q | k | v rows back to HF's per-KV-group order (identity for one group: Falcon-7B).
  const K qkv = fc.new_decoder_architecture && fc.num_key_value_heads > 1 ? K::FalconQKV : K::Plain;
  GgufTensorTable t;
  t.global = {{"token_embd.weight", "transformer.word_embeddings.weight"},
              {"output_norm.weight", "transformer.ln_f.weight"},
              {"output_norm.bias", "transformer.ln_f.bias"},
              {"output.weight", "lm_head.weight"}};
  t.layer = {{"attn_qkv.weight", "self_attention.query_key_value.weight", qkv, 1},
             {"attn_qkv.bias", "self_attention.query_key_value.bias", qkv, 1},
             {"attn_output.weight", "self_attention.dense.weight"},
             {"attn_output.bias", "self_attention.dense.bias"},
             {"ffn_up.weight", "mlp.dense_h_to_4h.weight"},
             {"ffn_up.bias", "mlp.dense_h_to_4h.bias"},
             {"ffn_down.weight", "mlp.dense_4h_to_h.weight"},
             {"ffn_down.bias", "mlp.dense_4h_to_h.bias"}};
  if (fc.new_decoder_architecture && fc.num_ln_in_parallel_attn.value_or(2) == 2) {
    // gguf-py: ln_attn -> attn_norm_2 (feeds QKV), ln_mlp -> attn_norm (feeds the MLP).
    t.layer.insert(t.layer.end(), {{"attn_norm_2.weight", "ln_attn.weight"},
                                   {"attn_norm_2.bias", "ln_attn.bias"},
                                   {"attn_norm.weight", "ln_mlp.weight"},
                                   {"attn_norm.bias", "ln_mlp.bias"}});
  } else {
    t.layer.insert(t.layer.end(), {{"attn_norm.weight", "input_layernorm.weight"},
                                   {"attn_norm.bias", "input_layernorm.bias"}});
  }
  t.layer_prefix = "transformer.h.";
  return t;
}

}  // namespace

const ArchSpec& falcon_arch() {
  static const ArchSpec s{.model_type = "falcon",
                          .aliases = {"RefinedWeb", "RefinedWebModel"},
                          .hf_classes = {"FalconForCausalLM", "RWForCausalLM"},
                          .bind_config = &bind_falcon,
                          .build = &build,
                          .gguf_arch = "falcon",
                          .bind_gguf = &bind_gguf_falcon,
                          .gguf_tensors = &falcon_tensors,
                          .tokenizer_pre = "falcon"};
  return s;
}

}  // namespace ohm::models
