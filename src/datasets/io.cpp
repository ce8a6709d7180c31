// Reading and writing data files through Arrow's own readers and writers (docs/datasets.md).
#include <arrow/csv/api.h>
#include <arrow/io/api.h>
#include <arrow/ipc/api.h>
#include <arrow/json/api.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/writer.h>
#include <parquet/exception.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ohm/core/error.h"
#include "ohm/datasets/dataset.h"

namespace ohm::datasets {

namespace fs = std::filesystem;

void check(const arrow::Status& st, const std::string& where) {
  if (st.ok()) return;
  const std::string& msg = st.message();
  const ErrorContext ctx = ErrorContext().file(where);
  if (st.IsIOError()) {
    throw IoError(ctx, msg);
  }
  if (st.IsNotImplemented()) throw UnsupportedError(ctx, msg);
  throw FormatError(ctx, msg);
}

const char* to_string(FileFormat f) {
  switch (f) {
    case FileFormat::Parquet:
      return "parquet";
    case FileFormat::Arrow:
      return "arrow";
    case FileFormat::Json:
      return "json";
    case FileFormat::Csv:
      return "csv";
    case FileFormat::Text:
      return "text";
  }
  return "?";
}

bool parse_format(const std::string& s, FileFormat& out) {
  if (s == "parquet")
    out = FileFormat::Parquet;
  else if (s == "arrow" || s == "ipc")
    out = FileFormat::Arrow;
  else if (s == "json" || s == "jsonl")
    out = FileFormat::Json;
  else if (s == "csv")
    out = FileFormat::Csv;
  else if (s == "text")
    out = FileFormat::Text;
  else
    return false;
  return true;
}

bool format_of(const std::string& path, FileFormat& out) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (ext == ".parquet")
    out = FileFormat::Parquet;
  else if (ext == ".arrow" || ext == ".ipc" || ext == ".feather")
    out = FileFormat::Arrow;
  else if (ext == ".jsonl" || ext == ".json" || ext == ".ndjson")
    out = FileFormat::Json;
  else if (ext == ".csv" || ext == ".tsv")
    out = FileFormat::Csv;
  else if (ext == ".txt")
    out = FileFormat::Text;
  else
    return false;
  return true;
}

namespace {

bool has_ext(const std::string& path, const char* ext) {
  std::string e = fs::path(path).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e == ext;
}

// A reader that owns what its source needs alive and puts the file name (and, for json, the
// line) into every error.
class FileReader : public arrow::RecordBatchReader {
 public:
  using Next = std::function<arrow::Status(std::shared_ptr<arrow::RecordBatch>*)>;
  using OnError = std::function<void(const arrow::Status&)>;
  FileReader(std::string path, std::shared_ptr<arrow::Schema> schema, Next next, OnError on_error)
      : path_(std::move(path)),
        schema_(std::move(schema)),
        next_(std::move(next)),
        on_error_(std::move(on_error)) {}
  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }
  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
    arrow::Status st;
    try {
      st = next_(batch);
    } catch (const parquet::ParquetException& e) {
      throw FormatError(ErrorContext().file(path_), e.what());
    }
    if (!st.ok()) {
      if (on_error_) on_error_(st);
      check(st, path_);
    }
    return st;
  }

 private:
  std::string path_;
  std::shared_ptr<arrow::Schema> schema_;
  Next next_;
  OnError on_error_;
};

std::shared_ptr<arrow::io::ReadableFile> open_input(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw NotFoundError(ErrorContext().file(path), "no such file");
  if (fs::is_directory(path, ec))
    throw InvalidArgument(ErrorContext().file(path), "is a directory");
  return value_or_throw(arrow::io::ReadableFile::Open(path), path);
}

