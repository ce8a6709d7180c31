// GPT-2. Mirrors transformers models/gpt2/modeling_gpt2.py (eager attention).
//
// Differences from LLaMA: learned absolute positions (wpe) added to the token embeddings, no
// RoPE; pre-LayerNorm blocks with biases; Conv1D weights stored [in, out] (transposed here at
// load into nn.Linear's [out, in]); fused c_attn = q | k | v; gelu_new MLP; attention scaled
// by 1/sqrt(head_dim) (and 1/(layer+1) with scale_attn_by_inverse_layer_idx); lm_head tied to
// wte.
#include <cmath>

#include "builders.h"
#include "ohm/core/error.h"

namespace ohm::models {
namespace {

struct GPT2Config : DecoderConfig {
  int64_t n_positions = 1024;
  std::string activation_function = "gelu_new";
  bool scale_attn_weights = true;
  bool scale_attn_by_inverse_layer_idx = false;
  bool reorder_and_upcast_attn = false;
};

// Defaults from transformers configuration_gpt2.py (GPT-2's own key names).
std::shared_ptr<DecoderConfig> bind_gpt2(const JsonReader& r) {
  auto cp = std::make_shared<GPT2Config>();
  GPT2Config& c = *cp;
  c.architectures = r.opt_string_list("architectures").value_or(std::vector<std::string>{});
  c.vocab_size = r.get_int("vocab_size", 50257);
  c.n_positions = r.get_int("n_positions", 1024);
  c.max_position_embeddings = c.n_positions;
  c.hidden_size = r.get_int("n_embd", 768);
  c.num_hidden_layers = r.get_int("n_layer", 12);
  c.num_attention_heads = r.get_int("n_head", 12);
  c.num_key_value_heads = c.num_attention_heads;
  c.intermediate_size = r.opt_int("n_inner").value_or(4 * c.hidden_size);
  c.activation_function = r.get_string("activation_function", "gelu_new");
  c.hidden_act = c.activation_function;
  c.norm_eps = r.get_double("layer_norm_epsilon", 1e-5);
  c.scale_attn_weights = r.get_bool("scale_attn_weights", true);
  c.scale_attn_by_inverse_layer_idx = r.get_bool("scale_attn_by_inverse_layer_idx", false);
  c.reorder_and_upcast_attn = r.get_bool("reorder_and_upcast_attn", false);
  c.tie_word_embeddings = r.get_bool("tie_word_embeddings", true);
  c.attention_bias = true;
  c.mlp_bias = true;
  c.bos_token_id = r.has("bos_token_id") ? r.opt_int("bos_token_id") : 50256;
  c.pad_token_id = r.opt_int("pad_token_id");
  c.eos_token_id = r.opt_int_list("eos_token_id").value_or(std::vector<int64_t>{50256});
  c.torch_dtype = r.opt_string("torch_dtype").value_or(r.get_string("dtype", ""));
  c.head_dim = c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0;
  c.rope_theta = 1.0;             // unused: learned positions
  c.partial_rotary_factor = 0.0;  // no rotary embedding
  // Checked under GPT-2's key names here (validate_decoder names the canonical ones, which a
  // GPT-2 config.json does not have).
  const std::pair<const char*, int64_t> sizes[] = {{"n_embd", c.hidden_size},
                                                   {"n_layer", c.num_hidden_layers},
                                                   {"n_head", c.num_attention_heads},
                                                   {"n_inner", c.intermediate_size},
                                                   {"n_positions", c.n_positions}};
  for (const auto& [key, v] : sizes)
    if (v <= 0) r.fail(key, "must be > 0, got " + std::to_string(v));
  if (c.hidden_size % c.num_attention_heads != 0)
    r.fail("n_head", "n_embd " + std::to_string(c.hidden_size) + " is not divisible by n_head " +
                         std::to_string(c.num_attention_heads));
  return cp;
}

struct GPT2Block {
  nn::LayerNorm ln_1, ln_2;
  nn::Linear c_attn, c_proj;
  nn::MLP mlp;
  nn::AttentionSpec spec;
};

class GPT2LMHeadModel : public CausalLM {
 public:
  GPT2LMHeadModel(const ModelConfig& config, nn::Weights& ws, const LoadOptions& opts)
      : CausalLM(config, opts), c_(this->config().get<GPT2Config>()) {
    const int64_t H = c_.hidden_size, nh = c_.num_attention_heads, hd = c_.head_dim,
                  I = c_.intermediate_size;
    wte_ = ws.matrix("transformer.wte.weight", c_.vocab_size, H);
    wpe_ = ws.matrix("transformer.wpe.weight", c_.n_positions, H);
    const auto act = kernels::activation_from_name(c_.activation_function);
    for (int64_t i = 0; i < c_.num_hidden_layers; ++i) {
      const std::string p = "transformer.h." + std::to_string(i);
      GPT2Block b;
      b.ln_1 = nn::LayerNorm::load(ws, p + ".ln_1", H, c_.norm_eps);
      b.ln_2 = nn::LayerNorm::load(ws, p + ".ln_2", H, c_.norm_eps);
      b.c_attn = nn::Linear::from(ws.matrix_transposed(p + ".attn.c_attn.weight", 3 * H, H),
                                  ws.vector(p + ".attn.c_attn.bias", 3 * H));
      b.c_proj = nn::Linear::from(ws.matrix_transposed(p + ".attn.c_proj.weight", H, H),
                                  ws.vector(p + ".attn.c_proj.bias", H));
      b.mlp.fc = nn::Linear::from(ws.matrix_transposed(p + ".mlp.c_fc.weight", I, H),
                                  ws.vector(p + ".mlp.c_fc.bias", I));
      b.mlp.proj = nn::Linear::from(ws.matrix_transposed(p + ".mlp.c_proj.weight", H, I),
                                    ws.vector(p + ".mlp.c_proj.bias", H));
      b.mlp.act = act;
      double scale = c_.scale_attn_weights ? 1.0 / std::sqrt(static_cast<double>(hd)) : 1.0;
      if (c_.scale_attn_by_inverse_layer_idx) scale /= static_cast<double>(i + 1);
      b.spec = {nh, nh, hd, static_cast<float>(scale), 0, nullptr};
      blocks_.push_back(std::move(b));
    }
    ln_f_ = nn::LayerNorm::load(ws, "transformer.ln_f", H, c_.norm_eps);
    lm_head_ = lm_head_or_tied(ws, c_, wte_);
  }

