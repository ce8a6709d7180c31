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

}  // namespace ohm::hub
