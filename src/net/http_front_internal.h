// The front end's internals, shared by its three files: request-head checks and refusals
// (http_front_head.cpp), the connection and its httplib::Stream (http_front_conn.cpp), and the event loop
// and workers (front.cpp). Private to src/hub/http.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "ohm/net/http_front.h"

namespace ohm::net::front_detail {

using Clock = std::chrono::steady_clock;

constexpr size_t kSmallBody = 64u << 10;  // bodies up to this are read by the event loop
constexpr double kMinBodyRate = 1024;     // bytes/s that buy one more second of body timeout
constexpr size_t kMaxRequestLine = 8000;  // httplib answers 414 past 8192
constexpr size_t kReadChunk = 64u << 10;
constexpr auto kLinger = std::chrono::seconds(2);

// Milliseconds from now until t (0 when past).
int ms_until(Clock::time_point t);
// "1.2.3.4" / "::1" (IPv4-mapped addresses as IPv4) and the port.
std::string addr_string(const sockaddr_storage& ss, int& port);

struct Head {
  size_t len = 0;  // bytes of the head, final CRLFCRLF included
  std::string method, target;
  uint64_t content_length = 0;
  bool chunked = false, expect_continue = false;
};

// Checks a complete request head (up to and including the blank line). Returns 0 when the
// request may go on, else the status to refuse it with and the reason in `why`.
int check_head(std::string_view head, const FrontLimits& lim, Head& h, std::string& why);
// A complete refusal (JSON body, Connection: close; Retry-After for 429/503).
std::string error_response(int status, const std::string& msg);

struct Conn {
  int fd = -1;
  std::string ip, local_ip;
  int port = 0, local_port = 0;
  std::string buf;  // received, not yet consumed bytes (starting at the next request)
  // Head: reading a request head; Body: reading a small body; Queued: a streamed body waits for
  // a stream slot; Worker: a worker has it; Linger: answered with an error, closing.
  enum class State { Head, Body, Queued, Worker, Linger } state = State::Head;
  bool streaming = false;  // holds a stream slot (its body is read by the worker)
  Clock::time_point deadline;
  bool got_byte = false;  // the current request's first byte arrived (header timer runs)
  bool peer_eof = false;
  Head head;
  Clock::time_point head_done;
  size_t served = 0;
  size_t lingered = 0;
};

// What the worker knows about the request it is serving (the logger runs on the same thread).
struct ReqCtx {
  Clock::time_point t0;
  uint64_t bytes = 0;
  bool force_close = false;
};
extern thread_local ReqCtx* tl_req;

// httplib::Stream over a connection: first the bytes the event loop has buffered, then the
// socket, with the body timeout (grown by received bytes) and the write timeout.
class ConnStream final : public httplib::Stream {
 public:
  ConnStream(Conn& c, const FrontLimits& lim, int stop_fd) : c_(c), lim_(lim), stop_fd_(stop_fd) {
    t0_ = Clock::now();
  }
  size_t pos() const { return pos_; }

  bool is_readable() const override {
    return pos_ < c_.buf.size() || wait(POLLIN, ms_until(read_deadline()));
  }
  bool is_writable() const override { return wait(POLLOUT, lim_.write_timeout_s * 1000); }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ >= c_.buf.size()) {
      c_.buf.clear();
      pos_ = 0;
      for (;;) {
        char tmp[kReadChunk];
        const ssize_t n = ::recv(c_.fd, tmp, sizeof tmp, 0);
        if (n > 0) {
          received_ += static_cast<uint64_t>(n);
          c_.buf.append(tmp, static_cast<size_t>(n));
          break;
        }
        if (n == 0) return 0;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        if (!wait(POLLIN, ms_until(read_deadline()))) return -1;  // timed out
      }
    }
    const size_t n = std::min(size, c_.buf.size() - pos_);
    std::memcpy(ptr, c_.buf.data() + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    size_t off = 0;
    while (off < size) {
      const ssize_t n = ::send(c_.fd, ptr + off, size - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<size_t>(n);
        if (tl_req) tl_req->bytes += static_cast<uint64_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
          wait(POLLOUT, lim_.write_timeout_s * 1000))
        continue;
      return -1;
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.ip;
    port = c_.port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.local_ip;
    port = c_.local_port;
  }
  socket_t socket() const override { return c_.fd; }

 private:
  Clock::time_point read_deadline() const {
    return t0_ + std::chrono::seconds(lim_.body_timeout_s) +
           std::chrono::milliseconds(static_cast<int64_t>(received_ * 1000 / kMinBodyRate));
  }
  // Waits for the socket; gives up at the timeout, or at once when the server stops (stop_fd
  // becomes readable), so a stalled client never delays a shutdown.
  bool wait(short ev, int ms) const {
    pollfd p[2] = {{c_.fd, ev, 0}, {stop_fd_, POLLIN, 0}};
    for (;;) {
      const int r = ::poll(p, stop_fd_ >= 0 ? 2 : 1, ms);
      if (r < 0 && errno == EINTR) continue;
      if (r > 0 && (p[1].revents & POLLIN)) return false;
      return r > 0 && (p[0].revents & (ev | POLLHUP | POLLERR));
    }
  }

  Conn& c_;
  const FrontLimits& lim_;
  int stop_fd_;
  size_t pos_ = 0;
  uint64_t received_ = 0;
  Clock::time_point t0_;
};

}  // namespace ohm::net::front_detail
