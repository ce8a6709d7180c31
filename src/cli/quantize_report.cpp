// `ohm quantize IN --report DIR [--types q8_0,q4_0,q4_k_m] [--compare MODEL]... --text FILE
// [--ctx-size 512] [--chunks N]`: quantizes IN to each type (GGUF files in DIR, as `ohm quantize`
// writes them) and measures every file's size and perplexity next to IN's own, on one token
// stream (IN's tokenizer), so the numbers compare directly. --compare adds models made elsewhere
// (a GPTQ or AWQ checkpoint of IN, `ohm quantize --method gptq` output). Writes DIR/report.json,
// report.md (the table), report.svg and report.png (bar charts; PNG when built with cairo) and
// DIR/quantize-TYPE.txt (each type's per-tensor summary).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common.h"
#include "ohm/core/atomic_file.h"
#include "ohm/core/error.h"
#include "ohm/eval/chart.h"
#include "ohm/eval/perplexity.h"
#include "ohm/formats/model_source.h"
#include "ohm/models/causal_lm.h"
#include "ohm/tokenizers/tokenizer.h"
#include "quantize_common.h"

namespace ohm::cli {
namespace {

namespace fs = std::filesystem;

struct Measured {
  std::string label, method, path;
  uint64_t bytes = 0;
  double ppl = 0, ppl_err = 0, quantize_s = 0, ppl_s = 0;
};

// Bytes on disk of a model: the file, or the weight files of a directory.
uint64_t model_bytes(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return fs::file_size(path);
  uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    const std::string ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".safetensors" || ext == ".gguf" || ext == ".bin"))
      n += e.file_size();
  }
  return n;
}

std::string md_cell(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '|')
      o += "\\|";
    else if (c == '\n')
      o += ' ';
    else
      o += c;
  }
  return o;
}

std::string fixed(double v, int d) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(d) << v;
  return o.str();
}

}  // namespace

