// Private to src/kernels: what the per-ISA tables share.
#pragma once

#include "ohm/kernels/kernels.h"

namespace ohm::kernels {

// Per-ISA tables register here (nullptr when not compiled in or not supported by this CPU).
const KernelTable* avx2_table();    // AVX2 + FMA + F16C (src/kernels/avx2.cpp)
const KernelTable* avx512_table();  // AVX-512 F/BW/VL/VNNI (src/kernels/avx512.cpp)

}  // namespace ohm::kernels
