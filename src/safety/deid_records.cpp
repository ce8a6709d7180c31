// Streaming jsonl and csv rows for `ohm datasets deid` (ohm/safety/deid_records.h).
#include "ohm/safety/deid_records.h"

#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "ohm/core/error.h"

namespace ohm::safety::deid {

namespace {

using ojson = nlohmann::ordered_json;

std::string where(const std::string& path, uint64_t line, uint64_t col = 0) {
  std::string w = path + ":" + std::to_string(line);
  if (col) w += ":" + std::to_string(col);
  return w;
}

const char* json_type(const ojson& v) {
  switch (v.type()) {
    case ojson::value_t::object:
      return "an object";
    case ojson::value_t::array:
      return "an array";
    case ojson::value_t::boolean:
      return "a boolean";
    case ojson::value_t::number_integer:
    case ojson::value_t::number_unsigned:
    case ojson::value_t::number_float:
      return "a number";
    default:
      return "not a string";
  }
}

class JsonlReader : public RecordReader {
 public:
  explicit JsonlReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) throw IoError(ErrorContext().file(path), "cannot open for reading");
  }
  bool next() override {
    while (std::getline(in_, buf_)) {
      ++lineno_;
      if (!buf_.empty() && buf_.back() == '\r') buf_.pop_back();
      if (buf_.find_first_not_of(" \t") == std::string::npos) continue;
      try {
        row_ = ojson::parse(buf_);
      } catch (const ojson::parse_error& e) {
        // e.byte: the 1-based offset in the line of the character at fault
        std::string what = e.what();
        const size_t p = what.find("syntax error");
        throw FormatError(
            ErrorContext().file(where(path_, lineno_, e.byte)),
            "malformed JSON line: " + (p != std::string::npos ? what.substr(p) : what));
      }
      if (!row_.is_object())
        throw FormatError(
            ErrorContext().file(where(path_, lineno_, 1)),
            std::string("a jsonl row must be a JSON object, this line is ") + json_type(row_));
      for (const auto& [k, v] : row_.items()) seen_.insert(k);
      return true;
    }
    if (in_.bad()) throw IoError(ErrorContext().file(path_), "read failed");
    return false;
  }
  std::string* text(std::string_view name) override {
    auto it = row_.find(std::string(name));
    if (it == row_.end() || it->is_null()) return nullptr;
    if (!it->is_string())
      throw FormatError(
          ErrorContext().file(where(path_, lineno_)),
          "column '" + std::string(name) + "' is " + json_type(*it) + ", not a string");
    return &it->get_ref<std::string&>();
  }
  bool has_column(std::string_view name) const override {
    return seen_.count(std::string(name)) > 0;
  }
  uint64_t line() const override { return lineno_; }
  const std::string& path() const override { return path_; }
  const ojson& row() const { return row_; }

 private:
  std::string path_;
  std::ifstream in_;
  std::string buf_;
  ojson row_;
  uint64_t lineno_ = 0;
  std::unordered_set<std::string> seen_;
};

class CsvReader : public RecordReader {
 public:
  explicit CsvReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) throw IoError(ErrorContext().file(path), "cannot open for reading");
    if (!read_row(header_))
      throw FormatError(ErrorContext().file(path), "empty csv file (no header row)");
    if (!header_.empty() && header_[0].compare(0, 3, "\xEF\xBB\xBF") == 0) header_[0].erase(0, 3);
    for (size_t i = 0; i < header_.size(); ++i) {
      if (index_.count(header_[i]))
        throw FormatError(ErrorContext().file(where(path_, 1)),
                          "column '" + header_[i] + "' appears twice in the header");
      index_.emplace(header_[i], i);
    }
  }
  bool next() override {
    if (!read_row(row_)) return false;
    if (row_.size() != header_.size())
      throw FormatError(ErrorContext().file(where(path_, row_line_)),
                        "row has " + std::to_string(row_.size()) + " fields, the header has " +
                            std::to_string(header_.size()));
    return true;
  }
  std::string* text(std::string_view name) override {
    auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &row_[it->second];
  }
  bool has_column(std::string_view name) const override {
    return index_.count(std::string(name)) > 0;
  }
  uint64_t line() const override { return row_line_; }
  const std::string& path() const override { return path_; }
  const std::vector<std::string>& header() const { return header_; }
  const std::vector<std::string>& row() const { return row_; }

 private:
  int get() {
    const int c = in_.get();
    if (c == '\n') {
      ++line_;
      col_ = 0;
    } else if (c != EOF) {
      ++col_;
    }
    return c;
  }
  // RFC 4180: fields separated by ',', rows by LF or CRLF; a quoted field may hold ',', '"' (as
  // "") and line breaks. Returns false at the end of the file.
  bool read_row(std::vector<std::string>& out) {
    out.clear();
    int c = in_.peek();
    if (c == EOF) return false;
    row_line_ = line_;
    std::string field;
    while (true) {
      c = get();
      if (c == '"' && field.empty()) {
        const uint64_t ql = line_, qc = col_;
        while (true) {
          c = get();
          if (c == EOF)
            throw FormatError(ErrorContext().file(where(path_, ql, qc)),
                              "quoted field is not closed");
          if (c == '"') {
            if (in_.peek() == '"') {
              get();
              field += '"';
              continue;
            }
            break;
          }
          field += static_cast<char>(c);
        }
        c = get();
        if (c == '\r' && in_.peek() == '\n') c = get();
        if (c != ',' && c != '\n' && c != EOF)
          throw FormatError(ErrorContext().file(where(path_, line_, col_)),
                            "unexpected character after a closing quote");
      } else {
        while (c != ',' && c != '\n' && c != EOF) {
          if (c == '"')
            throw FormatError(ErrorContext().file(where(path_, line_, col_)),
                              "'\"' inside an unquoted field (quote the field)");
          if (c == '\r' && in_.peek() == '\n') {
            c = get();
            break;
          }
          field += static_cast<char>(c);
          c = get();
        }
      }
      out.push_back(std::move(field));
      field.clear();
      if (c == ',') continue;
      return true;  // '\n' or EOF
    }
  }

  std::string path_;
  std::ifstream in_;
  std::vector<std::string> header_, row_;
  std::unordered_map<std::string, size_t> index_;
  uint64_t line_ = 1, col_ = 0, row_line_ = 1;
};

