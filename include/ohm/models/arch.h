// The architecture registry: one ArchSpec per architecture, defined in its model file
// (src/models/<arch>.cpp) and listed once in src/models/registry.cpp. Everything that depends
// on the architecture reads it from here: config.json binding (model_type, aliases, HF class
// names), the builder, and the GGUF metadata and tensor-name tables. No other file holds a
// per-architecture if-chain. docs/contributing.md, "Add an architecture", is the recipe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ohm/formats/config.h"
#include "ohm/formats/gguf.h"
#include "ohm/models/causal_lm.h"

namespace ohm {

class JsonReader;

// How a GGUF tensor becomes the HF tensor the model file asks for (llama.cpp's converter
// changed some layouts; see ohm/models/gguf_loader.h).
enum class GgufTensorKind { Plain, UnpermuteRows, Transposed, FalconQKV, MinusOne, ExpertSlice };

// The GGUF tensor names of an architecture, as (GGUF, HF) pairs. `layer` names are suffixes
// after "blk.N." and `layer_prefix` + "N.".
struct GgufTensorTable {
  struct Rule {
    const char* gguf;  // suffix after "blk.N." (per layer) or the full name
    const char* hf;
    GgufTensorKind kind = GgufTensorKind::Plain;
    int heads = 0;  // 0 none, 1 n_head, 2 n_kv_head (UnpermuteRows, FalconQKV)
  };
  // Stacked experts [E, rows, cols] handed out per expert as `expert_prefix`.E.`hf`.
  struct ExpertRule {
    const char* gguf;  // suffix after "blk.N."
    const char* hf;    // name after "<expert_prefix>.<e>."
  };
  std::vector<Rule> global, layer;
  std::vector<ExpertRule> experts;
  std::string layer_prefix = "model.layers.";
  std::string expert_prefix;  // per-layer HF prefix of the experts (after "<layer_prefix>N.")
  int64_t n_experts = 0;
};

struct ArchSpec {
  // config.json's model_type (the canonical one), other spellings that mean the same
  // architecture, and the HF class names (config.architectures) that imply it.
  std::string model_type;
  std::vector<std::string> aliases;
  std::vector<std::string> hf_classes;
  // config.json -> the architecture's config (HF defaults applied). validate_decoder runs after.
  std::shared_ptr<DecoderConfig> (*bind_config)(const JsonReader& r) = nullptr;
  // The model.
  std::unique_ptr<CausalLM> (*build)(const ModelConfig& c, nn::Weights& w,
                                     const LoadOptions& opts) = nullptr;

  // GGUF. `gguf_arch`: the general.architecture value this spec reads ("" none: the file is
  // read through another spec, e.g. mistral and mixtral through llama). bind_gguf fills the
  // config.json equivalent of the `{arch}.*` metadata (it may choose another model_type).
  std::string gguf_arch;
  void (*bind_gguf)(const gguf::GGUFFile& f, nlohmann::json& config) = nullptr;
  // The tensor-name table for a file of this model_type (nullptr: no GGUF support).
  GgufTensorTable (*gguf_tensors)(const gguf::GGUFFile& f, const ModelConfig& c) = nullptr;
  // llama.cpp's tokenizer.ggml.pre for this family's tokenizer (documentation and converters;
  // the GGUF tokenizer reads the file's own key).
  std::string tokenizer_pre;
};

// Every registered architecture, in registration order.
const std::vector<const ArchSpec*>& architectures();
// The spec for a model_type or one of its aliases (nullptr if none).
const ArchSpec* find_arch(std::string_view model_type);
// The spec whose gguf_arch is `general_architecture` (nullptr if none).
const ArchSpec* find_gguf_arch(std::string_view general_architecture);
// The canonical model_type values, e.g. for error messages.
const std::vector<std::string>& supported_model_types();

// Parses a config.json object through the registry. `file` names the source in errors. Unknown
// model_type -> UnsupportedError listing the supported ones; bad or inconsistent values ->
// ConfigError naming the key. Without model_type, config.architectures picks the spec.
ModelConfig parse_model_config(const nlohmann::json& j, const std::string& file);
ModelConfig load_model_config(const std::string& path);

}  // namespace ohm
