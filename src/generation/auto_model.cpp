#include "ohm/generation/auto_model.h"

#include "ohm/core/error.h"
#include "ohm/formats/model_source.h"

namespace ohm {

PreTrainedModel::PreTrainedModel(std::unique_ptr<CausalLM> model, GenerationConfig gc)
    : model_(std::move(model)), generation_config_(std::move(gc)) {}

generation::GenerateOutput PreTrainedModel::generate(const tokenizers::BatchEncoding& in) const {
  return generate(in, generation_config_);
}

generation::GenerateOutput PreTrainedModel::generate(const tokenizers::BatchEncoding& in,
                                                     const GenerationConfig& cfg) const {
  if (!in.attention_mask.empty() && in.attention_mask.size() != in.input_ids.size())
    throw InvalidArgument(ErrorContext().key("attention_mask"),
                          "generate: attention_mask has " +
                              std::to_string(in.attention_mask.size()) + " rows, input_ids " +
                              std::to_string(in.input_ids.size()));
  std::vector<std::vector<TokenId>> rows;
  for (size_t r = 0; r < in.input_ids.size(); ++r) {
    const auto& ids = in.input_ids[r];
    const std::vector<int32_t>* mask = in.attention_mask.empty() ? nullptr : &in.attention_mask[r];
    if (mask && mask->size() != ids.size())
      throw InvalidArgument(ErrorContext().key("attention_mask").note("row", std::to_string(r)),
                            "generate: attention_mask and input_ids lengths differ");
    std::vector<TokenId> row;
    for (size_t t = 0; t < ids.size(); ++t)
      if (!mask || (*mask)[t] != 0) row.push_back(ids[t]);
    rows.push_back(std::move(row));
  }
  generation::GenerateOptions opt;
  opt.config = cfg;
  return generate(rows, opt);
}

generation::GenerateOutput PreTrainedModel::generate(
    const std::vector<std::vector<TokenId>>& input_ids,
    const generation::GenerateOptions& opt) const {
  if (!model_) throw InvalidArgument("generate: no model loaded");
  return generation::generate(*model_, input_ids, opt);
}

PreTrainedModel AutoModelForCausalLM::from_pretrained(const std::string& path_or_id,
                                                      const LoadOptions& opts) {
  return from_pretrained(resolve_model(path_or_id), opts);
}

PreTrainedModel AutoModelForCausalLM::from_pretrained(const ModelSource& src,
                                                      const LoadOptions& opts) {
  auto model = load_causal_lm(src.path, opts);  // a local path: not looked up again
  GenerationConfig gc = generation_config_from_model(model->config());
  if (auto path = src.file("generation_config.json")) gc = load_generation_config(*path);
  return PreTrainedModel(std::move(model), std::move(gc));
}

}  // namespace ohm