class JsonlWriter : public RecordWriter {
 public:
  explicit JsonlWriter(const std::string& path) : path_(path), out_(path, std::ios::binary) {
    if (!out_) throw IoError(ErrorContext().file(path), "cannot open for writing");
  }
  void write(const RecordReader& r) override {
    const auto* j = dynamic_cast<const JsonlReader*>(&r);
    if (!j) throw InvalidArgument("jsonl output needs jsonl input");
    out_ << j->row().dump(-1, ' ', false, ojson::error_handler_t::replace) << '\n';
  }
  void finish() override {
    out_.flush();
    if (!out_) throw IoError(ErrorContext().file(path_), "write failed");
  }

 private:
  std::string path_;
  std::ofstream out_;
};

class CsvWriter : public RecordWriter {
 public:
  explicit CsvWriter(const std::string& path) : path_(path), out_(path, std::ios::binary) {
    if (!out_) throw IoError(ErrorContext().file(path), "cannot open for writing");
  }
  void write(const RecordReader& r) override {
    const auto* c = dynamic_cast<const CsvReader*>(&r);
    if (!c) throw InvalidArgument("csv output needs csv input");
    if (!header_done_) {
      put(c->header());
      header_done_ = true;
    }
    put(c->row());
  }
  void finish() override {
    out_.flush();
    if (!out_) throw IoError(ErrorContext().file(path_), "write failed");
  }

 private:
  void put(const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (i) out_ << ',';
      const auto& f = row[i];
      if (f.find_first_of(",\"\r\n") != std::string::npos) {
        out_ << '"';
        for (char ch : f) {
          if (ch == '"') out_ << '"';
          out_ << ch;
        }
        out_ << '"';
      } else {
        out_ << f;
      }
    }
    out_ << '\n';
  }
  std::string path_;
  std::ofstream out_;
  bool header_done_ = false;
};

bool ends_with(const std::string& s, const char* suf) {
  const std::string x(suf);
  return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
}

}  // namespace

std::string record_format(const std::string& path) {
  std::string p;
  for (char c : path) p += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ends_with(p, ".jsonl") || ends_with(p, ".ndjson") || ends_with(p, ".json")) return "jsonl";
  if (ends_with(p, ".csv")) return "csv";
  return "";
}

std::unique_ptr<RecordReader> open_record_reader(const std::string& path,
                                                 const std::string& format) {
  if (format == "jsonl") return std::make_unique<JsonlReader>(path);
  if (format == "csv") return std::make_unique<CsvReader>(path);
  throw UnsupportedError(ErrorContext().file(path),
                         "unknown record format '" + format + "' (jsonl or csv)");
}

std::unique_ptr<RecordWriter> open_record_writer(const std::string& path,
                                                 const std::string& format) {
  if (format == "jsonl") return std::make_unique<JsonlWriter>(path);
  if (format == "csv") return std::make_unique<CsvWriter>(path);
  throw UnsupportedError(ErrorContext().file(path),
                         "unknown record format '" + format + "' (jsonl or csv)");
}

}  // namespace ohm::safety::deid
