#include "common.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>

#include "ohm/generation/watermark.h"
#include "ohm/tokenizers/tokenizer.h"
#ifdef OHM_HAVE_HUB
#include "ohm/safety/signing.h"
#endif

namespace ohm::cli {

namespace fs = std::filesystem;

namespace {

std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

CLI::Validator in_range(double lo, double hi, bool lo_open, bool hi_open) {
  const std::string desc =
      std::string(lo_open ? "(" : "[") + num(lo) + ", " + num(hi) + (hi_open ? ")" : "]");
  return CLI::Validator(
      [=](std::string& in) -> std::string {
        double v = 0;
        size_t pos = 0;
        try {
          v = std::stod(in, &pos);
        } catch (const std::exception&) {
          pos = 0;
        }
        if (pos == 0 || pos != in.size() || !std::isfinite(v))
          return "'" + in + "' is not a number";
        const bool ok = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
        if (!ok) return in + " is out of range: must be in " + desc;
        return {};
      },
      "in " + desc);
}

CLI::Validator int_range(int64_t lo, int64_t hi) {
  const std::string desc = std::to_string(lo) + ".." + std::to_string(hi);
  return CLI::Validator(
      [=](std::string& in) -> std::string {
        long long v = 0;
        size_t pos = 0;
        try {
          v = std::stoll(in, &pos);
        } catch (const std::out_of_range&) {
          return in + " is out of range: must be in " + desc;
        } catch (const std::exception&) {
          pos = 0;
        }
        if (pos == 0 || pos != in.size()) return "'" + in + "' is not an integer";
        if (v < lo || v > hi) return in + " is out of range: must be in " + desc;
        return {};
      },
      "in " + desc);
}

CLI::Validator readable_file(bool allow_stdin) {
  return CLI::Validator(
      [=](std::string& in) -> std::string {
        if (allow_stdin && in == "-") return {};
        std::error_code ec;
        const auto st = fs::status(in, ec);
        if (ec || !fs::exists(st)) return "'" + in + "': no such file";
        if (fs::is_directory(st)) return "'" + in + "' is a directory, not a file";
        return {};
      },
      allow_stdin ? "FILE or - (stdin)" : "FILE");
}

CLI::Validator existing_dir() {
  return CLI::Validator(
      [](std::string& in) -> std::string {
        std::error_code ec;
        const auto st = fs::status(in, ec);
        if (ec || !fs::exists(st)) return "'" + in + "': no such directory";
        if (!fs::is_directory(st)) return "'" + in + "' is not a directory";
        return {};
      },
      "DIR");
}

void verify_model_if_asked(const std::string& model_path, const std::string& key) {
  std::string k = key;
  if (k.empty())
    if (const char* e = std::getenv("OHM_VERIFY_KEY")) k = e;
  if (k.empty()) return;
#ifdef OHM_HAVE_HUB
  const std::string dir = safety::signed_dir_of(model_path);
  const auto r = safety::verify_model(dir, k);
  std::cerr << "ohm: verified " << dir << " against " << r.signature_path << " (" << r.files
            << " files, key " << r.key_fingerprint.substr(0, 16) << ")\n";
#else
  (void)model_path;
  throw UsageError(
      "--verify-key / OHM_VERIFY_KEY: this build has no signing support (OHM_HUB=OFF)");
#endif
}

CLI::Validator watermark_spec_validator() {
  return CLI::Validator(
      [](std::string& in) -> std::string {
        try {
          generation::parse_watermark_spec(in);
        } catch (const std::exception& e) {
          return e.what();
        }
        return {};
      },
      "SPEC");
}

void GuardFlags::add_to(CLI::App* cmd) {
  cmd->add_option("--guard", model,
                  "Content filter: a Llama Guard-format classifier model (Llama Guard 3: "
                  "S1-S14) checks prompts and responses (docs/safety.md)");
  cmd->add_option("--guard-rules", rules,
                  "Content filter rules: a JSON file of keyword and regex lists per category, "
                  "checked before (or without) --guard")
      ->check(readable_file());
  cmd->add_option("--guard-on", on, "What the filter checks")
      ->check(CLI::IsMember({"prompt", "response", "both"}))
      ->capture_default_str();
  cmd->add_flag("--guard-fail-open", fail_open,
                "Allow when the guard's output is neither 'safe' nor 'unsafe' + codes (default: "
                "block)");
}

std::optional<guard::GuardOptions> GuardFlags::options(int threads) const {
  if (model.empty() && rules.empty()) return std::nullopt;
  guard::GuardOptions g;
  g.model = model;
  g.rules = rules;
  g.check_prompt = on != "response";
  g.check_response = on != "prompt";
  g.fail_closed = !fail_open;
  g.threads = threads;
  if (const char* f = std::getenv("OHM_GUARD_FORCED_OUTPUT")) g.forced_output = f;
  return g;
}

CLI::Option* add_verify_key_option(CLI::App* cmd, std::string& key) {
  return cmd
      ->add_option("--verify-key", key,
                   "Refuse the model unless its directory verifies against its model.sig with "
                   "this PEM public key (default: $OHM_VERIFY_KEY; `ohm sign`, docs/safety.md)")
      ->check(readable_file());
}

int max_threads() {
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::clamp(4 * hw, 8, 1024);
}

CLI::Option* add_threads_option(CLI::App* cmd, int& threads) {
  return cmd
      ->add_option("--threads,-t", threads,
                   "Threads, 1.." + std::to_string(max_threads()) +
                       " (4 x the hardware threads; default: OHM_NUM_THREADS, else all cores)")
      ->check(int_range(1, max_threads()));
}

std::string read_text(const std::string& flag, const std::string& path) {
  if (path == "-") {
    std::string s((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (std::cin.bad()) throw IoError(ErrorContext().note(flag, "-"), "cannot read stdin");
    return s;
  }
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw UsageError(flag + " '" + path + "': no such file");
  if (fs::is_directory(st)) throw UsageError(flag + " '" + path + "' is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(flag + " '" + path + "': cannot open (permission denied?)");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw IoError(ErrorContext().file(path), "read failed");
  return s;
}

tokenizers::AutoTokenizer load_tokenizer(const std::string& model, const std::string& tokenizer) {
  if (!tokenizer.empty()) return tokenizers::AutoTokenizer::from_pretrained(tokenizer);
  const fs::path p(model);
  std::error_code ec;
  if (fs::is_regular_file(p, ec) && p.extension() == ".safetensors") {
    // AutoTokenizer would read the weights as tokenizer JSON: look next to them instead.
    const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
    for (const char* f :
         {"tokenizer.json", "tokenizer.json.gz", "tokenizer.json.xz", "tokenizer.model"})
      if (fs::is_regular_file(dir / f, ec))
        return tokenizers::AutoTokenizer::from_pretrained((dir / f).string());
    throw UsageError("no tokenizer found next to " + model + " (no tokenizer.json or " +
                     "tokenizer.model in " + dir.string() +
                     "): pass --tokenizer PATH (a tokenizer.json, tokenizer.model, .gguf or "
                     "model directory), or give the model's directory instead of the file");
  }
  return tokenizers::AutoTokenizer::from_pretrained(model);
}

namespace {
// About 3 significant digits, with at most max_decimals decimals.
std::string fmt_3sig(double v, int max_decimals) {
  const int decimals = std::min(max_decimals, v >= 100 ? 0 : v >= 10 ? 1 : v >= 1 ? 2 : 3);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}
}  // namespace

std::string fmt_seconds(double s) {
  return fmt_3sig(s, 3);
}

std::string fmt_rate(double r) {
  return fmt_3sig(r, 2);
}

double round_to(double v, int decimals) {
  const double f = std::pow(10.0, decimals);
  return std::round(v * f) / f;
}

}  // namespace ohm::cli
