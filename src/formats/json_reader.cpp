#include "ohm/formats/json_reader.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "ohm/core/error.h"

namespace ohm {

using json = nlohmann::json;

json parse_json_text(std::string_view text, const std::string& name, const char* what) {
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  auto cb = [&](int, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::object_start)
      keys.emplace_back();
    else if (ev == json::parse_event_t::object_end && !keys.empty())
      keys.pop_back();
    else if (ev == json::parse_event_t::key && !keys.empty() &&
             !keys.back().insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  json j;
  try {
    j = json::parse(text.begin(), text.end(), cb);
  } catch (const json::exception& e) {
    throw FormatError(ErrorContext().file(name), std::string("invalid ") + what + ": " + e.what());
  }
  if (!duplicate.empty())
    throw FormatError(ErrorContext().file(name).key(duplicate),
                      std::string("duplicate key in ") + what);
  return j;
}

json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(ErrorContext().file(path), "cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_json_text(ss.str(), path);
}

JsonReader::JsonReader(const json& j, std::string file, std::string prefix)
    : j_(j), file_(std::move(file)), prefix_(std::move(prefix)) {
  if (!j_.is_object())
    throw ConfigError(ErrorContext().file(file_).key(prefix_), "not a JSON object");
}

std::string JsonReader::path(const std::string& key) const {
  return prefix_.empty() ? key : prefix_ + "." + key;
}

void JsonReader::fail(const std::string& key, const std::string& what) const {
  throw ConfigError(ErrorContext().file(file_).key(path(key)), what);
}

const json* JsonReader::get(const std::string& key) const {
  auto it = j_.find(key);
  if (it == j_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool JsonReader::has(const std::string& key) const {
  return get(key) != nullptr;
}

std::optional<int64_t> JsonReader::opt_int(const std::string& key) const {
  const json* v = get(key);
  if (!v) return std::nullopt;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      fail(key, "integer out of range");
    return v->get<int64_t>();
  }
  // Some configs write integral values as floats (e.g. 4096.0).
  if (v->is_number_float()) {
    double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e18)
      return static_cast<int64_t>(d);
  }
  fail(key, "expected an integer, got " + v->dump());
}

std::optional<double> JsonReader::opt_double(const std::string& key) const {
  const json* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) fail(key, "expected a number, got " + v->dump());
  return v->get<double>();
}

std::optional<bool> JsonReader::opt_bool(const std::string& key) const {
  const json* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) fail(key, "expected true or false, got " + v->dump());
  return v->get<bool>();
}

std::optional<std::string> JsonReader::opt_string(const std::string& key) const {
  const json* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) fail(key, "expected a string, got " + v->dump());
  return v->get<std::string>();
}

std::optional<std::vector<int64_t>> JsonReader::opt_int_list(const std::string& key) const {
  const json* v = get(key);
  if (!v) return std::nullopt;
  std::vector<int64_t> r;
  if (v->is_number_integer()) return std::vector<int64_t>{v->get<int64_t>()};
  if (!v->is_array()) fail(key, "expected an integer or a list of integers, got " + v->dump());
  for (const auto& e : *v) {
    if (!e.is_number_integer()) fail(key, "expected integers in the list, got " + e.dump());
    r.push_back(e.get<int64_t>());
  }
  return r;
}

std::optional<std::vector<double>> JsonReader::opt_double_list(const std::string& key) const {
  const json* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_array()) fail(key, "expected a list of numbers, got " + v->dump());
  std::vector<double> r;
  for (const auto& e : *v) {
    if (!e.is_number()) fail(key, "expected numbers in the list, got " + e.dump());
    r.push_back(e.get<double>());
  }
  return r;
}

std::optional<std::vector<std::string>> JsonReader::opt_string_list(const std::string& key) const {
  const json* v = get(key);
  if (!v) return std::nullopt;
  if (v->is_string()) return std::vector<std::string>{v->get<std::string>()};
  if (!v->is_array()) fail(key, "expected a list of strings, got " + v->dump());
  std::vector<std::string> r;
  for (const auto& e : *v) {
    if (!e.is_string()) fail(key, "expected strings in the list, got " + e.dump());
    r.push_back(e.get<std::string>());
  }
  return r;
}

std::optional<JsonReader> JsonReader::object(const std::string& key) const {
  const json* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_object()) fail(key, "expected an object, got " + v->dump());
  return JsonReader(*v, file_, path(key));
}

}  // namespace ohm
