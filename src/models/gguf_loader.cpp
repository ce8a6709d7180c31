// GGUF -> CausalLM: config from `{arch}.*` metadata, llama.cpp tensor names -> HF names, and
// the converter's layout changes undone (see include/ohm/models/gguf_loader.h).
#include "ohm/models/gguf_loader.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "ohm/core/error.h"
#include "ohm/quant/dequant.h"

namespace ohm {
namespace {

std::string arch_of(const gguf::GGUFFile& f) {
  auto a = f.get_string("general.architecture");
  if (!a)
    throw FormatError(ErrorContext().file(f.path()).key("general.architecture"),
                      "missing: not a model file");
  return *a;
}

// Rows of the token embedding (ggml ne1), the most reliable vocabulary size.
std::optional<int64_t> embd_rows(const gguf::GGUFFile& f) {
  if (const auto* t = f.find_tensor("token_embd.weight"); t && t->dims.size() == 2)
    return t->dims[1];
  return std::nullopt;
}

int64_t need_int(const gguf::GGUFFile& f, const std::string& key) {
  auto v = f.get_int(key);
  if (!v) throw FormatError(ErrorContext().file(f.path()).key(key), "missing metadata key");
  return *v;
}

void token_ids(const gguf::GGUFFile& f, nlohmann::json& j) {
  if (auto v = f.get_int("tokenizer.ggml.bos_token_id")) j["bos_token_id"] = *v;
  if (auto v = f.get_int("tokenizer.ggml.eos_token_id")) j["eos_token_id"] = *v;
  if (auto v = f.get_int("tokenizer.ggml.padding_token_id")) j["pad_token_id"] = *v;
}

int64_t vocab_size(const gguf::GGUFFile& f, const std::string& arch) {
  if (auto r = embd_rows(f)) return *r;
  if (auto v = f.get_int(arch + ".vocab_size")) return *v;
  if (const auto* t = f.find("tokenizer.ggml.tokens")) return static_cast<int64_t>(t->size());
  throw FormatError(ErrorContext().file(f.path()), "cannot tell the vocabulary size");
}

bool is_llama_family(const std::string& arch) {
  return arch == "llama" || arch == "qwen2";
}

// Falcon's query_key_value layout, told by the tensors (llama.cpp runs every falcon file with
// q | k | v rows): a second per-layer norm (attn_norm_2 = ln_attn) is Falcon-40B's
// new_decoder_architecture with two norms; a single KV head without it is Falcon-7B's
// multi-query layout; more KV heads with one norm is new_decoder_architecture with one norm.
struct FalconLayout {
  bool new_decoder_architecture = false;
  int64_t n_ln = 1;
};
FalconLayout falcon_layout(const gguf::GGUFFile& f, int64_t n_kv) {
  if (f.find_tensor("blk.0.attn_norm_2.weight")) return {true, 2};
  if (n_kv == 1) return {false, 1};
  return {true, 1};
}

// Fields shared by the LLaMA-like RMSNorm decoders (llama, qwen2, gemma, phi3).
void llama_like(const gguf::GGUFFile& f, const std::string& arch, nlohmann::json& j) {
  const std::string p = arch + ".";
  j["vocab_size"] = vocab_size(f, arch);
  j["hidden_size"] = need_int(f, p + "embedding_length");
  j["intermediate_size"] = need_int(f, p + "feed_forward_length");
  j["num_hidden_layers"] = need_int(f, p + "block_count");
  const int64_t nh = need_int(f, p + "attention.head_count");
  j["num_attention_heads"] = nh;
  j["num_key_value_heads"] = f.get_int(p + "attention.head_count_kv").value_or(nh);
  if (auto kl = f.get_int(p + "attention.key_length")) j["head_dim"] = *kl;
  j["max_position_embeddings"] = f.get_int(p + "context_length").value_or(2048);
  if (auto e = f.get_float(p + "attention.layer_norm_rms_epsilon")) j["rms_norm_eps"] = *e;
  // Gemma's converter writes no rope keys (llama.cpp's default base 10000 = HF's).
  j["rope_theta"] = f.get_float(p + "rope.freq_base").value_or(10000.0);
  j["tie_word_embeddings"] = f.find_tensor("output.weight") == nullptr;
}

}  // namespace

nlohmann::json gguf_hf_config(const gguf::GGUFFile& f) {
  const std::string arch = arch_of(f);
  const std::string p = arch + ".";
  nlohmann::json j;
  if (is_llama_family(arch)) {
    const auto window = f.get_int(p + "attention.sliding_window");
    const auto experts = f.get_int(p + "expert_count");
    j["model_type"] = arch == "llama" ? (experts && *experts > 0 ? "mixtral"
                                         : window                ? "mistral"
                                                                 : "llama")
                                      : arch;
    llama_like(f, arch, j);
    if (experts && *experts > 0) {
      j["num_local_experts"] = *experts;
      j["num_experts_per_tok"] = need_int(f, p + "expert_used_count");
    }
    if (auto type = f.get_string(p + "rope.scaling.type"); type && *type != "none") {
      nlohmann::json rs = {{"rope_type", *type},
                           {"factor", f.get_float(p + "rope.scaling.factor").value_or(1.0)}};
      if (auto o = f.get_int(p + "rope.scaling.original_context_length"))
        rs["original_max_position_embeddings"] = *o;
      j["rope_scaling"] = rs;
    }
    if (window) j["sliding_window"] = *window;
    if (arch == "llama" && f.find_tensor("blk.0.attn_q.bias")) j["attention_bias"] = true;
  } else if (arch == "gemma") {
    j["model_type"] = "gemma";
    llama_like(f, arch, j);
  } else if (arch == "phi3") {
    j["model_type"] = "phi3";
    llama_like(f, arch, j);
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
  } else if (arch == "falcon") {
    if (auto layout = f.get_string(p + "tensor_data_layout"); layout && *layout != "jploski")
      throw UnsupportedError(ErrorContext().file(f.path()).key(p + "tensor_data_layout"),
                             "unknown falcon tensor layout '" + *layout + "'");
    j["model_type"] = "falcon";
    j["vocab_size"] = vocab_size(f, arch);
    j["hidden_size"] = need_int(f, p + "embedding_length");
    j["num_hidden_layers"] = need_int(f, p + "block_count");
    const int64_t nh = need_int(f, p + "attention.head_count");
    const int64_t nkv = f.get_int(p + "attention.head_count_kv").value_or(1);
    j["num_attention_heads"] = nh;
    j["num_kv_heads"] = nkv;
    const FalconLayout L = falcon_layout(f, nkv);
    j["new_decoder_architecture"] = L.new_decoder_architecture;
    j["multi_query"] = true;  // read only without new_decoder_architecture (then nkv == 1)
    j["num_ln_in_parallel_attn"] = L.n_ln;
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
  } else if (arch == "gpt2") {
    j["model_type"] = "gpt2";
    j["vocab_size"] = vocab_size(f, arch);
    j["n_embd"] = need_int(f, p + "embedding_length");
    j["n_layer"] = need_int(f, p + "block_count");
    j["n_head"] = need_int(f, p + "attention.head_count");
    j["n_positions"] = need_int(f, p + "context_length");
    if (auto ff = f.get_int(p + "feed_forward_length")) j["n_inner"] = *ff;
    if (auto e = f.get_float(p + "attention.layer_norm_epsilon")) j["layer_norm_epsilon"] = *e;
    j["tie_word_embeddings"] = true;  // the converter writes output.weight as a copy of wte
  } else {
    throw UnsupportedError(
        ErrorContext().file(f.path()).key("general.architecture"),
        "no GGUF mapping for architecture '" + arch +
            "' (supported: llama, mistral and mixtral as llama, qwen2, gemma, phi3, "
            "falcon, gpt2)");
  }
  token_ids(f, j);
  // Ids outside the vocabulary (random-vocab files) would fail validation; drop them.
  for (const char* k : {"bos_token_id", "eos_token_id", "pad_token_id"})
    if (j.contains(k) && j[k].get<int64_t>() >= j["vocab_size"].get<int64_t>()) j.erase(k);
  return j;
}

ModelConfig gguf_model_config(const gguf::GGUFFile& f) {
  return parse_model_config(gguf_hf_config(f), f.path());
}

GGUFWeightSource::GGUFWeightSource(gguf::GGUFFile file, const ModelConfig& config)
    : file_(std::move(file)) {
  const DecoderConfig& c = common(config);
  const std::string arch = arch_of(file_);
  using K = Kind;
  struct Rule {
    const char* gguf;  // suffix after "blk.N." (per layer) or the full name
    const char* hf;
    Kind kind;
    int heads;  // 0 none, 1 n_head, 2 n_kv_head (UnpermuteRows)
  };
  // (HF per-layer suffix, GGUF per-layer name, expert weight) for Mixtral's stacked experts.
  struct ExpertRule {
    const char* gguf;
    const char* w;
  };
  std::vector<ExpertRule> experts;
  std::vector<Rule> global, layer;
  std::string lp;  // HF per-layer prefix
  if (is_llama_family(arch)) {
    const bool permuted = arch == "llama";
    const K qk = permuted ? K::UnpermuteRows : K::Plain;
    global = {{"token_embd.weight", "model.embed_tokens.weight", K::Plain, 0},
              {"output_norm.weight", "model.norm.weight", K::Plain, 0},
              {"output.weight", "lm_head.weight", K::Plain, 0}};
    layer = {{"attn_norm.weight", "input_layernorm.weight", K::Plain, 0},
             {"ffn_norm.weight", "post_attention_layernorm.weight", K::Plain, 0},
             {"attn_q.weight", "self_attn.q_proj.weight", qk, 1},
             {"attn_q.bias", "self_attn.q_proj.bias", qk, 1},
             {"attn_k.weight", "self_attn.k_proj.weight", qk, 2},
             {"attn_k.bias", "self_attn.k_proj.bias", qk, 2},
             {"attn_v.weight", "self_attn.v_proj.weight", K::Plain, 0},
             {"attn_v.bias", "self_attn.v_proj.bias", K::Plain, 0},
             {"attn_output.weight", "self_attn.o_proj.weight", K::Plain, 0},
             {"attn_output.bias", "self_attn.o_proj.bias", K::Plain, 0},
             {"ffn_gate.weight", "mlp.gate_proj.weight", K::Plain, 0},
             {"ffn_up.weight", "mlp.up_proj.weight", K::Plain, 0},
             {"ffn_down.weight", "mlp.down_proj.weight", K::Plain, 0}};
    if (arch == "llama" && file_.find_tensor("blk.0.ffn_gate_exps.weight")) {
      // Mixtral: router F32, experts stacked [E, rows, cols] (w1 = gate, w2 = down, w3 = up).
      layer.push_back({"ffn_gate_inp.weight", "block_sparse_moe.gate.weight", K::Plain, 0});
      experts = {{"ffn_gate_exps.weight", "w1"},
                 {"ffn_down_exps.weight", "w2"},
                 {"ffn_up_exps.weight", "w3"}};
    }
    lp = "model.layers.";
  } else if (arch == "gemma" || arch == "phi3") {
    // Not permuted (llama.cpp runs both with NEOX RoPE). Gemma: the converter stored every
    // norm as 1 + w (GemmaRMSNorm's offset); phi3: fused qkv and gate_up kept as is.
    const K norm = arch == "gemma" ? K::MinusOne : K::Plain;
    global = {{"token_embd.weight", "model.embed_tokens.weight", K::Plain, 0},
              {"output_norm.weight", "model.norm.weight", norm, 0},
              {"output.weight", "lm_head.weight", K::Plain, 0}};
    layer = {{"attn_norm.weight", "input_layernorm.weight", norm, 0},
             {"ffn_norm.weight", "post_attention_layernorm.weight", norm, 0},
             {"attn_output.weight", "self_attn.o_proj.weight", K::Plain, 0},
             {"ffn_down.weight", "mlp.down_proj.weight", K::Plain, 0}};
    if (arch == "gemma") {
      layer.insert(layer.end(), {{"attn_q.weight", "self_attn.q_proj.weight", K::Plain, 0},
                                 {"attn_k.weight", "self_attn.k_proj.weight", K::Plain, 0},
                                 {"attn_v.weight", "self_attn.v_proj.weight", K::Plain, 0},
                                 {"ffn_gate.weight", "mlp.gate_proj.weight", K::Plain, 0},
                                 {"ffn_up.weight", "mlp.up_proj.weight", K::Plain, 0}});
    } else {
      layer.insert(layer.end(), {{"attn_qkv.weight", "self_attn.qkv_proj.weight", K::Plain, 0},
                                 {"ffn_up.weight", "mlp.gate_up_proj.weight", K::Plain, 0}});
    }
    lp = "model.layers.";
  } else if (arch == "falcon") {
    const auto& fc = std::get<FalconConfig>(config);
    // q | k | v rows back to HF's per-KV-group order (identity for one group: Falcon-7B).
    const K qkv =
        fc.new_decoder_architecture && c.num_key_value_heads > 1 ? K::FalconQKV : K::Plain;
    global = {{"token_embd.weight", "transformer.word_embeddings.weight", K::Plain, 0},
              {"output_norm.weight", "transformer.ln_f.weight", K::Plain, 0},
              {"output_norm.bias", "transformer.ln_f.bias", K::Plain, 0},
              {"output.weight", "lm_head.weight", K::Plain, 0}};
    layer = {{"attn_qkv.weight", "self_attention.query_key_value.weight", qkv, 1},
             {"attn_qkv.bias", "self_attention.query_key_value.bias", qkv, 1},
             {"attn_output.weight", "self_attention.dense.weight", K::Plain, 0},
             {"attn_output.bias", "self_attention.dense.bias", K::Plain, 0},
             {"ffn_up.weight", "mlp.dense_h_to_4h.weight", K::Plain, 0},
             {"ffn_up.bias", "mlp.dense_h_to_4h.bias", K::Plain, 0},
             {"ffn_down.weight", "mlp.dense_4h_to_h.weight", K::Plain, 0},
             {"ffn_down.bias", "mlp.dense_4h_to_h.bias", K::Plain, 0}};
    if (fc.new_decoder_architecture && fc.num_ln_in_parallel_attn.value_or(2) == 2) {
      // gguf-py: ln_attn -> attn_norm_2 (feeds QKV), ln_mlp -> attn_norm (feeds the MLP).
      layer.insert(layer.end(), {{"attn_norm_2.weight", "ln_attn.weight", K::Plain, 0},
                                 {"attn_norm_2.bias", "ln_attn.bias", K::Plain, 0},
                                 {"attn_norm.weight", "ln_mlp.weight", K::Plain, 0},
                                 {"attn_norm.bias", "ln_mlp.bias", K::Plain, 0}});
    } else {
      layer.insert(layer.end(), {{"attn_norm.weight", "input_layernorm.weight", K::Plain, 0},
                                 {"attn_norm.bias", "input_layernorm.bias", K::Plain, 0}});
    }
    lp = "transformer.h.";
  } else if (arch == "gpt2") {
    global = {{"token_embd.weight", "transformer.wte.weight", K::Plain, 0},
              {"position_embd.weight", "transformer.wpe.weight", K::Plain, 0},
              {"output_norm.weight", "transformer.ln_f.weight", K::Plain, 0},
              {"output_norm.bias", "transformer.ln_f.bias", K::Plain, 0},
              {"output.weight", "lm_head.weight", K::Plain, 0}};
    layer = {{"attn_norm.weight", "ln_1.weight", K::Plain, 0},
             {"attn_norm.bias", "ln_1.bias", K::Plain, 0},
             {"ffn_norm.weight", "ln_2.weight", K::Plain, 0},
             {"ffn_norm.bias", "ln_2.bias", K::Plain, 0},
             {"attn_qkv.weight", "attn.c_attn.weight", K::Transposed, 0},
             {"attn_qkv.bias", "attn.c_attn.bias", K::Plain, 0},
             {"attn_output.weight", "attn.c_proj.weight", K::Transposed, 0},
             {"attn_output.bias", "attn.c_proj.bias", K::Plain, 0},
             {"ffn_up.weight", "mlp.c_fc.weight", K::Transposed, 0},
             {"ffn_up.bias", "mlp.c_fc.bias", K::Plain, 0},
             {"ffn_down.weight", "mlp.c_proj.weight", K::Transposed, 0},
             {"ffn_down.bias", "mlp.c_proj.bias", K::Plain, 0}};
    lp = "transformer.h.";
  } else {
    throw UnsupportedError(ErrorContext().file(file_.path()).key("general.architecture"),
                           "no GGUF tensor mapping for architecture '" + arch + "'");
  }
  auto heads = [&](int h) {
    return h == 1 ? c.num_attention_heads : h == 2 ? c.num_key_value_heads : 0;
  };
  const auto* mixtral = std::get_if<MixtralConfig>(&config);
  const int64_t n_experts = mixtral ? mixtral->num_local_experts : 0;
  for (const auto& r : global)
    if (file_.find_tensor(r.gguf))
      map_[r.hf] = Entry{r.gguf, r.kind, heads(r.heads), c.num_key_value_heads, 0};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    const std::string h = lp + std::to_string(i) + ".";
    for (const auto& r : layer)
      if (file_.find_tensor(b + r.gguf))
        map_[h + r.hf] = Entry{b + r.gguf, r.kind, heads(r.heads), c.num_key_value_heads, 0};
    for (const auto& r : experts) {
      const auto* t = file_.find_tensor(b + r.gguf);
      if (!t) continue;
      if (t->dims.size() != 3 || static_cast<int64_t>(t->dims[2]) != n_experts)
        throw ShapeError(ErrorContext().file(file_.path()).tensor(b + r.gguf),
                         "expected 3-D [" + std::to_string(n_experts) + ", rows, cols] experts");
      for (int64_t e = 0; e < n_experts; ++e)
        map_[h + "block_sparse_moe.experts." + std::to_string(e) + "." + r.w + ".weight"] =
            Entry{b + r.gguf, K::ExpertSlice, 0, 0, e};
    }
  }
}