std::shared_ptr<arrow::RecordBatchReader> open_parquet(const std::string& path,
                                                       const ReadOptions& opt) {
  auto in = open_input(path);
  std::unique_ptr<parquet::arrow::FileReader> fr;
  try {
    parquet::arrow::FileReaderBuilder builder;
    check(builder.Open(in), path);
    // columns decoded in parallel (as pyarrow's iter_batches); no pre-buffering, which would keep
    // every row group read so far in memory
    parquet::ArrowReaderProperties props;
    props.set_use_threads(opt.use_threads);
    props.set_pre_buffer(false);
    builder.properties(props);
    fr = value_or_throw(builder.Build(), path);
  } catch (const parquet::ParquetException& e) {
    throw FormatError(ErrorContext().file(path), std::string("not a parquet file: ") + e.what());
  }
  std::shared_ptr<parquet::arrow::FileReader> owner(std::move(fr));
  // One row group at a time: a reader over all row groups reads ahead without bound (a 300 MB
  // file peaked at its own size in RSS), so memory stays at one row group's decoded columns.
  std::shared_ptr<arrow::Schema> schema;
  check(owner->GetSchema(&schema), path);
  struct State {
    int next_group = 0;
    std::unique_ptr<arrow::RecordBatchReader> cur;
  };
  auto st = std::make_shared<State>();
  return std::make_shared<FileReader>(
      path, schema,
      [owner, st](std::shared_ptr<arrow::RecordBatch>* b) -> arrow::Status {
        for (;;) {
          if (st->cur) {
            ARROW_RETURN_NOT_OK(st->cur->ReadNext(b));
            if (*b) return arrow::Status::OK();
            st->cur.reset();
          }
          if (st->next_group >= owner->num_row_groups()) {
            b->reset();
            return arrow::Status::OK();
          }
          ARROW_ASSIGN_OR_RAISE(st->cur, owner->GetRecordBatchReader({st->next_group++}));
        }
      },
      nullptr);
}

std::shared_ptr<arrow::RecordBatchReader> open_ipc(const std::string& path) {
  auto in = open_input(path);
  char magic[6] = {};
  {
    std::ifstream f(path, std::ios::binary);
    f.read(magic, 6);
  }
  if (std::string(magic, 6) == "ARROW1") {
    auto fr = value_or_throw(arrow::ipc::RecordBatchFileReader::Open(in), path);
    auto i = std::make_shared<int>(0);
    return std::make_shared<FileReader>(
        path, fr->schema(),
        [fr, i](std::shared_ptr<arrow::RecordBatch>* b) -> arrow::Status {
          if (*i >= fr->num_record_batches()) {
            b->reset();
            return arrow::Status::OK();
          }
          ARROW_ASSIGN_OR_RAISE(*b, fr->ReadRecordBatch((*i)++));
          return arrow::Status::OK();
        },
        nullptr);
  }
  auto sr = value_or_throw(arrow::ipc::RecordBatchStreamReader::Open(in), path);
  return std::make_shared<FileReader>(
      path, sr->schema(), [sr](std::shared_ptr<arrow::RecordBatch>* b) { return sr->ReadNext(b); },
      nullptr);
}

// The first header line's column names (for ragged-row errors).
std::vector<std::string> csv_header(const std::string& path, char delim) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (char c : line) {
    if (c == '"')
      quoted = !quoted;
    else if (c == delim && !quoted)
      out.push_back(std::exchange(cur, {}));
    else
      cur += c;
  }
  out.push_back(cur);
  return out;
}

arrow::Status csv_serial_status(const std::string& path, char delim);

