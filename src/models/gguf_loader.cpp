// GGUF -> CausalLM: config from `{arch}.*` metadata, llama.cpp tensor names -> HF names, and
// the converter's layout changes undone (see include/ohm/models/gguf_loader.h).
#include "ohm/models/gguf_loader.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "builders.h"
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

void token_ids(const gguf::GGUFFile& f, nlohmann::json& j) {
  if (auto v = f.get_int("tokenizer.ggml.bos_token_id")) j["bos_token_id"] = *v;
  if (auto v = f.get_int("tokenizer.ggml.eos_token_id")) j["eos_token_id"] = *v;
  if (auto v = f.get_int("tokenizer.ggml.padding_token_id")) j["pad_token_id"] = *v;
}

std::string gguf_archs() {
  std::string list;
  for (const ArchSpec* a : architectures())
    if (!a->gguf_arch.empty()) list += (list.empty() ? "" : ", ") + a->gguf_arch;
  return list;
}

}  // namespace

namespace models {

int64_t gguf_need_int(const gguf::GGUFFile& f, const std::string& key) {
  auto v = f.get_int(key);
  if (!v) throw FormatError(ErrorContext().file(f.path()).key(key), "missing metadata key");
  return *v;
}

int64_t gguf_vocab_size(const gguf::GGUFFile& f, const std::string& arch) {
  // Rows of the token embedding (ggml ne1), the most reliable vocabulary size.
  if (const auto* t = f.find_tensor("token_embd.weight"); t && t->dims.size() == 2)
    return t->dims[1];
  if (auto v = f.get_int(arch + ".vocab_size")) return *v;
  if (const auto* t = f.find("tokenizer.ggml.tokens")) return static_cast<int64_t>(t->size());
  throw FormatError(ErrorContext().file(f.path()), "cannot tell the vocabulary size");
}

void gguf_llama_like(const gguf::GGUFFile& f, const std::string& arch, nlohmann::json& j) {
  const std::string p = arch + ".";
  j["vocab_size"] = gguf_vocab_size(f, arch);
  j["hidden_size"] = gguf_need_int(f, p + "embedding_length");
  j["intermediate_size"] = gguf_need_int(f, p + "feed_forward_length");
  j["num_hidden_layers"] = gguf_need_int(f, p + "block_count");
  const int64_t nh = gguf_need_int(f, p + "attention.head_count");
  j["num_attention_heads"] = nh;
  j["num_key_value_heads"] = f.get_int(p + "attention.head_count_kv").value_or(nh);
  if (auto kl = f.get_int(p + "attention.key_length")) j["head_dim"] = *kl;
  j["max_position_embeddings"] = f.get_int(p + "context_length").value_or(2048);
  if (auto e = f.get_float(p + "attention.layer_norm_rms_epsilon")) j["rms_norm_eps"] = *e;
  // Gemma's converter writes no rope keys (llama.cpp's default base 10000 = HF's).
  j["rope_theta"] = f.get_float(p + "rope.freq_base").value_or(10000.0);
  j["tie_word_embeddings"] = f.find_tensor("output.weight") == nullptr;
}

void gguf_rope_scaling(const gguf::GGUFFile& f, const std::string& arch, nlohmann::json& j) {
  const std::string p = arch + ".";
  if (auto type = f.get_string(p + "rope.scaling.type"); type && *type != "none") {
    nlohmann::json rs = {{"rope_type", *type},
                         {"factor", f.get_float(p + "rope.scaling.factor").value_or(1.0)}};
    if (auto o = f.get_int(p + "rope.scaling.original_context_length"))
      rs["original_max_position_embeddings"] = *o;
    j["rope_scaling"] = rs;
  }
}

GgufTensorTable gguf_llama_tensors(GgufTensorKind qk, GgufTensorKind norm) {
  using K = GgufTensorKind;
  GgufTensorTable t;
  t.global = {{"token_embd.weight", "model.embed_tokens.weight"},
              {"output_norm.weight", "model.norm.weight", norm},
              {"output.weight", "lm_head.weight"}};
  t.layer = {{"attn_norm.weight", "input_layernorm.weight", norm},
             {"ffn_norm.weight", "post_attention_layernorm.weight", norm},
             {"attn_q.weight", "self_attn.q_proj.weight", qk, 1},
             {"attn_q.bias", "self_attn.q_proj.bias", qk, 1},
             {"attn_k.weight", "self_attn.k_proj.weight", qk, 2},
             {"attn_k.bias", "self_attn.k_proj.bias", qk, 2},
             {"attn_v.weight", "self_attn.v_proj.weight", K::Plain},
             {"attn_v.bias", "self_attn.v_proj.bias", K::Plain},
             {"attn_output.weight", "self_attn.o_proj.weight", K::Plain},
             {"attn_output.bias", "self_attn.o_proj.bias", K::Plain},
             {"ffn_gate.weight", "mlp.gate_proj.weight", K::Plain},
             {"ffn_up.weight", "mlp.up_proj.weight", K::Plain},
             {"ffn_down.weight", "mlp.down_proj.weight", K::Plain}};
  return t;
}

GgufTensorTable gguf_gemma_sandwich_tensors() {
  using K = GgufTensorKind;
  GgufTensorTable t = gguf_llama_tensors(K::Plain, K::MinusOne);
  for (auto& r : t.layer)
    if (std::string(r.gguf) == "ffn_norm.weight") r.hf = "pre_feedforward_layernorm.weight";
  t.layer.push_back({"post_attention_norm.weight", "post_attention_layernorm.weight", K::MinusOne});
  t.layer.push_back({"post_ffw_norm.weight", "post_feedforward_layernorm.weight", K::MinusOne});
  return t;
}

}  // namespace models

