#include "ohm/core/error.h"

#include <cstdio>
#include <cstdlib>

namespace ohm {

const char* to_string(ErrorKind k) {
  switch (k) {
    case ErrorKind::Format:
      return "format error";
    case ErrorKind::Config:
      return "config error";
    case ErrorKind::Shape:
      return "shape error";
    case ErrorKind::DType:
      return "dtype error";
    case ErrorKind::Io:
      return "I/O error";
    case ErrorKind::Unsupported:
      return "unsupported";
    case ErrorKind::NotFound:
      return "not found";
    case ErrorKind::Invalid:
      return "invalid argument";
  }
  return "error";
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += std::to_string(s[i]);
  }
  return r + "]";
}

ErrorContext& ErrorContext::file(std::string_view f) {
  file_ = f;
  return *this;
}
ErrorContext& ErrorContext::key(std::string_view k) {
  key_ = k;
  return *this;
}
ErrorContext& ErrorContext::tensor(std::string_view t) {
  tensor_ = t;
  return *this;
}
ErrorContext& ErrorContext::op(std::string_view o) {
  op_ = o;
  return *this;
}
ErrorContext& ErrorContext::shape(std::string_view label, const std::vector<int64_t>& s) {
  return note(label, shape_str(s));
}
ErrorContext& ErrorContext::note(std::string_view label, std::string_view value) {
  if (!extra_.empty()) extra_ += ", ";
  extra_ += std::string(label) + "=" + std::string(value);
  return *this;
}

std::string ErrorContext::str() const {
  std::string r;
  auto add = [&r](const std::string& s) {
    if (s.empty()) return;
    if (!r.empty()) r += ": ";
    r += s;
  };
  add(file_);
  if (!key_.empty()) add("key '" + key_ + "'");
  if (!tensor_.empty()) add("tensor '" + tensor_ + "'");
  if (!op_.empty()) add("op '" + op_ + "'");
  if (!extra_.empty()) r += (r.empty() ? "(" : " (") + extra_ + ")";
  return r;
}

static std::string compose(const ErrorContext& ctx, const std::string& what) {
  std::string where = ctx.str();
  return where.empty() ? what : where + ": " + what;
}

Error::Error(ErrorKind kind, const ErrorContext& ctx, const std::string& what)
    : std::runtime_error(compose(ctx, what)), kind_(kind), ctx_(ctx), detail_(what) {}

void assert_fail(const char* expr, const char* file, int line, const char* msg) {
  std::fprintf(stderr, "ohm: internal assertion failed: %s (%s) at %s:%d\n", expr, msg, file, line);
  std::abort();
}

}  // namespace ohm
