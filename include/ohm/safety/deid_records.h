// Record I/O for `ohm datasets deid`: rows streamed one at a time from a file and written back in
// the same format, so memory stays constant in the file size. jsonl and csv here; parquet, Arrow
// IPC and text are the datasets module's pair of this interface (ohm/datasets/records.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ohm::safety::deid {

class RecordReader {
 public:
  virtual ~RecordReader() = default;
  // Reads the next row; false at the end. Throws FormatError naming the file, line and column
  // of malformed input.
  virtual bool next() = 0;
  // The current row's text in column `name`, for reading and rewriting in place; nullptr when
  // the row has no such column or its value is null. A value of another type is a FormatError.
  virtual std::string* text(std::string_view name) = 0;
  // Whether the file has the column (csv: its header; jsonl: some row read so far had it).
  virtual bool has_column(std::string_view name) const = 0;
  // The line the current row starts on (1-based).
  virtual uint64_t line() const = 0;
  virtual const std::string& path() const = 0;
};

class RecordWriter {
 public:
  virtual ~RecordWriter() = default;
  // Writes the reader's current row (with the rewrites made through text()).
  virtual void write(const RecordReader& row) = 0;
  virtual void finish() = 0;  // flushes; throws IoError on a write failure
};

// "jsonl" for *.jsonl / *.ndjson / *.json (one object a line), "csv" for *.csv; empty otherwise.
std::string record_format(const std::string& path);
std::unique_ptr<RecordReader> open_record_reader(const std::string& path,
                                                 const std::string& format);
// Writes to `path` in `format`; the reader must be of the same format.
std::unique_ptr<RecordWriter> open_record_writer(const std::string& path,
                                                 const std::string& format);

}  // namespace ohm::safety::deid
