// The HTTP connection front end shared by the Hub (ohm hub serve) and the model server (ohm
// serve): an event-driven (epoll) acceptor in front of cpp-httplib's request processing.
//
// cpp-httplib 0.11 gives every connection a worker thread from the moment it is accepted, so 64
// clients that send half a request line hold all 64 workers (and everyone else waits in the
// queue). Here one event-loop thread accepts and reads every request head (and bodies up to
// kSmallBody) without blocking; only a complete, validated request reaches a worker, where
// httplib parses it from our buffer and runs the handler. Limits, in the order they apply:
//   - connections per client IP and in total (429 / 503 at accept);
//   - the request head: complete within header_timeout_s, at most max_header_bytes and
//     max_headers lines, CRLF line ends, one Content-Length of digits (400), no Content-Length
//     together with Transfer-Encoding (400), a length on POST/PUT/PATCH (411), no more than
//     max_body_bytes (413); answered at once, then the connection is closed;
//   - small bodies are read by the event loop too; large and chunked bodies are read by the
//     worker with an idle timeout that grows by one second per kMinBodyRate bytes received
//     (Apache mod_reqtimeout's MinRate), so a trickling client cannot hold a worker for long;
//   - idle keep-alive connections wait in the event loop (keepalive_timeout_s), not a worker.
// Pipelined requests are answered in order: bytes after one request stay in the connection's
// buffer and are parsed as the next request.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "ohm/net/limits.h"

namespace ohm::net {

// The user-facing limits (a server's options) and what the server derives for the front end.
struct FrontLimits : ConnectionLimits {
  int threads = 64;
  uint64_t max_body_bytes = 0;  // 0: no limit
  size_t max_requests_per_connection = 1000;
};

// httplib::Server with its (protected) per-request entry point exposed to the front end.
class FrontedServer : public httplib::Server {
 public:
  bool serve_request(httplib::Stream& s, bool close_connection, bool& connection_closed) {
    return process_request(s, close_connection, connection_closed, nullptr);
  }
  // httplib's content providers stop writing when svr_sock_ is invalid ("shutting down").
  void set_serving(int fd) { svr_sock_ = fd; }
};

// One access-log record; the front end fills it for every answered request, including those it
// refuses itself (method and path are "-" when the request line could not be read).
struct AccessRecord {
  std::string client;
  std::string method = "-";
  std::string target = "-";  // path and query, with secrets already redacted
  int status = 0;
  uint64_t bytes = 0;  // bytes written to the socket for this response (headers included)
  double ms = 0;       // from the complete request head to the end of the response
  std::string note;    // why the front end refused it, if it did
};

class HttpFront {
 public:
  using LogFn = std::function<void(const AccessRecord&)>;
  HttpFront(FrontedServer& svr, FrontLimits limits, LogFn log);
  ~HttpFront();
  HttpFront(const HttpFront&) = delete;
  HttpFront& operator=(const HttpFront&) = delete;

  // Binds host:port (0: any free port) without SO_REUSEPORT, so a second server on the same
  // port fails. Returns the bound port; throws IoError naming the address and the reason.
  int bind(const std::string& host, int port);
  void run();   // serves until stop()
  void stop();  // stops accepting, closes idle connections, lets running requests finish

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One access-log line: time (UTC, ms), client, "METHOD target", status, bytes sent, duration,
// and the front end's refusal reason in parentheses; control characters become '?'.
std::string format_access_record(const AccessRecord& a);

// The request target for logs: query parameters that carry credentials or signatures (token,
// sig, signature, access_token, key, password, X-Amz-*) have their values replaced by REDACTED;
// control characters become '?'; at most 300 bytes.
std::string redact_target(const std::string& target);

}  // namespace ohm::net
