// `ohm quantize IN OUT --type TYPE [--keep PATTERN]... [--pure] [--threads N]`: writes a GGUF
// file that llama.cpp and gguf-py read, from any model ohm loads (a GGUF file, an HF directory or
// a .safetensors file beside its config.json), choosing each tensor's type as llama.cpp's
// llama-quantize does (src/llama-quant.cpp: which tensors are quantized, llama_tensor_get_type's
// recipes and fallbacks). docs/quantization.md ("ohm quantize") describes the rules.
//
//   GGUF input: its metadata is copied (general.file_type and general.quantization_version set,
//     split.* and general.alignment dropped) and its tensors keep their names.
//   HF input (llama, mistral, qwen2, qwen3): the metadata, tensor names and Q/K row permutation
//     of llama.cpp's convert_hf_to_gguf.py, and the tokenizer.json vocabulary (byte-level BPE as
//     tokenizer.ggml.model "gpt2").
//
// The file is written to OUT.partial-<pid>-<n> in OUT's directory and renamed to OUT at the end;
// on any error the partial file is removed and OUT is untouched.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "common.h"
#include "ohm/cli/cli.h"
#include "ohm/core/atomic_file.h"
#include "ohm/core/error.h"
#include "ohm/core/quant_traits.h"
#include "ohm/core/thread_pool.h"
#include "ohm/formats/config.h"
#include "ohm/formats/gguf.h"
#include "ohm/formats/gguf_writer.h"
#include "ohm/formats/model_source.h"
#include "ohm/formats/safetensors.h"
#include "ohm/models/arch.h"
#include "ohm/quant/dequant.h"
#include "ohm/quant/quantize.h"
#include "quantize_common.h"
#include "quantize_gptq.h"

namespace ohm::cli {

// HF name -> (GGUF name, heads to permute by: 0 none, 1 n_head, 2 n_head_kv).
std::optional<std::pair<std::string, int>> hf_to_gguf_name(const std::string& hf, bool permute) {
  static const std::vector<std::pair<std::string, std::string>> global = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"}};
  static const std::vector<std::tuple<std::string, std::string, int>> layer = {
      {"input_layernorm.weight", "attn_norm.weight", 0},
      {"post_attention_layernorm.weight", "ffn_norm.weight", 0},
      {"self_attn.q_proj.weight", "attn_q.weight", 1},
      {"self_attn.q_proj.bias", "attn_q.bias", 1},
      {"self_attn.k_proj.weight", "attn_k.weight", 2},
      {"self_attn.k_proj.bias", "attn_k.bias", 2},
      {"self_attn.v_proj.weight", "attn_v.weight", 0},
      {"self_attn.v_proj.bias", "attn_v.bias", 0},
      {"self_attn.o_proj.weight", "attn_output.weight", 0},
      {"self_attn.o_proj.bias", "attn_output.bias", 0},
      {"self_attn.q_norm.weight", "attn_q_norm.weight", 0},
      {"self_attn.k_norm.weight", "attn_k_norm.weight", 0},
      {"mlp.gate_proj.weight", "ffn_gate.weight", 0},
      {"mlp.up_proj.weight", "ffn_up.weight", 0},
      {"mlp.down_proj.weight", "ffn_down.weight", 0}};
  for (const auto& [h, g] : global)
    if (hf == h) return std::make_pair(g, 0);
  const std::string pre = "model.layers.";
  if (hf.rfind(pre, 0) != 0) return std::nullopt;
  const size_t dot = hf.find('.', pre.size());
  if (dot == std::string::npos) return std::nullopt;
  const std::string idx = hf.substr(pre.size(), dot - pre.size()), rest = hf.substr(dot + 1);
  if (idx.empty() || !std::all_of(idx.begin(), idx.end(), ::isdigit)) return std::nullopt;
  for (const auto& [h, g, heads] : layer)
    if (rest == h) return std::make_pair("blk." + idx + "." + g, permute ? heads : 0);
  return std::nullopt;
}

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ---- recipes: TYPE -> default type, llama_ftype, and whether llama.cpp's _M rules apply ----

struct Recipe {
  const char* name;
  DType base;
  uint32_t ftype;  // llama_ftype written as general.file_type
  bool mixed;      // q4_k_m / q5_k_m: llama_tensor_get_type's per-tensor rules
};

const std::vector<Recipe>& recipes() {
  static const std::vector<Recipe> r = {
      {"q8_0", DType::Q8_0, 7, false},   {"q4_0", DType::Q4_0, 2, false},
      {"q4_1", DType::Q4_1, 3, false},   {"q5_0", DType::Q5_0, 8, false},
      {"q5_1", DType::Q5_1, 9, false},   {"q2_k", DType::Q2_K, 10, false},
      {"q3_k", DType::Q3_K, 11, false},  {"q4_k", DType::Q4_K, 14, false},
      {"q5_k", DType::Q5_K, 16, false},  {"q6_k", DType::Q6_K, 18, false},
      {"q4_k_m", DType::Q4_K, 15, true}, {"q5_k_m", DType::Q5_K, 17, true},
  };
  return r;
}

// The recipes whose types ohm can write (a type without a quantizer is not offered).
std::vector<const Recipe*> available_recipes() {
  std::vector<const Recipe*> out;
  for (const Recipe& r : recipes())
    if (quant::can_quantize(r.base) && (!r.mixed || quant::can_quantize(DType::Q6_K)))
      out.push_back(&r);
  return out;
}

std::string recipe_list(const std::string& sep) {
  std::string s;
  for (const Recipe* r : available_recipes()) s += (s.empty() ? "" : sep) + r->name;
  return s;
}

const Recipe& find_recipe(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const Recipe* r : available_recipes())
    if (lower == r->name) return *r;
  throw UsageError("--type '" + name + "': unknown quantization type (choose one of " +
                   recipe_list(", ") + ")");
}

