// `ohm push DIR ID [--message M] [--revision BRANCH] [--delete GLOB]...`: upload a folder to a Hub
// repo like huggingface_hub's upload_folder (creates the repo if missing, LFS for large/binary
// files, one commit, unchanged files skipped). With --encrypt every file is encrypted client-side
// to the --recipient keys first and uploaded as FILE.ohmenc (docs/encryption.md).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>
#include <memory>

#include "common.h"
#include "encrypt.h"
#include "ohm/cli/cli.h"
#include "ohm/core/error.h"
#include "ohm/hub/client.h"

namespace ohm::cli {
namespace {

// Ctrl-C: a push is one commit at the end, so an interrupted push changed nothing unless the
// commit request was already sent; LFS files already uploaded are not sent again by a rerun (the
// Hub answers that it has them). Only async-signal-safe calls here.
void on_sigint(int) {
  static const char msg[] =
      "\nohm push: interrupted; nothing is committed unless the commit was already sent. Rerun the "
      "same command: files already uploaded are not sent again\n";
  (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
  ::_exit(130);
}

struct EncryptOpts {
  bool on = false;
  std::vector<std::string> recipients, files;
};

// --encrypt: the folder's files encrypted into a temporary folder (removed with the returned
// StagingDir), which is then pushed instead; null without --encrypt.
std::unique_ptr<StagingDir> encrypt_folder(hub::PushOptions& o, const EncryptOpts& e, bool quiet) {
  if (!e.on && (!e.recipients.empty() || !e.files.empty()))
    throw UsageError("--recipient and --recipients-file need --encrypt");
  if (!e.on) return nullptr;
  const auto to = collect_recipients(e.recipients, e.files);
  auto staging = std::make_unique<StagingDir>();
  const size_t n = encrypt_tree(o.folder, staging->path(), to, o.parallel, nullptr);
  if (!quiet) std::cerr << "encrypted " << n << " files to " << to.size() << " recipient(s)\n";
  o.folder = staging->path().string();
  return staging;
}

const Register reg("push", [](CLI::App& app) {
  auto o = std::make_shared<hub::PushOptions>();
  auto type = std::make_shared<std::string>("model");
  auto quiet = std::make_shared<bool>(false);
  auto e = std::make_shared<EncryptOpts>();
  auto* cmd = app.add_subcommand(
      "push",
      "Upload a folder to a Hub repo in one commit (creates the repo; LFS for large files; "
      "HF_ENDPOINT, HF_TOKEN)");
  cmd->add_option("folder", o->folder,
                  "Local directory to upload (symlinks are followed: an HF cache snapshot works)")
      ->required()
      ->check(existing_dir());
  cmd->add_option("repo", o->repo_id, "Repo id namespace/name")->required();
  cmd->add_option("--message,-m", o->message, "Commit message")
      ->default_str("Upload folder using ohm");
  cmd->add_option("--revision", o->revision, "Branch to commit to (created from main if missing)")
      ->capture_default_str();
  cmd->add_option("--repo-type", *type, "model, dataset or space")
      ->check(CLI::IsMember({"model", "dataset", "space"}));
  cmd->add_flag("--private", o->is_private, "Create the repo private (when it does not exist)");
  cmd->add_option("--delete", o->delete_globs,
                  "Delete remote files matching this glob that are not in the folder (repeatable)");
  cmd->add_option("--endpoint", o->endpoint,
                  "Hub URL (default: HF_ENDPOINT or https://huggingface.co)");
  cmd->add_option("--token", o->token,
                  "Write token (default: HF_TOKEN, else the token saved by `ohm login`)");
  cmd->add_option("--parallel", o->parallel, "Concurrent LFS uploads (1..64)")
      ->capture_default_str()
      ->check(int_range(1, 64));
  cmd->add_flag("--encrypt", e->on,
                "Encrypt every file client-side to the recipients and upload it as FILE.ohmenc "
                "(an LFS blob; the Hub gets no plaintext and no key). Needs TMPDIR space for the "
                "encrypted copy; every push re-uploads (each encryption differs)");
  cmd->add_option("--recipient,-r", e->recipients,
                  "With --encrypt: a public key ohm1... (from `ohm keygen`) that can decrypt "
                  "(repeatable)");
  cmd->add_option("--recipients-file,-R", e->files,
                  "With --encrypt: a file of public keys, one per line (repeatable)")
      ->check(readable_file());
  cmd->add_flag("--quiet,-q", *quiet, "Print only the commit id");
  cmd->footer(
      "Ctrl-C before the commit leaves the repo unchanged; a rerun does not send LFS files again.\n"
      "Exit status: 0, 1 runtime error (network, HTTP 401 authentication, 403 permission), 2\n"
      "usage error, 130 interrupted.");
  return Command{cmd, [o, type, quiet, e] {
                   hub::parse_repo_type(*type, o->type);
                   o->progress = !*quiet && ::isatty(STDERR_FILENO);
                   if (!*quiet) o->log = &std::cerr;
                   const auto staging = encrypt_folder(*o, *e, *quiet);
                   std::signal(SIGINT, on_sigint);
                   std::signal(SIGTERM, on_sigint);
                   auto r = hub::push(*o);
                   std::signal(SIGINT, SIG_DFL);
                   std::signal(SIGTERM, SIG_DFL);
                   if (!*quiet) {
                     if (r.committed)
                       std::cerr << r.regular << " regular and " << r.lfs << " LFS files ("
                                 << r.lfs_bytes_uploaded << " LFS bytes sent), " << r.unchanged
                                 << " unchanged, " << r.deleted << " deleted: " << r.commit_url
                                 << "\n";
                     else
                       std::cerr << "nothing to commit: " << r.unchanged << " files unchanged\n";
                   }
                   std::cout << r.commit << "\n";
                   return 0;
                 }};
});

}  // namespace
}  // namespace ohm::cli
