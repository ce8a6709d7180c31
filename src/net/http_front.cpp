#include "ohm/net/http_front.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http_front_internal.h"
#include "ohm/core/error.h"
namespace ohm::net {

using namespace front_detail;

struct HttpFront::Impl {
  FrontedServer& svr;
  FrontLimits lim;
  LogFn log;
  int listen_fd = -1, ep = -1, wake_fd = -1;
  int stop_fd = -1;  // an eventfd written once at stop() and never read: workers' waits see it
  std::atomic<bool> stopping{false};
  std::unordered_map<int, std::unique_ptr<Conn>> conns;  // loop-owned (not in a worker)

  std::mutex ip_mu;
  std::unordered_map<std::string, int> per_ip;
  std::atomic<int> total{0};
  // Requests whose bodies the workers read from the socket (large or chunked): at most half the
  // workers in all and an eighth per client IP, so slow uploads never take every worker.
  std::unordered_map<std::string, int> ip_streams;
  int streams = 0;

  std::mutex q_mu;
  std::condition_variable q_cv;
  std::deque<std::unique_ptr<Conn>> work;   // loop -> workers
  std::vector<std::unique_ptr<Conn>> back;  // workers -> loop
  std::vector<std::thread> workers;

  Impl(FrontedServer& s, FrontLimits l, LogFn lg) : svr(s), lim(l), log(std::move(lg)) {
    // created here, not in run(): stop() may come before or while run() starts
    wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    stop_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    svr.set_logger([this](const httplib::Request& q, const httplib::Response& r) {
      if (!tl_req) return;
      if (r.get_header_value("Connection") == "close") tl_req->force_close = true;
      if (!log) return;
      AccessRecord a;
      a.client = q.remote_addr;
      a.method = q.method.empty() ? "-" : q.method.substr(0, 20);
      a.target = q.target.empty() ? "-" : redact_target(q.target);
      a.status = r.status;
      a.bytes = tl_req->bytes;
      a.ms = std::chrono::duration<double, std::milli>(Clock::now() - tl_req->t0).count();
      log(a);
    });
  }

  ~Impl() {
    if (listen_fd >= 0) ::close(listen_fd);
    if (ep >= 0) ::close(ep);
    if (wake_fd >= 0) ::close(wake_fd);
    if (stop_fd >= 0) ::close(stop_fd);
  }

  // ------------------------------------------------------------------ accounting
  void close_conn(std::unique_ptr<Conn> c) {
    if (!c || c->fd < 0) return;
    ::close(c->fd);
    c->fd = -1;
    std::lock_guard l(ip_mu);
    if (auto it = per_ip.find(c->ip); it != per_ip.end() && --it->second <= 0) per_ip.erase(it);
    --total;
  }

  void refuse(Conn& c, int status, const std::string& why) {
    const std::string r = error_response(status, why);
    (void)::send(c.fd, r.data(), r.size(), MSG_NOSIGNAL);
    if (log) {
      AccessRecord a;
      a.client = c.ip;
      a.method = c.head.method.empty() ? "-" : c.head.method.substr(0, 20);
      a.target = c.head.target.empty() ? "-" : redact_target(c.head.target);
      a.status = status;
      a.bytes = r.size();
      a.note = why;
      log(a);
    }
  }

  // Answers an error and closes gracefully: the write side first, then reading (and dropping)
  // what the client still sends for a moment, so the answer is not lost to a TCP reset.
  void refuse_and_linger(Conn& c, int status, const std::string& why) {
    refuse(c, status, why);
    ::shutdown(c.fd, SHUT_WR);
    if (c.state == Conn::State::Queued) {  // it was not watched for input
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.fd = c.fd;
      epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
    }
    c.state = Conn::State::Linger;
    c.deadline = Clock::now() + kLinger;
  }

  // ------------------------------------------------------------------ event loop
  void watch(Conn& c) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = c.fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  }

