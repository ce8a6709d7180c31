#include <CLI/CLI.hpp>
#include <iostream>
#include <map>

#include "ohm/cli/cli.h"
#include "ohm/core/error.h"

namespace ohm::cli {

namespace {
std::map<std::string, Setup>& registry() {
  static std::map<std::string, Setup> r;
  return r;
}
}  // namespace

Register::Register(const std::string& name, Setup setup) {
  registry()[name] = std::move(setup);
}

int run(int argc, char** argv) {
  CLI::App app{"ohm: a native toolkit for open language models (HF checkpoints, GGUF)", "ohm"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ohm 0.1.0");
  app.footer(
      "MODEL arguments: a local directory (config.json + safetensors), a .gguf or .safetensors\n"
      "file, or a Hub id org/name[@revision] found in the HF cache (HF_HUB_CACHE, HF_HOME/hub,\n"
      "~/.cache/huggingface/hub). Run `ohm SUBCOMMAND --help` for details.");
  std::vector<Command> commands;
  for (auto& [name, setup] : registry()) commands.push_back(setup(app));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help, version or the usage error
    return rc == 0 ? 0 : 2;
  }
  try {
    for (const auto& c : commands)
      if (c.app->parsed()) return c.run();
  } catch (const ohm::Error& e) {
    std::cerr << "ohm: " << to_string(e.kind()) << ": " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "ohm: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace ohm::cli
