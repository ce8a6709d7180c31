// Model/dataset cards: README.md YAML front matter parsed into `cardData`, and the tags the Hub
// derives from it (library, pipeline, license, base_model, datasets, languages, plus file formats).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace ohm::hub {

struct ModelCard {
  nlohmann::json data = nlohmann::json::object();  // cardData ({} without front matter)
  std::string error;                               // YAML error, empty when fine
};

// Parses the `---\n...\n---` block at the start of a README.
ModelCard parse_model_card(std::string_view readme);
// YAML text to JSON (libyaml; depth and size limited). Throws FormatError.
nlohmann::json yaml_to_json(std::string_view yaml);
// Tags as the Hub lists them: card tags, library_name, pipeline_tag, license:X, base_model:X,
// dataset:X, language codes, and "safetensors"/"gguf" when such files exist.
std::vector<std::string> derive_tags(const nlohmann::json& card,
                                     const std::vector<std::string>& file_paths);

// Evaluation results of a card's `model-index` (HF's format: model-index: - name, results: -
// task {type, name}, dataset {name, type, config, split, args}, metrics: - {type, value, name,
// config, verified, stderr}) as one flat row per metric:
//   {"model": name, "task": {type, name}, "dataset": {type, name, config?, split?, args?},
//    "metric": {type, name, config?}, "value": number, "stderr"?: number, "verified": bool}
// Entries that are not of that shape (missing types, a value that is not a number) are skipped;
// at most kMaxEvalResults rows are kept. Strings are kept as given (callers escape them).
constexpr size_t kMaxEvalResults = 2000;
nlohmann::json eval_results_from_card(const nlohmann::json& card);

// The README with `results` (model-index `results` entries: task, dataset, metrics) merged into
// its YAML front matter's model-index: the entry named `model_name` (else the first; a new one
// when there is none) keeps its other results; a result of the same task type and dataset (type,
// config, split, args) gets the new metrics, replacing those of the same type and config. The
// rest of the front matter (other keys, their order, comments) and the Markdown body are kept
// byte for byte; a README without front matter gets one. Throws FormatError (naming README.md)
// when its YAML is malformed or the model-index cannot be rewritten without changing other keys.
std::string merge_model_index(std::string_view readme, const std::string& model_name,
                              const nlohmann::json& results);
// JSON as block-style YAML that PyYAML and libyaml read back to the same values (strings
// double-quoted, floats always with a '.', keys plain when safe). `indent`: spaces before
// each line.
std::string json_to_yaml(const nlohmann::json& v, int indent = 0);

}  // namespace ohm::hub
