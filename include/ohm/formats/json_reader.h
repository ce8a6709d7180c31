// Typed access to a JSON object that names the file and key in every error, with HF's
// convention that an absent key or `null` means "use the default".
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ohm {

// Reads a JSON file (duplicate keys and invalid UTF-8 rejected). FormatError / IoError name it.
nlohmann::json read_json_file(const std::string& path);
// Parses JSON text with the same strictness; errors name `name` and say what was parsed.
nlohmann::json parse_json_text(std::string_view text, const std::string& name,
                               const char* what = "JSON");

class JsonReader {
 public:
  JsonReader(const nlohmann::json& j, std::string file, std::string prefix = "");

  bool has(const std::string& key) const;  // present and not null
  std::optional<int64_t> opt_int(const std::string& key) const;
  std::optional<double> opt_double(const std::string& key) const;
  std::optional<bool> opt_bool(const std::string& key) const;
  std::optional<std::string> opt_string(const std::string& key) const;
  // An int or a list of ints (e.g. eos_token_id).
  std::optional<std::vector<int64_t>> opt_int_list(const std::string& key) const;
  std::optional<std::vector<double>> opt_double_list(const std::string& key) const;
  std::optional<std::vector<std::string>> opt_string_list(const std::string& key) const;

  int64_t get_int(const std::string& key, int64_t def) const { return opt_int(key).value_or(def); }
  double get_double(const std::string& key, double def) const {
    return opt_double(key).value_or(def);
  }
  bool get_bool(const std::string& key, bool def) const { return opt_bool(key).value_or(def); }
  std::string get_string(const std::string& key, const std::string& def) const {
    return opt_string(key).value_or(def);
  }

  // A nested object reader ("rope_scaling"), or nullopt when absent/null.
  std::optional<JsonReader> object(const std::string& key) const;

  const nlohmann::json& raw() const { return j_; }
  const std::string& file() const { return file_; }
  // "prefix.key" for messages.
  std::string path(const std::string& key) const;
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

 private:
  const nlohmann::json* get(const std::string& key) const;
  const nlohmann::json& j_;
  std::string file_, prefix_;
};

}  // namespace ohm