std::optional<std::string> GGUFWeightSource::gguf_name(const std::string& hf_name) const {
  auto it = map_.find(hf_name);
  if (it == map_.end()) return std::nullopt;
  return it->second.gguf;
}

std::vector<std::string> GGUFWeightSource::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : map_) out.push_back(k);
  return out;
}

namespace {

// Inverse of convert_hf_to_gguf.py's LlamaModel.permute over the rows of `t` (any dtype, 1-D or
// 2-D): the converter moved HF row h*hd + i*hd/2 + j (i in {0,1}) to h*hd + 2*j + i.
Tensor unpermute_rows(const Tensor& t, int64_t n_head, const std::string& file,
                      const std::string& name) {
  const int64_t rows = t.dim(0);
  if (n_head <= 0 || rows % n_head != 0 || (rows / n_head) % 2 != 0)
    throw ShapeError(ErrorContext().file(file).tensor(name).shape("shape", t.shape()),
                     "rows do not split into " + std::to_string(n_head) + " heads of even size");
  const int64_t hd = rows / n_head, half = hd / 2;
  const size_t rb = t.nbytes() / static_cast<size_t>(rows);
  Tensor out = Tensor::empty(t.dtype(), t.shape());
  const uint8_t* src = static_cast<const uint8_t*>(t.raw());
  uint8_t* dst = static_cast<uint8_t*>(out.mutable_raw());
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < half; ++j)
        std::memcpy(dst + static_cast<size_t>(h * hd + i * half + j) * rb,
                    src + static_cast<size_t>(h * hd + 2 * j + i) * rb, rb);
  return out;
}