[[noreturn]] void csv_error(const std::string& path, char delim, const arrow::Status& st) {
  // Arrow: "CSV parse error: Row #4: Expected 2 columns, got 3: 1,2,3". Parsing blocks in
  // parallel drops the row number; parse again serially to get it.
  std::string msg = st.message();
  if (msg.find("Row #") == std::string::npos && msg.find("Expected ") != std::string::npos) {
    const auto serial = csv_serial_status(path, delim);
    if (!serial.ok()) msg = serial.message();
  }
  const auto at = msg.find("Row #");
  if (at != std::string::npos) {
    size_t p = at + 5, n = 0;
    while (p < msg.size() && std::isdigit(static_cast<unsigned char>(msg[p])))
      n = n * 10 + (msg[p++] - '0');
    std::string rest = msg.substr(std::min(msg.size(), p + 2));
    const auto hdr = csv_header(path, delim);
    std::string cols;
    for (size_t i = 0; i < hdr.size(); ++i) cols += (i ? ", " : "") + hdr[i];
    auto e = rest.find("Expected ");
    if (e != std::string::npos) {
      rest[e] = 'e';
      const auto c = rest.find(" columns", e);
      if (c != std::string::npos) rest.insert(c + 8, " (" + cols + ")");
    }
    throw FormatError(ErrorContext().file(path), "row " + std::to_string(n) + ": " + rest);
  }
  // a conversion error names the column: "In CSV column #1: Row #3: CSV conversion error ..."
  throw FormatError(ErrorContext().file(path), msg);
}

// The first error of a single-threaded read of the whole file (OK when there is none).
arrow::Status csv_serial_status(const std::string& path, char delim) {
  ARROW_ASSIGN_OR_RAISE(auto in, arrow::io::ReadableFile::Open(path));
  auto ro = arrow::csv::ReadOptions::Defaults();
  ro.use_threads = false;
  auto po = arrow::csv::ParseOptions::Defaults();
  po.delimiter = delim;
  po.newlines_in_values = true;
  auto co = arrow::csv::ConvertOptions::Defaults();
  co.strings_can_be_null = true;
  ARROW_ASSIGN_OR_RAISE(
      auto r, arrow::csv::StreamingReader::Make(arrow::io::default_io_context(), in, ro, po, co));
  for (;;) {
    std::shared_ptr<arrow::RecordBatch> b;
    ARROW_RETURN_NOT_OK(r->ReadNext(&b));
    if (!b) return arrow::Status::OK();
  }
}

std::shared_ptr<arrow::RecordBatchReader> open_csv(const std::string& path,
                                                   const ReadOptions& opt) {
  auto in = open_input(path);
  auto ro = arrow::csv::ReadOptions::Defaults();
  ro.use_threads = opt.use_threads;
  auto po = arrow::csv::ParseOptions::Defaults();
  if (has_ext(path, ".tsv")) po.delimiter = '\t';
  po.newlines_in_values = true;  // pandas (datasets' csv writer) quotes embedded newlines
  auto co = arrow::csv::ConvertOptions::Defaults();
  co.strings_can_be_null =
      true;  // an empty field is null, as pandas (datasets' csv loader) reads it
  const char delim = po.delimiter;
  auto r = arrow::csv::StreamingReader::Make(arrow::io::default_io_context(), in, ro, po, co);
  if (!r.ok()) csv_error(path, delim, r.status());
  std::shared_ptr<arrow::csv::StreamingReader> sr = *r;
  return std::make_shared<FileReader>(
      path, sr->schema(), [sr](std::shared_ptr<arrow::RecordBatch>* b) { return sr->ReadNext(b); },
      [path, delim](const arrow::Status& st) { csv_error(path, delim, st); });
}

