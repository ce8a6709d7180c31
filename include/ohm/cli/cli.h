// The `ohm` CLI: subcommands over libohm. Separate from tools/ so tests can drive it.
#pragma once

#include <iosfwd>
#include <string>

namespace ohm::cli {

// Parses argv and runs the subcommand; returns the process exit code (errors are printed to
// stderr as "ohm: <message>" with exit code 1; usage errors give 2).
int run(int argc, char** argv);

struct InspectOptions {
  std::string model;
  bool json = false;
  bool all_tensors = true;
};
// `ohm inspect`: writes the report to `out`.
void inspect(const InspectOptions& opt, std::ostream& out);

}  // namespace ohm::cli
