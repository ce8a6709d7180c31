// The AVX2 + FMA + F16C kernel table (x86-64 only; compiled with -mavx2 -mfma -mf16c via
// src/CMakeLists.txt). Integer dot products use vpmaddubsw/vpmaddwd (no VNNI assumed).
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels_internal.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define OHM_SIMD_W512 0
namespace ohm::kernels {
namespace {
#include "simd_impl.h"
KernelTable make_avx2() {
  KernelTable t = reference();
  t.isa = Isa::Avx2;
  fill_table(t);
  return t;
}
}  // namespace
const KernelTable* avx2_table() {
  static const KernelTable t = make_avx2();
  return &t;
}
}  // namespace ohm::kernels
#else
namespace ohm::kernels {
const KernelTable* avx2_table() {
  return nullptr;
}
}  // namespace ohm::kernels
#endif
