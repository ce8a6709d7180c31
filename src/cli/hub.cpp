// `ohm hub ...`: the self-hosted Hub server and its administration.
//   ohm hub serve --data DIR [--host 127.0.0.1] [--port 8080] [--rate-limit N]
//   ohm hub user add NAME --data DIR [--fullname F] [--email E]
//   ohm hub org add NAME --data DIR [--member USER]...
//   ohm hub token create --data DIR --user NAME [--scope read|write] [--name N]
#include <CLI/CLI.hpp>
#include <csignal>
#include <filesystem>
#include <iostream>

#include "ohm/cli/cli.h"
#include "ohm/core/error.h"
#include "ohm/hub/hub.h"
#include "ohm/hub/metadata.h"
#include "ohm/hub/server.h"

namespace ohm::cli {

namespace {

struct HubCliOptions {
  hub::ServerOptions serve;
  std::string data = "hub-data";
  std::string name, fullname, email, user, scope = "read", token_name = "token";
  std::vector<std::string> members;
};

// Admin commands touch only the metadata database (safe while a server runs).
std::unique_ptr<hub::Hub> admin_hub(const std::string& data) {
  struct NoBlobs : hub::BlobStore {
    bool has(hub::BlobKind, const std::string&) const override { return false; }
    std::optional<uint64_t> size(hub::BlobKind, const std::string&) const override {
      return std::nullopt;
    }
    std::unique_ptr<hub::BlobReader> open(hub::BlobKind, const std::string&) const override {
      throw UnsupportedError("admin commands do not read blobs");
    }
    std::string put(hub::BlobKind, std::string_view) override {
      throw UnsupportedError("admin commands do not write blobs");
    }
    std::unique_ptr<hub::BlobWriter> lfs_writer() override {
      throw UnsupportedError("admin commands do not write blobs");
    }
  };
  std::filesystem::create_directories(data);
  return std::make_unique<hub::Hub>(std::make_unique<NoBlobs>(),
                                    hub::open_sqlite_metadata(data + "/hub.sqlite"));
}

int serve(const hub::ServerOptions& opt) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // server threads inherit the mask
  hub::HubServer server(opt);
  server.start();
  std::cout << "ohm hub: serving " << opt.data_dir << " on http://" << opt.host << ":"
            << server.port() << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  std::cerr << "ohm hub: stopping\n";
  server.stop();
  return 0;
}

const Register reg("hub", [](CLI::App& app) {
  auto o = std::make_shared<HubCliOptions>();
  auto* cmd =
      app.add_subcommand("hub", "Self-hosted model and dataset hub (HF_ENDPOINT-compatible)");
  cmd->require_subcommand(1);

  auto* sv = cmd->add_subcommand("serve", "Serve the Hub HTTP API");
  sv->add_option("--data", o->serve.data_dir, "Data directory (blobs + hub.sqlite)")->required();
  sv->add_option("--host", o->serve.host, "Address to listen on")->capture_default_str();
  sv->add_option("--port", o->serve.port, "Port (0: any free port)")->capture_default_str();
  sv->add_option("--public-url", o->serve.public_url, "Base URL clients use (default http://Host)");
  sv->add_option("--page-size", o->serve.page_size, "Items per page of list endpoints")
      ->capture_default_str();
  sv->add_option("--threads", o->serve.threads, "Worker threads")->capture_default_str();
  sv->add_option("--rate-limit", o->serve.rate_limit,
                 "Requests per minute per token (per IP when anonymous); 0: no limit")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sv->add_flag("--quiet", o->serve.quiet, "No access log");

  auto* user = cmd->add_subcommand("user", "Manage users")->require_subcommand(1);
  auto* uadd = user->add_subcommand("add", "Add a user");
  uadd->add_option("name", o->name, "User name")->required();
  uadd->add_option("--data", o->data, "Data directory")->required();
  uadd->add_option("--fullname", o->fullname, "Full name");
  uadd->add_option("--email", o->email, "E-mail");

  auto* org = cmd->add_subcommand("org", "Manage organisations")->require_subcommand(1);
  auto* oadd = org->add_subcommand("add", "Add an organisation");
  oadd->add_option("name", o->name, "Organisation name")->required();
  oadd->add_option("--data", o->data, "Data directory")->required();
  oadd->add_option("--member", o->members, "Member user (repeatable)");

  auto* tok = cmd->add_subcommand("token", "Manage access tokens")->require_subcommand(1);
  auto* tcreate = tok->add_subcommand("create", "Create a token and print it (stored hashed)");
  tcreate->add_option("--data", o->data, "Data directory")->required();
  tcreate->add_option("--user", o->user, "Owner")->required();
  tcreate->add_option("--scope", o->scope, "read or write")
      ->check(CLI::IsMember({"read", "write"}))
      ->capture_default_str();
  tcreate->add_option("--name", o->token_name, "Display name")->capture_default_str();

  return Command{cmd, [o, sv, uadd, oadd, tcreate] {
                   if (sv->parsed()) return serve(o->serve);
                   if (uadd->parsed()) {
                     admin_hub(o->data)->add_user(o->name, false, o->fullname, o->email);
                     std::cout << "user " << o->name << " added\n";
                   } else if (oadd->parsed()) {
                     auto h = admin_hub(o->data);
                     h->add_user(o->name, true, o->name);
                     for (auto& m : o->members) h->add_member(o->name, m);
                     std::cout << "organisation " << o->name << " added\n";
                   } else if (tcreate->parsed()) {
                     std::cout << admin_hub(o->data)->create_token(o->user, o->scope, o->token_name)
                               << "\n";
                   }
                   return 0;
                 }};
});

}  // namespace
}  // namespace ohm::cli
