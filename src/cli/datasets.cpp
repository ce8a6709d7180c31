// `ohm datasets info | head | convert | map-tokenize | dedup | push`: HF `datasets`-compatible
// data on Arrow/Parquet C++ (ohm/datasets; docs/datasets.md). SOURCE is a data file, a dataset
// directory or a Hub dataset repo id. Other files add subcommands to the "datasets" group of
// Register (datasets.h).
#include "datasets.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "common.h"
#include "ohm/core/error.h"

#if OHM_HAVE_DATASETS
#include "ohm/datasets/dataset.h"
#include "ohm/datasets/repo.h"
#include "ohm/datasets/transforms.h"
#include "ohm/hub/client.h"
#endif

namespace ohm::cli {

namespace {

#if OHM_HAVE_DATASETS
namespace ds = ohm::datasets;
namespace fs = std::filesystem;

// "\r<verb> <rows> rows (<rate> rows/s)" on stderr at most 5 times a second, when it is a tty.
class Progress {
 public:
  explicit Progress(std::string verb) : verb_(std::move(verb)), on_(::isatty(STDERR_FILENO)) {}
  void operator()(int64_t rows) {
    rows_ = rows;
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    draw();
  }
  void done() {
    if (!on_) return;
    draw();
    std::cerr << "\n";
  }

