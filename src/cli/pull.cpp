// `ohm pull ID [--revision R] [--include GLOB]... [--endpoint URL]`: download a Hub repo into the
// standard HF cache (parallel, resumable, verified), printing the snapshot directory. With
// --decrypt each FILE.ohmenc is then decrypted and verified into FILE beside it
// (docs/encryption.md).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>
#include <optional>

#include "common.h"
#include "encrypt.h"
#include "ohm/cli/cli.h"
#include "ohm/core/error.h"
#include "ohm/hub/client.h"

namespace ohm::cli {
namespace {

// Ctrl-C: the blobs being downloaded stay as blobs/<etag>.incomplete, which the next pull
// continues with Range requests. Only async-signal-safe calls here.
void on_sigint(int) {
  static const char msg[] =
      "\nohm pull: interrupted; partial downloads are kept in the cache, rerun the same command "
      "to resume\n";
  (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
  ::_exit(130);
}

const Register reg("pull", [](CLI::App& app) {
  auto o = std::make_shared<hub::PullOptions>();
  auto type = std::make_shared<std::string>("model");
  auto quiet = std::make_shared<bool>(false);
  auto decrypt = std::make_shared<bool>(false);
  auto identity = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "pull",
      "Download a Hub repo into the HF cache (parallel, resumable, verified; HF_ENDPOINT, "
      "HF_TOKEN, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE)");
  cmd->add_option("repo", o->repo_id, "Repo id namespace/name")->required();
  cmd->add_option("--revision", o->revision, "Branch, tag or commit")->capture_default_str();
  cmd->add_option("--include", o->include,
                  "Only files matching this glob ('*' also matches '/'; repeatable)");
  cmd->add_option("--endpoint", o->endpoint,
                  "Hub URL (default: HF_ENDPOINT or https://huggingface.co)");
  cmd->add_option("--token", o->token,
                  "Access token (default: HF_TOKEN, else the token saved by `ohm login`)");
  cmd->add_option("--cache-dir", o->cache_dir,
                  "Cache directory (default: HF_HUB_CACHE, else HF_HOME/hub)");
  cmd->add_option("--repo-type", *type, "model, dataset or space")
      ->check(CLI::IsMember({"model", "dataset", "space"}));
  cmd->add_option("--parallel", o->parallel, "Concurrent downloads (1..64)")
      ->capture_default_str()
      ->check(int_range(1, 64));
  cmd->add_flag("--offline", o->offline,
                "Resolve from the cache only, no network (as HF_HUB_OFFLINE=1)");
  cmd->add_flag("--decrypt", *decrypt,
                "Decrypt and verify each FILE.ohmenc (from `ohm push --encrypt`) into FILE in the "
                "snapshot (mode 0600); a file that fails authentication is reported and not "
                "written, and the exit status is 1");
  cmd->add_option("--identity,-i", *identity,
                  "With --decrypt: identity file from `ohm keygen` (default: OHM_IDENTITY, else "
                  "~/.config/ohm/identity.key)");
  cmd->add_flag("--quiet,-q", *quiet, "Print only the snapshot directory");
  cmd->footer(
      "Ctrl-C keeps the partial downloads (blobs/<etag>.incomplete): rerun to resume. Exit\n"
      "status: 0, 1 runtime error (network, HTTP, checksum), 2 usage error, 130 interrupted.");
  return Command{cmd, [o, type, quiet, decrypt, identity] {
                   hub::parse_repo_type(*type, o->type);
                   o->progress = !*quiet && ::isatty(STDERR_FILENO);
                   if (!*decrypt && !identity->empty())
                     throw UsageError("--identity needs --decrypt");
                   std::optional<safety::Identity> id;
                   if (*decrypt) id = load_identity(*identity);  // before any download
                   std::signal(SIGINT, on_sigint);
                   std::signal(SIGTERM, on_sigint);
                   auto r = hub::pull(*o);
                   std::signal(SIGINT, SIG_DFL);
                   std::signal(SIGTERM, SIG_DFL);
                   if (!*quiet)
                     std::cerr << r.files << " files, " << r.downloaded << " downloaded ("
                               << r.bytes << " bytes), commit " << r.commit << "\n";
                   if (id) {
                     const auto d =
                         decrypt_tree(r.snapshot_dir, *id, *quiet ? nullptr : &std::cerr);
                     if (!*quiet) std::cerr << d.decrypted << " files decrypted and verified\n";
                     if (!d.failed.empty()) {
                       for (const auto& f : d.failed) std::cerr << "ohm pull: " << f << "\n";
                       throw safety::DecryptError(
                           ErrorContext(), std::to_string(d.failed.size()) +
                                               " file(s) did not decrypt (nothing written for "
                                               "them): " +
                                               d.failed.front());
                     }
                   }
                   std::cout << r.snapshot_dir << "\n";
                   return 0;
                 }};
});

}  // namespace
}  // namespace ohm::cli