// ---- the input model, as GGUF tensors ----

struct SrcTensor {
  std::string name;             // GGUF name
  Shape shape;                  // row-major
  DType dtype;                  // as stored
  std::function<Tensor()> raw;  // the stored tensor (GGUF tensor names and layout)
};

struct Model {
  std::string arch;  // general.architecture
  int64_t n_layer = 0, n_expert = 0, n_head = 0, n_head_kv = 0;
  std::vector<SrcTensor> tensors;
  std::function<void(gguf::GGUFWriter&)> metadata;  // everything but file_type/quant version
  std::string describe;
  bool hf = false;  // converted from an HF checkpoint (1-D tensors are written as f32)
};

// llama-model-loader's weight_name_comparer: layer number (-1 outside blk.N.), then name.
int layer_of(const std::string& n) {
  int l = -1;
  if (std::sscanf(n.c_str(), "blk.%d.", &l) != 1) return -1;
  return l;
}
void sort_like_llama(std::vector<SrcTensor>& v) {
  std::stable_sort(v.begin(), v.end(), [](const SrcTensor& a, const SrcTensor& b) {
    const int la = layer_of(a.name), lb = layer_of(b.name);
    return la != lb ? la < lb : a.name < b.name;
  });
}

Model read_gguf(const std::string& path) {
  auto f = std::make_shared<gguf::GGUFFile>(gguf::GGUFFile::open(path));
  Model m;
  m.describe = path;
  m.arch = f->get_string("general.architecture").value_or("");
  if (m.arch.empty())
    throw FormatError(ErrorContext().file(path).key("general.architecture"), "missing");
  m.n_layer = f->get_int(m.arch + ".block_count").value_or(0);
  m.n_expert = f->get_int(m.arch + ".expert_count").value_or(0);
  m.n_head = f->get_int(m.arch + ".attention.head_count").value_or(0);
  m.n_head_kv = f->get_int(m.arch + ".attention.head_count_kv").value_or(m.n_head);
  for (const auto& ti : f->tensors())
    m.tensors.push_back(
        {ti.name, ti.shape, ti.dtype, [f, name = ti.name] { return f->tensor(name); }});
  m.metadata = [f](gguf::GGUFWriter& w) {
    for (const auto& [key, value] : f->metadata()) {
      // llama-quantize drops the split keys; the writer's own alignment (32) is used.
      if (key == "general.file_type" || key == "general.quantization_version" ||
          key == "general.alignment" || key.rfind("split.", 0) == 0)
        continue;
      w.add_value(key, value);
    }
  };
  return m;
}

// ---- HF checkpoints: convert_hf_to_gguf.py's names, permutation and metadata ----

// convert_hf_to_gguf.py LlamaModel.permute: HF row h*hd + i*hd/2 + j -> h*hd + 2j + i.
Tensor permute_rows(const Tensor& w, int64_t n_head) {
  const int64_t rows = w.shape()[0], cols = w.numel() / static_cast<uint64_t>(rows);
  if (rows % (2 * n_head) != 0)
    throw ShapeError("rows " + std::to_string(rows) + " do not split into " +
                     std::to_string(n_head) + " heads of rotary pairs");
  Tensor out = Tensor::empty(DType::F32, w.shape());
  const float* src = w.data<float>();
  float* dst = out.mutable_data<float>();
  const int64_t hd = rows / n_head, half = hd / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < half; ++j)
        std::memcpy(dst + (h * hd + 2 * j + i) * cols, src + (h * hd + i * half + j) * cols,
                    static_cast<size_t>(cols) * sizeof(float));
  return out;
}

