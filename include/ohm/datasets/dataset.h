// Datasets on Apache Arrow: local files (parquet, Arrow IPC file and stream, jsonl/json, csv,
// text) read by Arrow's own readers into record-batch streams, HF `datasets` features <-> Arrow
// types (the `huggingface` schema metadata), and writers whose output `datasets.load_dataset`
// reads with the same features. docs/datasets.md.
//
// Streaming: open_file/open_files return an arrow::RecordBatchReader that holds one batch (a
// parquet row group, an IPC batch, a csv/json block, batch_rows text lines) at a time, so files
// larger than RAM are iterated in constant memory.
//
// Errors name the file and, where the reader tells, the row/line and the column:
//   "bad.jsonl: line 3: malformed JSON (syntax error ...)"
//   "ragged.csv: row 4: expected 2 columns (a, b), got 3"
//   "b.parquet: column 'x' is int64 here but string in a.parquet (shards must agree)"
#pragma once

#include <arrow/api.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ohm::datasets {

enum class FileFormat { Parquet, Arrow, Json, Csv, Text };
const char* to_string(FileFormat f);  // "parquet", "arrow", "json", "csv", "text"
// Parses "parquet", "arrow" (also "ipc"), "json" (also "jsonl"), "csv", "text"; false otherwise.
bool parse_format(const std::string& s, FileFormat& out);
// The format of a data file by extension (.parquet, .arrow/.ipc/.feather, .jsonl/.json/.ndjson,
// .csv/.tsv, .txt); false for anything else.
bool format_of(const std::string& path, FileFormat& out);

struct ReadOptions {
  int64_t batch_rows = 8192;  // text lines per batch; parquet/IPC/csv/json keep their blocks
  // Arrow's CPU thread pool: parquet columns decoded in parallel, csv/json blocks parsed ahead
  // (as pyarrow does by default). Batch order is kept either way.
  bool use_threads = true;
};

// One file as a stream of record batches. `format`: by extension when null. Throws NotFoundError
// (missing file), FormatError (malformed input, naming file/line/column), UnsupportedError.
std::shared_ptr<arrow::RecordBatchReader> open_file(const std::string& path,
                                                    const ReadOptions& opt = {},
                                                    const FileFormat* format = nullptr);
// Shards read one after the other as one stream. Every shard's schema must equal the first's
// (field names, order and types); a conflict is a FormatError naming both files and the column.
std::shared_ptr<arrow::RecordBatchReader> open_files(const std::vector<std::string>& paths,
                                                     const ReadOptions& opt = {});
// The whole stream in memory.
std::shared_ptr<arrow::Table> read_all(const std::shared_ptr<arrow::RecordBatchReader>& reader);
// Row count without reading the data where the format stores it (parquet footer, IPC file
// footer); otherwise by streaming. Not for a huge text file in a hurry.
int64_t count_rows(const std::string& path);

// --- features (HF `datasets` Features as JSON, e.g. {"text": {"dtype": "string", "_type":
// "Value"}, "label": {"names": [...], "_type": "ClassLabel"}, "ids": {"feature": ..., "_type":
// "List"}, "meta": {"a": {...}, "b": {...}}}) ---

// The features recorded in the schema's `huggingface` metadata when present and consistent with
// the schema, otherwise derived from the Arrow types (as datasets.Features.from_arrow_schema).
nlohmann::json features_of(const arrow::Schema& schema);
// Features derived from Arrow types only (no ClassLabel).
nlohmann::json features_from_arrow(const arrow::Schema& schema);
// The Arrow type of one feature. Throws FormatError for an unknown _type/dtype.
std::shared_ptr<arrow::DataType> arrow_type_of(const nlohmann::json& feature);
// The schema for features (in their key order).
std::shared_ptr<arrow::Schema> schema_of(const nlohmann::json& features);
// `schema` with its `huggingface` metadata set to {"info": {"features": features}}.
std::shared_ptr<arrow::Schema> with_features(const std::shared_ptr<arrow::Schema>& schema,
                                             const nlohmann::json& features);

// --- writing ---

struct WriteOptions {
  FileFormat format = FileFormat::Parquet;     // Parquet or Arrow (IPC stream, as datasets writes)
  nlohmann::json features = nullptr;           // null: features_of(reader schema)
  int64_t row_group_rows = 100000;             // parquet row groups (datasets' default is 100 MB)
  std::function<void(int64_t rows)> progress;  // after each batch, rows written so far
};
// Streams `reader` into `path` (written to a temporary name and renamed). Returns the rows.
int64_t write_file(arrow::RecordBatchReader& reader, const std::string& path,
                   const WriteOptions& opt = {});

// One row as JSON (lists as arrays, structs as objects, binary as base64-less escaped strings).
nlohmann::json row_to_json(const arrow::RecordBatch& batch, int64_t row);

// Throws the ohm error for a failed Arrow status, prefixed with `where` (usually the file).
void check(const arrow::Status& st, const std::string& where);
template <typename T>
T value_or_throw(arrow::Result<T> r, const std::string& where) {
  check(r.status(), where);
  return std::move(r).ValueUnsafe();
}

}  // namespace ohm::datasets
