#include "line_reader.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>

#ifdef OHM_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

namespace ohm::cli {

std::string default_chat_history() {
  const char* home = std::getenv("HOME");
  return home && *home ? std::string(home) + "/.ohm_chat_history" : std::string();
}

LineReader::LineReader(bool terminal, std::string history_file) {
#ifdef OHM_HAVE_LIBEDIT
  editing_ = terminal;
  if (editing_) {
    const char* home = std::getenv("HOME");
    if (history_file.starts_with("~/") && home && *home)
      history_file = std::string(home) + history_file.substr(1);
    history_ = std::move(history_file);
    using_history();
    stifle_history(1000);
    if (!history_.empty()) read_history(history_.c_str());  // missing at first: fine
  }
#else
  (void)terminal;
  (void)history_file;
#endif
}

LineReader::~LineReader() {
#ifdef OHM_HAVE_LIBEDIT
  if (editing_ && !history_.empty()) write_history(history_.c_str());
#endif
}

bool LineReader::read(const char* prompt, std::string& line) {
#ifdef OHM_HAVE_LIBEDIT
  if (editing_) {
    std::cout << std::flush;
    char* s = readline(prompt);
    if (!s) return false;
    line = s;
    std::free(s);
    if (!line.empty() && line.find_first_not_of(" \t") != std::string::npos)
      add_history(line.c_str());
    return true;
  }
#endif
  std::cout << prompt << std::flush;
  return static_cast<bool>(std::getline(std::cin, line));
}

}  // namespace ohm::cli
