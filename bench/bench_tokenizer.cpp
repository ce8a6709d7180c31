// Tokenizer throughput: MB/s encoding a ~1 MB mixed-language text (WikiText-2 test, Tiny
// Shakespeare, and the multilingual strings of tests/fixtures/tokenizers/corpus.json.gz), one
// line at a time on one thread and as one batch on the thread pool; plus load time and peak RSS.
//   bench_tokenizer [--write-text FILE] [TOKENIZER_FILE...]
//   bench_tokenizer --load-only TOKENIZER_FILE   (peak RSS of loading one tokenizer, nothing else)
// scripts/bench_tokenizer_hf.py FILE runs HF tokenizers on the same text for comparison.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ohm/core/thread_pool.h"
#include "ohm/tokenizers/tokenizer.h"

namespace fs = std::filesystem;
using namespace ohm::tokenizers;

static std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

static void take_lines(const std::string& src, size_t budget, std::string& out) {
  size_t pos = 0, start = out.size();
  while (pos < src.size() && out.size() - start < budget) {
    size_t e = src.find('\n', pos);
    if (e == std::string::npos) e = src.size();
    out.append(src, pos, e - pos);
    out.push_back('\n');
    pos = e + 1;
  }
}

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static long peak_rss_kb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

int main(int argc, char** argv) {
  fs::path src = OHM_SOURCE_DIR;
  fs::path shared = src / ".." / "shared" / "data";
  if (const char* e = std::getenv("OHM_SHARED_DATA")) shared = e;
  std::vector<std::string> files;
  std::string write_text;
  if (argc == 3 && std::string(argv[1]) == "--load-only") {
    long before = peak_rss_kb();
    double t0 = now();
    Tokenizer tok = Tokenizer::from_file(argv[2]);
    double load = now() - t0;
    std::printf("%s: load %.2f s, vocab %zu, peak RSS %.1f MiB (%.1f MiB before loading)\n",
                argv[2], load, tok.vocab_size(), peak_rss_kb() / 1024.0, before / 1024.0);
    return 0;
  }
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--write-text" && i + 1 < argc)
      write_text = argv[++i];
    else
      files.push_back(a);
  }
  if (files.empty()) {
    files = {(shared / "tokenizers/mistral-7b-v0.1/tokenizer.json").string(),
             (shared / "tokenizers/llama3/tokenizer.json.gz").string(),
             (shared / "tokenizers/gpt2/tokenizer.json").string()};
  }
  // The text.
  std::string text;
  take_lines(slurp(shared / "corpora/wikitext-2-raw/wiki.test.raw"), 550000, text);
  take_lines(slurp(shared / "corpora/tinyshakespeare.txt"), 250000, text);
  auto corpus = nlohmann::json::parse(
      read_maybe_compressed((src / "tests/fixtures/tokenizers/corpus.json.gz").string()));
  std::string multi;
  for (auto& h : corpus) {
    std::string s;
    std::string hs = h.get<std::string>();
    for (size_t i = 0; i + 1 < hs.size(); i += 2)
      s.push_back(static_cast<char>(std::stoi(hs.substr(i, 2), nullptr, 16)));
    if (!is_valid_utf8(s) || s.find('\n') != std::string::npos || s.size() > 300) continue;
    multi += s + "\n";
  }
  while (text.size() < 1000000) take_lines(multi, 1000000 - text.size(), text);
  if (!write_text.empty()) {
    std::ofstream(write_text, std::ios::binary) << text;
  }
  std::vector<std::string> lines;
  for (size_t pos = 0; pos < text.size();) {
    size_t e = text.find('\n', pos);
    if (e == std::string::npos) e = text.size();
    lines.push_back(text.substr(pos, e - pos + 1 <= text.size() - pos ? e - pos + 1 : e - pos));
    pos = e + 1;
  }
  double mb = static_cast<double>(text.size()) / 1e6;
  std::printf("text: %.3f MB, %zu lines, %d threads\n", mb, lines.size(),
              ohm::ThreadPool::global().size());
  std::printf("%-48s %10s %12s %12s %12s %10s\n", "tokenizer", "load s", "single MB/s",
              "batch MB/s", "ids/s(M)", "RSS MiB");
  for (const auto& f : files) {
    double t0 = now();
    Tokenizer tok = Tokenizer::from_file(f);
    double load = now() - t0;
    long rss_loaded = peak_rss_kb();
    // warm-up (fills the per-thread word caches the same way HF's are filled)
    size_t n_ids = 0;
    for (auto& l : lines) n_ids += tok.encode(l).ids.size();
    double best_single = 1e9, best_batch = 1e9;
    for (int rep = 0; rep < 3; ++rep) {
      t0 = now();
      size_t n = 0;
      for (auto& l : lines) n += tok.encode(l).ids.size();
      best_single = std::min(best_single, now() - t0);
      t0 = now();
      auto b = tok.encode_batch(lines);
      best_batch = std::min(best_batch, now() - t0);
      (void)n;
    }
    std::printf("%-48s %10.2f %12.2f %12.2f %12.2f %10.1f\n",
                fs::path(f).parent_path().filename().string().c_str(), load, mb / best_single,
                mb / best_batch, static_cast<double>(n_ids) / best_single / 1e6,
                rss_loaded / 1024.0);
    std::fflush(stdout);
  }
  return 0;
}