int run_quantize_report(const QuantizeOptions& o) {
  std::vector<std::string> types = o.report_types;
  if (types.empty()) types = {"q8_0", "q4_0", "q4_k_m"};
  for (const auto& t : types) check_quantize_type(t);
  if (o.report_text.empty())
    throw UsageError("--report needs --text FILE: the text the perplexities are measured on");
  for (const auto& c : o.report_compare)
    if (!fs::exists(c)) throw UsageError("--compare '" + c + "': no such file or directory");
  const fs::path dir = o.report;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir))
    throw UsageError("--report '" + o.report + "': cannot create the directory");

  const std::string text = read_text("--text", o.report_text);
  const ModelSource src = resolve_model(o.in);
  verify_model_if_asked(src.path, o.verify_key);
  auto tok = load_tokenizer(src.path, "");
  const std::vector<TokenId> ids = tok.encode(text, /*add_special_tokens=*/true);
  if (static_cast<int64_t>(ids.size()) < o.report_ctx)
    throw UsageError("--text '" + o.report_text + "' is " + std::to_string(ids.size()) +
                     " tokens, shorter than one chunk of --ctx-size " +
                     std::to_string(o.report_ctx));
  eval::PerplexityOptions popt;
  popt.n_ctx = o.report_ctx;
  if (o.report_chunks > 0) popt.max_chunks = o.report_chunks;
  if (auto bos = tok.bos_token_id(); bos && !ids.empty() && ids.front() == *bos) popt.bos_id = *bos;

  const size_t total = 1 + types.size() + o.report_compare.size();
  size_t step = 0;
  const auto measure = [&](Measured& m) {
    if (!o.quiet)
      std::cerr << "ohm quantize --report: [" << ++step << "/" << total << "] " << m.label
                << ": perplexity over " << ids.size() << " tokens\n";
    LoadOptions lo;
    lo.threads = o.threads;
    auto model = load_causal_lm(m.path, lo);
    const auto r = eval::perplexity(*model, ids, popt);
    m.ppl = r.ppl;
    m.ppl_err = r.ppl_err;
    m.ppl_s = r.seconds;
    m.bytes = model_bytes(m.path);
  };

  std::vector<Measured> rows;
  rows.push_back({"input", "as stored", src.path});
  measure(rows.back());
  const std::string stem = fs::path(src.path).filename().replace_extension().string();
  for (const auto& t : types) {
    Measured m{t, "ohm quantize --type " + t, (dir / (stem + "-" + t + ".gguf")).string()};
    if (!o.quiet) std::cerr << "ohm quantize --report: quantizing to " << t << "\n";
    QuantizeOptions q = o;
    q.report.clear();
    q.type = t;
    q.out = m.path;
    q.quiet = true;
    q.verify_key.clear();  // verified above
    const auto t0 = std::chrono::steady_clock::now();
    {
      // The per-tensor summary goes to DIR/quantize-TYPE.txt, not between the report's lines.
      std::ofstream log(dir / ("quantize-" + t + ".txt"));
      std::streambuf* prev = std::cout.rdbuf(log.rdbuf());
      try {
        run_quantize(q);
      } catch (...) {
        std::cout.rdbuf(prev);
        throw;
      }
      std::cout.rdbuf(prev);
    }
    m.quantize_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    measure(m);
    rows.push_back(std::move(m));
  }
  for (const auto& c : o.report_compare) {
    Measured m{fs::path(c).filename().string(), "--compare", c};
    if (m.label.empty()) m.label = c;
    measure(m);
    rows.push_back(std::move(m));
  }

  // JSON
  const Measured& base = rows.front();
  nlohmann::ordered_json j = {{"model", src.path},
                              {"text", o.report_text},
                              {"tokens", ids.size()},
                              {"n_ctx", o.report_ctx},
                              {"rows", nlohmann::ordered_json::array()}};
  for (const auto& m : rows)
    j["rows"].push_back(
        {{"label", m.label},
         {"method", m.method},
         {"path", m.path},
         {"bytes", m.bytes},
         {"ppl", m.ppl},
         {"ppl_err", m.ppl_err},
         {"ppl_delta_pct", base.ppl > 0 ? 100.0 * (m.ppl / base.ppl - 1.0) : 0.0},
         {"size_ratio", base.bytes ? static_cast<double>(m.bytes) / base.bytes : 0.0},
         {"quantize_seconds", round_to(m.quantize_s, 3)},
         {"perplexity_seconds", round_to(m.ppl_s, 3)}});
  write_file_atomic((dir / "report.json").string(), j.dump(2) + "\n");

  // Markdown table
  std::ostringstream md;
  md << "# Quantization report: " << md_cell(fs::path(src.path).filename().string()) << "\n\n"
     << "Perplexity of `" << md_cell(o.report_text) << "` (" << ids.size() << " tokens, n_ctx "
     << o.report_ctx
     << (o.report_chunks > 0 ? ", " + std::to_string(o.report_chunks) + " chunks" : std::string())
     << "), every model on the same tokens.\n\n"
     << "| model | method | size (MB) | size vs input | perplexity | vs input |\n"
     << "|---|---|---:|---:|---:|---:|\n";
  for (const auto& m : rows) {
    const double ratio = base.bytes ? static_cast<double>(m.bytes) / base.bytes : 0.0;
    const double delta = base.ppl > 0 ? 100.0 * (m.ppl / base.ppl - 1.0) : 0.0;
    md << "| " << md_cell(m.label) << " | " << md_cell(m.method) << " | "
       << fixed(static_cast<double>(m.bytes) / 1e6, 2) << " | " << fixed(100.0 * ratio, 1) << "% | "
       << fixed(m.ppl, 4) << " ± " << fixed(m.ppl_err, 4) << " | " << (delta >= 0 ? "+" : "")
       << fixed(delta, 2) << "% |\n";
  }
  const bool png = eval::have_png_charts();
  md << "\n![size and perplexity](" << (png ? "report.png" : "report.svg") << ")\n";
  write_file_atomic((dir / "report.md").string(), md.str());

  // Charts
  std::vector<eval::BarPanel> panels(3);
  panels[0].title = "size on disk (MB)";
  panels[0].decimals = 1;
  panels[1].title = "perplexity (lower is better)";
  panels[1].decimals = 3;
  panels[2].title = "perplexity vs input (%)";
  panels[2].decimals = 2;
  for (const auto& m : rows) {
    panels[0].bars.emplace_back(m.label, static_cast<double>(m.bytes) / 1e6);
    panels[1].bars.emplace_back(m.label, m.ppl);
    panels[2].bars.emplace_back(m.label, base.ppl > 0 ? 100.0 * (m.ppl / base.ppl - 1.0) : 0.0);
  }
  panels[0].highlight = panels[1].highlight = panels[2].highlight = 0;
  const std::string title = "Quantization: " + fs::path(src.path).filename().string();
  write_file_atomic((dir / "report.svg").string(), eval::bar_chart_svg(title, panels));
  if (png) eval::write_bar_chart_png((dir / "report.png").string(), title, panels);

  std::cout << md.str().substr(md.str().find("| model"));
  std::cout << "wrote " << (dir / "report.md").string() << ", report.json, report.svg"
            << (png ? ", report.png" : " (no report.png: built without cairo)") << "\n";
  return 0;
}

}  // namespace ohm::cli