 private:
  void draw() {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    std::cerr << "\r" << verb_ << " " << rows_ << " rows"
              << (s > 0 ? " (" + fmt_rate(static_cast<double>(rows_) / s) + " rows/s)" : "")
              << std::flush;
  }
  std::string verb_;
  bool on_;
  int64_t rows_ = 0;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now(), last_{};
};

struct Source {
  std::string source, config, split, revision = "main";
  void add_to(CLI::App* cmd, bool with_split) {
    cmd->add_option("SOURCE", source, "Data file, dataset directory or Hub dataset repo id")
        ->required();
    cmd->add_option("--config", config, "Config name (default: the README's default)");
    if (with_split) cmd->add_option("--split", split, "Split (default: every split)");
    cmd->add_option("--revision", revision, "Hub revision")->capture_default_str();
  }
};

bool is_file_out(const std::string& out, ds::FileFormat& f) {
  return ds::format_of(out, f) && (f == ds::FileFormat::Parquet || f == ds::FileFormat::Arrow);
}

using Transform = std::function<std::shared_ptr<arrow::RecordBatchReader>(
    std::shared_ptr<arrow::RecordBatchReader>)>;

// Writes every selected split of `src` through `tf` to OUT: a .parquet/.arrow file (one split)
// or a directory of <split>.<format> files, which load_dataset reads back as the same splits.
void write_splits(const Source& src, const std::string& out, const std::string& format,
                  const std::string& verb, const Transform& tf) {
  auto layout = ds::resolve(src.source, src.revision, ::isatty(STDERR_FILENO));
  const auto& cfg = ds::select_config(layout, src.config);
  std::vector<const ds::SplitFiles*> splits;
  if (!src.split.empty()) {
    splits.push_back(&ds::select_split(layout, cfg, src.split));
  } else {
    for (const auto& s : cfg.splits) splits.push_back(&s);
  }
  ds::FileFormat f;
  const bool single = is_file_out(out, f);
  if (!single && !ds::parse_format(format, f)) {
    throw UsageError("--format: '" + format + "' (parquet or arrow)");
  }
  if (single && splits.size() > 1) {
    throw UsageError(out + ": one output file for " + std::to_string(splits.size()) +
                     " splits; name a directory or pick one with --split");
  }
  for (const auto* s : splits) {
    const std::string path =
        single
            ? out
            : (fs::path(out) / (s->name + (f == ds::FileFormat::Parquet ? ".parquet" : ".arrow")))
                  .string();
    Progress p(verb + " " + s->name + ":");
    ds::WriteOptions wo;
    wo.format = f;
    wo.progress = [&p](int64_t rows) { p(rows); };
    auto reader = tf(ds::open_files(s->files));
    const int64_t rows = ds::write_file(*reader, path, wo);
    p(rows);
    p.done();
    std::cout << path << ": " << rows << " rows\n";
  }
}

// Reads every batch of the files (decoding all columns); returns the rows.
int64_t scan(const std::vector<std::string>& files) {
  auto r = ds::open_files(files);
  int64_t rows = 0;
  for (;;) {
    std::shared_ptr<arrow::RecordBatch> b;
    ds::check(r->ReadNext(&b), files.front());
    if (!b) break;
    rows += b->num_rows();
  }
  return rows;
}

int info(const Source& src, bool as_json, bool do_scan) {
  auto layout = ds::resolve(src.source, src.revision, ::isatty(STDERR_FILENO));
  nlohmann::ordered_json j = {{"dataset", layout.root},
                              {"configs", nlohmann::ordered_json::array()}};
  for (const auto& c : layout.configs) {
    if (!src.config.empty() && c.name != src.config) continue;
    nlohmann::ordered_json jc = {{"config_name", c.name},
                                 {"default", c.is_default},
                                 {"splits", nlohmann::ordered_json::array()}};
    for (const auto& s : c.splits) {
      int64_t rows = 0;
      double seconds = 0;
      if (do_scan) {
        const auto t0 = std::chrono::steady_clock::now();
        rows = scan(s.files);
        seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      } else {
        for (const auto& f : s.files) rows += ds::count_rows(f);
      }
      auto r = ds::open_files(s.files);
      // the features in column order (nlohmann::json objects sort their keys)
      const auto features = ds::features_of(*r->schema());
      nlohmann::ordered_json ordered = nlohmann::ordered_json::object();
      for (const auto& f : r->schema()->fields()) ordered[f->name()] = features[f->name()];
      jc["features"] = ordered;
      nlohmann::ordered_json js = {{"name", s.name}, {"num_rows", rows}, {"files", s.files}};
      if (do_scan) js["scan_seconds"] = round_to(seconds, 6);
      jc["splits"].push_back(js);
    }
    j["configs"].push_back(jc);
  }
  if (!src.config.empty() && j["configs"].empty()) ds::select_config(layout, src.config);  // throws
  if (as_json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "dataset: " << layout.root << "\n";
  for (const auto& c : j["configs"]) {
    std::cout << "config " << c["config_name"].get<std::string>()
              << (c["default"].get<bool>() ? " (default)" : "")
              << "\n  features: " << c.value("features", nlohmann::ordered_json::object()).dump()
              << "\n";
    for (const auto& s : c["splits"]) {
      std::cout << "  split " << s["name"].get<std::string>() << ": "
                << s["num_rows"].get<int64_t>() << " rows, " << s["files"].size() << " file(s)";
      if (s.contains("scan_seconds")) {
        std::cout << ", read in " << fmt_seconds(s["scan_seconds"].get<double>()) << " s";
      }
      std::cout << "\n";
    }
  }
  return 0;
}

int head(const Source& src, int64_t n) {
  auto layout = ds::resolve(src.source, src.revision, ::isatty(STDERR_FILENO));
  const auto& cfg = ds::select_config(layout, src.config);
  const auto& split =
      src.split.empty() ? cfg.splits.at(0) : ds::select_split(layout, cfg, src.split);
  auto r = ds::open_files(split.files);
  int64_t printed = 0;
  while (printed < n) {
    std::shared_ptr<arrow::RecordBatch> b;
    ds::check(r->ReadNext(&b), split.name);
    if (!b) break;
    for (int64_t i = 0; i < b->num_rows() && printed < n; ++i, ++printed) {
      std::cout << ds::row_to_json(*b, i).dump(-1, ' ', false,
                                               nlohmann::json::error_handler_t::replace)
                << "\n";
    }
  }
  return 0;
}
#endif

}  // namespace

namespace {

const Register reg("datasets", [](CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "datasets",
      "Datasets as HF datasets has them: info, head, convert, map-tokenize, dedup, push; and deid "
      "(de-identification)");
  std::vector<Command> subs;
  for (auto& [name, setup] : registered("datasets")) subs.push_back(setup(*cmd));
#if !OHM_HAVE_DATASETS
  // Only the subcommands that do not read datasets through Arrow (deid) are here.
  cmd->allow_extras();
  return Command{
      cmd, [subs] {
        for (const auto& s : subs)
          if (s.app->parsed()) return s.run();
        std::cerr << "ohm: 'datasets' is not in this build (only `ohm datasets deid` is): it "
                     "needs Apache Arrow C++, found at configure time in build/hub-venv's "
                     "pyarrow (run scripts/hub-client-venv.sh, then configure again; "
                     "docs/datasets.md)\n";
        return 1;
      }};
#else
  cmd->require_subcommand(1);
  return Command{cmd, [subs] {
                   for (const auto& s : subs)
                     if (s.app->parsed()) return s.run();
                   return 2;
                 }};
#endif
});

#if OHM_HAVE_DATASETS
const Register reg_info("datasets", "info", [](CLI::App& parent) {
  auto o = std::make_shared<Source>();
  auto json = std::make_shared<bool>(false);
  auto do_scan = std::make_shared<bool>(false);
  auto* cmd = parent.add_subcommand("info", "Configs, splits, row counts, files and features");
  o->add_to(cmd, false);
  cmd->add_flag("--json", *json, "JSON output");
  cmd->add_flag("--scan", *do_scan, "Read every file through (decode all columns) and time it");
  return Command{cmd, [o, json, do_scan] { return info(*o, *json, *do_scan); }};
});

const Register reg_head("datasets", "head", [](CLI::App& parent) {
  auto o = std::make_shared<Source>();
  auto n = std::make_shared<int64_t>(5);
  auto* cmd = parent.add_subcommand("head", "Print the first rows of a split as JSON lines");
  o->add_to(cmd, true);
  cmd->add_option("-n,--rows", *n, "Rows")->capture_default_str()->check(int_range(0, INT64_MAX));
  return Command{cmd, [o, n] { return head(*o, *n); }};
});

const Register reg_convert("datasets", "convert", [](CLI::App& parent) {
  auto o = std::make_shared<Source>();
  auto out = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("parquet");
  auto* cmd = parent.add_subcommand(
      "convert", "Write splits as parquet or Arrow IPC (with the features load_dataset reads)");
  o->add_to(cmd, true);
  cmd->add_option("OUT", *out,
                  "A .parquet/.arrow file (one split) or a directory (<split>.parquet each)")
      ->required();
  cmd->add_option("--format", *format, "parquet or arrow, for a directory OUT")
      ->capture_default_str();
  return Command{cmd, [o, out, format] {
                   write_splits(*o, *out, *format, "convert", [](auto r) { return r; });
                   return 0;
                 }};
});

struct TokOpts {
  Source src;
  std::string out, format = "parquet", tokenizer;
  ds::TokenizeOptions t;
  bool no_special = false, drop = false;
  int threads = 0;
  int64_t batch = 1000;
};

const Register reg_tok("datasets", "map-tokenize", [](CLI::App& parent) {
  auto o = std::make_shared<TokOpts>();
  auto* cmd = parent.add_subcommand(
      "map-tokenize",
      "Add input_ids and attention_mask from a tokenizer (batched, multi-threaded)");
  o->src.add_to(cmd, true);
  cmd->add_option("OUT", o->out, "A .parquet/.arrow file or a directory")->required();
  cmd->add_option("--tokenizer", o->tokenizer, "Model directory, Hub id, tokenizer.json or .gguf")
      ->required();
  cmd->add_option("--column", o->t.column, "Text column")->capture_default_str();
  cmd->add_flag("--no-special", o->no_special, "Do not add special tokens (BOS...)");
  cmd->add_flag("--remove-columns", o->drop, "Keep only input_ids and attention_mask");
  cmd->add_option("--batch-size", o->batch, "Rows per batch")
      ->capture_default_str()
      ->check(int_range(1, 1 << 24));
  cmd->add_option("--format", o->format, "parquet or arrow, for a directory OUT")
      ->capture_default_str();
  add_threads_option(cmd, o->threads);
  return Command{cmd, [o] {
                   auto tok = load_shared_tokenizer(o->tokenizer);
                   o->t.add_special_tokens = !o->no_special;
                   o->t.keep_columns = !o->drop;
                   ds::MapOptions mo;
                   mo.threads = o->threads;
                   mo.batch_rows = o->batch;
                   write_splits(o->src, o->out, o->format, "map-tokenize", [o, tok, mo](auto r) {
                     return ds::map_tokenize(r, *tok, o->t, mo);
                   });
                   return 0;
                 }};
});

const Register reg_dedup("datasets", "dedup", [](CLI::App& parent) {
  auto o = std::make_shared<Source>();
  auto out = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("parquet");
  auto d = std::make_shared<ds::DedupOptions>();
  auto* cmd = parent.add_subcommand(
      "dedup", "Drop duplicate rows: exact (hash of the columns) or near (MinHash-LSH, --near)");
  o->add_to(cmd, true);
  cmd->add_option("OUT", *out, "A .parquet/.arrow file or a directory")->required();
  cmd->add_option("--columns", d->columns,
                  "Columns compared (exact: default all; --near: one text column)");
  cmd->add_flag("--near", d->near, "Near-duplicates by MinHash-LSH over word 5-grams");
  cmd->add_option("--threshold", d->threshold, "Jaccard similarity for --near")
      ->capture_default_str()
      ->check(in_range(0, 1, true));
  cmd->add_option("--num-perm", d->num_perm, "MinHash permutations")
      ->capture_default_str()
      ->check(int_range(2, 1024));
  cmd->add_option("--format", *format, "parquet or arrow, for a directory OUT")
      ->capture_default_str();
  return Command{cmd, [o, out, format, d] {
                   if (d->near && d->columns.empty()) d->columns = {"text"};
                   write_splits(*o, *out, *format, "dedup", [d](auto r) {
                     auto res = ds::dedup(ds::read_all(r), *d);
                     std::cerr << "dedup: removed " << res.removed << " of "
                               << res.table->num_rows() + res.removed << " rows\n";
                     return std::static_pointer_cast<arrow::RecordBatchReader>(
                         std::make_shared<arrow::TableBatchReader>(res.table));
                   });
                   return 0;
                 }};
});

const Register reg_push("datasets", "push", [](CLI::App& parent) {
  auto o = std::make_shared<hub::PushOptions>();
  auto* cmd = parent.add_subcommand("push", "Upload a dataset directory as a Hub dataset repo");
  cmd->add_option("DIR", o->folder, "Dataset directory")->required()->check(existing_dir());
  cmd->add_option("REPO_ID", o->repo_id, "ns/name")->required();
  cmd->add_option("--message,-m", o->message, "Commit message");
  cmd->add_option("--revision", o->revision, "Branch")->capture_default_str();
  cmd->add_flag("--private", o->is_private, "Create the repo private");
  return Command{cmd, [o] {
                   // check it loads before uploading: a dataset the Hub cannot serve is a local
                   // error
                   auto layout = ds::resolve_local(o->folder);
                   for (const auto& c : layout.configs)
                     for (const auto& s : c.splits) (void)ds::open_files(s.files)->schema();
                   o->type = hub::RepoType::Dataset;
                   o->progress = ::isatty(STDERR_FILENO);
                   auto r = hub::push(*o);
                   std::cout << (r.committed ? r.commit_url : "no changes: " + r.commit) << "\n";
                   return 0;
                 }};
});
#endif

}  // namespace

}  // namespace ohm::cli
