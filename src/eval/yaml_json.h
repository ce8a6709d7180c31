// A YAML document (libyaml) as JSON: mappings keep their order, plain scalars resolve as YAML
// 1.1 core types (null, true/false, integers, floats), quoted ones stay strings. A node with
// a tag (lm-eval's `!function module.name`) becomes {"!tag": TAG, "value": SCALAR}.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace ohm::eval {

// FormatError naming `name` with the line and column of a syntax error.
nlohmann::ordered_json parse_yaml(const std::string& text, const std::string& name);

}  // namespace ohm::eval
