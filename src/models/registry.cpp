// The architecture registry: the list of architectures (one line each) and the lookups that
// read it (config.json binding, builders). See ohm/models/arch.h.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "ohm/core/error.h"
#include "ohm/formats/json_reader.h"
#include "ohm/models/arch.h"

// One line per architecture: its ArchSpec is defined in src/models/<file>.cpp as
// `const ArchSpec& <name>_arch()`. Order matters only for listings (supported types, --help).
#define OHM_ARCHITECTURES(X) \
  X(llama)                   \
  X(mistral)                 \
  X(mixtral)                 \
  X(qwen2)                   \
  X(qwen3)                   \
  X(qwen3_moe)               \
  X(gemma)                   \
  X(gemma2)                  \
  X(gemma3)                  \
  X(phi3)                    \
  X(falcon)                  \
  X(gpt2)

namespace ohm {
namespace models {
#define OHM_DECLARE_ARCH(name) const ArchSpec& name##_arch();
OHM_ARCHITECTURES(OHM_DECLARE_ARCH)
#undef OHM_DECLARE_ARCH
}  // namespace models

const std::vector<const ArchSpec*>& architectures() {
#define OHM_LIST_ARCH(name) &models::name##_arch(),
  static const std::vector<const ArchSpec*> all = {OHM_ARCHITECTURES(OHM_LIST_ARCH)};
#undef OHM_LIST_ARCH
  return all;
}

const ArchSpec* find_arch(std::string_view model_type) {
  for (const ArchSpec* a : architectures()) {
    if (a->model_type == model_type) return a;
    if (std::find(a->aliases.begin(), a->aliases.end(), model_type) != a->aliases.end()) return a;
  }
  return nullptr;
}

const ArchSpec* find_gguf_arch(std::string_view general_architecture) {
  for (const ArchSpec* a : architectures())
    if (!a->gguf_arch.empty() && a->gguf_arch == general_architecture) return a;
  return nullptr;
}

const std::vector<std::string>& supported_model_types() {
  static const std::vector<std::string> types = [] {
    std::vector<std::string> t;
    for (const ArchSpec* a : architectures()) t.push_back(a->model_type);
    return t;
  }();
  return types;
}

std::vector<std::string> registered_model_types() {
  return supported_model_types();
}

namespace {

std::string joined_types() {
  std::string list;
  for (const auto& t : supported_model_types()) list += (list.empty() ? "" : ", ") + t;
  return list;
}

const ArchSpec* arch_from_classes(const std::vector<std::string>& classes) {
  for (const auto& cls : classes)
    for (const ArchSpec* a : architectures())
      if (std::find(a->hf_classes.begin(), a->hf_classes.end(), cls) != a->hf_classes.end())
        return a;
  return nullptr;
}

}  // namespace

ModelConfig parse_model_config(const nlohmann::json& j, const std::string& file) {
  JsonReader r(j, file);
  const std::string type = r.get_string("model_type", "");
  const ArchSpec* spec = nullptr;
  if (type.empty()) {
    spec =
        arch_from_classes(r.opt_string_list("architectures").value_or(std::vector<std::string>{}));
    if (!spec)
      throw ConfigError(ErrorContext().file(file).key("model_type"),
                        "missing, and 'architectures' names no known class");
  } else {
    spec = find_arch(type);
    if (!spec)
      throw UnsupportedError(
          ErrorContext().file(file).key("model_type"),
          "unknown model_type '" + type + "' (supported: " + joined_types() + ")");
  }
  std::shared_ptr<DecoderConfig> c = spec->bind_config(r);
  c->model_type = spec->model_type;
  if (auto q = r.object("quantization_config")) c->quantization = parse_quantization_config(*q);
  validate_decoder(r, *c);
  return ModelConfig(std::move(c));
}

ModelConfig load_model_config(const std::string& path) {
  return parse_model_config(read_json_file(path), path);
}

std::unique_ptr<CausalLM> build_causal_lm(const ModelConfig& config, nn::Weights& weights,
                                          const LoadOptions& opts) {
  const std::string& type = common(config).model_type;
  const ArchSpec* spec = find_arch(type);
  if (!spec || !spec->build)
    throw UnsupportedError(
        ErrorContext().key("model_type"),
        "no model for model_type '" + type + "' (supported: " + joined_types() + ")");
  auto m = spec->build(config, weights, opts);
  weights.check();
  return m;
}

}  // namespace ohm
