// `ohm hub ...`: the self-hosted Hub server and its administration.
//   ohm hub serve --data DIR [--host 127.0.0.1] [--port 8080] [--rate-limit N]
//   ohm hub user add NAME --data DIR [--fullname F] [--email E]
//   ohm hub org add NAME --data DIR [--member USER]...
//   ohm hub token create --data DIR --user NAME [--scope read|write] [--name N]
//   ohm hub user add NAME --data DIR [--admin]; ohm hub user admin NAME --data DIR [--revoke]
//   ohm hub user list --data DIR [--json]; ohm hub user delete NAME --data DIR
//   ohm hub token list --data DIR [--user U] [--json]; ohm hub token revoke ID_OR_NAME --data DIR
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common.h"
#include "ohm/cli/cli.h"
#include "ohm/core/error.h"
#include "ohm/hub/hub.h"
#include "ohm/hub/metadata.h"
#include "ohm/hub/server.h"
#if OHM_HAVE_DATASETS
#include "ohm/dataviewer/viewer.h"
#endif

namespace ohm::cli {

namespace {

struct HubCliOptions {
  hub::ServerOptions serve;
  std::string data = "hub-data";
  std::string name, fullname, email, user, scope = "read", token_name = "token";
  std::vector<std::string> members;
  bool admin = false, revoke = false, json = false;
  uint64_t viewer_split_mb = 1024, viewer_split_rows = 100'000'000;
};

std::string date_or(int64_t ms, const char* none) {
  return ms ? hub::iso_date(ms).substr(0, 19) + "Z" : std::string(none);
}

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
  hub::make_private_dir(data);
  return std::make_unique<hub::Hub>(std::make_unique<NoBlobs>(),
                                    hub::open_sqlite_metadata(data + "/hub.sqlite"));
}

int list_users(hub::Hub& h, bool as_json) {
  nlohmann::json arr = nlohmann::json::array();
  if (!as_json)
    std::printf("%-24s %-6s %-5s %-20s %s\n", "NAME", "TYPE", "ADMIN", "CREATED", "EMAIL");
  for (auto& u : h.list_users()) {
    if (as_json)
      arr.push_back({{"name", u.name},
                     {"type", u.is_org ? "org" : "user"},
                     {"admin", u.is_admin},
                     {"fullname", u.fullname},
                     {"email", u.email},
                     {"created", date_or(u.created_ms, "")}});
    else
      std::printf("%-24s %-6s %-5s %-20s %s\n", u.name.c_str(), u.is_org ? "org" : "user",
                  u.is_admin ? "yes" : "no", date_or(u.created_ms, "-").c_str(), u.email.c_str());
  }
  if (as_json) std::cout << arr.dump(2) << "\n";
  return 0;
}

int list_tokens(hub::Hub& h, const std::string& user, bool as_json) {
  if (!user.empty() && !h.meta().get_user(user)) throw NotFoundError("no user '" + user + "'");
  nlohmann::json arr = nlohmann::json::array();
  if (!as_json)
    std::printf("%-6s %-20s %-16s %-5s %-20s %s\n", "ID", "NAME", "USER", "SCOPE", "CREATED",
                "LAST USED");
  for (auto& t : h.list_tokens(user)) {
    if (as_json)
      arr.push_back({{"id", t.id},
                     {"name", t.name},
                     {"user", t.user},
                     {"scope", t.scope},
                     {"created", date_or(t.created_ms, "")},
                     {"last_used", date_or(t.last_used_ms, "")}});
    else
      std::printf("%-6lld %-20s %-16s %-5s %-20s %s\n", static_cast<long long>(t.id),
                  t.name.c_str(), t.user.c_str(), t.scope.c_str(),
                  date_or(t.created_ms, "-").c_str(), date_or(t.last_used_ms, "never").c_str());
  }
  if (as_json) std::cout << arr.dump(2) << "\n";
  return 0;
}

int serve(const HubCliOptions& o) {
  const hub::ServerOptions& opt = o.serve;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // server threads inherit the mask
  hub::HubServer server(opt);
#if OHM_HAVE_DATASETS
  // The dataset viewer: refs/convert/parquet and the datasets-server endpoints (docs/hub.md).
  dataviewer::ViewerOptions vo;
  vo.data_dir = opt.data_dir;
  vo.max_split_bytes = o.viewer_split_mb << 20;
  vo.max_split_rows = o.viewer_split_rows;
  vo.log = !opt.quiet;
  dataviewer::install(server, vo);
#else
  (void)o;
#endif
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
  sv->add_option("--port", o->serve.port, "Port (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  sv->add_option("--public-url", o->serve.public_url, "Base URL clients use (default http://Host)");
  sv->add_option("--page-size", o->serve.page_size, "Items per page of list endpoints")
      ->capture_default_str();
  sv->add_option("--threads", o->serve.threads, "Worker threads (requests served at once)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  sv->add_option("--rate-limit", o->serve.rate_limit,
                 "Requests per minute per token (per IP when anonymous); 0: no limit")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sv->add_flag("--quiet", o->serve.quiet, "No access log");
  sv->add_option("--trusted-keys", o->serve.trusted_keys_dir,
                 "Directory of PEM public keys (*.pub, *.pem) whose model signatures the hub "
                 "trusts: repo pages and /api/models/{id} show them verified (docs/safety.md)")
      ->check(existing_dir());
  sv->add_flag("--require-signed", o->serve.require_signed,
               "Refuse (403, with the reason) any commit to a model repo whose model.sig does "
               "not verify with a trusted key against the commit's files");
  // Limits against slow and hostile clients (docs/hub.md, "Security").
  sv->add_option("--header-timeout", o->serve.limits.header_timeout_s,
                 "Seconds a client has to send a whole request head")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  sv->add_option("--body-timeout", o->serve.limits.body_timeout_s,
                 "Seconds for a request body, plus one per KiB received")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  sv->add_option("--keepalive-timeout", o->serve.limits.keepalive_timeout_s,
                 "Seconds an idle keep-alive connection stays open")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  sv->add_option("--write-timeout", o->serve.limits.write_timeout_s,
                 "Seconds a response may wait for a client that does not read")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  sv->add_option("--max-header-bytes", o->serve.limits.max_header_bytes,
                 "Largest request head (request line and headers)")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 24))
      ->capture_default_str();
  sv->add_option("--max-headers", o->serve.limits.max_headers, "Most header fields in a request")
      ->check(CLI::Range(8, 10000))
      ->capture_default_str();
  sv->add_option("--max-conns-per-ip", o->serve.limits.max_conns_per_ip,
                 "Open connections per client IP (0: no limit); over it: 429")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  sv->add_option("--max-connections", o->serve.limits.max_connections,
                 "Open connections in total; over it: 503")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();

#if OHM_HAVE_DATASETS
  sv->add_option("--viewer-max-split-mb", o->viewer_split_mb,
                 "Dataset viewer: MB of (in-memory) data converted to parquet per split; the "
                 "rest is left out and the split marked partial")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 30))
      ->capture_default_str();
  sv->add_option("--viewer-max-split-rows", o->viewer_split_rows,
                 "Dataset viewer: rows converted per split (as --viewer-max-split-mb)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 50))
      ->capture_default_str();
#endif

  auto* user = cmd->add_subcommand("user", "Manage users")->require_subcommand(1);
  auto* uadd = user->add_subcommand("add", "Add a user");
  uadd->add_option("name", o->name, "User name")->required();
  uadd->add_option("--data", o->data, "Data directory")->required();
  uadd->add_option("--fullname", o->fullname, "Full name");
  uadd->add_option("--email", o->email, "E-mail");
  uadd->add_flag("--admin", o->admin, "Make the user a hub administrator");
  auto* uadmin = user->add_subcommand("admin", "Make a user a hub administrator (or --revoke)");
  uadmin->add_option("name", o->name, "User name")->required();
  uadmin->add_option("--data", o->data, "Data directory")->required();
  uadmin->add_flag("--revoke", o->revoke, "Take administrator rights away");
  auto* ulist = user->add_subcommand("list", "List users and organisations");
  ulist->add_option("--data", o->data, "Data directory")->required();
  ulist->add_flag("--json", o->json, "JSON output");
  auto* udel = user->add_subcommand(
      "delete", "Delete a user or organisation with its tokens, memberships, likes (no repos)");
  udel->add_option("name", o->name, "User or organisation name")->required();
  udel->add_option("--data", o->data, "Data directory")->required();

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
  auto* tlist = tok->add_subcommand("list",
                                    "List tokens (id, name, owner, scope, dates; never "
                                    "the secret, which is stored hashed)");
  tlist->add_option("--data", o->data, "Data directory")->required();
  tlist->add_option("--user", o->user, "Only this user's tokens");
  tlist->add_flag("--json", o->json, "JSON output");
  auto* trevoke = tok->add_subcommand("revoke", "Revoke a token by id, or by name when unique");
  trevoke->add_option("token", o->name, "Token id or name")->required();
  trevoke->add_option("--data", o->data, "Data directory")->required();

  return Command{
      cmd, [o, sv, uadd, oadd, tcreate, uadmin, ulist, udel, tlist, trevoke] {
        if (sv->parsed()) return serve(*o);
        if (uadd->parsed()) {
          auto h = admin_hub(o->data);
          h->add_user(o->name, false, o->fullname, o->email);
          if (o->admin) h->set_admin(o->name, true);
          std::cout << (o->admin ? "administrator " : "user ") << o->name << " added\n";
        } else if (uadmin->parsed()) {
          admin_hub(o->data)->set_admin(o->name, !o->revoke);
          std::cout << o->name << (o->revoke ? " is no longer" : " is now")
                    << " an administrator\n";
        } else if (ulist->parsed()) {
          return list_users(*admin_hub(o->data), o->json);
        } else if (udel->parsed()) {
          admin_hub(o->data)->delete_user(o->name);
          std::cout << o->name << " deleted (with its tokens and memberships)\n";
        } else if (tlist->parsed()) {
          return list_tokens(*admin_hub(o->data), o->user, o->json);
        } else if (trevoke->parsed()) {
          auto t = admin_hub(o->data)->revoke_token(o->name);
          std::cout << "token " << t.id << " (" << t.name << ", user " << t.user << ") revoked\n";
        } else if (oadd->parsed()) {
          auto h = admin_hub(o->data);
          h->add_user(o->name, true, o->name);
          for (auto& m : o->members) h->add_member(o->name, m);
          std::cout << "organisation " << o->name << " added\n";
        } else if (tcreate->parsed()) {
          std::cout << admin_hub(o->data)->create_token(o->user, o->scope, o->token_name) << "\n";
        }
        return 0;
      }};
});

}  // namespace
}  // namespace ohm::cli
