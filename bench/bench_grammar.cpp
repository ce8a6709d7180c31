// Structured-output mask cost: GrammarMatcher::fill_mask time per token for a JSON schema, in
// the states a response goes through (object start, key, inside a string, number, after a
// value...), on real vocabularies. Also the one-off costs: TokenBytes (byte trie) and compile.
//   bench_grammar [TOKENIZER_FILE...]   (default: mistral-7b-v0.1 (32k) and llama3 (128k) from
//                                        ../shared/data/tokenizers)
// Each state: the first fill_mask of a fresh matcher (cold: its set-transition memo is empty)
// and the median of 20 more (warm); then the masks for every token of a tokenized document.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ohm/generation/grammar.h"
#include "ohm/tokenizers/tokenizer.h"

namespace fs = std::filesystem;
using namespace ohm::generation;
using Clock = std::chrono::steady_clock;

static double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

int main(int argc, char** argv) {
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) files.push_back(argv[i]);
  if (files.empty()) {
    fs::path shared = fs::path(OHM_SOURCE_DIR) / ".." / "shared" / "data" / "tokenizers";
    files = {(shared / "mistral-7b-v0.1" / "tokenizer.json").string(),
             (shared / "llama3" / "tokenizer.json.gz").string()};
  }
  const char* schema = R"({"type":"object","properties":{
      "name":{"type":"string"},"age":{"type":"integer","minimum":0,"maximum":150},
      "email":{"type":"string","format":"email"},
      "tags":{"type":"array","items":{"type":"string"}},
      "scores":{"type":"array","items":{"type":"number"}},
      "meta":{"type":"object","additionalProperties":true}},
    "required":["name","age","tags"]})";
  // (label, forced prefix) pairs: the state after the prefix.
  const std::vector<std::pair<const char*, const char*>> states = {
      {"start", ""},
      {"object open", "{"},
      {"key", "{\"na"},
      {"string value", "{\"name\": \"Ada Lo"},
      {"after string", "{\"name\": \"Ada\""},
      {"integer", "{\"name\": \"Ada\", \"age\": 3"},
      {"email (regex)", "{\"name\": \"A\", \"age\": 3, \"email\": \"ada@ex"},
      {"array item", "{\"name\": \"A\", \"age\": 3, \"tags\": [\"x\", "},
      {"number item", "{\"name\": \"A\", \"age\": 3, \"tags\": [], \"scores\": [1.5, "},
      {"any value", "{\"name\": \"A\", \"age\": 3, \"tags\": [], \"meta\": {\"k\": "},
      {"any key", "{\"name\": \"A\", \"age\": 3, \"tags\": [], \"meta\": {"},
  };
  auto t0 = Clock::now();
  Grammar g = Grammar::json_schema(nlohmann::ordered_json::parse(schema));
  std::printf("compile schema: %.3f ms (%zu states)\n", ms_since(t0), g.num_states());
  for (const auto& f : files) {
    auto tok = ohm::tokenizers::Tokenizer::from_file(f);
    t0 = Clock::now();
    auto vocab = TokenBytes::from_tokenizer(tok);
    std::printf("\n%s: vocab %zu, TokenBytes %.1f ms\n", f.c_str(), vocab->vocab_size(),
                ms_since(t0));
    std::vector<uint8_t> allowed;
    std::printf("  %-14s %9s %9s\n", "state", "cold ms", "warm ms");
    for (const auto& [label, prefix] : states) {
      GrammarMatcher m(g, vocab);
      if (!m.accept_bytes(prefix)) {
        std::printf("  %-14s prefix refused\n", label);
        continue;
      }
      auto c0 = Clock::now();
      m.fill_mask(allowed, {});  // cold: a fresh matcher's first mask here
      double cold = ms_since(c0);
      std::vector<double> t;
      for (int i = 0; i < 20; ++i) {
        auto s = Clock::now();
        m.fill_mask(allowed, {});
        t.push_back(ms_since(s));
      }
      std::sort(t.begin(), t.end());
      size_t n = std::count(allowed.begin(), allowed.end(), 1);
      std::printf("  %-14s %9.3f %9.3f  (%zu allowed)\n", label, cold, t[t.size() / 2], n);
    }
    // A whole response: the mask before every token of a tokenized document.
    const char* doc =
        R"({"name": "Ada Lovelace", "age": 36, "email": "ada@analytical.engine.org", )"
        R"("tags": ["mathematician", "writer", "first programmer"], )"
        R"("scores": [9.5, 10, 8.25], "meta": {"born": 1815, "note": "Note G"}})";
    auto ids = tok.encode_ids(doc, false);
    GrammarMatcher m(g, vocab);
    if (!ids.empty() && vocab->bytes(ids[0]).starts_with(" ")) {  // SentencePiece dummy prefix
      m.accept_bytes(vocab->bytes(ids[0]).substr(1));
      ids.erase(ids.begin());
    }
    double total = 0, worst = 0;
    size_t done = 0;
    for (auto id : ids) {
      auto s = Clock::now();
      m.fill_mask(allowed, {});
      double ms = ms_since(s);
      total += ms;
      worst = std::max(worst, ms);
      if (std::getenv("BENCH_GRAMMAR_TRACE"))
        std::printf("    %3zu %8.3f ms  next '%s'\n", done, ms,
                    std::string(vocab->bytes(id)).c_str());
      if (!allowed[id] || !m.accept(id)) {
        std::printf("  document: token %zu refused\n", done);
        break;
      }
      ++done;
    }
    std::printf("  document (%zu tokens): mean %.3f ms / token, max %.3f ms, complete %d\n", done,
                total / static_cast<double>(std::max<size_t>(done, 1)), worst, m.complete());
  }
  return 0;
}