// tokenizer.json -> tokenizer.ggml.* as convert_hf_to_gguf.py's _set_vocab_gpt2 writes them
// (byte-level BPE only), plus SpecialVocab's ids, add_bos/eos and chat template.
void add_hf_vocab(gguf::GGUFWriter& w, const std::string& dir, const DecoderConfig& c,
                  const std::string& tokenizer_pre) {
  const std::string tok_path = (fs::path(dir) / "tokenizer.json").string();
  if (!fs::exists(tok_path))
    throw NotFoundError(ErrorContext().file(tok_path),
                        "no tokenizer.json beside the weights (the GGUF file needs the "
                        "vocabulary)");
  const json tj = read_json_as<json>(tok_path);
  const json& model = tj.value("model", json::object());
  const std::string type = model.value("type", "");
  const json& pre = tj.value("pre_tokenizer", json());
  bool byte_level = false, bare_byte_level = false;
  if (pre.is_object() && pre.value("type", "") == "ByteLevel") {
    byte_level = true;
    bare_byte_level = pre.value("use_regex", true);
  } else if (pre.is_object() && pre.value("type", "") == "Sequence") {
    for (const auto& p : pre.value("pretokenizers", json::array()))
      if (p.value("type", "") == "ByteLevel") byte_level = true;
  }
  if (type != "BPE" || !byte_level)
    throw UnsupportedError(ErrorContext().file(tok_path).key("model.type"),
                           "only byte-level BPE tokenizers are converted to GGUF (this one is '" +
                               type + "'" +
                               (byte_level ? "" : " without a ByteLevel pre-tokenizer") +
                               "); convert it with llama.cpp's convert_hf_to_gguf.py first");
  std::string pre_name = bare_byte_level ? "gpt-2" : tokenizer_pre;
  if (pre_name.empty() && c.model_type == "llama") pre_name = "llama-bpe";
  if (pre_name.empty())
    throw UnsupportedError(ErrorContext().file(tok_path).key("pre_tokenizer"),
                           "no llama.cpp pre-tokenizer name known for this tokenizer");

  const json& vocab = model.value("vocab", json::object());
  const int64_t n = std::max<int64_t>(c.vocab_size, static_cast<int64_t>(vocab.size()));
  std::vector<std::string> tokens(static_cast<size_t>(n));
  std::vector<int32_t> types(static_cast<size_t>(n), 1);  // NORMAL
  std::vector<bool> seen(static_cast<size_t>(n), false);
  auto put = [&](const std::string& t, int64_t id, int32_t ty) {
    if (id < 0 || id >= n)
      throw FormatError(
          ErrorContext().file(tok_path).key(t),
          "token id " + std::to_string(id) + " outside the vocabulary of " + std::to_string(n));
    tokens[static_cast<size_t>(id)] = t;
    types[static_cast<size_t>(id)] = ty;
    seen[static_cast<size_t>(id)] = true;
  };
  for (const auto& [t, id] : vocab.items()) put(t, id.get<int64_t>(), 1);
  for (const auto& a : tj.value("added_tokens", json::array()))
    put(a.at("content").get<std::string>(), a.at("id").get<int64_t>(),
        a.value("special", false) ? 3 : 4);  // CONTROL : USER_DEFINED
  for (int64_t i = 0; i < n; ++i)
    if (!seen[static_cast<size_t>(i)]) {
      tokens[static_cast<size_t>(i)] = "[PAD" + std::to_string(i) + "]";
      types[static_cast<size_t>(i)] = 4;
    }
  std::vector<std::string> merges;
  for (const auto& mg : model.value("merges", json::array()))
    merges.push_back(mg.is_array() ? mg[0].get<std::string>() + " " + mg[1].get<std::string>()
                                   : mg.get<std::string>());
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", pre_name);
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_int32_array("tokenizer.ggml.token_type", types);
  w.add_string_array("tokenizer.ggml.merges", merges);

  // SpecialVocab: ids from tokenizer_config.json's token strings, else config.json.
  json tc = json::object();
  if (const auto p = fs::path(dir) / "tokenizer_config.json"; fs::exists(p))
    tc = read_json_as<json>(p.string());
  auto id_of = [&](const std::string& key) -> std::optional<int64_t> {
    const json& v = tc.value(key, json());
    std::string s;
    if (v.is_string()) s = v.get<std::string>();
    if (v.is_object()) s = v.value("content", "");
    if (!s.empty())
      for (int64_t i = 0; i < n; ++i)
        if (tokens[static_cast<size_t>(i)] == s) return i;
    return std::nullopt;
  };
  std::optional<int64_t> bos = id_of("bos_token"), eos = id_of("eos_token"),
                         unk = id_of("unk_token"), pad = id_of("pad_token");
  if (!bos) bos = c.bos_token_id;
  if (!eos && !c.eos_token_id.empty()) eos = c.eos_token_id.front();
  if (!pad) pad = c.pad_token_id;
  if (bos) w.add_uint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(*bos));
  if (eos) w.add_uint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(*eos));
  if (unk) w.add_uint32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(*unk));
  if (pad) w.add_uint32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(*pad));
  if (tc.contains("add_bos_token") && tc["add_bos_token"].is_boolean())
    w.add_bool("tokenizer.ggml.add_bos_token", tc["add_bos_token"].get<bool>());
  if (tc.contains("add_eos_token") && tc["add_eos_token"].is_boolean())
    w.add_bool("tokenizer.ggml.add_eos_token", tc["add_eos_token"].get<bool>());
  if (tc.contains("chat_template") && tc["chat_template"].is_string())
    w.add_string("tokenizer.chat_template", tc["chat_template"].get<std::string>());
}

