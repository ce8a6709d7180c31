// `ohm watermark detect --model M (--text T | --file F | --ids IDS) [--watermark SPEC]`:
// transformers' WatermarkDetector (z-score test for the Kirchenbauer green-list watermark).
#include <CLI/CLI.hpp>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common.h"
#include "ohm/cli/cli.h"
#include "ohm/formats/config.h"
#include "ohm/formats/json_reader.h"
#include "ohm/formats/model_source.h"
#include "ohm/generation/auto_model.h"
#include "ohm/generation/watermark.h"
#include "ohm/tokenizers/tokenizer.h"

namespace ohm::cli {
namespace {

struct DetectOpts {
  std::string model, text, file, ids, spec, tokenizer;
  double z_threshold = 3.0;
  bool ignore_repeated = false, json = false;
};

// The model config's vocab_size and bos_token_id (what transformers' detector uses): from
// config.json for a directory, else from the loaded model.
std::pair<int64_t, std::optional<int64_t>> vocab_and_bos(const ModelSource& src) {
  if (auto cfg = src.file("config.json")) {
    const nlohmann::json j = read_json_file(*cfg);
    const nlohmann::json& t =
        j.contains("text_config") && j["text_config"].is_object() ? j["text_config"] : j;
    if (t.contains("vocab_size") && t["vocab_size"].is_number_integer()) {
      std::optional<int64_t> bos;
      for (const auto* o : {&t, &j})
        if (!bos && o->contains("bos_token_id") && (*o)["bos_token_id"].is_number_integer())
          bos = (*o)["bos_token_id"].get<int64_t>();
      return {t["vocab_size"].get<int64_t>(), bos};
    }
  }
  auto m = AutoModelForCausalLM::from_pretrained(src);
  return {m->vocab_size(), m.generation_config().bos_token_id};
}

int detect(const DetectOpts& o) {
  const int given = !o.text.empty() + !o.file.empty() + !o.ids.empty();
  if (given != 1) throw UsageError("give exactly one of --text, --file and --ids");
  const WatermarkingConfig w = generation::parse_watermark_spec(o.spec);
  const ModelSource src = resolve_model(o.model);
  const auto [vocab, bos] = vocab_and_bos(src);
  std::vector<TokenId> ids;
  if (!o.ids.empty()) {
    std::stringstream ss(o.ids);
    std::string t;
    while (ss >> t) {
      size_t pos = 0;
      long long v = -1;
      try {
        v = std::stoll(t, &pos);
      } catch (const std::exception&) {
        pos = 0;
      }
      if (pos == 0 || pos != t.size() || v < 0 || v >= vocab)
        throw UsageError("--ids: '" + t + "' is not a token id in 0.." + std::to_string(vocab - 1));
      ids.push_back(static_cast<TokenId>(v));
    }
  } else {
    const std::string text = o.file.empty() ? o.text : read_text("--file", o.file);
    ids = load_tokenizer(src.path, o.tokenizer).encode(text);  // as tokenizer(text): with BOS
  }
  const auto d = generation::detect_watermark(w, vocab, ids, bos, o.z_threshold, o.ignore_repeated);
  if (o.json) {
    std::cout << nlohmann::json{{"z_score", d.z_score},
                                {"p_value", d.p_value},
                                {"prediction", d.prediction},
                                {"num_tokens_scored", d.num_tokens_scored},
                                {"num_green_tokens", d.num_green_tokens},
                                {"green_fraction", d.green_fraction}}
                     .dump()
              << "\n";
  } else {
    std::cout << (d.prediction ? "watermarked" : "not watermarked") << std::setprecision(6)
              << ": z = " << d.z_score << ", p = " << d.p_value << " (" << d.num_green_tokens
              << " green of " << d.num_tokens_scored << " scored tokens, threshold z > "
              << o.z_threshold << ")\n";
  }
  return 0;
}

const Register watermark_reg("watermark", [](CLI::App& app) {
  auto o = std::make_shared<DetectOpts>();
  auto* cmd = app.add_subcommand("watermark", "Text watermarks (transformers' WatermarkDetector)");
  cmd->require_subcommand(1);
  auto* det = cmd->add_subcommand(
      "detect", "Detect the green-list watermark of `--watermark` generation in a text (z-test)");
  det->add_option("--model", o->model, "The model (its vocab_size, bos_token_id, tokenizer)")
      ->required();
  det->add_option("--text", o->text, "The text (tokenized with BOS as tokenizer(text) does)");
  det->add_option("--file,-f", o->file, "Read the text from a file (-: stdin)")
      ->check(readable_file(true));
  det->add_option("--ids", o->ids, "Token ids instead of a text (\"1 2 3\")");
  det->add_option("--watermark", o->spec,
                  "The generation's watermark settings: gamma=,delta=,seeding_scheme=,"
                  "context_width=,hashing_key= (default: transformers' WatermarkingConfig)");
  det->add_option("--z-threshold", o->z_threshold, "Predict watermarked when z exceeds this")
      ->capture_default_str();
  det->add_flag("--ignore-repeated-ngrams", o->ignore_repeated,
                "Count each distinct n-gram once (the detector's ignore_repeated_ngrams)");
  det->add_option("--tokenizer", o->tokenizer, "Tokenizer (default: the model's)");
  det->add_flag("--json", o->json,
                "JSON: z_score, p_value, prediction, num_tokens_scored, num_green_tokens, "
                "green_fraction");
  return Command{cmd, [o] { return detect(*o); }};
});

}  // namespace
}  // namespace ohm::cli