  void wait_next_request(Conn& c) {
    c.state = Conn::State::Head;
    c.head = Head{};
    c.got_byte = !c.buf.empty();
    c.deadline = Clock::now() +
                 std::chrono::seconds(c.got_byte ? lim.header_timeout_s : lim.keepalive_timeout_s);
  }

  void accept_all() {
    for (;;) {
      sockaddr_storage ss{};
      socklen_t sl = sizeof ss;
      const int fd =
          ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // EAGAIN, or out of descriptors (EMFILE): try again on the next event
      }
      auto c = std::make_unique<Conn>();
      c->fd = fd;
      c->ip = addr_string(ss, c->port);
      sockaddr_storage ls{};
      socklen_t ll = sizeof ls;
      if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ls), &ll) == 0)
        c->local_ip = addr_string(ls, c->local_port);
      int status = 0;
      std::string why;
      {
        std::lock_guard l(ip_mu);
        if (total >= lim.max_connections) {
          status = 503,
          why = "server busy: " + std::to_string(lim.max_connections) + " connections open";
        } else if (lim.max_conns_per_ip > 0 && per_ip[c->ip] >= lim.max_conns_per_ip) {
          status = 429, why = "too many connections from " + c->ip + " (limit " +
                              std::to_string(lim.max_conns_per_ip) + ")";
        } else {
          ++per_ip[c->ip];
          ++total;
        }
      }
      if (status) {
        refuse(*c, status, why);
        ::close(fd);
        continue;
      }
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      wait_next_request(*c);
      c->deadline = Clock::now() + std::chrono::seconds(lim.header_timeout_s);
      watch(*c);
      conns.emplace(fd, std::move(c));
    }
  }

  int max_streams() const { return std::max(1, lim.threads / 2); }
  int max_streams_per_ip() const { return std::max(1, lim.threads / 8); }

  bool take_stream_slot(Conn& c) {
    std::lock_guard l(ip_mu);
    int& mine = ip_streams[c.ip];
    if (streams >= max_streams() || mine >= max_streams_per_ip()) {
      if (mine == 0) ip_streams.erase(c.ip);
      return false;
    }
    ++mine;
    ++streams;
    c.streaming = true;
    return true;
  }

  void release_stream_slot(Conn& c) {
    if (!c.streaming) return;
    c.streaming = false;
    std::lock_guard l(ip_mu);
    --streams;
    if (auto it = ip_streams.find(c.ip); it != ip_streams.end() && --it->second <= 0)
      ip_streams.erase(it);
  }

  // Dispatches a request whose body a worker will stream, or parks it until a slot is free.
  void dispatch_streamed(Conn& c) {
    if (take_stream_slot(c)) return dispatch(c.fd);
    if (c.state != Conn::State::Queued) {
      c.state = Conn::State::Queued;
      c.deadline = Clock::now() + std::chrono::seconds(lim.body_timeout_s);
      epoll_event ev{};
      ev.events = EPOLLRDHUP;  // not readable interest: its body stays in the socket meanwhile
      ev.data.fd = c.fd;
      epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
    }
  }

  void retry_queued() {
    std::vector<int> fds;
    for (auto& [fd, c] : conns)
      if (c->state == Conn::State::Queued) fds.push_back(fd);
    for (int fd : fds) {
      auto it = conns.find(fd);
      if (it != conns.end() && take_stream_slot(*it->second)) dispatch(fd);
    }
  }

  // Moves a connection whose request is complete enough to a worker.
  void dispatch(int fd) {
    auto it = conns.find(fd);
    std::unique_ptr<Conn> c = std::move(it->second);
    conns.erase(it);
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, nullptr);
    c->state = Conn::State::Worker;
    {
      std::lock_guard l(q_mu);
      work.push_back(std::move(c));
    }
    q_cv.notify_one();
  }

  // Looks at what a connection has buffered and moves it on: refuse, wait, or dispatch.
  // Returns false when the connection was closed.
  bool advance(Conn& c) {
    if (c.state == Conn::State::Head) {
      size_t lead = 0;  // empty lines before a request line are ignored (RFC 9112 2.2)
      while (lead + 1 < c.buf.size() && c.buf[lead] == '\r' && c.buf[lead + 1] == '\n') lead += 2;
      if (lead) c.buf.erase(0, lead);
      if (!c.buf.empty() && !c.got_byte) {
        c.got_byte = true;
        c.deadline = Clock::now() + std::chrono::seconds(lim.header_timeout_s);
      }
      const size_t end = c.buf.find("\r\n\r\n");
      if (end == std::string::npos || end + 4 > lim.max_header_bytes) {
        if (c.buf.size() >= lim.max_header_bytes || end != std::string::npos) {
          refuse_and_linger(
              c, 431,
              "request head larger than " + std::to_string(lim.max_header_bytes) + " bytes");
          return true;
        }
        if (c.peer_eof) return false;
        if (c.buf.find('\0') != std::string::npos) {
          refuse_and_linger(c, 400, "NUL byte in the request head");
          return true;
        }
        return true;  // wait for more
      }
      std::string why;
      if (int st = check_head(std::string_view(c.buf).substr(0, end + 4), lim, c.head, why)) {
        refuse_and_linger(c, st, why);
        return true;
      }
      c.head_done = Clock::now();
      const bool small = !c.head.chunked && c.head.content_length <= kSmallBody;
      if (small && !c.head.expect_continue && c.buf.size() < c.head.len + c.head.content_length &&
          !c.peer_eof) {
        c.state = Conn::State::Body;
        c.deadline = Clock::now() + std::chrono::seconds(lim.body_timeout_s);
        return true;
      }
      if (small && c.buf.size() >= c.head.len + c.head.content_length)
        dispatch(c.fd);
      else
        dispatch_streamed(c);
      return true;
    }
    if (c.state == Conn::State::Body) {
      if (c.buf.size() >= c.head.len + c.head.content_length || c.peer_eof) dispatch(c.fd);
      return true;
    }
    return true;
  }

  void on_readable(int fd) {
    auto it = conns.find(fd);
    if (it == conns.end()) return;
    Conn& c = *it->second;
    if (c.state == Conn::State::Queued) {  // EPOLLRDHUP: the client went away while waiting
      return drop(fd);
    }
    if (c.state == Conn::State::Linger) {
      char tmp[16384];
      for (;;) {
        const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
        if (n > 0) {
          c.lingered += static_cast<size_t>(n);
          if (c.lingered < (8u << 20)) continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n < 0 && errno == EINTR) continue;
        break;
      }
      return drop(fd);
    }
    // In the head state read at most a head's worth past the buffer; in the body state up to
    // the end of the body.
    for (;;) {
      size_t cap = c.state == Conn::State::Head
                       ? lim.max_header_bytes
                       : c.head.len + c.head.content_length + lim.max_header_bytes;
      if (c.buf.size() >= cap) break;
      char tmp[kReadChunk];
      const ssize_t n = ::recv(fd, tmp, std::min(sizeof tmp, cap - c.buf.size()), 0);
      if (n > 0) {
        c.buf.append(tmp, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) {
        c.peer_eof = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return drop(fd);
    }
    if ((c.peer_eof && c.buf.empty()) || !advance(c)) return drop(fd);
    auto after = conns.find(fd);  // advance() may have handed the connection to a worker
    if (after == conns.end()) return;
    // a closed peer whose request never completed: nothing more will come
    if (after->second->peer_eof && after->second->state != Conn::State::Linger) drop(fd);
  }

  void drop(int fd) {
    auto it = conns.find(fd);
    if (it == conns.end()) return;
    std::unique_ptr<Conn> c = std::move(it->second);
    conns.erase(it);
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    close_conn(std::move(c));
  }

  void sweep() {
    const auto now = Clock::now();
    std::vector<int> expired;
    for (auto& [fd, c] : conns)
      if (c->deadline <= now) expired.push_back(fd);
    for (int fd : expired) {
      Conn& c = *conns[fd];
      int status = 408;
      std::string why;
      if (c.state == Conn::State::Head && c.got_byte)
        why = "request head not complete within " + std::to_string(lim.header_timeout_s) + " s";
      else if (c.state == Conn::State::Body)
        why = "request body not complete within " + std::to_string(lim.body_timeout_s) + " s";
      else if (c.state == Conn::State::Queued)
        status = 503, why = "busy: no upload slot became free within " +
                            std::to_string(lim.body_timeout_s) + " s";
      if (why.empty()) {
        drop(fd);  // idle keep-alive, or lingering close done
        continue;
      }
      refuse_and_linger(c, status, why);
      c.deadline = now + std::chrono::milliseconds(200);  // don't wait long for a slow one
    }
  }

  void take_back() {
    std::vector<std::unique_ptr<Conn>> got;
    {
      std::lock_guard l(q_mu);
      got.swap(back);
    }
    for (auto& c : got) {
      const int fd = c->fd;
      wait_next_request(*c);
      Conn& ref = *c;
      conns.emplace(fd, std::move(c));
      watch(ref);
      if (!ref.buf.empty() && !advance(ref)) drop(fd);  // pipelined: the next request is here
    }
  }

  void loop() {
    std::vector<epoll_event> evs(256);
    auto last_sweep = Clock::now();
    while (!stopping) {
      const int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 100);
      for (int i = 0; i < n; ++i) {
        const int fd = evs[i].data.fd;
        if (fd == listen_fd)
          accept_all();
        else if (fd == wake_fd) {
          uint64_t v;
          (void)!::read(wake_fd, &v, sizeof v);
          take_back();
          retry_queued();
        } else
          on_readable(fd);
      }
      if (Clock::now() - last_sweep >= std::chrono::milliseconds(100)) {
        sweep();
        last_sweep = Clock::now();
      }
    }
  }

  // ------------------------------------------------------------------ workers
  void serve(std::unique_ptr<Conn> c) {
    ReqCtx ctx;
    ctx.t0 = c->head_done;
    tl_req = &ctx;
    ConnStream s(*c, lim, stop_fd);
    const bool close_after =
        stopping || c->served + 1 >= lim.max_requests_per_connection || c->peer_eof;
    bool closed = false;
    bool ok = false;
    try {
      ok = svr.serve_request(s, close_after, closed);
    } catch (...) {
      ok = false;
    }
    tl_req = nullptr;
    ++c->served;
    const bool freed = c->streaming;
    release_stream_slot(*c);
    c->buf.erase(0, std::min(s.pos(), c->buf.size()));
    const bool keep = ok && !closed && !close_after && !ctx.force_close && !stopping;
    if (!keep) close_conn(std::move(c));
    if (!keep && !freed) return;
    if (keep) {
      std::lock_guard l(q_mu);
      back.push_back(std::move(c));
    }
    const uint64_t one = 1;
    (void)!::write(wake_fd, &one, sizeof one);
  }

  void worker() {
    for (;;) {
      std::unique_ptr<Conn> c;
      {
        std::unique_lock l(q_mu);
        q_cv.wait(l, [&] { return !work.empty() || stopping; });
        if (work.empty()) return;
        c = std::move(work.front());
        work.pop_front();
      }
      serve(std::move(c));
    }
  }
};

