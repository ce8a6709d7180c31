// The AVX-512 kernel table (F/BW/VL + VNNI; x86-64 only; compiled with the -m flags set in
// src/CMakeLists.txt). f32/f16/bf16 matmuls and elementwise ops use 512-bit vectors; the
// block-quantized matmuls use VNNI vpdpbusd on int8 activations. A second table,
// avx512_invariant_table(), is the same with batch-invariant matmul entries (make_batch_invariant).
// avx512_amx_table() is the AVX-512 table with AMX tile GEMMs for M > 1 (simd_amx.h), on the
// hardware or on the emulated tile unit.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels_internal.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__AVX512VL__) && defined(__AVX512VNNI__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define OHM_SIMD_W512 1
namespace ohm::kernels {
namespace {
#include "simd_impl.h"
// after simd_impl.h: the AMX kernels use its qgemm and float GEMM pieces
#include "simd_amx.h"
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
template <class TB>
KernelTable make_avx512_amx(const char* tiles) {
  KernelTable t = make_avx512();
  fill_amx<TB>(t);
  t.tiles = tiles;
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
const KernelTable* avx512_amx_table(bool emulated) {
  if (emulated) {
    static const KernelTable t = make_avx512_amx<AmxEmu>("amx-emulated");
    return &t;
  }
#if OHM_AMX_HW
  static const KernelTable t = make_avx512_amx<AmxHw>("amx");
  return &t;
#else
  return nullptr;
#endif
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
const KernelTable* avx512_amx_table(bool) {
  return nullptr;
}
}  // namespace ohm::kernels
#endif