Model read_hf(const ModelSource& src) {
  const std::string dir =
      src.kind == SourceKind::Directory ? src.path : fs::path(src.path).parent_path().string();
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(cfg_path))
    throw NotFoundError(ErrorContext().file(cfg_path), "config.json not found beside the weights");
  const json raw_cfg = read_json_as<json>(cfg_path);
  if (raw_cfg.contains("quantization_config"))
    throw UnsupportedError(ErrorContext().file(cfg_path).key("quantization_config"),
                           "quantized HF checkpoints (GPTQ/AWQ/...) cannot be re-quantized");
  const ModelConfig config = load_model_config(cfg_path);
  const DecoderConfig& c = config.common();
  // convert_hf_to_gguf.py writes mistral as llama; qwen2/qwen3 under their own names.
  std::string arch;
  if (c.model_type == "llama" || c.model_type == "mistral") arch = "llama";
  if (c.model_type == "qwen2" || c.model_type == "qwen3") arch = c.model_type;
  if (arch.empty())
    throw UnsupportedError(ErrorContext().file(cfg_path).key("model_type"),
                           "ohm quantize converts llama, mistral, qwen2 and qwen3 checkpoints "
                           "(not '" +
                               c.model_type +
                               "'); convert others with llama.cpp's convert_hf_to_gguf.py and "
                               "quantize the GGUF file");
  if (c.rope_scaling && c.rope_scaling->rope_type != "default" &&
      c.rope_scaling->rope_type != "linear")
    throw UnsupportedError(
        ErrorContext().file(cfg_path).key("rope_scaling"),
        "rope_scaling type '" + c.rope_scaling->rope_type + "' is not converted (only linear)");
  const bool permute = arch == "llama";
  auto ckpt = std::make_shared<safetensors::Checkpoint>(safetensors::Checkpoint::open(src.path));
  Model m;
  m.describe = src.path;
  m.hf = true;
  m.arch = arch;
  m.n_layer = c.num_hidden_layers;
  m.n_head = c.num_attention_heads;
  m.n_head_kv = c.num_key_value_heads > 0 ? c.num_key_value_heads : c.num_attention_heads;
  const int64_t n_head = m.n_head, n_kv = m.n_head_kv;
  for (const auto& ct : ckpt->tensors()) {
    const std::string& hf = ct.info.name;
    if (hf.find("rotary_emb.inv_freq") != std::string::npos) continue;  // the converter skips it
    const auto g = hf_to_gguf_name(hf, permute);
    if (!g)
      throw UnsupportedError(ErrorContext().file(src.path).tensor(hf),
                             "no GGUF name for this tensor (ohm quantize maps the " + arch +
                                 " layout of convert_hf_to_gguf.py)");
    const DType dt = ct.info.dtype;
    if (dt != DType::F32 && dt != DType::F16 && dt != DType::BF16)
      throw UnsupportedError(
          ErrorContext().file(src.path).tensor(hf),
          "dtype " + std::string(name(dt)) + " (only f32/f16/bf16 checkpoints are quantized)");
    const int heads = g->second == 1 ? 1 : g->second == 2 ? 2 : 0;
    m.tensors.push_back({g->first, ct.info.shape, dt, [ckpt, hf, heads, n_head, n_kv] {
                           Tensor t = ckpt->tensor(hf);
                           if (heads == 0) return t;
                           try {
                             return permute_rows(quant::dequantize(t), heads == 1 ? n_head : n_kv);
                           } catch (const Error& e) {
                             throw ShapeError(ErrorContext().tensor(hf), e.detail());
                           }
                         }});
  }
  // Tied embeddings: the converter writes no output.weight (llama.cpp reuses token_embd).
  const std::string tok_pre = [&] {
    const ArchSpec* spec = find_arch(c.model_type);
    return spec ? spec->tokenizer_pre : std::string();
  }();
  const std::string name = fs::path(dir).filename().string();
  m.metadata = [c, arch, dir, name, tok_pre](gguf::GGUFWriter& w) {
    const std::string p = arch + ".";
    w.add_string("general.architecture", arch);
    w.add_string("general.name", name);
    w.add_uint32(p + "block_count", static_cast<uint32_t>(c.num_hidden_layers));
    w.add_uint32(p + "context_length", static_cast<uint32_t>(c.max_position_embeddings));
    w.add_uint32(p + "embedding_length", static_cast<uint32_t>(c.hidden_size));
    w.add_uint32(p + "feed_forward_length", static_cast<uint32_t>(c.intermediate_size));
    w.add_uint32(p + "attention.head_count", static_cast<uint32_t>(c.num_attention_heads));
    w.add_uint32(p + "attention.head_count_kv",
                 static_cast<uint32_t>(c.num_key_value_heads > 0 ? c.num_key_value_heads
                                                                 : c.num_attention_heads));
    w.add_float32(p + "rope.freq_base", static_cast<float>(c.rope_theta));
    w.add_float32(p + "attention.layer_norm_rms_epsilon", static_cast<float>(c.norm_eps));
    const int64_t head_dim = c.head_dim > 0 ? c.head_dim : c.hidden_size / c.num_attention_heads;
    if (head_dim != c.hidden_size / c.num_attention_heads) {
      w.add_uint32(p + "attention.key_length", static_cast<uint32_t>(head_dim));
      w.add_uint32(p + "attention.value_length", static_cast<uint32_t>(head_dim));
    }
    if (arch == "llama") {
      w.add_uint32(p + "vocab_size", static_cast<uint32_t>(c.vocab_size));
      w.add_uint32(p + "rope.dimension_count", static_cast<uint32_t>(head_dim));
    }
    if (c.rope_scaling && c.rope_scaling->rope_type == "linear") {
      w.add_string(p + "rope.scaling.type", "linear");
      w.add_float32(p + "rope.scaling.factor", static_cast<float>(c.rope_scaling->factor));
    }
    add_hf_vocab(w, dir, c, tok_pre);
  };
  return m;
}

Model read_model(const std::string& in, const std::string& verify_key) {
  const ModelSource src = resolve_model(in);
  verify_model_if_asked(src.path, verify_key);
  if (src.kind == SourceKind::GgufFile) return read_gguf(src.path);
  return read_hf(src);
}

// ---- per-tensor types: llama-quantize's rules ----

struct Plan {
  const Recipe* recipe = nullptr;
  bool pure = false;
  const Imatrix* imatrix = nullptr;
  std::vector<std::pair<std::string, std::regex>> keep;
};

struct State {  // quantize_state_impl's counters
  int n_attention_wv = 0, i_attention_wv = 0, i_ffn_down = 0;
  bool has_output = false;
};

// llama-quantize's `quantize` test: names ending in "weight", 2-D or more, no norms, no router,
// no position / token-type embeddings (and the small RWKV/Mamba/T5 tensors it lists).
bool llama_would_quantize(const SrcTensor& t) {
  const std::string& n = t.name;
  if (n.size() < 6 || n.compare(n.size() - 6, 6, "weight") != 0) return false;
  if (t.shape.size() < 2) return false;
  for (const char* s :
       {"_norm.weight", "ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj",
        "ssm_conv1d.weight", "shortconv.conv.weight", "time_mix_", "attn_rel_b.weight"})
    if (n.find(s) != std::string::npos) return false;
  return n != "position_embd.weight" && n != "token_types.weight";
}

struct Choice {
  DType type;
  std::string note;  // why it differs from the recipe's type
};