 protected:
  void forward_hidden(const Step& s, nn::KVCache& cache, float* out) override {
    const int64_t M = s.B * s.T, H = c_.hidden_size;
    const backends::Context& ctx = context();
    float* h = h_.get(M * H);
    float* x = x_.get(M * H);
    float* y = y_.get(M * H);
    float* qkv = qkv_.get(M * 3 * H);
    float* a = a_.get(M * H);
    ctx.embedding(kernels::matrix_view(wte_), s.ids, M, h);
    ctx.add_rows(kernels::matrix_view(wpe_), s.pos, M, h);  // + wpe[pos]; checks < n_positions
    for (size_t l = 0; l < blocks_.size(); ++l) {
      GPT2Block& b = blocks_[l];
      b.ln_1.forward(h, M, x, ctx);
      b.c_attn.forward(x, M, qkv, ctx);  // [M, q | k | v]
      nn::attend(b.spec, qkv, 3 * H, qkv + H, qkv + 2 * H, 3 * H, cache, l, s.B, s.T, a, ctx);
      b.c_proj.forward(a, M, y, ctx);
      ctx.add(h, y, h, M * H);
      b.ln_2.forward(h, M, x, ctx);
      b.mlp.forward(x, M, y, ctx);
      ctx.add(h, y, h, M * H);
    }
    ln_f_.forward(h, M, out, ctx);
  }

 private:
  const GPT2Config& c_;
  Tensor wte_, wpe_;
  std::vector<GPT2Block> blocks_;
  nn::LayerNorm ln_f_;
  nn::Buffer h_, x_, y_, qkv_, a_;
};

std::unique_ptr<CausalLM> build(const ModelConfig& config, nn::Weights& weights,
                                const LoadOptions& opts) {
  return std::make_unique<GPT2LMHeadModel>(config, weights, opts);
}

void bind_gguf_gpt2(const gguf::GGUFFile& f, nlohmann::json& j) {
  const std::string p = "gpt2.";
  j["model_type"] = "gpt2";
  j["vocab_size"] = gguf_vocab_size(f, "gpt2");
  j["n_embd"] = gguf_need_int(f, p + "embedding_length");
  j["n_layer"] = gguf_need_int(f, p + "block_count");
  j["n_head"] = gguf_need_int(f, p + "attention.head_count");
  j["n_positions"] = gguf_need_int(f, p + "context_length");
  if (auto ff = f.get_int(p + "feed_forward_length")) j["n_inner"] = *ff;
  if (auto e = f.get_float(p + "attention.layer_norm_epsilon")) j["layer_norm_epsilon"] = *e;
  j["tie_word_embeddings"] = true;  // the converter writes output.weight as a copy of wte
}

// Conv1D weights stored [out, in] by the converter (Transposed: handed to the model as is).
GgufTensorTable gpt2_tensors(const gguf::GGUFFile& f, const ModelConfig& c) {
  (void)f;
  (void)c;
  using K = GgufTensorKind;
  GgufTensorTable t;
  t.global = {{"token_embd.weight", "transformer.wte.weight"},
              {"position_embd.weight", "transformer.wpe.weight"},
              {"output_norm.weight", "transformer.ln_f.weight"},
              {"output_norm.bias", "transformer.ln_f.bias"},
              {"output.weight", "lm_head.weight"}};
  t.layer = {{"attn_norm.weight", "ln_1.weight"},
             {"attn_norm.bias", "ln_1.bias"},
             {"ffn_norm.weight", "ln_2.weight"},
             {"ffn_norm.bias", "ln_2.bias"},
             {"attn_qkv.weight", "attn.c_attn.weight", K::Transposed},
             {"attn_qkv.bias", "attn.c_attn.bias"},
             {"attn_output.weight", "attn.c_proj.weight", K::Transposed},
             {"attn_output.bias", "attn.c_proj.bias"},
             {"ffn_up.weight", "mlp.c_fc.weight", K::Transposed},
             {"ffn_up.bias", "mlp.c_fc.bias"},
             {"ffn_down.weight", "mlp.c_proj.weight", K::Transposed},
             {"ffn_down.bias", "mlp.c_proj.bias"}};
  t.layer_prefix = "transformer.h.";
  return t;
}

}  // namespace

const ArchSpec& gpt2_arch() {
  static const ArchSpec s{.model_type = "gpt2",
                          .aliases = {},
                          .hf_classes = {"GPT2LMHeadModel"},
                          .bind_config = &bind_gpt2,
                          .build = &build,
                          .gguf_arch = "gpt2",
                          .bind_gguf = &bind_gguf_gpt2,
                          .gguf_tensors = &gpt2_tensors,
                          .tokenizer_pre = "gpt-2"};
  return s;
}

}  // namespace ohm::models
