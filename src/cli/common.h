// Helpers shared by the `ohm` subcommands: usage errors (exit 2), flag validators, thread
// counts, text inputs (file or stdin), tokenizer lookup and the rounding of timings.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "ohm/core/error.h"
#include "ohm/guard/guard.h"

namespace ohm::tokenizers {
class AutoTokenizer;
}

namespace ohm::cli {

// A usage error: a bad flag value, conflicting flags, a missing or unreadable file given as an
// argument. run() prints "ohm: error: <message>" and exits 2 (runtime errors exit 1).
class UsageError : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

// CLI11 validators: the value must lie in [lo, hi] (lo_open/hi_open: the bound is excluded).
// CLI11 reports a failure as "--flag: <why>" and run() exits 2.
CLI::Validator in_range(double lo, double hi, bool lo_open = false, bool hi_open = false);
// The value must be an integer in [lo, hi].
CLI::Validator int_range(int64_t lo, int64_t hi);
// An existing regular file (names it and says "is a directory" / "does not exist"); "-" (stdin)
// passes when allow_stdin.
CLI::Validator readable_file(bool allow_stdin = false);
// An existing directory.
CLI::Validator existing_dir();

// The largest --threads value accepted: 4 x the hardware threads, at least 8, at most 1024.
int max_threads();
// Adds --threads,-t (0/absent: OHM_NUM_THREADS or all cores) with the range check.
CLI::Option* add_threads_option(CLI::App* cmd, int& threads);

// The whole content of `path` ("-": stdin); `flag` names the option in errors (UsageError for a
// missing file or a directory, IoError for a read failure).
std::string read_text(const std::string& flag, const std::string& path);

// The model's tokenizer: `tokenizer` when given, else the one of `model`. A bare .safetensors or
// .gguf-less file gets the tokenizer.json / tokenizer.model next to it; when there is none, a
// UsageError says so and asks for --tokenizer.
tokenizers::AutoTokenizer load_tokenizer(const std::string& model, const std::string& tokenizer);

// Signature verification before a model loads: with a key (`key` from --verify-key, else
// $OHM_VERIFY_KEY), verifies the model's directory (a model file: its directory) against its
// model.sig (ohm/safety/signing.h) and prints one line to stderr; a model that does not verify
// is refused (SignatureError naming the files, exit 1). Without a key, does nothing.
void verify_model_if_asked(const std::string& model_path, const std::string& key);
// Adds --verify-key FILE.
CLI::Option* add_verify_key_option(CLI::App* cmd, std::string& key);

// --guard MODEL, --guard-rules FILE, --guard-on prompt|response|both, --guard-fail-open
// (ohm/guard/guard.h) for serve and chat; guard_options() gives nullopt when neither the model
// nor the rules are given. OHM_GUARD_FORCED_OUTPUT (tests) forces the guard model's output.
struct GuardFlags {
  std::string model, rules, on = "both";
  bool fail_open = false;
  void add_to(CLI::App* cmd);
  // nullopt without --guard and --guard-rules.
  std::optional<guard::GuardOptions> options(int threads) const;
};

// --watermark's value (ohm/generation/watermark.h): parsed up front, so a bad one is a usage
// error before the model loads.
CLI::Validator watermark_spec_validator();

// Seconds and rates rounded for people: 3 significant digits (at least 2 decimals below 1).
std::string fmt_seconds(double s);
std::string fmt_rate(double per_s);
// A double rounded to `decimals` places (for --json timings).
double round_to(double v, int decimals);

}  // namespace ohm::cli