HttpFront::HttpFront(FrontedServer& svr, FrontLimits limits, LogFn log)
    : impl_(std::make_unique<Impl>(svr, limits, std::move(log))) {}

HttpFront::~HttpFront() {
  stop();
}

int HttpFront::bind(const std::string& host, int port) {
  auto& i = *impl_;
  const std::string where = host + ":" + std::to_string(port);
  if (port < 0 || port > 65535)
    throw InvalidArgument("port " + std::to_string(port) + " is out of range (0-65535)");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string ps = std::to_string(port);
  if (int e = ::getaddrinfo(host.c_str(), ps.c_str(), &hints, &res); e != 0)
    throw IoError("cannot listen on " + where + ": " + gai_strerror(e));
  std::string err = "no address";
  int fd = -1;
  for (addrinfo* a = res; a; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      err = std::strerror(errno);
      continue;
    }
    // SO_REUSEADDR only (restart while old connections are in TIME_WAIT); never SO_REUSEPORT,
    // which would let a second server share the port.
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 1024) == 0) break;
    err = errno == EADDRINUSE ? std::string("port in use (another server listens there)")
                              : std::string(std::strerror(errno));
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd < 0) throw IoError("cannot listen on " + where + ": " + err);
  sockaddr_storage ss{};
  socklen_t sl = sizeof ss;
  int bound = port;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl) == 0) addr_string(ss, bound);
  i.listen_fd = fd;
  // Every connection is a descriptor: raise the soft limit to the hard one, and keep the
  // connection cap below what is available.
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    if (rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &rl);
      ::getrlimit(RLIMIT_NOFILE, &rl);
    }
    const auto avail = static_cast<int64_t>(rl.rlim_cur) - 64 - 2 * i.lim.threads;
    if (avail > 0 && avail < i.lim.max_connections) i.lim.max_connections = static_cast<int>(avail);
  }
  return bound;
}

