// The globals transformers installs: range, dict, namespace, raise_exception, strftime_now.
#include <ctime>

#include "builtins.h"

namespace ohm::jinja {

namespace {

std::string strftime_now(const std::string& fmt) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[512];
  const size_t n = std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
  return std::string(buf, n);
}

}  // namespace

Value make_global(const std::string& name) {
  if (name == "range")
    return Value::callable("range", [](Args& a) {
      int64_t start = 0, stop, step = 1;
      if (a.pos.size() == 1) {
        stop = to_int_arg(&a.pos[0], 0);
      } else if (a.pos.size() >= 2) {
        start = to_int_arg(&a.pos[0], 0);
        stop = to_int_arg(&a.pos[1], 0);
        if (a.pos.size() >= 3) step = to_int_arg(&a.pos[2], 1);
      } else {
        throw EvalError("range expected at least 1 argument, got 0");
      }
      if (step == 0) throw EvalError("range() arg 3 must not be zero");
      List l;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        l.emplace_back(i);
        if (l.size() > 100000)
          throw EvalError(
              "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
      }
      return Value(std::move(l));
    });
  if (name == "dict" || name == "namespace") {
    const bool ns = name == "namespace";
    return Value::callable(name, [ns](Args& a) {
      Dict d;
      for (const auto& p : a.pos) {
        if (p.is_mapping()) {
          for (const auto& [k, v] : p.as_dict().items()) d.set(k, v);
        } else {
          for (const auto& item : iterate(p)) {
            auto kv = iterate(item);
            if (kv.size() != 2)
              throw EvalError("dictionary update sequence element has wrong length");
            d.set(kv[0].str(), kv[1]);
          }
        }
      }
      for (const auto& [k, v] : a.kw) {
        if (ns && !k.empty() && k[0] == '_')
          throw EvalError(
              "Chat templates cannot store underscore-prefixed attributes on a namespace, but got "
              "'" +
              k + "'. Please rename the attribute.");
        d.set(k, v);
      }
      return ns ? Value::ns(std::move(d)) : Value(std::move(d));
    });
  }
  if (name == "raise_exception")
    return Value::callable("raise_exception", [](Args& a) -> Value {
      const Value* m = a.get(0, "message");
      throw RaisedError(m ? m->str() : std::string());
    });
  if (name == "strftime_now")
    return Value::callable("strftime_now", [](Args& a) {
      const Value* f = a.get(0, "format");
      if (!f) throw EvalError("strftime_now() missing 1 required positional argument: 'format'");
      return Value(strftime_now(f->str()));
    });
  return Value();
}

}  // namespace ohm::jinja
