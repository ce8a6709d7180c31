#include "ohm/eval/model_index.h"

#include "ohm/core/error.h"

namespace ohm::eval {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

std::string str(const ojson& o, const char* k) {
  if (!o.is_object()) return {};
  auto it = o.find(k);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// lm-eval indents subtask aliases (" - abstract_algebra").
std::string clean_alias(std::string a) {
  const size_t f = a.find_first_not_of(" -");
  return f == std::string::npos ? std::string() : a.substr(f);
}

}  // namespace

json model_index_results(const ojson& r) {
  if (!r.is_object() || !r.contains("results") || !r["results"].is_object())
    throw FormatError("eval results: no \"results\" object");
  const ojson empty = ojson::object();
  const ojson& configs = r.contains("configs") && r["configs"].is_object() ? r["configs"] : empty;
  const ojson& nshot = r.contains("n-shot") && r["n-shot"].is_object() ? r["n-shot"] : empty;
  json out = json::array();
  for (const auto& [name, vals] : r["results"].items()) {
    if (!vals.is_object()) continue;
    json metrics = json::array();
    for (const auto& [k, v] : vals.items()) {
      const size_t comma = k.find(',');
      if (comma == std::string::npos || !v.is_number() || k.find("_stderr,") != std::string::npos)
        continue;
      const std::string metric = k.substr(0, comma), filter = k.substr(comma + 1);
      json m = {{"type", metric}, {"value", json(v)}, {"name", metric}};
      if (filter != "none" && !filter.empty()) {
        m["config"] = filter;
        m["name"] = metric + " (" + filter + ")";
      }
      m["verified"] = false;
      const std::string se = metric + "_stderr," + filter;
      if (vals.contains(se) && vals[se].is_number()) m["stderr"] = json(vals[se]);
      metrics.push_back(std::move(m));
    }
    if (metrics.empty()) continue;
    json ds = {{"name", name}, {"type", name}};
    if (std::string a = clean_alias(str(vals, "alias")); !a.empty()) ds["name"] = a;
    if (configs.contains(name)) {
      const ojson& c = configs[name];
      if (auto dn = str(c, "dataset_name"); !dn.empty()) ds["config"] = dn;
      // lm-eval scores the test split when the task has one, else validation.
      if (auto s = str(c, "test_split"); !s.empty())
        ds["split"] = s;
      else if (auto s2 = str(c, "validation_split"); !s2.empty())
        ds["split"] = s2;
    }
    if (nshot.contains(name) && nshot[name].is_number_integer())
      ds["args"] = {{"num_few_shot", nshot[name].get<int64_t>()}};
    out.push_back({{"task", {{"type", "text-generation"}, {"name", "Text Generation"}}},
                   {"dataset", ds},
                   {"metrics", metrics}});
  }
  return out;
}

}  // namespace ohm::eval
