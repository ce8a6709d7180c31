// lm-eval results JSON as Hugging Face `model-index` results (the model card metadata the Hub
// shows as evaluation results): `ohm eval --push-to-hub` merges them into the model repo's
// README.md (ohm/hub/card.h, merge_model_index). See docs/eval.md.
#pragma once

#include <nlohmann/json.hpp>

namespace ohm::eval {

// One entry per task (and group) of `results` (lm-eval's shape: results, configs, n-shot):
//   {task: {type: text-generation, name: Text Generation},
//    dataset: {name: ALIAS, type: TASK, config?: dataset_name, split?: the split evaluated,
//              args?: {num_few_shot: K}},
//    metrics: [{type: METRIC, value, name, config?: FILTER, verified: false, stderr?}]}
// A metric key "acc,none" becomes type acc; a filter other than "none" (gsm8k's strict-match)
// becomes its config and is named "exact_match (strict-match)". Entries without a numeric metric
// are left out. Throws FormatError when `results` has no "results" object.
nlohmann::json model_index_results(const nlohmann::ordered_json& results);

}  // namespace ohm::eval
