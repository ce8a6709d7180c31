// Tests of batch invariance (a row's logits bitwise the same whatever else shares the forward)
// run the batch-invariant kernel table: the host's, or on AVX-512 hosts the AVX-512 table's
// invariant variant (the AVX-512 table's VNNI qgemm and f32 GEMM sum in another order at M > 1
// than its M = 1 kernels; docs/serving.md). This is what `ohm serve` and speculative
// `ohm generate` select too.
#pragma once

#include "ohm/kernels/kernels.h"

namespace ohm::test {

struct InvariantKernels {
  const kernels::KernelTable* prev = nullptr;
  InvariantKernels() {
    if (&kernels::batch_invariant_table() != &kernels::active())
      prev = kernels::set_active(&kernels::batch_invariant_table());
  }
  ~InvariantKernels() {
    if (prev) kernels::set_active(prev);
  }
  InvariantKernels(const InvariantKernels&) = delete;
  InvariantKernels& operator=(const InvariantKernels&) = delete;
};

}  // namespace ohm::test