// Rows of `t` gathered: out row r = in row src(r) (any dtype, 1-D or 2-D).
template <class F>
Tensor gather_rows(const Tensor& t, F&& src) {
  const int64_t rows = t.dim(0);
  const size_t rb = t.nbytes() / static_cast<size_t>(rows);
  Tensor out = Tensor::empty(t.dtype(), t.shape());
  const uint8_t* s = static_cast<const uint8_t*>(t.raw());
  uint8_t* d = static_cast<uint8_t*>(out.mutable_raw());
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(d + static_cast<size_t>(r) * rb, s + static_cast<size_t>(src(r)) * rb, rb);
  return out;
}

// Inverse of convert_hf_to_gguf.py's FalconModel QKV re-ordering: the file holds all query
// heads, then the n_kv key heads, then the n_kv value heads; HF groups per KV head
// [q x (n_head / n_kv), k, v].
Tensor falcon_qkv_rows(const Tensor& t, int64_t n_head, int64_t n_kv, const std::string& file,
                       const std::string& name) {
  const int64_t rows = t.dim(0), per = n_head + 2 * n_kv;
  if (n_kv <= 0 || n_head % n_kv != 0 || rows % per != 0)
    throw ShapeError(ErrorContext().file(file).tensor(name).shape("shape", t.shape()),
                     "rows do not split into " + std::to_string(n_head) + " + 2 x " +
                         std::to_string(n_kv) + " heads");
  const int64_t hd = rows / per, qpg = n_head / n_kv;
  return gather_rows(t, [&](int64_t r) {
    const int64_t head = r / hd, d = r % hd, g = head / (qpg + 2), j = head % (qpg + 2);
    const int64_t src_head = j < qpg ? g * qpg + j : j == qpg ? n_head + g : n_head + n_kv + g;
    return src_head * hd + d;
  });
}

}  // namespace