// A json/jsonl failure from Arrow: find the first malformed line, or the first line where the
// column Arrow complains about changes type, and name it.
[[noreturn]] void json_error(const std::string& path, const arrow::Status& st) {
  const std::string& msg = st.message();
  std::string column;
  if (auto c = msg.find("Column("); c != std::string::npos) {
    auto e = msg.find(')', c);
    column = msg.substr(c + 7, e - c - 7);
    if (!column.empty() && column[0] == '/') column.erase(0, 1);
  }
  std::ifstream f(path);
  std::string line;
  int64_t n = 0;
  std::string first_type;
  int64_t first_line = 0;
  while (std::getline(f, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      std::string what = e.what();
      if (auto p = what.find("syntax error"); p != std::string::npos) what = what.substr(p);
      throw FormatError(ErrorContext().file(path),
                        "line " + std::to_string(n) + ": malformed JSON (" + what + ")");
    }
    if (!j.is_object()) {
      throw FormatError(ErrorContext().file(path),
                        "line " + std::to_string(n) + ": not a JSON object (one row per line)");
    }
    if (!column.empty() && j.contains(column) && !j[column].is_null()) {
      // integers and floats mix (Arrow widens); any other change of JSON type is the conflict
      const std::string t = j[column].is_number() ? "number" : j[column].type_name();
      if (first_type.empty()) {
        first_type = t;
        first_line = n;
      } else if (t != first_type) {
        throw FormatError(ErrorContext().file(path).key(column),
                          "line " + std::to_string(n) + ": a " + t + " where line " +
                              std::to_string(first_line) + " has a " + first_type);
      }
    }
  }
  throw FormatError(ErrorContext().file(path),
                    column.empty() ? msg : "column '" + column + "': " + msg);
}

std::shared_ptr<arrow::RecordBatchReader> open_json(const std::string& path,
                                                    const ReadOptions& opt) {
  std::shared_ptr<arrow::io::InputStream> in = open_input(path);
  // A .json file may be one JSON array of row objects (datasets' to_json(lines=False)); Arrow
  // reads newline-delimited objects only, so such a file is re-serialised one row per line.
  {
    std::ifstream f(path);
    char c = 0;
    while (f.get(c) && std::isspace(static_cast<unsigned char>(c))) {
    }
    if (c == '[') {
      f.seekg(0);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(f);
      } catch (const nlohmann::json::parse_error& e) {
        throw FormatError(ErrorContext().file(path), std::string("malformed JSON: ") + e.what());
      }
      std::string nd;
      int64_t i = 0;
      for (const auto& row : j) {
        if (!row.is_object())
          throw FormatError(ErrorContext().file(path),
                            "row " + std::to_string(i) + ": not a JSON object");
        nd += row.dump();
        nd += '\n';
        ++i;
      }
      auto owned = std::make_shared<std::string>(std::move(nd));
      in = std::make_shared<arrow::io::BufferReader>(std::make_shared<arrow::Buffer>(
          reinterpret_cast<const uint8_t*>(owned->data()), static_cast<int64_t>(owned->size())));
      auto ro = arrow::json::ReadOptions::Defaults();
      ro.use_threads = opt.use_threads;
      auto r = arrow::json::StreamingReader::Make(in, ro, arrow::json::ParseOptions::Defaults());
      if (!r.ok()) json_error(path, r.status());
      std::shared_ptr<arrow::json::StreamingReader> sr = *r;
      return std::make_shared<FileReader>(
          path, sr->schema(),
          [sr, owned](std::shared_ptr<arrow::RecordBatch>* b) { return sr->ReadNext(b); },
          [path](const arrow::Status& st) { json_error(path, st); });
    }
  }
  auto ro = arrow::json::ReadOptions::Defaults();
  ro.use_threads = opt.use_threads;
  auto r = arrow::json::StreamingReader::Make(in, ro, arrow::json::ParseOptions::Defaults());
  if (!r.ok()) {
    if (r.status().message().find("Empty JSON file") != std::string::npos) {
      throw FormatError(ErrorContext().file(path), "no rows (empty JSON file)");
    }
    json_error(path, r.status());
  }
  std::shared_ptr<arrow::json::StreamingReader> sr = *r;
  return std::make_shared<FileReader>(
      path, sr->schema(), [sr](std::shared_ptr<arrow::RecordBatch>* b) { return sr->ReadNext(b); },
      [path](const arrow::Status& st) { json_error(path, st); });
}

