// load_shared_tokenizer (datasets.h): kept apart from datasets.cpp, which includes Arrow's
// headers (their arrow::internal::ThreadPool forward declaration beside ohm::ThreadPool from the
// tokenizer header trips clang-tidy's bugprone-forward-declaration-namespace).
#include "common.h"
#include "datasets.h"
#include "ohm/tokenizers/tokenizer.h"

namespace ohm::cli {

std::shared_ptr<tokenizers::AutoTokenizer> load_shared_tokenizer(const std::string& path) {
  return std::make_shared<tokenizers::AutoTokenizer>(load_tokenizer(path, path));
}

}  // namespace ohm::cli
