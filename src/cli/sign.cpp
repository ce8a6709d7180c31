// `ohm sign MODEL_DIR --key KEY.pem` and `ohm verify MODEL_DIR --key PUB.pem`: OpenSSF
// model-signing bundles (what `model_signing sign key` / `verify key` write and read).
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common.h"
#include "ohm/cli/cli.h"
#include "ohm/safety/signing.h"

namespace ohm::cli {
namespace {

struct SignOpts {
  std::string dir, key, out, signature;
  std::vector<std::string> ignore;
  bool allow_symlinks = false, json = false;
  int threads = 0;
};

const Register sign_reg("sign", [](CLI::App& app) {
  auto o = std::make_shared<SignOpts>();
  auto* cmd = app.add_subcommand(
      "sign",
      "Sign a model directory (OpenSSF model-signing bundle, EC key; model_signing verifies it)");
  cmd->add_option("MODEL_DIR", o->dir, "The model directory")->required()->check(existing_dir());
  cmd->add_option("--key", o->key, "PEM EC private key (P-256, P-384 or P-521)")
      ->required()
      ->check(readable_file());
  cmd->add_option("--out,--signature", o->out, "Signature file (default: MODEL_DIR/model.sig)");
  cmd->add_option("--ignore", o->ignore,
                  "More paths (relative to MODEL_DIR) left out of the signature; .git, "
                  ".gitattributes, .github, .gitignore and the signature are always left out");
  cmd->add_flag("--allow-symlinks", o->allow_symlinks,
                "Hash symbolic links as the files they point to (default: refuse them, as "
                "model_signing does)");
  cmd->add_flag("--json", o->json, "Print the result as JSON");
  add_threads_option(cmd, o->threads);
  return Command{cmd, [o] {
                   safety::SignOptions so;
                   so.signature_path = o->out;
                   so.allow_symlinks = o->allow_symlinks;
                   so.extra_ignore = o->ignore;
                   so.threads = o->threads;
                   const auto r = safety::sign_model(o->dir, o->key, so);
                   if (o->json) {
                     std::cout << nlohmann::json{{"signature", r.signature_path},
                                                 {"key_fingerprint", r.key_fingerprint},
                                                 {"files", r.manifest.files.size()},
                                                 {"root_digest", r.manifest.root_digest()}}
                                      .dump()
                               << "\n";
                   } else {
                     std::cout << "signed " << r.manifest.files.size() << " files of " << o->dir
                               << " -> " << r.signature_path << " (key " << r.key_fingerprint
                               << ")\n";
                   }
                   return 0;
                 }};
});

const Register verify_reg("verify", [](CLI::App& app) {
  auto o = std::make_shared<SignOpts>();
  auto* cmd = app.add_subcommand(
      "verify",
      "Verify a model directory against its signature and a public key (exit 1 naming the "
      "files that differ)");
  cmd->add_option("MODEL_DIR", o->dir, "The model directory")->required()->check(existing_dir());
  cmd->add_option("--key", o->key, "PEM public key (or the private key) of the signer")
      ->required()
      ->check(readable_file());
  cmd->add_option("--signature", o->signature, "Signature file (default: MODEL_DIR/model.sig)");
  cmd->add_flag("--json", o->json, "Print the result as JSON");
  add_threads_option(cmd, o->threads);
  return Command{cmd, [o] {
                   const auto r = safety::verify_model(o->dir, o->key, o->signature, o->threads);
                   if (o->json)
                     std::cout << nlohmann::json{{"verified", true},
                                                 {"signature", r.signature_path},
                                                 {"key_fingerprint", r.key_fingerprint},
                                                 {"files", r.files}}
                                      .dump()
                               << "\n";
                   else
                     std::cout << "verified " << r.files << " files of " << o->dir << " (key "
                               << r.key_fingerprint << ")\n";
                   return 0;
                 }};
});

}  // namespace
}  // namespace ohm::cli
