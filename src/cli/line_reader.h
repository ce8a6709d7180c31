// Reading `ohm chat`'s input lines: on a terminal through libedit (line editing, Ctrl-R search,
// a history file) when ohm was built with it, else (and for pipes) with std::getline.
#pragma once

#include <string>

namespace ohm::cli {

class LineReader {
 public:
  // history_file: "" for none; "~/..." is expanded. Without a terminal there is no editing and
  // no history.
  LineReader(bool terminal, std::string history_file);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Prints `prompt` and reads one line (without its newline); false at end of input.
  bool read(const char* prompt, std::string& line);
  bool editing() const { return editing_; }

 private:
  bool editing_ = false;
  std::string history_;
};

// The default history file, ~/.ohm_chat_history ("" when HOME is unset).
std::string default_chat_history();

}  // namespace ohm::cli
