// `ohm inspect MODEL [--json]`: what a checkpoint holds, without reading tensor data.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "common.h"
#include "ohm/cli/cli.h"
#include "ohm/core/error.h"
#include "ohm/formats/config.h"
#include "ohm/formats/gguf.h"
#include "ohm/formats/json_reader.h"
#include "ohm/formats/model_source.h"
#include "ohm/formats/safetensors.h"
#include "ohm/models/arch.h"

namespace ohm::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct TensorRow {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t bytes;
  std::string file;
};

std::string human_count(uint64_t n) {
  std::ostringstream ss;
  ss << std::fixed << std::setprecision(2);
  if (n >= 1'000'000'000)
    ss << n / 1e9 << "B";
  else if (n >= 1'000'000)
    ss << n / 1e6 << "M";
  else if (n >= 1'000)
    ss << n / 1e3 << "K";
  else
    ss << n;
  return ss.str();
}

std::string human_bytes(uint64_t n) {
  std::ostringstream ss;
  ss << std::fixed << std::setprecision(2);
  if (n >= (1ull << 30))
    ss << n / double(1ull << 30) << " GiB";
  else if (n >= (1ull << 20))
    ss << n / double(1ull << 20) << " MiB";
  else if (n >= (1ull << 10))
    ss << n / double(1ull << 10) << " KiB";
  else
    ss << n << " B";
  return ss.str();
}

json source_json(const ModelSource& src) {
  json j = {{"path", src.path}};
  j["kind"] = src.kind == SourceKind::Directory  ? "directory"
              : src.kind == SourceKind::GgufFile ? "gguf"
                                                 : "safetensors";
  if (!src.repo_id.empty()) {
    j["repo_id"] = src.repo_id;
    j["revision"] = src.revision;
    j["commit"] = src.commit;
  }
  return j;
}

json generation_json(const GenerationConfig& g) {
  json j = {{"max_length", g.max_length},
            {"do_sample", g.do_sample},
            {"num_beams", g.num_beams},
            {"temperature", g.temperature},
            {"top_k", g.top_k},
            {"top_p", g.top_p},
            {"repetition_penalty", g.repetition_penalty},
            {"eos_token_id", g.eos_token_id}};
  if (g.max_new_tokens) j["max_new_tokens"] = *g.max_new_tokens;
  if (g.min_p) j["min_p"] = *g.min_p;
  if (g.bos_token_id) j["bos_token_id"] = *g.bos_token_id;
  if (g.pad_token_id) j["pad_token_id"] = *g.pad_token_id;
  return j;
}

}  // namespace

void inspect(const InspectOptions& opt, std::ostream& out) {
  const ModelSource src = resolve_model(opt.model);
  verify_model_if_asked(src.path, opt.verify_key);
  json report;
  report["source"] = source_json(src);
  std::vector<TensorRow> rows;
  std::optional<ModelConfig> config;
  std::string format;

  if (src.kind == SourceKind::GgufFile) {
    const gguf::GGUFFile g = gguf::GGUFFile::open(src.path);
    format = "gguf";
    json meta = json::object();
    for (const auto& [k, v] : g.metadata()) meta[k] = v.to_json(16);
    report["gguf"] = {{"version", g.version()},
                      {"alignment", g.alignment()},
                      {"tensor_count", g.tensors().size()},
                      {"metadata_count", g.metadata().size()},
                      {"metadata", meta}};
    if (auto arch = g.get_string("general.architecture")) report["architecture"] = *arch;
    for (const auto& t : g.tensors()) rows.push_back({t.name, t.dtype, t.shape, t.nbytes, ""});
  } else {
    const auto ck = safetensors::Checkpoint::open(src.path);
    format = "safetensors";
    json files = json::array();
    for (const auto& s : ck.shards()) files.push_back(fs::path(s.path()).filename().string());
    report["files"] = files;
    if (!ck.index_path().empty()) report["index"] = ck.index_path();
    if (!ck.metadata().empty()) report["metadata"] = ck.metadata();
    for (const auto& t : ck.tensors())
      rows.push_back({t.info.name, t.info.dtype, t.info.shape, t.info.nbytes(),
                      fs::path(ck.shards()[t.shard].path()).filename().string()});
    if (auto cfg = src.file("config.json")) {
      config = load_model_config(*cfg);
      json cj = json::object();
      for (const auto& [k, v] : summarize(*config)) cj[k] = v;
      report["config"] = cj;
      report["architecture"] = common(*config).architectures.empty()
                                   ? common(*config).model_type
                                   : common(*config).architectures[0];
      report["model_type"] = common(*config).model_type;
    }
    if (auto gc = src.file("generation_config.json"))
      report["generation_config"] = generation_json(load_generation_config(*gc));
    json tok = json::array();
    for (const char* f :
         {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"})
      if (src.file(f)) tok.push_back(f);
    if (!tok.empty()) report["tokenizer_files"] = tok;
    if (auto tc = src.file("tokenizer_config.json")) {
      const json t = load_tokenizer_config(*tc);
      report["chat_template"] = t.contains("chat_template") && !t["chat_template"].is_null();
    }
  }
  report["format"] = format;

  uint64_t params = 0, bytes = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_dtype;  // count, params
  json tensors = json::array();
  for (const auto& r : rows) {
    const uint64_t n = checked_numel(r.shape).value_or(0);
    params += n;
    bytes += r.bytes;
    auto& d = by_dtype[std::string(name(r.dtype))];
    d.first += 1;
    d.second += n;
    json t = {{"name", r.name}, {"dtype", name(r.dtype)}, {"shape", r.shape}, {"bytes", r.bytes}};
    if (!r.file.empty()) t["file"] = r.file;
    tensors.push_back(t);
  }
  report["parameters"] = params;
  report["tensor_bytes"] = bytes;
  json dts = json::object();
  for (const auto& [k, v] : by_dtype) dts[k] = {{"tensors", v.first}, {"parameters", v.second}};
  report["dtypes"] = dts;
  report["tensors"] = tensors;

  if (opt.json) {
    out << report.dump(2) << "\n";
    return;
  }

  out << "model:        " << src.path;
  if (!src.repo_id.empty())
    out << "  (" << src.repo_id << "@" << src.revision << ", " << src.commit.substr(0, 12) << ")";
  out << "\nformat:       " << format;
  if (report.contains("files")) out << " (" << report["files"].size() << " file(s))";
  out << "\n";
  if (report.contains("architecture"))
    out << "architecture: " << report["architecture"].get<std::string>() << "\n";
  out << "parameters:   " << human_count(params) << " (" << params << ")\n";
  out << "tensor data:  " << human_bytes(bytes) << "\n";
  out << "dtypes:      ";
  for (const auto& [k, v] : by_dtype) out << " " << k << " x" << v.first;
  out << "\n";
  if (report.contains("config")) {
    out << "config:\n";
    for (const auto& [k, v] : summarize(*config))
      out << "  " << std::left << std::setw(26) << k << v << "\n";
  }
  if (report.contains("generation_config"))
    out << "generation_config: " << report["generation_config"].dump() << "\n";
  if (report.contains("tokenizer_files")) {
    out << "tokenizer:   ";
    for (const auto& f : report["tokenizer_files"]) out << " " << f.get<std::string>();
    if (report.value("chat_template", false)) out << " (chat template)";
    out << "\n";
  }
  if (report.contains("gguf")) {
    const auto& g = report["gguf"];
    out << "gguf:         v" << g["version"] << ", alignment " << g["alignment"] << ", "
        << g["metadata_count"] << " metadata keys\n";
    for (auto it = g["metadata"].begin(); it != g["metadata"].end(); ++it) {
      std::string v = it->is_string() ? it->get<std::string>() : it->dump();
      if (v.size() > 100) v = v.substr(0, 97) + "...";
      out << "  " << std::left << std::setw(40) << it.key() << v << "\n";
    }
  }
  out << "tensors (" << rows.size() << "):\n";
  size_t w = 4;
  for (const auto& r : rows) w = std::max(w, r.name.size());
  for (const auto& r : rows)
    out << "  " << std::left << std::setw(static_cast<int>(w)) << r.name << "  " << std::setw(6)
        << name(r.dtype) << "  " << std::setw(18) << shape_str(r.shape) << "  " << r.bytes << "\n";
}

namespace {
const Register reg("inspect", [](CLI::App& app) {
  auto opt = std::make_shared<InspectOptions>();
  auto* cmd = app.add_subcommand(
      "inspect",
      "Show a checkpoint: architecture, parameter count, dtypes, tensors, config, GGUF metadata");
  cmd->add_option("model", opt->model, "Model directory, .gguf/.safetensors file or Hub id")
      ->required();
  cmd->add_flag("--json", opt->json, "Print one JSON object instead of text");
  add_verify_key_option(cmd, opt->verify_key);
  cmd->footer(
      "MODEL: a local directory (config.json + safetensors), a .gguf or .safetensors file, or a\n"
      "Hub id org/name[@revision] in the HF cache (HF_HUB_CACHE, HF_HOME/hub).");
  return Command{cmd, [opt] {
                   inspect(*opt, std::cout);
                   return 0;
                 }};
});
}  // namespace

}  // namespace ohm::cli