// Fallback for a row length that does not split into the type's blocks (llama_tensor_get_type's
// convert_incompatible_tensor).
Choice fallback(const SrcTensor& t, DType want, const std::string& why) {
  const int64_t nx = t.shape.back();
  DType fb;
  std::string note;
  switch (want) {
    case DType::Q2_K:
    case DType::Q3_K:
      fb = DType::Q4_0;  // llama.cpp: IQ4_NL, which ohm does not write; Q4_0 has its 4.5 bits
      note = " (llama.cpp: iq4_nl)";
      break;
    case DType::Q4_K:
      fb = DType::Q5_0;
      break;
    case DType::Q5_K:
      fb = DType::Q5_1;
      break;
    case DType::Q6_K:
      fb = DType::Q8_0;
      break;
    default:
      throw ShapeError(ErrorContext().tensor(t.name),
                       "row length " + std::to_string(nx) + " is not a multiple of " +
                           std::string(name(want)) + "'s block size " +
                           std::to_string(traits(want).block_size) +
                           " (llama-quantize stops here too: it has no fallback for " +
                           std::string(name(want)) + "); keep it with --keep or pick a k-quant");
  }
  if (nx % traits(fb).block_size != 0) fb = DType::F16;
  return {fb, why + "fallback: " + std::to_string(nx) + " % " +
                  std::to_string(traits(want).block_size) + " != 0" + note};
}

Choice tensor_type(const Model& m, const Plan& plan, State& qs, const SrcTensor& t) {
  const Recipe& r = *plan.recipe;
  const std::string& name = t.name;
  DType nt = r.base;
  if (plan.pure) {
    if (t.shape.back() % traits(nt).block_size != 0) return fallback(t, nt, "");
    return {nt, ""};
  }
  const int64_t nx = t.shape.back();
  const bool is_m4 = r.ftype == 15, is_m5 = r.ftype == 17;
  auto use_more_bits = [](int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
  };
  const int n_layer = static_cast<int>(m.n_layer);
  std::string why;
  if (name == "output.weight" || (!qs.has_output && name == "token_embd.weight")) {
    if (m.arch == "falcon" || nx % traits(nt).block_size != 0)
      nt = DType::Q8_0;
    else if (nt != DType::Q8_0)
      nt = DType::Q6_K;
    if (nt != r.base) why = "output tensor; ";
  } else if (name.find("attn_v.weight") != std::string::npos) {
    if ((is_m4 || is_m5) && use_more_bits(qs.i_attention_wv, qs.n_attention_wv)) nt = DType::Q6_K;
    // LLM_TYPE_70B (llama, 80 layers, grouped KV): 8x smaller attn_v gets more bits.
    if (m.arch == "llama" && m.n_layer == 80 && m.n_head != m.n_head_kv &&
        (nt == DType::Q3_K || nt == DType::Q4_K))
      nt = DType::Q5_K;
    if (m.n_expert == 8) nt = DType::Q8_0;
    ++qs.i_attention_wv;
  } else if (name.find("attn_k.weight") != std::string::npos) {
    if (m.n_expert == 8) nt = DType::Q8_0;
  } else if (name.find("ffn_down") != std::string::npos) {
    int i_layer = qs.i_ffn_down;
    if (m.n_expert > 1) {
      i_layer = layer_of(name);
      if (i_layer < 0 || i_layer >= n_layer)
        throw FormatError(ErrorContext().tensor(name), "cannot tell the layer of this tensor");
    }
    if (is_m4) {
      if (m.arch == "falcon")
        nt = i_layer < n_layer / 16            ? DType::Q6_K
             : use_more_bits(i_layer, n_layer) ? DType::Q5_K
                                               : DType::Q4_K;
      else if (use_more_bits(i_layer, n_layer))
        nt = DType::Q6_K;
    } else if (is_m5 && use_more_bits(i_layer, n_layer)) {
      nt = DType::Q6_K;
    } else if ((r.ftype == 2 || r.ftype == 8) && plan.imatrix && i_layer < n_layer / 8) {
      // With an imatrix, llama.cpp guards the first ffn_down layers of Q4_0/Q5_0 files.
      nt = r.ftype == 2 ? DType::Q4_1 : DType::Q5_1;
    }
    ++qs.i_ffn_down;
  } else if (name.find("attn_output.weight") != std::string::npos) {
    if (m.arch != "falcon" && m.n_expert == 8 && is_m4) nt = DType::Q5_K;
  } else if (name.find("attn_qkv.weight") != std::string::npos) {
    if (is_m4) nt = DType::Q5_K;
    if (is_m5) nt = DType::Q6_K;
  }
  if (nt != r.base && why.empty()) why = "recipe; ";
  if (nx % traits(nt).block_size != 0) return fallback(t, nt, why);
  if (!why.empty()) why.resize(why.size() - 2);
  return {nt, why};
}

// ---- quantizing and the summary ----

struct Row {
  std::string name, from, to, note;
  Shape shape;
  uint64_t bytes_in = 0, bytes_out = 0;
  double rel_rmse = -1;  // -1: not quantized (copied or converted exactly)
};

std::string fmt_shape(const Shape& s) {
  std::string o;
  for (size_t i = 0; i < s.size(); ++i) o += (i ? "x" : "") + std::to_string(s[i]);
  return o;
}

std::string fmt_bytes(uint64_t b) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(2);
  if (b >= (1ull << 30))
    o << static_cast<double>(b) / (1ull << 30) << " GiB";
  else if (b >= (1ull << 20))
    o << static_cast<double>(b) / (1ull << 20) << " MiB";
  else if (b >= (1ull << 10))
    o << static_cast<double>(b) / (1ull << 10) << " KiB";
  else
    o << b << " B";
  return o.str();
}

