// The `ohm` command-line tool: all work is in the library (src/cli dispatches subcommands).
#include "ohm/cli/cli.h"

int main(int argc, char** argv) {
  return ohm::cli::run(argc, argv);
}
