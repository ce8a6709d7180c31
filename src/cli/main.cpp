#include <CLI/CLI.hpp>
#include <iostream>
#include <map>
#include <new>

#include "common.h"
#include "ohm/cli/cli.h"
#include "ohm/core/error.h"
#include "ohm/kernels/kernels.h"
#if OHM_HAVE_HUB
#include "ohm/hub/client.h"
#endif

namespace ohm::cli {

namespace {
std::map<std::string, Setup>& registry() {
  return registered("");
}

std::string subcommand_list() {
  std::string s;
  for (const auto& [name, setup] : registry()) s += (s.empty() ? "" : ", ") + name;
  return s;
}

// "ohm generate" for the deepest parsed subcommand, else "ohm".
std::string command_path(const CLI::App& app) {
  std::string path = "ohm";
  const CLI::App* cur = &app;
  for (;;) {
    const auto subs = cur->get_subcommands();
    if (subs.empty()) break;
    cur = subs.front();
    path += " " + cur->get_name();
  }
  return path;
}
}  // namespace

std::map<std::string, Setup>& registered(const std::string& group) {
  static std::map<std::string, std::map<std::string, Setup>> groups;
  return groups[group];
}

Register::Register(const std::string& name, Setup setup) {
  registered("")[name] = std::move(setup);
}

Register::Register(const std::string& group, const std::string& name, Setup setup) {
  registered(group)[name] = std::move(setup);
}

int run(int argc, char** argv) {
  CLI::App app{"ohm: a native toolkit for open language models (HF checkpoints, GGUF)", "ohm"};
  app.require_subcommand(1);
  // The version and the kernel paths in use on this CPU (what a benchmark report needs).
  app.set_version_flag("--version", [] {
    const std::string feats = kernels::cpu_features();
    const kernels::KernelTable& kt = kernels::active();
    const bool inv_variant = &kernels::batch_invariant_table() == &kt &&
                             kt.isa == kernels::Isa::Avx512 &&
                             kernels::table_for(kernels::Isa::Avx512) != &kt;
    return std::string("ohm 0.1.0\nkernels: ") + kernels::isa_name(kt.isa) +
           (inv_variant ? " batch-invariant" : "") +
           (kt.tiles ? std::string(" +") + kt.tiles : std::string()) +
           " (OHM_ISA=scalar|avx2|invariant, OHM_AMX=1|emulate)\n" + kernels::amx_status() +
           (feats.empty() ? "" : "\ncpu: " + feats);
  });
  std::vector<Command> commands;
  for (auto& [name, setup] : registry()) commands.push_back(setup(app));
  // Set after the subcommands are added: CLI11 copies the parent's footer into each of them.
  app.footer(
      "MODEL arguments: a local directory (config.json + safetensors), a .gguf or .safetensors\n"
      "file, or a Hub id org/name[@revision] found in the HF cache (HF_HUB_CACHE, HF_HOME/hub,\n"
      "~/.cache/huggingface/hub). Exit status: 0 success, 1 runtime error, 2 usage error,\n"
      "130 interrupted. Run `ohm SUBCOMMAND --help` for its options; docs/cli.md has details.");

  // An unknown first word is a mistyped subcommand, not a stray positional argument.
  if (argc > 1 && argv[1][0] != '-' && !registry().count(argv[1])) {
#if !OHM_HAVE_HUB
    const std::string word = argv[1];
    if (word == "hub" || word == "push" || word == "pull" || word == "login" || word == "keygen" ||
        word == "encrypt" || word == "decrypt") {
      std::cerr << "ohm: '" << word
                << "' is not in this build (configured with -DOHM_HUB=OFF: no Hub client or "
                   "server)\n";
      return 2;
    }
#endif
    std::cerr << "ohm: unknown subcommand '" << argv[1] << "'\nsubcommands: " << subcommand_list()
              << "\nRun `ohm --help` for details.\n";
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::RequiredError& e) {
    if (app.get_subcommands().empty()) {
      std::cerr << "ohm: a subcommand is required: " << subcommand_list()
                << "\nRun `ohm --help` for details.\n";
      return 2;
    }
    std::cerr << command_path(app) << ": " << e.what() << "\nRun `" << command_path(app)
              << " --help` for the options.\n";
    return 2;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << command_path(app) << ": " << e.what() << "\nRun `" << command_path(app)
              << " --help` for the options.\n";
    return 2;
  }
  try {
    for (const auto& c : commands)
      if (c.app->parsed()) return c.run();
  } catch (const UsageError& e) {
    std::cerr << command_path(app) << ": " << e.what() << "\nRun `" << command_path(app)
              << " --help` for the options.\n";
    return 2;
#if OHM_HAVE_HUB
  } catch (const hub::AuthError& e) {
    std::cerr << "ohm: authentication error: " << e.what() << "\n";
    return 1;
#endif
  } catch (const ohm::Error& e) {
    std::cerr << "ohm: " << to_string(e.kind()) << ": " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "ohm: out of memory (try a smaller --ctx-size, --max-new-tokens or "
                 "--num-beams, or --quantize)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "ohm: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace ohm::cli