// Text: one row {"text": line} per line, without the line end (datasets' text builder).
std::shared_ptr<arrow::RecordBatchReader> open_text(const std::string& path,
                                                    const ReadOptions& opt) {
  open_input(path);
  auto f = std::make_shared<std::ifstream>(path, std::ios::binary);
  auto schema = arrow::schema({arrow::field("text", arrow::utf8())});
  const int64_t rows = std::max<int64_t>(1, opt.batch_rows);
  return std::make_shared<FileReader>(
      path, schema,
      [f, schema, rows](std::shared_ptr<arrow::RecordBatch>* b) -> arrow::Status {
        arrow::StringBuilder sb;
        std::string line;
        int64_t n = 0;
        while (n < rows && std::getline(*f, line)) {
          if (!line.empty() && line.back() == '\r') line.pop_back();
          ARROW_RETURN_NOT_OK(sb.Append(line));
          ++n;
        }
        if (n == 0) {
          b->reset();
          return arrow::Status::OK();
        }
        std::shared_ptr<arrow::Array> a;
        ARROW_RETURN_NOT_OK(sb.Finish(&a));
        *b = arrow::RecordBatch::Make(schema, n, {a});
        return arrow::Status::OK();
      },
      nullptr);
}

// Reads the shards one after the other, checking each schema against the first's.
class ShardReader : public arrow::RecordBatchReader {
 public:
  ShardReader(std::vector<std::string> paths, ReadOptions opt)
      : paths_(std::move(paths)), opt_(opt) {
    cur_ = open_file(paths_[0], opt_);
    schema_ = cur_->schema();
  }
  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }
  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
    for (;;) {
      ARROW_RETURN_NOT_OK(cur_->ReadNext(batch));
      if (*batch) return arrow::Status::OK();
      if (++i_ >= paths_.size()) return arrow::Status::OK();
      cur_ = open_file(paths_[i_], opt_);
      check_same(*cur_->schema(), paths_[i_]);
    }
  }

 private:
  void check_same(const arrow::Schema& s, const std::string& path) const {
    const auto& a = *schema_;
    for (int i = 0; i < std::max(a.num_fields(), s.num_fields()); ++i) {
      if (i >= s.num_fields()) {
        throw FormatError(ErrorContext().file(path).key(a.field(i)->name()),
                          "column missing here but present in " + paths_[0] +
                              " (shards must have the same columns)");
      }
      if (i >= a.num_fields() || a.field(i)->name() != s.field(i)->name()) {
        const bool elsewhere = a.GetFieldIndex(s.field(i)->name()) >= 0;
        throw FormatError(ErrorContext().file(path).key(s.field(i)->name()),
                          std::string("column ") +
                              (elsewhere ? "in another position than" : "not in") + " " +
                              paths_[0] + " (shards must have the same columns)");
      }
      if (!a.field(i)->type()->Equals(*s.field(i)->type())) {
        throw FormatError(ErrorContext().file(path).key(s.field(i)->name()),
                          "column is " + s.field(i)->type()->ToString() + " here but " +
                              a.field(i)->type()->ToString() + " in " + paths_[0] +
                              " (shards must agree)");
      }
    }
  }
  std::vector<std::string> paths_;
  ReadOptions opt_;
  size_t i_ = 0;
  std::shared_ptr<arrow::RecordBatchReader> cur_;
  std::shared_ptr<arrow::Schema> schema_;
};

}  // namespace

std::shared_ptr<arrow::RecordBatchReader> open_file(const std::string& path, const ReadOptions& opt,
                                                    const FileFormat* format) {
  FileFormat f;
  if (format) {
    f = *format;
  } else if (!format_of(path, f)) {
    throw UnsupportedError(ErrorContext().file(path),
                           "unknown data file type (expected .parquet, .arrow, .jsonl, .json, "
                           ".csv, .tsv or .txt)");
  }
  switch (f) {
    case FileFormat::Parquet:
      return open_parquet(path, opt);
    case FileFormat::Arrow:
      return open_ipc(path);
    case FileFormat::Json:
      return open_json(path, opt);
    case FileFormat::Csv:
      return open_csv(path, opt);
    case FileFormat::Text:
      return open_text(path, opt);
  }
  throw UnsupportedError(ErrorContext().file(path), "unknown format");
}

