// Rows of parquet, Arrow IPC and text files for `ohm datasets deid`, as the record interface of
// ohm/safety/deid_records.h (which reads jsonl and csv itself): one record batch (a parquet row
// group, an IPC batch, batch_rows text lines) in memory at a time, written back in the input's
// format with the same schema and features, so memory stays constant in the file size.
//
// Only top-level string columns are text; asking for a column of another type is a FormatError
// naming the file and column. Rows are numbered from 1 in line() (a text file's line numbers).
// No Arrow header here: the CLI includes this beside its own headers.
#pragma once

#include <memory>
#include <string>

#include "ohm/safety/deid_records.h"

namespace ohm::datasets {

// "parquet", "arrow" or "text" for a file these records read (by extension: .parquet;
// .arrow/.ipc/.feather; .txt), empty otherwise.
std::string arrow_record_format(const std::string& path);
// Reads `path` in `format` (one of arrow_record_format's names).
std::unique_ptr<safety::deid::RecordReader> open_arrow_record_reader(const std::string& path,
                                                                     const std::string& format);
// Writes `path` in `format`; the rows passed to write() must come from `reader`, which must be
// open_arrow_record_reader's (its schema and features are kept).
std::unique_ptr<safety::deid::RecordWriter> open_arrow_record_writer(
    const std::string& path, const std::string& format, const safety::deid::RecordReader& reader);

}  // namespace ohm::datasets
