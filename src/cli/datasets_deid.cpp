// `ohm datasets deid IN OUT --columns C... [--entities e1,e2] [--mode mask|replace|hash|drop]
// [--report FILE]`: de-identifies text columns of a jsonl, csv, parquet, Arrow IPC or text file,
// a row (a record batch) at a time
// (ohm/safety/deid.h, docs/deid.md).
#include "datasets_deid.h"
#include "datasets.h"

#if OHM_HAVE_HUB  // the safety module (libsodium's HMAC) is built with the Hub

#include <CLI/CLI.hpp>
#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "common.h"
#include "ohm/cli/cli.h"
#include "ohm/core/atomic_file.h"
#include "ohm/core/error.h"
#include "ohm/safety/deid.h"
#include "ohm/safety/deid_records.h"
#if OHM_HAVE_DATASETS
#include "ohm/datasets/records.h"
#endif

namespace ohm::cli {

namespace {

namespace deid = safety::deid;

struct DeidOptions {
  std::string in, out, entities, mode = "mask", report, key_file, spans;
  std::vector<std::string> columns;
  uint64_t seed = 0;
};

struct DeidState {
  CLI::App* cmd = nullptr;
  std::shared_ptr<DeidOptions> opt;
};
DeidState& state() {
  static DeidState s;
  return s;
}

std::string trim_key(std::string k) {
  while (!k.empty() && (k.back() == '\n' || k.back() == '\r' || k.back() == ' ')) k.pop_back();
  return k;
}

// The HMAC key: --key-file, else $OHM_DEID_KEY; hash mode refuses to run without one.
std::string load_key(const std::string& key_file) {
  std::string key;
  std::string from;
  if (!key_file.empty()) {
    key = trim_key(read_text("--key-file", key_file));
    from = key_file;
  } else if (const char* e = std::getenv("OHM_DEID_KEY"); e && *e) {
    key = trim_key(e);
    from = "OHM_DEID_KEY";
  } else {
    throw UsageError(
        "--mode hash needs a secret key: give --key-file FILE or set OHM_DEID_KEY (at least 16 "
        "bytes; an unkeyed hash of a phone number or an ID number is reversed by trying them all)");
  }
  if (key.size() < 16)
    throw UsageError("the hash key in " + from + " is " + std::to_string(key.size()) +
                     " bytes; use at least 16 (e.g. `head -c 32 /dev/urandom | base64`)");
  return key;
}

// jsonl and csv are read by the safety module itself; parquet, Arrow IPC and text through the
// datasets module's Arrow readers where it is built.
#if OHM_HAVE_DATASETS
const char* const kFormats =
    "jsonl: .jsonl/.ndjson/.json; csv: .csv; parquet: .parquet; arrow: .arrow/.ipc/.feather; "
    "text: .txt";
#else
const char* const kFormats =
    "jsonl: .jsonl/.ndjson/.json; csv: .csv (parquet, arrow and text need the datasets module, "
    "built where Arrow is found)";
#endif

std::string record_format(const std::string& path) {
  std::string f = deid::record_format(path);
#if OHM_HAVE_DATASETS
  if (f.empty()) f = datasets::arrow_record_format(path);
#endif
  return f;
}

std::unique_ptr<deid::RecordReader> open_reader(const std::string& path, const std::string& fmt) {
#if OHM_HAVE_DATASETS
  if (fmt != "jsonl" && fmt != "csv") return datasets::open_arrow_record_reader(path, fmt);
#endif
  return deid::open_record_reader(path, fmt);
}

std::unique_ptr<deid::RecordWriter> open_writer(const std::string& path, const std::string& fmt,
                                                const deid::RecordReader& reader) {
#if OHM_HAVE_DATASETS
  if (fmt != "jsonl" && fmt != "csv") return datasets::open_arrow_record_writer(path, fmt, reader);
#endif
  (void)reader;
  return deid::open_record_writer(path, fmt);
}

// Code-point offset of byte offset `b` in `s`.
size_t cp_offset(const std::string& s, size_t b) {
  size_t n = 0;
  for (size_t i = 0; i < b; ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++n;
  return n;
}

int run_deid(const DeidOptions& o) {
  const auto mode = deid::parse_mode(o.mode);
  if (!mode) throw UsageError("--mode: '" + o.mode + "' is not one of mask, replace, hash, drop");
  deid::EntitySet entities;
  try {
    if (!o.entities.empty()) entities = deid::parse_entity_list(o.entities);
  } catch (const InvalidArgument& e) {
    throw UsageError(e.detail().empty() ? e.what() : "--entities: " + e.detail());
  }
  deid::TransformOptions topt;
  topt.mode = *mode;
  topt.seed = o.seed;
  if (*mode == deid::Mode::Hash) topt.key = load_key(o.key_file);
  const std::string fmt = record_format(o.in);
  if (fmt.empty()) throw UsageError(o.in + ": unknown file type (" + kFormats + ")");
  if (record_format(o.out) != fmt)
    throw UsageError(o.out + ": the output must be of the input's type (" + fmt + ")");
  std::error_code ec;
  if (std::filesystem::equivalent(o.in, o.out, ec))
    throw UsageError("OUT is the input file; write to another file");

  auto reader = open_reader(o.in, fmt);
  // counts[column][entity]; never values
  std::map<std::string, std::array<uint64_t, deid::kEntityCount>> counts;
  for (const auto& c : o.columns) counts[c].fill(0);
  uint64_t rows = 0, rows_with_pii = 0, dropped = 0;
  std::unique_ptr<std::ofstream> spans;
  if (!o.spans.empty()) {
    spans = std::make_unique<std::ofstream>(o.spans, std::ios::binary);
    if (!*spans) throw IoError(ErrorContext().file(o.spans), "cannot open for writing");
  }
  write_file_atomic(o.out, [&](const std::string& tmp) {
    auto writer = open_writer(tmp, fmt, *reader);
    if (fmt != "jsonl")
      for (const auto& c : o.columns)
        if (!reader->has_column(c))
          throw FormatError(ErrorContext().file(o.in),
                            "no column '" + c + "' in the " + fmt + " file's " +
                                (fmt == "csv" ? "header" : "schema") + " (--columns)");
    while (reader->next()) {
      ++rows;
      bool any = false;
      for (const auto& c : o.columns) {
        std::string* v = reader->text(c);
        if (!v) continue;
        const auto found = deid::detect(*v, entities);
        if (spans) {
          nlohmann::json sp = nlohmann::json::array();
          for (const auto& s : found)
            sp.push_back({cp_offset(*v, s.begin), cp_offset(*v, s.end), deid::entity_name(s.type)});
          *spans << nlohmann::json{{"line", reader->line()}, {"column", c}, {"spans", sp}}.dump()
                 << '\n';
        }
        if (found.empty()) continue;
        any = true;
        for (const auto& s : found) ++counts[c][static_cast<int>(s.type)];
        if (*mode != deid::Mode::Drop) *v = deid::transform(*v, found, topt);
      }
      rows_with_pii += any;
      if (any && *mode == deid::Mode::Drop) {
        ++dropped;
        continue;
      }
      writer->write(*reader);
    }
    for (const auto& c : o.columns)
      if (!reader->has_column(c))
        throw FormatError(ErrorContext().file(o.in), "no row has a column '" + c + "' (--columns)");
    writer->finish();
  });

  nlohmann::ordered_json by_entity = nlohmann::ordered_json::object(),
                         by_column = nlohmann::ordered_json::object();
  uint64_t total = 0;
  for (const auto& [col, arr] : counts) {
    nlohmann::ordered_json cj = nlohmann::ordered_json::object();
    for (int i = 0; i < deid::kEntityCount; ++i) {
      if (!arr[i]) continue;
      const char* n = deid::entity_name(static_cast<deid::Entity>(i));
      cj[n] = arr[i];
      by_entity[n] = by_entity.value(n, uint64_t{0}) + arr[i];
      total += arr[i];
    }
    by_column[col] = cj;
  }
  if (!o.report.empty()) {
    nlohmann::ordered_json r;
    r["input"] = o.in;
    r["output"] = o.out;
    r["mode"] = o.mode;
    r["rows"] = rows;
    r["rows_with_pii"] = rows_with_pii;
    r["rows_dropped"] = dropped;
    r["entities_total"] = total;
    r["entities"] = by_entity;
    r["columns"] = by_column;
    write_file_atomic(o.report, r.dump(2) + "\n");
  }
  std::cerr << "deid: " << rows << " rows, " << total << " entities in " << rows_with_pii << " rows"
            << (dropped ? ", " + std::to_string(dropped) + " rows dropped" : "") << " -> " << o.out
            << "\n";
  return 0;
}

}  // namespace

void add_datasets_deid(CLI::App& datasets) {
  auto o = std::make_shared<DeidOptions>();
  auto* cmd = datasets.add_subcommand(
      "deid", "De-identify text columns (PII found by rules and gazetteers; docs/deid.md)");
  cmd->add_option("IN", o->in,
                  "Input file (.jsonl, .csv; .parquet, .arrow, .txt where `ohm datasets` is "
                  "built), read a row (a record batch) at a time")
      ->required()
      ->check(readable_file());
  cmd->add_option("OUT", o->out, "Output file, same type (written to a temporary file, renamed)")
      ->required();
  cmd->add_option("--columns", o->columns, "Text columns to de-identify")
      ->required()
      ->delimiter(',');
  cmd->add_option("--entities", o->entities,
                  "Comma-separated entity types (default all): email, phone, cn_id, ssn, card, "
                  "iban, ip, url, dob, person, address");
  cmd->add_option("--mode", o->mode,
                  "mask: <EMAIL>-style tags; replace: fake values of the same type (--seed); "
                  "hash: keyed HMAC-SHA256 (--key-file or OHM_DEID_KEY); drop: drop the row")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of the replace mode's fake values")
      ->capture_default_str();
  cmd->add_option("--key-file", o->key_file,
                  "HMAC key for --mode hash (else $OHM_DEID_KEY; at least 16 bytes)");
  cmd->add_option("--report", o->report,
                  "Write a JSON report: counts per entity type and column, never values");
  cmd->add_option("--spans", o->spans,
                  "Write the spans found, a jsonl line per row and column (code-point offsets "
                  "and types, no values; for evaluation)");
  state() = DeidState{cmd, o};
}

int run_datasets_deid() {
  const auto& s = state();
  if (!s.cmd || !s.cmd->parsed()) return -1;
  return run_deid(*s.opt);
}

namespace {

// `ohm datasets deid` (src/cli/datasets.cpp runs the subcommands registered here).
const Register reg("datasets", "deid", [](CLI::App& datasets) {
  add_datasets_deid(datasets);
  return Command{state().cmd, [] { return run_datasets_deid(); }};
});

}  // namespace

}  // namespace ohm::cli

#else

namespace ohm::cli {
// Built without the safety module (-DOHM_HUB=OFF): no `deid`.
void add_datasets_deid(CLI::App&) {}
int run_datasets_deid() {
  return -1;
}
}  // namespace ohm::cli

#endif
