// Private to src/kernels: what the per-ISA tables share.
#pragma once

#include "ohm/kernels/kernels.h"

namespace ohm::kernels {

// Per-ISA tables register here (nullptr when not compiled in or not supported by this CPU).
// const KernelTable* avx2_table();   // added by the performance work
// const KernelTable* avx512_table();

}  // namespace ohm::kernels
