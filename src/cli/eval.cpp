// `ohm eval MODEL --tasks T1,T2 [--num-fewshot K] [--limit N] [--batch-size B] [--seed S]
// [--data-dir DIR] [--output FILE.json] [--log-samples]`: lm-evaluation-harness tasks with
// lm-eval's numbers and results JSON (see ohm/eval/harness.h, docs/eval.md).
// `--push-to-hub ORG/MODEL` merges the results into that model repo's README.md model-index
// (ohm/eval/model_index.h, ohm/hub/card.h) in one commit.
// `ohm eval report RESULTS.json... --out report.md|report.html`: the files compared in a table
// and SVG bar charts (ohm/eval/report.h).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "common.h"
#include "ohm/cli/cli.h"
#include "ohm/core/error.h"
#include "ohm/eval/harness.h"
#include "ohm/eval/model_index.h"
#include "ohm/eval/report.h"
#include "ohm/formats/config.h"
#include "ohm/formats/model_source.h"
#include "ohm/models/causal_lm.h"
#include "ohm/quant/quantize.h"
#include "ohm/tokenizers/tokenizer.h"
#ifdef OHM_HAVE_HUB
#include "ohm/hub/card.h"
#include "ohm/hub/client.h"
#endif

namespace ohm::cli {
namespace {

struct EvalCliOptions {
  std::string model, tasks, data_dir, data_repo, output, dtype, quantize, tokenizer, verify_key;
  std::string push_to_hub;  // ORG/MODEL
  std::vector<std::string> include_paths;
  int num_fewshot = -1;
  int64_t limit = -1;
  bool limit_given = false;
  int64_t batch_size = 16;
  int64_t max_length = 0;
  uint64_t seed = 1234;
  int threads = 0;
  bool log_samples = false, list_tasks = false, quiet = false;
  std::vector<std::string> report_files;
  std::string report_out;
};

// `ohm eval report`: .md gets the table and a .svg of the charts beside it (same stem);
// .html the table and the charts inline.
int run_report(const EvalCliOptions& o) {
  namespace fs = std::filesystem;
  const fs::path out(o.report_out);
  const std::string ext = out.extension().string();
  if (ext != ".md" && ext != ".html" && ext != ".htm")
    throw UsageError("--out must end in .md or .html, got '" + o.report_out + "'");
  std::vector<eval::ReportColumn> cols;
  for (const auto& f : o.report_files) cols.push_back(eval::load_report_column(f));
  // Two files of the same model_args stay apart by their file names.
  for (size_t i = 0; i < cols.size(); ++i)
    for (size_t j = 0; j < cols.size(); ++j)
      if (i != j && cols[i].label == cols[j].label) {
        for (size_t k = 0; k < cols.size(); ++k)
          if (cols[k].label == cols[i].label && k != i)
            cols[k].label += " (" + fs::path(o.report_files[k]).filename().string() + ")";
        cols[i].label += " (" + fs::path(o.report_files[i]).filename().string() + ")";
      }
  auto write = [](const fs::path& p, const std::string& text) {
    std::ofstream f(p, std::ios::binary);
    if (!f) throw IoError(ErrorContext().file(p.string()), "cannot write the report");
    f << text;
    if (!f) throw IoError(ErrorContext().file(p.string()), "write failed");
  };
  if (ext == ".md") {
    fs::path svg = out;
    svg.replace_extension(".svg");
    write(svg, eval::report_svg(cols));
    write(out, eval::report_markdown(cols, svg.filename().string()));
    std::cout << "wrote " << out.string() << " and " << svg.string() << "\n";
  } else {
    write(out, eval::report_html(cols));
    std::cout << "wrote " << out.string() << "\n";
  }
  return 0;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string x;
  while (std::getline(in, x, ','))
    if (!x.empty()) out.push_back(x);
  return out;
}

std::string fmt_value(const nlohmann::ordered_json& v) {
  if (!v.is_number()) return v.is_string() ? v.get<std::string>() : v.dump();
  if (v.is_number_integer()) return v.dump();
  std::ostringstream o;
  o << std::fixed << std::setprecision(4) << v.get<double>();
  return o.str();
}

// lm-eval's markdown summary table (make_table).
void print_table(const nlohmann::ordered_json& r) {
  std::cout << "|Tasks|Version|Filter|n-shot|Metric| |Value| |Stderr|\n"
               "|-----|------:|------|-----:|------|-|----:|-|-----:|\n";
  for (const auto& [name, vals] : r["results"].items()) {
    bool first = true;
    for (const auto& [k, v] : vals.items()) {
      if (k.find(',') == std::string::npos || k.find("_stderr,") != std::string::npos ||
          !v.is_number())
        continue;
      const std::string metric = k.substr(0, k.find(','));
      const std::string filter = k.substr(k.find(',') + 1);
      const std::string se_key = metric + "_stderr," + filter;
      const auto ver =
          r["versions"].contains(name) ? r["versions"][name] : nlohmann::ordered_json();
      const auto shot = r["n-shot"].contains(name) ? fmt_value(r["n-shot"][name]) : std::string();
      const bool up =
          r["higher_is_better"].contains(name) && r["higher_is_better"][name].value(metric, true);
      std::cout << "|" << (first ? vals.value("alias", name) : "") << "|"
                << (first && !ver.is_null()
                        ? (ver.is_string() ? ver.get<std::string>() : ver.dump())
                        : "")
                << "|" << filter << "|" << (first ? shot : "") << "|" << metric << "|"
                << (up ? "↑" : "↓") << "|" << fmt_value(v) << "|±|"
                << (vals.contains(se_key) ? fmt_value(vals[se_key]) : "") << "|\n";
      first = false;
    }
  }
}

#ifdef OHM_HAVE_HUB
// `--push-to-hub`: README.md of the repo's main branch (none when the repo or the file does not
// exist yet) with the results merged into its model-index, committed as that one file on top of
// the commit it was read from (the Hub refuses the commit if main moved meanwhile).
// The commit is titled with the tasks as given to --tasks (a group such as mmlu stays one name).
void push_results(const nlohmann::ordered_json& results, const std::string& repo_id,
                  const std::vector<std::string>& task_names) {
  namespace fs = std::filesystem;
  const nlohmann::json entries = eval::model_index_results(results);
  if (entries.empty()) throw UsageError("--push-to-hub: the results have no numeric metric");
  std::string tasks;
  for (const auto& t : task_names) tasks += (tasks.empty() ? "" : ", ") + t;
  std::string tmpl = (fs::temp_directory_path() / "ohm-eval-push-XXXXXX").string();
  if (!::mkdtemp(tmpl.data()))
    throw IoError(ErrorContext().file(tmpl), "cannot create a temporary directory");
  const fs::path tmp(tmpl);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{tmp};
  std::string readme, parent;
  {
    hub::PullOptions po;
    po.repo_id = repo_id;
    po.include = {"README.md"};
    po.cache_dir = (tmp / "cache").string();
    try {
      const auto pulled = hub::pull(po);
      parent = pulled.commit;
      const fs::path f = fs::path(pulled.snapshot_dir) / "README.md";
      if (fs::exists(f)) {
        std::ifstream in(f, std::ios::binary);
        readme.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      }
    } catch (const NotFoundError&) {
      // a new repo: `push` creates it
    }
  }
  const std::string name = repo_id.substr(repo_id.find('/') + 1);
  std::string card;
  try {
    card = hub::merge_model_index(readme, name, entries);
  } catch (const FormatError& e) {
    throw FormatError(repo_id + "/" + e.what());
  }
  fs::create_directories(tmp / "card");
  {
    std::ofstream f(tmp / "card" / "README.md", std::ios::binary);
    f << card;
    if (!f)
      throw IoError(ErrorContext().file((tmp / "card" / "README.md").string()), "write failed");
  }
  hub::PushOptions po;
  po.folder = (tmp / "card").string();
  po.repo_id = repo_id;
  po.parent_commit = parent;
  po.message = "Evaluation results: " + tasks + " (ohm eval)";
  const auto res = hub::push(po);
  std::cerr << "ohm eval: " << (res.committed ? "pushed" : "unchanged:") << " results of "
            << entries.size() << " task(s) to " << repo_id << " README.md model-index (commit "
            << res.commit << ")\n";
}
#endif

int run_eval(const EvalCliOptions& o) {
  std::vector<std::string> dirs = {eval::builtin_task_dir()};
  dirs.insert(dirs.end(), o.include_paths.begin(), o.include_paths.end());
  const auto registry = eval::TaskRegistry::load(dirs);
  if (o.list_tasks) {
    for (const auto& g : registry.group_names()) std::cout << g << " (group)\n";
    for (const auto& t : registry.task_names()) std::cout << t << "\n";
    return 0;
  }
  if (o.model.empty()) throw UsageError("give a MODEL (or --list-tasks)");
  if (o.tasks.empty()) throw UsageError("give --tasks T1,T2,...");
  if (o.limit_given && o.limit < 1)
    throw UsageError("--limit must be at least 1 (documents per task), got " +
                     std::to_string(o.limit));
  if (!o.push_to_hub.empty()) {
#ifdef OHM_HAVE_HUB
    // Checked before the model loads: a bad id or a missing token must not cost a run.
    const size_t slash = o.push_to_hub.find('/');
    if (slash == std::string::npos ||
        !hub::check_name(o.push_to_hub.substr(0, slash), true).empty() ||
        !hub::check_name(o.push_to_hub.substr(slash + 1), false).empty())
      throw UsageError("--push-to-hub: invalid model repo id '" + o.push_to_hub +
                       "' (expected ORG/MODEL)");
    if (hub::default_token().empty())
      throw UsageError("--push-to-hub needs a write token (HF_TOKEN or `ohm login`)");
#else
    throw UsageError("--push-to-hub: this build has no Hub support (OHM_HUB=OFF)");
#endif
  }
  eval::EvalOptions eo;
  eo.tasks = split_commas(o.tasks);
  // Unknown names fail before the model loads.
  for (const auto& t : eo.tasks)
    if (!registry.has(t)) {
      std::string hint;
      for (const auto& n : registry.task_names())
        if (n.find(t) != std::string::npos || t.find(n) != std::string::npos)
          hint += (hint.empty() ? "" : ", ") + n;
      throw UsageError("--tasks: unknown task '" + t + "'" +
                       (hint.empty() ? std::string() : " (did you mean: " + hint + "?)") +
                       "; `ohm eval --list-tasks` lists the tasks");
    }
  if (o.num_fewshot >= 0) eo.num_fewshot = o.num_fewshot;
  if (o.limit_given) eo.limit = o.limit;
  eo.fewshot_seed = o.seed;
  eo.data_dir = o.data_dir;
  if (eo.data_dir.empty() && !o.data_repo.empty()) {
    // A dataset repo holding the files laid out as a data directory: downloaded from
    // HF_ENDPOINT into the HF cache (or found there with HF_HUB_OFFLINE=1), its snapshot used.
#ifdef OHM_HAVE_HUB
    hub::PullOptions po;
    po.repo_id = o.data_repo;
    if (const auto at = po.repo_id.find('@'); at != std::string::npos) {
      po.revision = po.repo_id.substr(at + 1);
      po.repo_id.resize(at);
    }
    po.type = hub::RepoType::Dataset;
    po.progress = !o.quiet && ::isatty(STDERR_FILENO);
    const auto pulled = hub::pull(po);
    eo.data_dir = pulled.snapshot_dir;
    if (!o.quiet)
      std::cerr << "ohm eval: data from dataset " << po.repo_id << " at " << pulled.commit << " ("
                << pulled.snapshot_dir << ")\n";
#else
    throw UsageError("--data-repo: this build has no Hub support (OHM_HUB=OFF)");
#endif
  }
  if (eo.data_dir.empty())
    if (const char* e = std::getenv("OHM_EVAL_DATA"); e && *e) eo.data_dir = e;
  if (eo.data_dir.empty())
    throw UsageError(
        "give --data-dir DIR (or set OHM_EVAL_DATA) or --data-repo ORG/NAME: the tasks read "
        "files laid out as DIR/piqa/valid.jsonl, DIR/hellaswag/..., DIR/mmlu/...");
  eo.log_samples = o.log_samples;
  eo.ll.batch_size = o.batch_size;

  LoadOptions lo;
  lo.threads = o.threads;
  if (!o.dtype.empty()) lo.dtype = dtype_from_name(o.dtype);
  if (!o.quantize.empty()) lo.quantize = dtype_from_name(o.quantize);
  const ModelSource src = resolve_model(o.model);
  verify_model_if_asked(src.path, o.verify_key);
  auto tok = load_tokenizer(src.path, o.tokenizer);
  auto model = load_causal_lm(src.path, lo);

  eval::TextLM lm;
  lm.model = model.get();
  lm.encode = [&tok](const std::string& s, bool special) { return tok.encode(s, special); };
  const auto prefix = tok.bos_token_id() ? tok.bos_token_id() : tok.eos_token_id();
  if (!prefix)
    throw UsageError(
        "the tokenizer has neither a BOS nor an EOS token (needed as the "
        "context of an empty context)");
  lm.prefix_token = *prefix;
  lm.prefix_text = tok.decode(std::vector<TokenId>{*prefix});
  lm.max_length = o.max_length;
  {
    const auto dir = std::filesystem::is_directory(src.path)
                         ? std::filesystem::path(src.path)
                         : std::filesystem::path(src.path).parent_path();
    if (std::filesystem::exists(dir / "generation_config.json")) {
      const auto gc = load_generation_config((dir / "generation_config.json").string());
      lm.generation_max_new_tokens = gc.max_new_tokens;
      for (int64_t e : gc.eos_token_id) lm.eos_ids.push_back(static_cast<TokenId>(e));
    }
  }
  lm.decode = [&tok](const std::vector<TokenId>& ids) { return tok.decode(ids, true); };
  for (int64_t e : model->decoder_config().eos_token_id)
    lm.eos_ids.push_back(static_cast<TokenId>(e));
  if (auto e = tok.eos_token_id()) {
    lm.eos_ids.push_back(*e);
    lm.eos_text = tok.decode(std::vector<TokenId>{*e}, false);
  }
  lm.name = "pretrained=" + o.model + ",dtype=" +
            (o.quantize.empty() ? (o.dtype.empty() ? std::string("stored") : o.dtype) : o.quantize);

  const bool bar = !o.quiet && ::isatty(STDERR_FILENO);
  const auto t0 = std::chrono::steady_clock::now();
  if (bar)
    eo.progress = [t0](int64_t done, int64_t total) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double eta =
          done > 0 ? s * static_cast<double>(total - done) / static_cast<double>(done) : 0;
      const int width = 30;
      const int fill = total > 0 ? static_cast<int>(width * done / total) : width;
      std::cerr << "\rloglikelihood [" << std::string(static_cast<size_t>(fill), '#')
                << std::string(static_cast<size_t>(width - fill), '.') << "] " << done << "/"
                << total << " " << fmt_seconds(s) << " ETA " << fmt_seconds(eta) << "   "
                << std::flush;
    };
  auto results = eval::evaluate(lm, registry, eo);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (bar) std::cerr << "\n";
  results["total_evaluation_time_seconds"] = std::to_string(secs);
  if (!o.output.empty()) {
    std::ofstream f(o.output);
    if (!f) throw IoError(ErrorContext().file(o.output), "cannot write the results");
    f << results.dump(2) << "\n";
    if (!f) throw IoError(ErrorContext().file(o.output), "write failed");
  }
  if (!o.quiet) print_table(results);
#ifdef OHM_HAVE_HUB
  if (!o.push_to_hub.empty()) push_results(results, o.push_to_hub, eo.tasks);
#endif
  return 0;
}

const Register reg_eval("eval", [](CLI::App& app) {
  auto opt = std::make_shared<EvalCliOptions>();
  auto* cmd = app.add_subcommand(
      "eval", "Evaluate a model on lm-evaluation-harness tasks (lm-eval's scores and JSON)");
  cmd->add_option("model", opt->model, "Model directory, .gguf file or Hub id");
  cmd->add_option("--tasks", opt->tasks,
                  "Comma-separated tasks, groups or tags (hellaswag, piqa, mmlu, mmlu_stem, "
                  "mmlu_anatomy, arc_easy, arc_challenge, winogrande, truthfulqa_mc1, "
                  "truthfulqa_mc2, lambada_openai, wikitext, gsm8k, ...; --list-tasks)");
  cmd->add_option("--num-fewshot", opt->num_fewshot,
                  "Few-shot examples per document (default: each task's, 0 for most)")
      ->check(int_range(0, 1000));
  cmd->add_option_function<int64_t>(
      "--limit",
      [opt](const int64_t& v) {
        opt->limit = v;
        opt->limit_given = true;
      },
      "Only the first N documents of each task (N >= 1)");
  cmd->add_option("--batch-size", opt->batch_size,
                  "Loglikelihood requests per forward step (default 16)")
      ->check(int_range(1, 4096));
  cmd->add_option("--seed", opt->seed, "Few-shot sampling seed (lm-eval's default 1234)");
  cmd->add_option("--data-dir", opt->data_dir,
                  "Directory of the task data (default: $OHM_EVAL_DATA), laid out as "
                  "DIR/piqa/valid.jsonl, DIR/hellaswag/..., DIR/mmlu/{dev,test}/...")
      ->check(existing_dir());
  cmd->add_option("--data-repo", opt->data_repo,
                  "Dataset repo (ORG/NAME[@REVISION]) on the Hub at HF_ENDPOINT, or in the HF "
                  "cache with HF_HUB_OFFLINE=1, holding the task files laid out as --data-dir; "
                  "downloaded into the HF cache")
      ->excludes(cmd->get_option("--data-dir"));
  cmd->add_option("--output,-o", opt->output, "Write lm-eval's results JSON to this file");
  cmd->add_option("--push-to-hub", opt->push_to_hub,
                  "After the run, merge the results into the model card (README.md model-index) "
                  "of this model repo (ORG/MODEL) at HF_ENDPOINT in one commit; needs a write "
                  "token (HF_TOKEN or `ohm login`)");
  cmd->add_flag("--log-samples", opt->log_samples,
                "Put every document's requests and scores in the JSON (samples)");
  cmd->add_option("--include-path", opt->include_paths,
                  "Another directory of task YAML files (repeatable; later ones override)")
      ->check(existing_dir());
  cmd->add_flag("--list-tasks", opt->list_tasks, "List the tasks and groups, then exit");
  cmd->add_option("--max-length", opt->max_length,
                  "Context length (default: the model's max_position_embeddings, as lm-eval)")
      ->check(int_range(2, int64_t{1} << 20));
  add_threads_option(cmd, opt->threads);
  add_verify_key_option(cmd, opt->verify_key);
  cmd->add_option("--dtype", opt->dtype,
                  "Convert weights at load: f32, f16 or bf16 (default: as stored)")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  cmd->add_option("--quantize", opt->quantize,
                  "Quantize 2-D weights at load to this ggml block type")
      ->check(CLI::IsMember(quant::quantize_type_names()));
  cmd->add_option("--tokenizer", opt->tokenizer, "Tokenizer (default: the model's)");
  cmd->add_flag("--quiet,-q", opt->quiet, "No progress bar and no table");
  auto* rep = cmd->add_subcommand(
      "report", "Compare results JSON files (models, quantizations) in a table and SVG bar charts");
  rep->add_option("results", opt->report_files,
                  "Results JSON files (ohm eval --output or lm-eval's); a column each, named by "
                  "its config.model_args")
      ->required()
      ->check(CLI::ExistingFile);
  rep->add_option("--out", opt->report_out,
                  "report.md (the table, with the charts in report.svg beside it) or report.html "
                  "(the charts inline)")
      ->required();
  cmd->footer(
      "`ohm eval report RESULTS.json... --out report.md|report.html` compares results files.\n"
      "Tasks are YAML files (lm-eval's format with local data_files; docs/eval.md); the\n"
      "built-in ones are in src/eval/tasks (or $OHM_EVAL_TASKS). Prints lm-eval's summary\n"
      "table; --output writes its results JSON (results, groups, configs, versions, n-shot,\n"
      "n-samples, config, samples with --log-samples). --push-to-hub ORG/MODEL writes them\n"
      "into the repo's model card as HF model-index metadata (only the same task/dataset/\n"
      "metric entries are replaced; the rest of the card is kept).");
  return Command{cmd, [opt, rep] { return rep->parsed() ? run_report(*opt) : run_eval(*opt); }};
});

}  // namespace
}  // namespace ohm::cli