bool GGUFWeightSource::has_rope_interleaved_qk() const {
  for (const auto& [hf, e] : map_)
    if (e.kind == Kind::UnpermuteRows) return true;
  return false;
}

std::optional<Tensor> GGUFWeightSource::find_rope_interleaved(const std::string& name) const {
  auto it = map_.find(name);
  if (it == map_.end() || it->second.kind != Kind::UnpermuteRows) return std::nullopt;
  return file_.tensor(it->second.gguf);
}

std::optional<Tensor> GGUFWeightSource::find(const std::string& name) const {
  auto it = map_.find(name);
  if (it == map_.end()) return std::nullopt;
  const Entry& e = it->second;
  Tensor t = file_.tensor(e.gguf);
  switch (e.kind) {
    case Kind::Plain:
      return t;
    case Kind::UnpermuteRows:
      return unpermute_rows(t, e.n_head, file_.path(), e.gguf);
    case Kind::FalconQKV:
      return falcon_qkv_rows(t, e.n_head, e.n_kv, file_.path(), e.gguf);
    case Kind::MinusOne: {
      // Gemma norms: the converter stored 1 + w (f32); w = stored - 1 is exact for stored in
      // [0.5, 2], and the model's (1 + w) then gives the stored value back.
      Tensor out = quant::dequantize(t);
      float* d = out.mutable_data<float>();
      for (uint64_t i = 0; i < out.numel(); ++i) d[i] -= 1.0f;
      return out;
    }
    case Kind::ExpertSlice: {
      // Expert e of a stacked [E, rows, cols] tensor: a zero-copy 2-D view.
      const int64_t rows = t.dim(1), cols = t.dim(2);
      const uint64_t bytes =
          *row_bytes(t.dtype(), static_cast<uint64_t>(cols)) * static_cast<uint64_t>(rows);
      return Tensor::view(t.storage(), t.dtype(), {rows, cols},
                          t.offset() + static_cast<uint64_t>(e.index) * bytes);
    }
    case Kind::Transposed: {
      // The HF layout [in, out] of a weight stored [out, in]: an f32 transposed copy.
      const Tensor f = quant::dequantize(t);
      const int64_t R = f.dim(0), C = f.dim(1);
      Tensor out = Tensor::empty(DType::F32, {C, R});
      const float* s = f.data<float>();
      float* d = out.mutable_data<float>();
      for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 0; c < C; ++c) d[c * R + r] = s[r * C + c];
      return out;
    }
  }
  return std::nullopt;
}

std::optional<Tensor> GGUFWeightSource::find_pretransposed(const std::string& name) const {
  auto it = map_.find(name);
  if (it == map_.end() || it->second.kind != Kind::Transposed) return std::nullopt;
  return file_.tensor(it->second.gguf);
}

std::unique_ptr<CausalLM> load_gguf_causal_lm(const std::string& path, const LoadOptions& opts) {
  gguf::GGUFFile f = gguf::GGUFFile::open(path);
  const ModelConfig config = gguf_model_config(f);
  GGUFWeightSource source(std::move(f), config);
  nn::Weights weights(source, opts.dtype);
  weights.set_quantize(opts.quantize);
  return build_causal_lm(config, weights, opts);
}

}  // namespace ohm
