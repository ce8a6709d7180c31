// `ohm datasets deid`: added under the `datasets` command by add_datasets_deid(), run by
// run_datasets_deid() when it was the subcommand given (docs/deid.md). Without the Hub and the
// safety module (-DOHM_HUB=OFF) both do nothing and no `datasets` command is registered.
#pragma once

namespace CLI {
class App;
}

namespace ohm::cli {

void add_datasets_deid(CLI::App& datasets);
// Runs `deid` when the last parse chose it; returns the exit code (-1: it was not chosen).
int run_datasets_deid();

}  // namespace ohm::cli
