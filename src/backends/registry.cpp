// The registered backends (one line each) and the per-op dispatch of a Context.
#include <string>

#include "ohm/backends/context.h"
#include "ohm/core/error.h"

// One line per backend: `Backend& <name>()` is defined in src/backends/<name>/.
#define OHM_BACKENDS(X) X(cpu)

namespace ohm::backends {

const char* device_name(Device d) {
  switch (d) {
    case Device::Cpu:
      return "cpu";
    case Device::Cuda:
      return "cuda";
  }
  return "?";
}

const char* op_name(Op op) {
  static const char* const names[] = {"matmul", "rms_norm",  "layer_norm", "softmax", "activation",
                                      "add",    "mul",       "axpy",       "scale",   "fill",
                                      "rope",   "embedding", "add_rows",   "copy_2d", "attention"};
  static_assert(sizeof(names) / sizeof(names[0]) == static_cast<size_t>(Op::kCount));
  return names[static_cast<size_t>(op)];
}

namespace {
struct Entry {
  const char* name;
  Backend& (*get)();
};
const Entry kBackends[] = {
#define OHM_BACKEND_ENTRY(n) {#n, &n},
    OHM_BACKENDS(OHM_BACKEND_ENTRY)
#undef OHM_BACKEND_ENTRY
};
}  // namespace

std::vector<std::string> backend_names() {
  std::vector<std::string> out;
  for (const auto& e : kBackends) out.emplace_back(e.name);
  return out;
}

Backend& backend_for(std::string_view device_map) {
  // "auto": the first registered device backend, else the CPU (only the CPU today).
  if (device_map.empty() || device_map == "auto") {
    for (const auto& e : kBackends)
      if (e.get().device() != Device::Cpu) return e.get();
    return cpu();
  }
  for (const auto& e : kBackends)
    if (device_map == e.name) return e.get();
  std::string list;
  for (const auto& n : backend_names()) list += (list.empty() ? "" : ", ") + n;
  throw UnsupportedError(
      ErrorContext().key("device_map"),
      "no backend '" + std::string(device_map) + "' (available: " + list + ", auto)");
}

Context::Context(ThreadPool& pool, Backend& backend) : pool_(&pool), backend_(&backend) {
  Backend& host = cpu();
  for (size_t op = 0; op < table_.size(); ++op)
    for (size_t dt = 0; dt < table_[op].size(); ++dt)
      table_[op][dt] =
          backend.supports(static_cast<Op>(op), static_cast<DType>(dt)) ? &backend : &host;
}

DeviceBuffer::DeviceBuffer(Allocator& a, size_t n_floats)
    : a_(&a), p_(static_cast<float*>(a.allocate(n_floats * sizeof(float)))), n_(n_floats) {}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept : a_(o.a_), p_(o.p_), n_(o.n_) {
  o.a_ = nullptr;
  o.p_ = nullptr;
  o.n_ = 0;
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (p_) a_->deallocate(p_, n_ * sizeof(float));
    a_ = o.a_;
    p_ = o.p_;
    n_ = o.n_;
    o.a_ = nullptr;
    o.p_ = nullptr;
    o.n_ = 0;
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() {
  if (p_) a_->deallocate(p_, n_ * sizeof(float));
}

}  // namespace ohm::backends
