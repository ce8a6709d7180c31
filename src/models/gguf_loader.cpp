// GGUF -> CausalLM: config from `{arch}.*` metadata, llama.cpp tensor names -> HF names, and
// the converter's layout changes undone (see include/ohm/models/gguf_loader.h).
#include "ohm/models/gguf_loader.h"

#include <cstring>

#include "ohm/core/error.h"
#include "ohm/quant/dequant.h"

namespace ohm {
namespace {

std::string arch_of(const gguf::GGUFFile& f) {
  auto a = f.get_string("general.architecture");
  if (!a) throw FormatError(ErrorContext().file(f.path()).key("general.architecture"),
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

bool is_llama_family(const std::string& arch) { return arch == "llama" || arch == "qwen2"; }

}  // namespace

nlohmann::json gguf_hf_config(const gguf::GGUFFile& f) {
  const std::string arch = arch_of(f);
  const std::string p = arch + ".";
  nlohmann::json j;
  if (is_llama_family(arch)) {
    const auto window = f.get_int(p + "attention.sliding_window");
    j["model_type"] = arch == "llama" ? (window ? "mistral" : "llama") : arch;
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
    j["rope_theta"] = f.get_float(p + "rope.freq_base").value_or(10000.0);
    if (auto type = f.get_string(p + "rope.scaling.type"); type && *type != "none") {
      nlohmann::json rs = {{"rope_type", *type},
                           {"factor", f.get_float(p + "rope.scaling.factor").value_or(1.0)}};
      if (auto o = f.get_int(p + "rope.scaling.original_context_length"))
        rs["original_max_position_embeddings"] = *o;
      j["rope_scaling"] = rs;
    }
    j["tie_word_embeddings"] = f.find_tensor("output.weight") == nullptr;
    if (window) j["sliding_window"] = *window;
    if (arch == "llama" && f.find_tensor("blk.0.attn_q.bias")) j["attention_bias"] = true;
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
    throw UnsupportedError(ErrorContext().file(f.path()).key("general.architecture"),
                           "no GGUF mapping for architecture '" + arch +
                               "' (supported: llama, mistral as llama, qwen2, gpt2)");
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
    lp = "model.layers.";
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
  for (const auto& r : global)
    if (file_.find_tensor(r.gguf)) map_[r.hf] = Entry{r.gguf, r.kind, heads(r.heads)};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    const std::string h = lp + std::to_string(i) + ".";
    for (const auto& r : layer)
      if (file_.find_tensor(b + r.gguf)) map_[h + r.hf] = Entry{b + r.gguf, r.kind, heads(r.heads)};
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

}  // namespace

std::optional<Tensor> GGUFWeightSource::find(const std::string& name) const {
  auto it = map_.find(name);
  if (it == map_.end()) return std::nullopt;
  const Entry& e = it->second;
  Tensor t = file_.tensor(e.gguf);
  switch (e.kind) {
    case Kind::Plain: return t;
    case Kind::UnpermuteRows: return unpermute_rows(t, e.n_head, file_.path(), e.gguf);
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
