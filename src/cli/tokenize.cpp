// `ohm tokenize MODEL_OR_TOKENIZER (--text T | --file F) [--json] [--no-special]` and
// `ohm detokenize MODEL_OR_TOKENIZER (--ids "1 2 3" | --json '[1,2]') [--skip-special]`.
// MODEL_OR_TOKENIZER: a model directory / Hub id, a tokenizer.json(.gz/.xz), a .gguf or a
// SentencePiece tokenizer.model. Ids follow transformers' AutoTokenizer (tokenizer_config.json).
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ohm/cli/cli.h"
#include "ohm/core/error.h"
#include "ohm/tokenizers/tokenizer.h"

namespace ohm::cli {

namespace {

struct TokOptions {
  std::string model, text, file;
  bool json = false, no_special = false;
};

struct DetokOptions {
  std::string model, ids, json_ids;
  bool skip_special = false;
};

const Register reg_tok("tokenize", [](CLI::App& app) {
  auto opt = std::make_shared<TokOptions>();
  auto* cmd = app.add_subcommand("tokenize", "Print the token ids of a text");
  cmd->add_option("model", opt->model, "Model directory, tokenizer.json, .gguf or Hub id")
      ->required();
  auto* t = cmd->add_option("--text", opt->text, "Text to tokenize");
  auto* f = cmd->add_option("--file", opt->file, "Read the text from a file");
  t->excludes(f);
  cmd->add_flag("--json", opt->json, "Print a JSON array");
  cmd->add_flag("--no-special", opt->no_special, "Do not add special tokens (BOS/EOS)");
  return Command{cmd, [opt, t, f] {
                   if (t->count() == 0 && f->count() == 0)
                     throw InvalidArgument("give --text or --file");
                   std::string text = opt->text;
                   if (f->count()) {
                     std::ifstream in(opt->file, std::ios::binary);
                     if (!in) throw IoError(ErrorContext().file(opt->file), "cannot open file");
                     text.assign(std::istreambuf_iterator<char>(in),
                                 std::istreambuf_iterator<char>());
                   }
                   auto tok = tokenizers::AutoTokenizer::from_pretrained(opt->model);
                   auto ids = tok.encode(text, !opt->no_special);
                   if (opt->json) {
                     std::cout << nlohmann::json(ids).dump() << "\n";
                   } else {
                     for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
                     std::cout << "\n";
                   }
                   return 0;
                 }};
});

const Register reg_detok("detokenize", [](CLI::App& app) {
  auto opt = std::make_shared<DetokOptions>();
  auto* cmd = app.add_subcommand("detokenize", "Decode token ids to text");
  cmd->add_option("model", opt->model, "Model directory, tokenizer.json, .gguf or Hub id")
      ->required();
  auto* i = cmd->add_option("--ids", opt->ids, "Space- or comma-separated ids");
  auto* j = cmd->add_option("--json", opt->json_ids, "A JSON array of ids");
  i->excludes(j);
  cmd->add_flag("--skip-special", opt->skip_special, "Drop special tokens");
  return Command{cmd, [opt, i, j] {
                   std::vector<int32_t> ids;
                   if (j->count()) {
                     nlohmann::json arr;
                     try {
                       arr = nlohmann::json::parse(opt->json_ids);
                     } catch (const std::exception& e) {
                       throw InvalidArgument(std::string("--json: ") + e.what());
                     }
                     if (!arr.is_array()) throw InvalidArgument("--json: expected an array of ids");
                     for (auto& v : arr) {
                       if (!v.is_number_integer())
                         throw InvalidArgument("--json: ids must be integers");
                       ids.push_back(v.get<int32_t>());
                     }
                   } else if (i->count()) {
                     std::string s = opt->ids;
                     for (auto& ch : s)
                       if (ch == ',') ch = ' ';
                     std::istringstream ss(s);
                     std::string w;
                     while (ss >> w) {
                       try {
                         size_t pos;
                         long v = std::stol(w, &pos);
                         if (pos != w.size()) throw std::invalid_argument(w);
                         ids.push_back(static_cast<int32_t>(v));
                       } catch (const std::exception&) {
                         throw InvalidArgument("--ids: not an integer: '" + w + "'");
                       }
                     }
                   } else {
                     throw InvalidArgument("give --ids or --json");
                   }
                   auto tok = tokenizers::AutoTokenizer::from_pretrained(opt->model);
                   std::cout << tok.decode(ids, opt->skip_special) << "\n";
                   return 0;
                 }};
});

}  // namespace

}  // namespace ohm::cli
