// Typed errors for the whole library.
//
// Every error carries the context a user needs to fix the input: the op, the shapes and dtypes,
// the file, the key or the tensor name. Build messages with ErrorContext so they read uniformly:
//   throw FormatError(ErrorContext().file(path).tensor(name), "data_offsets past end of data");
//   -> "model.safetensors: tensor 'lm_head.weight': data_offsets past end of data"
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ohm {

enum class ErrorKind {
  Format,       // a malformed file (safetensors, GGUF, JSON...)
  Config,       // a missing or invalid configuration key
  Shape,        // incompatible shapes
  DType,        // unsupported or mismatched dtype
  Io,           // open/read/mmap failure
  Unsupported,  // a valid input ohm does not handle (yet)
  NotFound,     // a model, file, tensor or key that does not exist
  Invalid,      // a bad argument to an API
};

const char* to_string(ErrorKind k);

// Builder for the "where" part of an error message.
class ErrorContext {
 public:
  ErrorContext& file(std::string_view f);
  ErrorContext& key(std::string_view k);
  ErrorContext& tensor(std::string_view t);
  ErrorContext& op(std::string_view o);
  ErrorContext& shape(std::string_view label, const std::vector<int64_t>& s);
  ErrorContext& note(std::string_view label, std::string_view value);

  // "file: key 'x': tensor 'y': op 'z' (a=[1,2])" -- empty when nothing was set.
  std::string str() const;
  const std::string& file_name() const { return file_; }
  const std::string& key_name() const { return key_; }
  const std::string& tensor_name() const { return tensor_; }

 private:
  std::string file_, key_, tensor_, op_, extra_;
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const ErrorContext& ctx, const std::string& what);
  ErrorKind kind() const { return kind_; }
  const ErrorContext& context() const { return ctx_; }
  // The message without the context prefix.
  const std::string& detail() const { return detail_; }

 private:
  ErrorKind kind_;
  ErrorContext ctx_;
  std::string detail_;
};

#define OHM_DEFINE_ERROR(Name, Kind)                                                              \
  class Name : public Error {                                                                     \
   public:                                                                                        \
    Name(const ErrorContext& ctx, const std::string& what) : Error(ErrorKind::Kind, ctx, what) {} \
    explicit Name(const std::string& what) : Name(ErrorContext(), what) {}                        \
  };

OHM_DEFINE_ERROR(FormatError, Format)
OHM_DEFINE_ERROR(ConfigError, Config)
OHM_DEFINE_ERROR(ShapeError, Shape)
OHM_DEFINE_ERROR(DTypeError, DType)
OHM_DEFINE_ERROR(IoError, Io)
OHM_DEFINE_ERROR(UnsupportedError, Unsupported)
OHM_DEFINE_ERROR(NotFoundError, NotFound)
OHM_DEFINE_ERROR(InvalidArgument, Invalid)
#undef OHM_DEFINE_ERROR

// Internal invariant check: aborts with file and line (never for user input; throw for that).
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const char* msg);
#define OHM_ASSERT(cond, msg) \
  ((cond) ? (void)0 : ::ohm::assert_fail(#cond, __FILE__, __LINE__, (msg)))

std::string shape_str(const std::vector<int64_t>& s);

}  // namespace ohm
