// Parquet, Arrow IPC and text rows for `ohm datasets deid` (ohm/datasets/records.h).
#include "ohm/datasets/records.h"

#include <arrow/api.h>
#include <arrow/array/concatenate.h>
#include <arrow/io/file.h>
#include <arrow/ipc/writer.h>
#include <parquet/arrow/writer.h>

#include <fstream>
#include <optional>
#include <vector>

#include "ohm/core/error.h"
#include "ohm/datasets/dataset.h"

namespace ohm::datasets {

namespace {

using safety::deid::RecordReader;
using safety::deid::RecordWriter;

// One record batch and the text columns read from it so far (rewritten in place by deid).
struct BatchState {
  std::shared_ptr<arrow::RecordBatch> batch;
  std::vector<std::optional<std::vector<std::optional<std::string>>>> text;  // per column
  int64_t first_row = 0;                                                     // 0-based, in file
};

bool is_text_type(const arrow::DataType& t) {
  return t.id() == arrow::Type::STRING || t.id() == arrow::Type::LARGE_STRING ||
         t.id() == arrow::Type::STRING_VIEW;
}

class ArrowRecordReader : public RecordReader {
 public:
  ArrowRecordReader(const std::string& path, const std::string& format)
      : path_(path), format_(format) {
    FileFormat f{};
    if (!parse_format(format, f)) throw InvalidArgument("unknown record format '" + format + "'");
    reader_ = open_file(path, ReadOptions{}, &f);
    schema_ = reader_->schema();
  }
  bool next() override {
    ++row_;
    while (!state_ || row_ >= state_->batch->num_rows()) {
      std::shared_ptr<arrow::RecordBatch> b;
      check(reader_->ReadNext(&b), path_);
      if (!b) return false;
      auto s = std::make_shared<BatchState>();
      s->first_row = state_ ? state_->first_row + state_->batch->num_rows() : 0;
      s->batch = std::move(b);
      s->text.resize(static_cast<size_t>(s->batch->num_columns()));
      state_ = std::move(s);
      row_ = 0;
    }
    return true;
  }
  std::string* text(std::string_view name) override {
    const int i = schema_->GetFieldIndex(std::string(name));
    if (i < 0 || !state_) return nullptr;
    auto& col = state_->text[static_cast<size_t>(i)];
    if (!col) {
      const auto& field = *schema_->field(i);
      if (!is_text_type(*field.type()))
        throw FormatError(ErrorContext().file(path_).key(field.name()),
                          "column '" + field.name() + "' is " + field.type()->ToString() +
                              ", not a string (only top-level string columns are de-identified)");
      const auto& a = *state_->batch->column(i);
      col.emplace(static_cast<size_t>(a.length()));
      for (int64_t r = 0; r < a.length(); ++r) {
        if (a.IsNull(r)) continue;
        std::string_view v;
        if (a.type_id() == arrow::Type::STRING)
          v = static_cast<const arrow::StringArray&>(a).GetView(r);
        else if (a.type_id() == arrow::Type::LARGE_STRING)
          v = static_cast<const arrow::LargeStringArray&>(a).GetView(r);
        else
          v = static_cast<const arrow::StringViewArray&>(a).GetView(r);
        (*col)[static_cast<size_t>(r)] = std::string(v);
      }
    }
    auto& v = (*col)[static_cast<size_t>(row_)];
    return v ? &*v : nullptr;
  }
  bool has_column(std::string_view name) const override {
    return schema_->GetFieldIndex(std::string(name)) >= 0;
  }
  uint64_t line() const override {
    return static_cast<uint64_t>((state_ ? state_->first_row : 0) + row_ + 1);
  }
  const std::string& path() const override { return path_; }

  const std::shared_ptr<BatchState>& state() const { return state_; }
  int64_t row_in_batch() const { return row_; }
  const std::shared_ptr<arrow::Schema>& schema() const { return schema_; }
  const std::string& format() const { return format_; }

