// `ohm datasets <sub>`: the subcommands register themselves in the "datasets" group of
// ohm::cli::Register (cli.h), so another file (e.g. src/cli/datasets_deid.cpp for
// `ohm datasets deid`) adds one without touching src/cli/datasets.cpp:
//
//   static const ohm::cli::Register reg("datasets", "deid", [](CLI::App& datasets) {
//     auto* cmd = datasets.add_subcommand("deid", "...");
//     return ohm::cli::Command{cmd, [] { ...; return 0; }};
//   });
//
// Subcommands are added in name order. In a build without the datasets module (no Arrow at
// configure time) `ohm datasets ...` says so and exits 1, whatever the subcommand.
#pragma once

#include <memory>
#include <string>

#include "ohm/cli/cli.h"

namespace ohm::tokenizers {
class AutoTokenizer;
}

namespace ohm::cli {

// load_tokenizer (common.h) behind a shared_ptr, for files that must not include the tokenizer
// header beside Arrow's (datasets_tokenizer.cpp).
std::shared_ptr<tokenizers::AutoTokenizer> load_shared_tokenizer(const std::string& path);

}  // namespace ohm::cli
