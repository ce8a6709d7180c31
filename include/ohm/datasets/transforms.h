// Transforms over Arrow data, as HF `datasets` has them: map (batched, multi-threaded; an ohm
// tokenizer as a built-in function), filter, select, shuffle(seed), train_test_split,
// concatenate, and dedup (exact row hashes, MinHash-LSH near-duplicates).
//
// map and map_tokenize stream: they take a RecordBatchReader and return one, running
// `threads` batches at a time and keeping their order, so memory stays bounded by the batches
// in flight. The others work on in-memory tables.
#pragma once

#include <arrow/api.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ohm::tokenizers {
class AutoTokenizer;
}

namespace ohm::datasets {

// A batched map function: a batch in, a batch out (any schema, the same for every batch).
using BatchFn = std::function<std::shared_ptr<arrow::RecordBatch>(const arrow::RecordBatch&)>;

struct MapOptions {
  int threads = 0;            // 0: the hardware threads
  int64_t batch_rows = 1000;  // datasets' default batch_size: input batches are re-sliced
  std::function<void(int64_t rows)> progress;  // after each output batch, rows so far
};
// Applies fn to every batch of `in` (re-sliced to batch_rows), `threads` at a time, in order.
// The output schema is fn's on the first batch; a later batch with another schema is an error.
std::shared_ptr<arrow::RecordBatchReader> map(std::shared_ptr<arrow::RecordBatchReader> in,
                                              BatchFn fn, const MapOptions& opt = {});

struct TokenizeOptions {
  std::string column = "text";
  bool add_special_tokens = true;
  bool keep_columns = true;    // false: only the token columns (remove_columns=all)
  bool attention_mask = true;  // add attention_mask (list<int8>), as tokenizer(batch) returns
};
// map with the tokenizer: adds input_ids (list<int32>) and attention_mask (list<int8>) for the
// string column `column` (InvalidArgument naming the column when it is missing or not a string).
std::shared_ptr<arrow::RecordBatchReader> map_tokenize(std::shared_ptr<arrow::RecordBatchReader> in,
                                                       const tokenizers::AutoTokenizer& tok,
                                                       const TokenizeOptions& topt,
                                                       const MapOptions& opt = {});

// Rows where keep(batch) (one bool per row) is true.
std::shared_ptr<arrow::Table> filter(
    const std::shared_ptr<arrow::Table>& t,
    const std::function<std::vector<bool>(const arrow::RecordBatch&)>& keep);
// Rows at `indices`, in that order (InvalidArgument for an index out of range).
std::shared_ptr<arrow::Table> select(const std::shared_ptr<arrow::Table>& t,
                                     const std::vector<int64_t>& indices);
// A permutation of the rows from seed (std::mt19937_64 Fisher-Yates; not numpy's order).
std::shared_ptr<arrow::Table> shuffle(const std::shared_ptr<arrow::Table>& t, uint64_t seed);
// (train, test): test gets round(test_size * rows) rows when test_size < 1, else test_size rows;
// shuffled from seed first when shuffle is true.
std::pair<std::shared_ptr<arrow::Table>, std::shared_ptr<arrow::Table>> train_test_split(
    const std::shared_ptr<arrow::Table>& t, double test_size, uint64_t seed, bool shuffle = true);
// Tables one after the other; their schemas must agree (FormatError naming the column).
std::shared_ptr<arrow::Table> concatenate(const std::vector<std::shared_ptr<arrow::Table>>& tables);

struct DedupOptions {
  std::vector<std::string>
      columns;             // exact: the columns hashed (empty: all); near: one text column
  bool near = false;       // MinHash-LSH near-duplicates instead of exact
  double threshold = 0.8;  // near: estimated Jaccard similarity of word 5-gram shingles
  int num_perm = 128;      // near: MinHash permutations
  int ngram = 5;           // near: words per shingle
  uint64_t seed = 42;
};
struct DedupResult {
  std::shared_ptr<arrow::Table> table;  // the first row of every duplicate group, in order
  int64_t removed = 0;
};
DedupResult dedup(const std::shared_ptr<arrow::Table>& t, const DedupOptions& opt);

// LSH banding for a threshold: (bands, rows) with bands * rows <= num_perm minimising the
// false-positive + false-negative probability mass (as datasketch's optimal_param).
std::pair<int, int> lsh_params(double threshold, int num_perm);

}  // namespace ohm::datasets
