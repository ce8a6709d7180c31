// `ohm login [--token T]`, `ohm logout`, `ohm whoami`: the Hub token, stored where huggingface_hub
// keeps it ($HF_TOKEN_PATH, else $HF_HOME/token, else ~/.cache/huggingface/token; mode 0600).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "ohm/cli/cli.h"
#include "ohm/core/error.h"
#include "ohm/hub/client.h"

namespace ohm::cli {
namespace {

struct LoginOptions {
  std::string token, endpoint;
};

void print_who(const hub::WhoAmI& w) {
  std::cout << w.name << "\n";
  if (!w.orgs.empty()) {
    std::cout << "orgs:";
    for (auto& o : w.orgs) std::cout << " " << o;
    std::cout << "\n";
  }
}

const Register login_reg("login", [](CLI::App& app) {
  auto o = std::make_shared<LoginOptions>();
  auto* cmd = app.add_subcommand(
      "login", "Validate a Hub token (/api/whoami-v2) and save it where huggingface_hub reads it");
  cmd->add_option("--token", o->token, "The token (default: read from stdin)");
  cmd->add_option("--endpoint", o->endpoint,
                  "Hub URL (default: HF_ENDPOINT or https://huggingface.co)");
  return Command{cmd, [o] {
                   std::string token = o->token;
                   if (token.empty()) {
                     if (::isatty(STDIN_FILENO)) std::cerr << "Token: " << std::flush;
                     std::getline(std::cin, token);
                     while (!token.empty() && (token.back() == '\r' || token.back() == ' '))
                       token.pop_back();
                   }
                   if (token.empty()) throw InvalidArgument("no token given");
                   hub::WhoAmI w;
                   try {
                     w = hub::whoami(o->endpoint, token);
                   } catch (const hub::AuthError& e) {
                     throw InvalidArgument(std::string("invalid token: ") + e.what());
                   }
                   hub::save_token(token);
                   std::cerr << "Logged in as " << w.name << "; token saved to "
                             << hub::token_path() << "\n";
                   return 0;
                 }};
});

const Register logout_reg("logout", [](CLI::App& app) {
  auto* cmd = app.add_subcommand("logout", "Remove the token saved by `ohm login`");
  return Command{cmd, [] {
                   if (hub::delete_token())
                     std::cerr << "Removed " << hub::token_path() << "\n";
                   else
                     std::cerr << "Not logged in (no " << hub::token_path() << ")\n";
                   return 0;
                 }};
});

const Register whoami_reg("whoami", [](CLI::App& app) {
  auto o = std::make_shared<LoginOptions>();
  auto* cmd = app.add_subcommand("whoami", "Print the Hub user (and orgs) of the current token");
  cmd->add_option("--token", o->token, "Token (default: HF_TOKEN, else the saved token)");
  cmd->add_option("--endpoint", o->endpoint,
                  "Hub URL (default: HF_ENDPOINT or https://huggingface.co)");
  return Command{
      cmd, [o] {
        print_who(hub::whoami(o->endpoint, o->token.empty() ? hub::default_token() : o->token));
        return 0;
      }};
});

}  // namespace
}  // namespace ohm::cli
