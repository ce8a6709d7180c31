#include <CLI/CLI.hpp>
#include <iostream>

#include "ohm/cli/cli.h"
#include "ohm/core/error.h"

namespace ohm::cli {

int run(int argc, char** argv) {
  CLI::App app{"ohm: a native toolkit for open language models (HF checkpoints, GGUF)", "ohm"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ohm 0.1.0");
  app.footer(
      "MODEL arguments: a local directory (config.json + safetensors), a .gguf or .safetensors\n"
      "file, or a Hub id org/name[@revision] found in the HF cache (HF_HUB_CACHE, HF_HOME/hub,\n"
      "~/.cache/huggingface/hub). Run `ohm SUBCOMMAND --help` for details.");

  InspectOptions iopt;
  auto* inspect_cmd = app.add_subcommand(
      "inspect", "Show a checkpoint: architecture, parameter count, dtypes, tensors, config, "
                 "GGUF metadata");
  inspect_cmd->add_option("model", iopt.model, "Model directory, .gguf/.safetensors file or Hub id")
      ->required();
  inspect_cmd->add_flag("--json", iopt.json, "Print one JSON object instead of text");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help, version or the usage error
    return rc == 0 ? 0 : 2;
  }
  try {
    if (inspect_cmd->parsed()) inspect(iopt, std::cout);
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
