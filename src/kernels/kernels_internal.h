// Private to src/kernels: what the per-ISA tables share.
#pragma once

#include "ohm/core/quant_traits.h"
#include "ohm/kernels/kernels.h"

namespace ohm::kernels {

// Per-ISA tables register here (nullptr when not compiled in or not supported by this CPU).
const KernelTable* avx2_table();    // AVX2 + FMA + F16C (src/kernels/avx2.cpp)
const KernelTable* avx512_table();  // AVX-512 F/BW/VL/VNNI (src/kernels/avx512.cpp)
// The AVX-512 table with batch-invariant matmuls (kernels::batch_invariant_table); nullptr where
// avx512_table() is.
const KernelTable* avx512_invariant_table();
// The AVX-512 table with AMX tile GEMMs for M > 1 (src/kernels/simd_amx.h): on the tile
// instructions (nullptr where the build has no AMX intrinsics; the CPU and OS checks are
// kernels::amx_table's), or, emulated = true, on the scalar model of the tile unit.
const KernelTable* avx512_amx_table(bool emulated);

// Rows [next, end) shared by the threads of one decode matmul, taken `chunk` at a time with an
// atomic add on `next` (see KernelTable::matvec_row_queue).
struct RowQueue {
  int64_t next = 0;
  int64_t end = 0;
  int64_t chunk = 1;
};
// The queue installed for this thread (nullptr: none).
RowQueue*& row_queue();

// kernels::attention for AttentionArgs::softcap > 0 (src/kernels/softcap_attention.cpp).
void softcap_attention(const AttentionArgs& a, ThreadPool& pool);

}  // namespace ohm::kernels
