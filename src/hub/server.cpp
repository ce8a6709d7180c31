// The Hub's HTTP server: the front end (ohm/net/http_front.h) accepts connections and hands
// complete requests to dispatch(), which rate-limits, splits the path, finds the route
// (handlers/routes.cpp), authenticates the caller and runs the handler; every error any of
// them throws is answered by http::error_reply, the one mapping from errors to responses.
#include "ohm/hub/server.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <mutex>
#include <thread>

#include "handlers/handlers.h"
#include "http/errors.h"
#include "http/rate_limit.h"
#include "http/reply.h"
#include "http/router.h"
#include "ohm/core/error.h"
#include "ohm/hub/hash.h"
#include "ohm/net/http_front.h"

namespace ohm::hub {

using net::AccessRecord;
using net::FrontedServer;
using net::FrontLimits;
using net::HttpFront;

namespace handlers {
Service::Service(ServerOptions o) : opt(std::move(o)), hub(opt.data_dir), secret(random_hex(32)) {
  SigningPolicy p;
  p.require_signed = opt.require_signed;
  if (!opt.trusted_keys_dir.empty()) p.trusted = load_trusted_keys(opt.trusted_keys_dir);
  if (p.require_signed && p.trusted.empty())
    throw InvalidArgument("--require-signed needs --trusted-keys DIR with at least one public key");
  hub.set_signing_policy(std::move(p));
}
}  // namespace handlers

struct HubServer::Impl {
  handlers::Service svc;
  http::RateLimiter rate;
  FrontedServer svr;
  std::unique_ptr<HttpFront> front;
  std::thread th;
  int bound_port = -1;
  std::mutex log_mu;

  explicit Impl(ServerOptions o) : svc(std::move(o)), rate(svc.opt.rate_limit) { setup(); }

  std::string base_url(const httplib::Request& req) {
    const ServerOptions& opt = svc.opt;
    if (!opt.public_url.empty()) return opt.public_url;
    std::string host = req.get_header_value("Host");
    bool ok = !host.empty() && host.size() < 256;
    for (char ch : host)
      if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == ':' || ch == '-' ||
            ch == '[' || ch == ']'))
        ok = false;
    if (!ok) host = opt.host + ":" + std::to_string(bound_port);
    return "http://" + host;
  }

  void dispatch(const httplib::Request& req, httplib::Response& res,
                const httplib::ContentReader* reader) {
    http::Request c{req, res, reader, {}, base_url(req), {}, req.method == "HEAD"};
    try {
      rate.take(req, res);
      c.seg = http::split_path(req.target);
      const std::string host = req.get_header_value("Host");
      HubExtension* ext = nullptr;
      for (auto& e : svc.extensions)
        if (!ext && e->claims(c.seg, host)) ext = e.get();
      if (ext) {
        c.caller = svc.hub.authenticate(req.get_header_value("Authorization"));
        handlers::extension_request(svc, c, *ext);
      } else {
        const auto* route = handlers::route_table().match(c);
        if (!route) throw NotFound("not found");  // the table ends in catch-alls
        if (route->handler.authenticate)
          c.caller = svc.hub.authenticate(req.get_header_value("Authorization"));
        route->handler.handler(svc, c);
      }
    } catch (...) {
      http::send_error(req, res, http::error_reply(std::current_exception()));
    }
    try {
      http::drain(c);
    } catch (...) {
    }
  }

  // ------------------------------------------------------------------ server
  // One line per answered request: time (UTC), client, method, path with secrets redacted,
  // status, bytes sent, duration; requests the front end refused carry the reason.
  void access_log(const AccessRecord& a) {
    const std::string line = net::format_access_record(a);
    std::lock_guard l(log_mu);
    std::cerr << line << "\n";
  }

  void setup() {
    FrontLimits lim;
    static_cast<ConnectionLimits&>(lim) = svc.opt.limits;
    lim.threads = std::max(4, svc.opt.threads);
    lim.max_body_bytes = std::max<uint64_t>(svc.opt.max_lfs_bytes, svc.opt.max_commit_bytes);
    HttpFront::LogFn log;
    if (!svc.opt.quiet) log = [this](const AccessRecord& a) { access_log(a); };
    front = std::make_unique<HttpFront>(svr, lim, std::move(log));
    svr.set_keep_alive_max_count(lim.max_requests_per_connection);
    svr.set_keep_alive_timeout(svc.opt.limits.keepalive_timeout_s);
    svr.set_payload_max_length(static_cast<size_t>(lim.max_body_bytes));
    svr.Get(".*",
            [this](const httplib::Request& q, httplib::Response& s) { dispatch(q, s, nullptr); });
    svr.Delete(
        ".*", [this](const httplib::Request& q, httplib::Response& s) { dispatch(q, s, nullptr); });
    svr.Post(".*", [this](const httplib::Request& q, httplib::Response& s,
                          const httplib::ContentReader& rd) { dispatch(q, s, &rd); });
    svr.Put(".*", [this](const httplib::Request& q, httplib::Response& s,
                         const httplib::ContentReader& rd) { dispatch(q, s, &rd); });
    svr.Delete(".*", [this](const httplib::Request& q, httplib::Response& s,
                            const httplib::ContentReader& rd) { dispatch(q, s, &rd); });
    svr.set_exception_handler(
        [](const httplib::Request& q, httplib::Response& s, const std::exception_ptr&) {
          http::send_error(q, s, {500, "", "internal error", ""});
        });
  }
};

HubServer::HubServer(ServerOptions opt) : impl_(std::make_unique<Impl>(std::move(opt))) {}

HubServer::~HubServer() {
  stop();
}

Hub& HubServer::hub() {
  return impl_->svc.hub;
}

void HubServer::add_extension(std::shared_ptr<HubExtension> ext) {
  impl_->svc.extensions.push_back(std::move(ext));
}

int HubServer::bind() {
  auto& i = *impl_;
  i.bound_port = i.front->bind(i.svc.opt.host, i.svc.opt.port);
  return i.bound_port;
}

void HubServer::run() {
  impl_->front->run();
}

void HubServer::start() {
  bind();
  // The socket already listens after bind(): clients connecting now wait until accept.
  impl_->th = std::thread([this] { run(); });
}

void HubServer::stop() {
  if (!impl_) return;
  impl_->front->stop();
  if (impl_->th.joinable()) impl_->th.join();
}

int HubServer::port() const {
  return impl_->bound_port;
}

}  // namespace ohm::hub