class Progress {
 public:
  Progress(size_t total, bool on) : total_(total), on_(on) {}
  void step(size_t done, const std::string& name) {
    if (!on_) return;
    const int width = 30;
    const int fill = total_ ? static_cast<int>(width * done / total_) : width;
    std::string shown = name.size() > 32 ? name.substr(0, 32) : name;
    std::fprintf(
        stderr, "\r[%s%s] %zu/%zu %-32s", std::string(static_cast<size_t>(fill), '#').c_str(),
        std::string(static_cast<size_t>(width - fill), '.').c_str(), done, total_, shown.c_str());
    if (done == total_) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  size_t total_;
  bool on_;
};

// Quantizes the contiguous tensor `src` (any dtype dequantize_row reads; rows of `cols`) to `t`
// in `dst` on `pool`, converting each row to f32 on the thread that quantizes it; returns the
// relative RMS error sqrt(sum (x - q)^2 / sum x^2) of the dequantized values.
double quantize_into(ThreadPool& pool, DType t, const Tensor& src, uint8_t* dst, int64_t cols,
                     const float* qw, int64_t rows_per_mat) {
  const size_t rb = *row_bytes(t, static_cast<uint64_t>(cols));
  const size_t in_rb = *row_bytes(src.dtype(), static_cast<uint64_t>(cols));
  const auto* in = static_cast<const uint8_t*>(src.raw());
  const int64_t rows = static_cast<int64_t>(src.numel()) / cols;
  std::mutex mu;
  double err = 0, ref = 0;
  pool.parallel_for(rows, 1, [&](int64_t a, int64_t b) {
    std::vector<float> back(static_cast<size_t>(cols)), xf(static_cast<size_t>(cols));
    double e = 0, r = 0;
    for (int64_t i = a; i < b; ++i) {
      quant::dequantize_row(src.dtype(), in + i * in_rb, xf.data(), cols);
      const float* x = xf.data();
      quant::quantize_row_weighted(t, x, dst + i * rb, cols,
                                   qw ? qw + (i / rows_per_mat) * cols : nullptr);
      quant::dequantize_row(t, dst + i * rb, back.data(), cols);
      // Eight lanes (rows are whole 32-blocks) so the compiler vectorizes the sums.
      float e8[8] = {}, r8[8] = {};
      for (int64_t j = 0; j < cols; j += 8)
        for (int k = 0; k < 8; ++k) {
          const float d = x[j + k] - back[static_cast<size_t>(j + k)];
          e8[k] += d * d;
          r8[k] += x[j + k] * x[j + k];
        }
      for (int k = 0; k < 8; ++k) {
        e += e8[k];
        r += r8[k];
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    err += e;
    ref += r;
  });
  return ref > 0 ? std::sqrt(err / ref) : (err > 0 ? INFINITY : 0.0);
}

}  // namespace

void check_quantize_type(const std::string& name) {
  find_recipe(name);
}

int run_quantize(const QuantizeOptions& o) {
  if (!o.gptq.method.empty()) {
    if (!o.type.empty() || !o.imatrix.empty() || !o.keep.empty() || o.pure)
      throw UsageError(
          "--method writes an HF GPTQ checkpoint: --type, --imatrix, --keep and "
          "--pure are for GGUF output");
    GptqCliOptions g = o.gptq;
    g.in = o.in;
    g.out = o.out;
    g.threads = o.threads;
    g.quiet = o.quiet;
    g.verify_key = o.verify_key;
    return run_quantize_gptq(g);
  }
  if (o.type.empty()) throw UsageError("give --type TYPE (GGUF) or --method gptq|rtn (HF GPTQ)");
  Plan plan;
  plan.recipe = &find_recipe(o.type);
  plan.pure = o.pure;
  for (const auto& k : o.keep) {
    try {
      plan.keep.emplace_back(k, std::regex(k));
    } catch (const std::regex_error& e) {
      throw UsageError("--keep '" + k + "': not a valid regular expression (" + e.what() + ")");
    }
  }
  if (fs::exists(o.out) && fs::is_directory(o.out))
    throw UsageError("OUT '" + o.out + "' is a directory; give the .gguf file to write");
  const fs::path out_dir = fs::absolute(o.out).parent_path();
  if (!fs::is_directory(out_dir))
    throw UsageError("OUT '" + o.out + "': the directory " + out_dir.string() + " does not exist");

  const auto t0 = std::chrono::steady_clock::now();
  std::optional<Imatrix> imatrix;
  if (!o.imatrix.empty()) {
    imatrix = load_imatrix(o.imatrix);
    plan.imatrix = &*imatrix;
  }
  Model m = read_model(o.in, o.verify_key);
  sort_like_llama(m.tensors);

  State qs;
  for (const auto& t : m.tensors) {
    if (t.name.find("attn_v.weight") != std::string::npos ||
        t.name.find("attn_qkv.weight") != std::string::npos ||
        t.name.find("attn_kv_b.weight") != std::string::npos)
      ++qs.n_attention_wv;
    else if (t.name == "output.weight")
      qs.has_output = true;
  }

  gguf::GGUFWriter w;
  m.metadata(w);
  w.add_uint32("general.quantization_version", 2);
  w.add_uint32("general.file_type", plan.recipe->ftype);
  if (imatrix) {  // llama-quantize's kv overrides
    w.add_string("quantize.imatrix.file", imatrix->file);
    if (!imatrix->datasets.empty())
      w.add_string("quantize.imatrix.dataset", imatrix->datasets.front());
    w.add_uint32("quantize.imatrix.entries_count", static_cast<uint32_t>(imatrix->values.size()));
    w.add_uint32("quantize.imatrix.chunks_count", static_cast<uint32_t>(imatrix->chunk_count));
  }

  std::unique_ptr<ThreadPool> own_pool;
  if (o.threads > 0) own_pool = std::make_unique<ThreadPool>(o.threads);
  ThreadPool& pool = own_pool ? *own_pool : ThreadPool::global();
  std::vector<Row> rows;
  rows.reserve(m.tensors.size());
  Progress progress(m.tensors.size(), !o.quiet && isatty(STDERR_FILENO));
  size_t done = 0;
  for (const SrcTensor& t : m.tensors) {
    Row row;
    row.name = t.name;
    row.shape = t.shape;
    row.from = std::string(name(t.dtype));
    row.bytes_in = *row_bytes(t.dtype, *checked_numel(t.shape));
    bool quantize = llama_would_quantize(t);
    DType target = t.dtype;
    if (quantize) {
      for (const auto& [pat, re] : plan.keep)
        if (std::regex_search(t.name, re)) {
          quantize = false;
          row.note = "kept (--keep " + pat + ")";
        }
    }
    if (quantize) {
      const Choice ch = tensor_type(m, plan, qs, t);
      target = ch.type;
      row.note = ch.note;
      if (is_quantized(t.dtype) && t.dtype != target)
        row.note += std::string(row.note.empty() ? "" : "; ") + "requantized from " +
                    std::string(name(t.dtype));
    } else if (m.hf && t.shape.size() == 1) {
      target = DType::F32;  // the converter writes 1-D tensors (norms, biases) as f32
    }
    if (!gguf::ggml_type_of(target))
      throw UnsupportedError(ErrorContext().tensor(t.name),
                             "dtype " + std::string(name(target)) + " has no GGUF type");
    row.to = std::string(name(target));
    row.bytes_out = *row_bytes(target, *checked_numel(t.shape));
    // The importance weights of this matrix (llama-quantize: cols x experts values).
    const float* qw = nullptr;
    const int64_t cols = t.shape.back();
    const int64_t n_mat = t.shape.size() >= 3 ? t.shape[t.shape.size() - 3] : 1;
    if (imatrix && target != t.dtype && is_quantized(target)) {
      const auto it = imatrix->values.find(t.name);
      if (it == imatrix->values.end()) {
        row.note += std::string(row.note.empty() ? "" : "; ") + "no imatrix data";
      } else if (static_cast<int64_t>(it->second.size()) != cols * n_mat) {
        if (t.name != "token_embd.weight")
          throw ShapeError(ErrorContext().file(imatrix->file).tensor(t.name),
                           "imatrix has " + std::to_string(it->second.size()) +
                               " values, the tensor " + std::to_string(cols * n_mat) +
                               " columns (an imatrix of another model?)");
      } else if (quant::has_weighted_quantizer(target)) {
        qw = it->second.data();
        row.note += std::string(row.note.empty() ? "" : "; ") + "imatrix";
      }
    }
    const int64_t rows_per_mat =
        std::max<int64_t>(1, static_cast<int64_t>(*checked_numel(t.shape)) / cols / n_mat);
    const size_t index = rows.size();
    rows.push_back(row);
    const bool requant = target != t.dtype && is_quantized(target);
    w.add_tensor_lazy(
        t.name, target, t.shape,
        [&, index, target, requant, qw, rows_per_mat, src = &t](uint8_t* dst) {
          Row& r = rows[index];
          const Tensor stored = src->raw();
          if (target == stored.dtype()) {
            std::memcpy(dst, stored.raw(), r.bytes_out);
          } else {
            const int64_t cols = src->shape.back();
            if (requant) {
              r.rel_rmse = quantize_into(pool, target, stored, dst, cols, qw, rows_per_mat);
            } else {  // float types: f32 -> f16/bf16/f32 rounding only
              const Tensor f = stored.dtype() == DType::F32 ? stored : quant::dequantize(stored);
              const int64_t nrows = static_cast<int64_t>(f.numel()) / cols;
              pool.parallel_for(nrows, 64, [&](int64_t a, int64_t b) {
                const size_t rb = *row_bytes(target, static_cast<uint64_t>(cols));
                for (int64_t i = a; i < b; ++i)
                  quant::quantize_row(target, f.data<float>() + i * cols, dst + i * rb, cols);
              });
            }
          }
          progress.step(++done, src->name);
        });
  }

  write_file_atomic(o.out, [&](const std::string& tmp) { w.write(tmp); });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // The summary.
  size_t wname = 6, wshape = 5;
  for (const auto& r : rows) {
    wname = std::max(wname, r.name.size());
    wshape = std::max(wshape, fmt_shape(r.shape).size());
  }
  std::ostream& out = std::cout;
  out << std::left << std::setw(static_cast<int>(wname)) << "tensor"
      << "  " << std::setw(static_cast<int>(wshape)) << "shape"
      << "  " << std::setw(14) << "type" << std::right << std::setw(12) << "bytes" << std::setw(11)
      << "rel.rmse"
      << "  note\n";
  uint64_t tin = 0, tout = 0;
  int n_fallback = 0;
  for (const auto& r : rows) {
    tin += r.bytes_in;
    tout += r.bytes_out;
    if (r.note.find("fallback") != std::string::npos) ++n_fallback;
    std::ostringstream err;
    if (r.rel_rmse >= 0)
      err << std::fixed << std::setprecision(5) << r.rel_rmse;
    else
      err << "-";
    out << std::left << std::setw(static_cast<int>(wname)) << r.name << "  "
        << std::setw(static_cast<int>(wshape)) << fmt_shape(r.shape) << "  " << std::setw(14)
        << (r.from == r.to ? r.to : r.from + "->" + r.to) << std::right << std::setw(12)
        << r.bytes_out << std::setw(11) << err.str() << "  " << r.note << "\n";
  }
  out << "wrote " << o.out << ": " << rows.size() << " tensors, " << fmt_bytes(tin) << " -> "
      << fmt_bytes(tout) << " (" << plan.recipe->name << ", general.file_type "
      << plan.recipe->ftype << ") in " << fmt_seconds(secs) << " s";
  if (n_fallback) out << "; " << n_fallback << " tensor(s) used a fallback type";
  out << "\n";
  return 0;
}

namespace {

Register reg("quantize", [](CLI::App& app) {
  auto o = std::make_shared<QuantizeOptions>();
  auto* cmd = app.add_subcommand(
      "quantize",
      "Write a quantized GGUF file (llama-quantize's per-tensor rules) from a GGUF file or an "
      "HF checkpoint");
  cmd->add_option("IN", o->in, "Model to read: a .gguf file, an HF directory or .safetensors file")
      ->required();
  cmd->add_option("OUT", o->out,
                  "GGUF file to write (written to OUT.partial-PID-N, then renamed); with "
                  "--method, the checkpoint directory (built as OUT.partial-PID, then renamed); "
                  "not with --report");
  cmd->add_option("--type", o->type,
                  "Quantization: " + recipe_list("|") +
                      ". A plain TYPE puts every quantized matrix in TYPE except output.weight "
                      "(q6_k, as llama-quantize); q4_k_m/q5_k_m are llama.cpp's mixed recipes");
  cmd->add_option("--method", o->gptq.method,
                  "gptq|rtn: write an HF GPTQ checkpoint (v1 layout, loads in ohm and "
                  "transformers) instead of GGUF; gptq calibrates on --calibration block by "
                  "block, rtn rounds to nearest on the same grid")
      ->check(CLI::IsMember({"gptq", "rtn"}));
  cmd->add_option("--bits", o->gptq.bits, "--method: bits per weight, 4 or 8 (default 4)");
  cmd->add_option("--group-size", o->gptq.group_size,
                  "--method: input columns per scale/zero group, -1 for one per row (default 128)");
  cmd->add_flag("--desc-act", o->gptq.desc_act,
                "--method gptq: act-order, columns by decreasing Hessian diagonal (g_idx)");
  cmd->add_flag("--sym", o->gptq.sym,
                "--method: symmetric grid, zero fixed at 2^(bits-1) (default asymmetric)");
  cmd->add_option("--calibration", o->gptq.calibration,
                  "--method gptq: calibration text, cut into --samples windows of --seq-len "
                  "tokens from its start")
      ->check(readable_file());
  cmd->add_option("--samples", o->gptq.samples, "--method gptq: calibration samples (default 128)")
      ->check(int_range(1, 1 << 20));
  cmd->add_option("--seq-len", o->gptq.seq_len,
                  "--method gptq: tokens per calibration sample (default 2048)")
      ->check(int_range(1, 1 << 20));
  cmd->add_option("--damp", o->gptq.damp,
                  "--method gptq: dampening, a fraction of mean(diag H) (default 0.01; raised by "
                  "0.01 while the Cholesky fails)")
      ->check(in_range(0.0, 1.0));
  cmd->add_option("--imatrix", o->imatrix,
                  "Importance matrix (ohm imatrix or llama-imatrix, GGUF format): its per-column "
                  "weights go into the q4_0/q4_1/q5_0/q5_1 and k-quant quantizers, as "
                  "llama-quantize --imatrix")
      ->check(readable_file());
  cmd->add_option("--keep", o->keep,
                  "Keep the tensors whose GGUF name matches this regular expression in their "
                  "stored type (repeatable)");
  cmd->add_flag("--pure", o->pure,
                "Every quantized matrix in TYPE, output.weight included (llama-quantize --pure); "
                "rows that do not split into blocks still fall back");
  cmd->add_flag("--quiet,-q", o->quiet, "No progress bar");
  cmd->add_option("--report", o->report,
                  "Instead of OUT: quantize IN to each of --types in this directory and write "
                  "report.md, report.json, report.svg and report.png: each method's size and "
                  "perplexity on --text next to IN's own");
  cmd->add_option("--types", o->report_types, "--report: the types to compare (comma-separated)")
      ->delimiter(',')
      ->default_str("q8_0,q4_0,q4_k_m");
  cmd->add_option("--compare", o->report_compare,
                  "--report: also measure this model (e.g. a GPTQ or AWQ checkpoint of IN; "
                  "repeatable)");
  cmd->add_option("--text", o->report_text, "--report: the text the perplexities are measured on")
      ->check(readable_file());
  cmd->add_option("--ctx-size,-c", o->report_ctx, "--report: perplexity chunk length (tokens)")
      ->default_val(512)
      ->check(CLI::Range(int64_t{8}, int64_t{1} << 20));
  cmd->add_option("--chunks", o->report_chunks, "--report: at most this many chunks (default: all)")
      ->check(CLI::PositiveNumber);
  add_threads_option(cmd, o->threads);
  add_verify_key_option(cmd, o->verify_key);
  cmd->footer(
      "Tensors left as stored: 1-D tensors, norms, the MoE router, names not ending in "
      "'weight'. Row lengths that are not a multiple of a k-quant's 256: q4_k -> q5_0, q5_k -> "
      "q5_1, q6_k -> q8_0, q2_k/q3_k -> q4_0 (llama.cpp: iq4_nl), then f16; for q4_0..q8_0 it "
      "is an error, as in llama-quantize. The summary on stdout lists each tensor's type, bytes "
      "and relative RMS error. --method gptq|rtn instead writes an HF GPTQ checkpoint directory "
      "(every linear of the decoder blocks; GPTQ runs the calibration samples block by block "
      "through the blocks already quantized and prints each linear's relative output error "
      "next to round-to-nearest's). --report DIR compares methods (size, perplexity). "
      "docs/quantization.md has the details.");
  return Command{
      cmd, [o] {
        if (!o->report.empty()) {
          if (!o->out.empty())
            throw UsageError("--report writes its files into the report directory; drop OUT '" +
                             o->out + "'");
          if (!o->type.empty()) throw UsageError("--report takes --types LIST, not --type");
          if (!o->gptq.method.empty())
            throw UsageError("--report takes GPTQ checkpoints through --compare DIR, not --method");
          return run_quantize_report(*o);
        }
        if (o->out.empty()) throw UsageError("OUT is required (or --report DIR)");
        return run_quantize(*o);
      }};
});

}  // namespace
}  // namespace ohm::cli
