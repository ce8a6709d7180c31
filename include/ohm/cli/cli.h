// The `ohm` CLI: subcommands over libohm. Separate from tools/ so tests can drive it.
//
// Each subcommand lives in its own src/cli/<name>.cpp and registers itself:
//
//   static ohm::cli::Register reg("tokenize", [](CLI::App& app) {
//     auto opt = std::make_shared<Options>();
//     auto* cmd = app.add_subcommand("tokenize", "Print token ids");
//     cmd->add_option(...);
//     return ohm::cli::Command{cmd, [opt] { ...; return 0; }};
//   });
//
// Commands run in name order in --help. Errors thrown as ohm::Error are printed as
// "ohm: <kind>: <message>" with exit code 1; usage errors exit with 2.
#pragma once

#include <functional>
#include <iosfwd>
#include <map>
#include <string>

namespace CLI {
class App;
}

namespace ohm::cli {

struct Command {
  CLI::App* app = nullptr;   // the subcommand added to the parent
  std::function<int()> run;  // runs it after parsing; returns the exit code
};
using Setup = std::function<Command(CLI::App& parent)>;

// Adds a subcommand to the registry (at static-initialisation time): a top-level one
// (`ohm NAME`), or one of a command group (`ohm GROUP NAME`, e.g. group "datasets"), which the
// group's own command adds from registered(GROUP).
struct Register {
  Register(const std::string& name, Setup setup);
  Register(const std::string& group, const std::string& name, Setup setup);
};
// The subcommands registered for `group` ("" = top level), by name.
std::map<std::string, Setup>& registered(const std::string& group);

// Parses argv and runs the subcommand; returns the process exit code.
int run(int argc, char** argv);

struct InspectOptions {
  std::string model;
  bool json = false;
  std::string verify_key;  // --verify-key (else $OHM_VERIFY_KEY): verify before reading
};
// `ohm inspect`: writes the report to `out`.
void inspect(const InspectOptions& opt, std::ostream& out);

}  // namespace ohm::cli