void HttpFront::run() {
  auto& i = *impl_;
  if (i.listen_fd < 0) throw IoError("run() before bind()");
  i.ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (i.ep < 0 || i.wake_fd < 0 || i.stop_fd < 0)
    throw IoError(std::string("epoll: ") + std::strerror(errno));
  for (int fd : {i.listen_fd, i.wake_fd}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(i.ep, EPOLL_CTL_ADD, fd, &ev);
  }
  i.svr.set_serving(i.listen_fd);
  const int n = std::max(1, i.lim.threads);
  for (int k = 0; k < n; ++k) i.workers.emplace_back([&i] { i.worker(); });
  i.loop();
  // stopping: no new connections; idle ones closed; running requests finish (their answers
  // carry Connection: close) and streamed downloads stop.
  i.svr.set_serving(-1);
  ::close(i.listen_fd);
  i.listen_fd = -1;
  std::vector<int> fds;
  for (auto& [fd, c] : i.conns) fds.push_back(fd);
  for (int fd : fds) i.drop(fd);
  i.q_cv.notify_all();
  for (auto& t : i.workers) t.join();
  i.workers.clear();
  {
    std::lock_guard l(i.q_mu);
    for (auto& c : i.back) i.close_conn(std::move(c));
    for (auto& c : i.work) i.close_conn(std::move(c));
    i.back.clear();
    i.work.clear();
  }
}

void HttpFront::stop() {
  if (!impl_) return;
  impl_->stopping = true;
  impl_->q_cv.notify_all();
  const uint64_t one = 1;
  if (impl_->wake_fd >= 0) (void)!::write(impl_->wake_fd, &one, sizeof one);
  if (impl_->stop_fd >= 0) (void)!::write(impl_->stop_fd, &one, sizeof one);
}

std::string format_access_record(const AccessRecord& a) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const int ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  char dur[32];
  std::snprintf(dur, sizeof dur, "%.1fms", a.ms);
  std::string line = std::string(ts) + " " + (a.client.empty() ? "-" : a.client) + " \"" +
                     a.method + " " + a.target + "\" " + std::to_string(a.status) + " " +
                     std::to_string(a.bytes) + " " + dur;
  if (!a.note.empty()) {
    line += " (";
    for (unsigned char c : a.note.substr(0, 200))
      line.push_back(c < 0x20 || c >= 0x7f ? '?' : static_cast<char>(c));
    line += ")";
  }
  return line;
}

}  // namespace ohm::net
