// The AVX-512 kernel table (F/BW/VL + VNNI; x86-64 only; compiled with the -m flags set in
// src/CMakeLists.txt). f32/f16/bf16 matmuls and elementwise ops use 512-bit vectors; the
// block-quantized matmuls use VNNI vpdpbusd on int8 activations. A second table,
// avx512_invariant_table(), is the same with batch-invariant matmul entries (make_batch_invariant).
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels_internal.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__AVX512VL__) && defined(__AVX512VNNI__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define OHM_SIMD_W512 1
namespace ohm::kernels {
namespace {
#include "simd_impl.h"
KernelTable make_avx512() {
  KernelTable t = reference();
  t.isa = Isa::Avx512;
  fill_table(t);
  return t;
}
KernelTable make_avx512_invariant() {
  KernelTable t = make_avx512();
  make_batch_invariant(t);
  return t;
}
}  // namespace
const KernelTable* avx512_table() {
  static const KernelTable t = make_avx512();
  return &t;
}
const KernelTable* avx512_invariant_table() {
  static const KernelTable t = make_avx512_invariant();
  return &t;
}
}  // namespace ohm::kernels
#else
namespace ohm::kernels {
const KernelTable* avx512_table() {
  return nullptr;
}
const KernelTable* avx512_invariant_table() {
  return nullptr;
}
}  // namespace ohm::kernels
#endif
