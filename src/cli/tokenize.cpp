// `ohm tokenize MODEL_OR_TOKENIZER (--text T | --file F) [--json] [--no-special]` and
// `ohm detokenize MODEL_OR_TOKENIZER (--ids "1 2 3" | --json '[1,2]') [--skip-special]`.
// MODEL_OR_TOKENIZER: a model directory / Hub id, a tokenizer.json(.gz/.xz), a .gguf or a
// SentencePiece tokenizer.model. Ids follow transformers' AutoTokenizer (tokenizer_config.json).
#include <CLI/CLI.hpp>
#include <climits>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common.h"
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
  auto* f = cmd->add_option("--file,-f", opt->file, "Read the text from a file ('-': stdin)")
                ->check(readable_file(/*allow_stdin=*/true));
  t->excludes(f);
  cmd->add_flag("--json", opt->json, "Print a JSON array");
  cmd->add_flag("--no-special", opt->no_special, "Do not add special tokens (BOS/EOS)");
  cmd->footer(
      "MODEL_OR_TOKENIZER: a model directory or Hub id, a tokenizer.json(.gz/.xz), a .gguf, a\n"
      "SentencePiece tokenizer.model, or a .safetensors file with its tokenizer beside it.");
  return Command{cmd, [opt, t, f] {
                   if (t->count() == 0 && f->count() == 0)
                     throw UsageError("give --text TEXT or --file FILE ('-': stdin)");
                   const std::string text = f->count() ? read_text("--file", opt->file) : opt->text;
                   auto tok = load_tokenizer(opt->model, "");
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
  cmd->footer(
      "MODEL_OR_TOKENIZER: a model directory or Hub id, a tokenizer.json(.gz/.xz), a .gguf, a\n"
      "SentencePiece tokenizer.model, or a .safetensors file with its tokenizer beside it.");
  return Command{cmd, [opt, i, j] {
                   std::vector<int32_t> ids;
                   if (j->count()) {
                     nlohmann::json arr;
                     try {
                       arr = nlohmann::json::parse(opt->json_ids);
                     } catch (const std::exception& e) {
                       throw UsageError(std::string("--json: ") + e.what());
                     }
                     if (!arr.is_array()) throw UsageError("--json: expected an array of ids");
                     for (auto& v : arr) {
                       if (!v.is_number_integer()) throw UsageError("--json: ids must be integers");
                       if (v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX)
                         throw UsageError("--json: token id " + v.dump() + " is out of range");
                       ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
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
                         long long v = std::stoll(w, &pos);
                         if (pos != w.size()) throw std::invalid_argument(w);
                         if (v < INT32_MIN || v > INT32_MAX) throw std::out_of_range(w);
                         ids.push_back(static_cast<int32_t>(v));
                       } catch (const std::out_of_range&) {
                         throw UsageError("--ids: token id " + w + " is out of range");
                       } catch (const std::exception&) {
                         throw UsageError("--ids: not an integer: '" + w + "'");
                       }
                     }
                   } else {
                     throw UsageError("give --ids \"1 2 3\" or --json '[1,2,3]'");
                   }
                   auto tok = load_tokenizer(opt->model, "");
                   const char* flag = j->count() ? "--json" : "--ids";
                   for (int32_t id : ids)
                     if (id < 0 || !tok.tokenizer().id_to_token(id))
                       throw UsageError(std::string(flag) + ": token id " + std::to_string(id) +
                                        " is not in the vocabulary (size " +
                                        std::to_string(tok.tokenizer().vocab_size()) + ", ids 0.." +
                                        std::to_string(tok.tokenizer().vocab_size() - 1) + ")");
                   std::cout << tok.decode(ids, opt->skip_special) << "\n";
                   return 0;
                 }};
});

}  // namespace

}  // namespace ohm::cli