std::shared_ptr<arrow::RecordBatchReader> open_files(const std::vector<std::string>& paths,
                                                     const ReadOptions& opt) {
  if (paths.empty()) throw InvalidArgument("no data files");
  if (paths.size() == 1) return open_file(paths[0], opt);
  return std::make_shared<ShardReader>(paths, opt);
}

std::shared_ptr<arrow::Table> read_all(const std::shared_ptr<arrow::RecordBatchReader>& reader) {
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  for (;;) {
    std::shared_ptr<arrow::RecordBatch> b;
    check(reader->ReadNext(&b), "read");
    if (!b) break;
    batches.push_back(std::move(b));
  }
  return value_or_throw(arrow::Table::FromRecordBatches(reader->schema(), batches), "read");
}

int64_t count_rows(const std::string& path) {
  FileFormat f;
  if (format_of(path, f) && f == FileFormat::Parquet) {
    auto in = open_input(path);
    try {
      auto fr = value_or_throw(parquet::arrow::OpenFile(in, arrow::default_memory_pool()), path);
      return fr->parquet_reader()->metadata()->num_rows();
    } catch (const parquet::ParquetException& e) {
      throw FormatError(ErrorContext().file(path), std::string("not a parquet file: ") + e.what());
    }
  }
  auto r = open_file(path);
  int64_t n = 0;
  for (;;) {
    std::shared_ptr<arrow::RecordBatch> b;
    check(r->ReadNext(&b), path);
    if (!b) break;
    n += b->num_rows();
  }
  return n;
}

int64_t write_file(arrow::RecordBatchReader& reader, const std::string& path,
                   const WriteOptions& opt) {
  const nlohmann::json features =
      opt.features.is_null() ? features_of(*reader.schema()) : opt.features;
  auto schema = with_features(reader.schema(), features);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::error_code ec;
  if (auto dir = fs::path(path).parent_path(); !dir.empty()) fs::create_directories(dir, ec);
  int64_t rows = 0;
  // Every batch of `reader` into w (a parquet FileWriter or an IPC writer), with the features.
  auto copy_batches = [&](auto& w) {
    for (;;) {
      std::shared_ptr<arrow::RecordBatch> b;
      check(reader.ReadNext(&b), path);
      if (!b) break;
      check(w.WriteRecordBatch(*b->ReplaceSchemaMetadata(schema->metadata())), path);
      rows += b->num_rows();
      if (opt.progress) opt.progress(rows);
    }
    check(w.Close(), path);
  };
  try {
    auto out = value_or_throw(arrow::io::FileOutputStream::Open(tmp), path);
    if (opt.format == FileFormat::Parquet) {
      auto props = parquet::WriterProperties::Builder()
                       .compression(parquet::Compression::SNAPPY)
                       ->max_row_group_length(opt.row_group_rows)
                       ->build();
      auto aprops = parquet::ArrowWriterProperties::Builder().store_schema()->build();
      auto w = value_or_throw(parquet::arrow::FileWriter::Open(
                                  *schema, arrow::default_memory_pool(), out, props, aprops),
                              path);
      copy_batches(*w);
    } else if (opt.format == FileFormat::Arrow) {
      auto w = value_or_throw(arrow::ipc::MakeStreamWriter(out, schema), path);
      copy_batches(*w);
    } else {
      throw UnsupportedError(
          ErrorContext().file(path),
          std::string("writing ") + to_string(opt.format) + " (write parquet or arrow)");
    }
    check(out->Close(), path);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw IoError(ErrorContext().file(path), "cannot rename the written file into place");
  }
  return rows;
}

}  // namespace ohm::datasets