 private:
  std::string path_, format_;
  std::shared_ptr<arrow::RecordBatchReader> reader_;
  std::shared_ptr<arrow::Schema> schema_;
  std::shared_ptr<BatchState> state_;
  int64_t row_ = -1;
};

// The kept rows of one column: its rewritten text, or runs of the original array.
std::shared_ptr<arrow::Array> kept_column(const BatchState& s, int i,
                                          const std::vector<int64_t>& kept,
                                          const std::string& where) {
  const auto& orig = s.batch->column(i);
  const auto& text = s.text[static_cast<size_t>(i)];
  if (text) {
    // Rebuilt as the original type (string, large_string, string_view).
    std::unique_ptr<arrow::ArrayBuilder> b;
    check(arrow::MakeBuilder(arrow::default_memory_pool(), orig->type(), &b), where);
    for (int64_t r : kept) {
      const auto& v = (*text)[static_cast<size_t>(r)];
      if (!v) {
        check(b->AppendNull(), where);
      } else if (orig->type_id() == arrow::Type::STRING) {
        check(static_cast<arrow::StringBuilder&>(*b).Append(*v), where);
      } else if (orig->type_id() == arrow::Type::LARGE_STRING) {
        check(static_cast<arrow::LargeStringBuilder&>(*b).Append(*v), where);
      } else {
        check(static_cast<arrow::StringViewBuilder&>(*b).Append(*v), where);
      }
    }
    return value_or_throw(b->Finish(), where);
  }
  if (static_cast<int64_t>(kept.size()) == orig->length()) return orig;
  arrow::ArrayVector runs;
  for (size_t k = 0; k < kept.size();) {
    size_t e = k + 1;
    while (e < kept.size() && kept[e] == kept[e - 1] + 1) ++e;
    runs.push_back(orig->Slice(kept[k], static_cast<int64_t>(e - k)));
    k = e;
  }
  if (runs.empty()) return orig->Slice(0, 0);
  return value_or_throw(arrow::Concatenate(runs), where);
}

class ArrowRecordWriter : public RecordWriter {
 public:
  ArrowRecordWriter(const std::string& path, const ArrowRecordReader& reader)
      : path_(path), format_(reader.format()), schema_(reader.schema()) {
    if (format_ == "text") {
      text_out_.open(path, std::ios::binary);
      if (!text_out_) throw IoError(ErrorContext().file(path), "cannot open for writing");
      return;
    }
    out_ = value_or_throw(arrow::io::FileOutputStream::Open(path), path);
    if (format_ == "parquet") {
      auto props =
          parquet::WriterProperties::Builder().compression(parquet::Compression::SNAPPY)->build();
      auto aprops = parquet::ArrowWriterProperties::Builder().store_schema()->build();
      parquet_ = value_or_throw(parquet::arrow::FileWriter::Open(
                                    *schema_, arrow::default_memory_pool(), out_, props, aprops),
                                path);
    } else {
      ipc_ = value_or_throw(arrow::ipc::MakeStreamWriter(out_, schema_), path);
    }
  }
  void write(const RecordReader& row) override {
    const auto* r = dynamic_cast<const ArrowRecordReader*>(&row);
    if (!r) throw InvalidArgument(path_ + ": rows of another format");
    if (r->state() != pending_) flush();
    pending_ = r->state();
    kept_.push_back(r->row_in_batch());
  }
  void finish() override {
    flush();
    if (text_out_.is_open()) {
      text_out_.flush();
      if (!text_out_) throw IoError(ErrorContext().file(path_), "write failed");
      text_out_.close();
      return;
    }
    if (parquet_) check(parquet_->Close(), path_);
    if (ipc_) check(ipc_->Close(), path_);
    check(out_->Close(), path_);
  }

 private:
  void flush() {
    if (!pending_ || kept_.empty()) {
      pending_.reset();
      kept_.clear();
      return;
    }
    const auto& b = *pending_->batch;
    if (text_out_.is_open()) {
      // The text builder's one column, a line per row (a null row is an empty line).
      const auto col = kept_column(*pending_, 0, kept_, path_);
      const auto& a = static_cast<const arrow::StringArray&>(*col);
      for (int64_t r = 0; r < a.length(); ++r) {
        if (!a.IsNull(r)) text_out_ << a.GetView(r);
        text_out_ << '\n';
      }
    } else {
      arrow::ArrayVector cols;
      for (int i = 0; i < b.num_columns(); ++i)
        cols.push_back(kept_column(*pending_, i, kept_, path_));
      auto out = arrow::RecordBatch::Make(schema_, static_cast<int64_t>(kept_.size()), cols);
      if (parquet_)
        check(parquet_->WriteRecordBatch(*out), path_);
      else
        check(ipc_->WriteRecordBatch(*out), path_);
    }
    pending_.reset();
    kept_.clear();
  }

  std::string path_, format_;
  std::shared_ptr<arrow::Schema> schema_;
  std::shared_ptr<arrow::io::FileOutputStream> out_;
  std::unique_ptr<parquet::arrow::FileWriter> parquet_;
  std::shared_ptr<arrow::ipc::RecordBatchWriter> ipc_;
  std::ofstream text_out_;
  std::shared_ptr<BatchState> pending_;
  std::vector<int64_t> kept_;
};

}  // namespace

std::string arrow_record_format(const std::string& path) {
  FileFormat f{};
  if (!format_of(path, f)) return "";
  switch (f) {
    case FileFormat::Parquet:
    case FileFormat::Arrow:
    case FileFormat::Text:
      return to_string(f);
    default:
      return "";
  }
}

std::unique_ptr<RecordReader> open_arrow_record_reader(const std::string& path,
                                                       const std::string& format) {
  return std::make_unique<ArrowRecordReader>(path, format);
}

std::unique_ptr<RecordWriter> open_arrow_record_writer(const std::string& path,
                                                       const std::string& format,
                                                       const RecordReader& reader) {
  const auto* r = dynamic_cast<const ArrowRecordReader*>(&reader);
  if (!r || r->format() != format)
    throw InvalidArgument(path + ": the writer's format must be its reader's (" + format + ")");
  return std::make_unique<ArrowRecordWriter>(path, *r);
}

}  // namespace ohm::datasets