nlohmann::json gguf_hf_config(const gguf::GGUFFile& f) {
  const std::string arch = arch_of(f);
  const ArchSpec* spec = find_gguf_arch(arch);
  if (!spec || !spec->bind_gguf)
    throw UnsupportedError(ErrorContext().file(f.path()).key("general.architecture"),
                           "no GGUF mapping for architecture '" + arch + "' (supported: " +
                               gguf_archs() + "; mistral and mixtral are written as llama)");
  nlohmann::json j;
  spec->bind_gguf(f, j);
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
  const ArchSpec* spec = find_arch(c.model_type);
  if (!spec || !spec->gguf_tensors)
    throw UnsupportedError(ErrorContext().file(file_.path()).key("general.architecture"),
                           "no GGUF tensor mapping for model_type '" + c.model_type + "'");
  const GgufTensorTable t = spec->gguf_tensors(file_, config);
  auto heads = [&](int h) {
    return h == 1 ? c.num_attention_heads : h == 2 ? c.num_key_value_heads : 0;
  };
  for (const auto& r : t.global)
    if (file_.find_tensor(r.gguf))
      map_[r.hf] = Entry{r.gguf, r.kind, heads(r.heads), c.num_key_value_heads, 0};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    const std::string h = t.layer_prefix + std::to_string(i) + ".";
    for (const auto& r : t.layer)
      if (file_.find_tensor(b + r.gguf))
        map_[h + r.hf] = Entry{b + r.gguf, r.kind, heads(r.heads), c.num_key_value_heads, 0};
    for (const auto& r : t.experts) {
      const auto* ti = file_.find_tensor(b + r.gguf);
      if (!ti) continue;
      if (ti->dims.size() != 3 || static_cast<int64_t>(ti->dims[2]) != t.n_experts)
        throw ShapeError(ErrorContext().file(file_.path()).tensor(b + r.gguf),
                         "expected 3-D [" + std::to_string(t.n_experts) + ", rows, cols] experts");
      for (int64_t e = 0; e < t.n_experts; ++e)
        map_[h + t.expert_prefix + std::to_string(e) + "." + r.hf] =
            Entry{b + r.gguf, Kind::ExpertSlice, 0, 0, e};
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
