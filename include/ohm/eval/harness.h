// `ohm eval`: lm-evaluation-harness tasks (declarative YAML files, as lm-eval's) run on an ohm
// model with the loglikelihood engine (ohm/eval/loglikelihood.h), giving lm-eval's numbers and
// its results JSON (results, groups, group_subtasks, configs, versions, n-shot,
// higher_is_better, n-samples, config, and samples when asked).
//
// A task file is lm-eval's task YAML with local data files instead of HF dataset ids:
//
//   task: piqa
//   output_type: multiple_choice           # or loglikelihood_rolling, generate_until
//   data_files:                            # split -> file under the data directory
//     validation: {path: piqa/valid.jsonl, add_columns: {label: piqa/valid-labels.lst}}
//   validation_split: validation
//   doc_to_text: "Question: {{goal}}\nAnswer:"
//   doc_to_target: label
//   doc_to_choice: "{{[sol1, sol2]}}"
//   metric_list: [{metric: acc}, {metric: acc_norm}]
//
// docs/eval.md documents every key. A group file has `group:` and `task:` (task names, groups or
// tags) and `aggregate_metric_list`.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ohm/core/token_id.h"
#include "ohm/eval/loglikelihood.h"

namespace ohm {
class CausalLM;
}

namespace ohm::eval {

// The model as lm-eval's HF backend sees it.
struct TextLM {
  CausalLM* model = nullptr;
  // tokenizer.encode(text, add_special_tokens) (the HF default is true).
  std::function<std::vector<TokenId>(const std::string&, bool)> encode;
  TokenId prefix_token = 0;  // BOS, else EOS: the context of an empty context
  std::string prefix_text;   // its text (a context starting with it gets no special tokens)
  int64_t max_length = 0;    // 0: default_max_length(model)
  std::string name;          // for the results' config.model_args
  // generate_until: tokenizer.decode(ids, skip_special_tokens=True), the EOS ids generation
  // stops at (generation_config's and the tokenizer's) and the EOS text (a stop sequence).
  std::function<std::string(const std::vector<TokenId>&)> decode;
  std::vector<TokenId> eos_ids;
  std::string eos_text;
  // The model's generation_config.json max_new_tokens: transformers' generate() lets it win
  // over the max_length lm-eval passes (context + max_gen_toks), so it bounds the new tokens.
  std::optional<int64_t> generation_max_new_tokens;
};

// Every task and group file (*.yaml, recursively) under the directories, later ones overriding
// earlier ones of the same name. FormatError naming the file for malformed YAML or a bad key.
class TaskRegistry {
 public:
  static TaskRegistry load(const std::vector<std::string>& dirs);
  bool has(const std::string& name) const;
  std::vector<std::string> task_names() const;   // leaf tasks
  std::vector<std::string> group_names() const;  // groups and tags
  // A task's merged config (include: resolved); NotFoundError when unknown.
  const nlohmann::ordered_json& task_config(const std::string& name) const;
  const std::string& task_file(const std::string& name) const;

  struct Group {
    std::string name, alias, file;
    std::vector<std::string> members;            // tasks or groups
    std::vector<std::string> aggregate_metrics;  // weight_by_size means
    bool weight_by_size = true;
    bool is_tag = false;  // a tag lists tasks and reports nothing itself
    nlohmann::ordered_json version = nlohmann::ordered_json::value_t::null;
  };
  const Group* group(const std::string& name) const;

 private:
  std::map<std::string, nlohmann::ordered_json> tasks_;
  std::map<std::string, std::string> files_;
  std::map<std::string, Group> groups_;
};

struct EvalOptions {
  std::vector<std::string> tasks;  // task, group or tag names
  std::optional<int> num_fewshot;  // overrides each task's
  std::optional<int64_t> limit;    // first N documents of each task (>= 1)
  uint64_t fewshot_seed = 1234;    // lm-eval's fewshot_random_seed
  std::string data_dir;            // where the tasks' data_files are
  bool log_samples = false;
  LLOptions ll;
  // Called with (task, requests done, total requests) while the engine runs.
  std::function<void(int64_t, int64_t)> progress;
  // When set, replaces the loglikelihood engine (tests feed lm-eval's own numbers through it to
  // compare the metrics computed from them).
  std::function<std::vector<LLResult>(const std::vector<LLRequest>&)> loglikelihood;
};

// Runs the tasks; InvalidArgument / NotFoundError / FormatError naming the task, file and row
// for bad input (an unknown task, a missing data file or field, limit < 1).
nlohmann::ordered_json evaluate(TextLM& lm, const TaskRegistry& registry, const EvalOptions& opt);

// The built-in task directory: OHM_EVAL_TASKS when set, else the tasks installed beside the
// binary or in the source tree.
std::string builtin_task_dir();

}  // namespace ohm::eval
