// Tile bounds of fused attention under the causal mask (aligned to the bottom right: query i sees
// key j iff j <= i + Tk - Tq): which keys a block of query rows can see, which queries a block of
// keys is seen by. Plain __host__ __device__ code shared by the tensor-core kernels
// (core/cuda/attention_tc.cu) and their CPU test (tests/core/attention_mma_layout_test.cpp).
#pragma once
#include <cstdint>

#include "core/half.h"  // LD_HD

namespace ld::cuda::attn {

LD_HD constexpr bool causal_visible(bool causal, int64_t Tq, int64_t Tk, int64_t i, int64_t j) {
  return !causal || j <= i + (Tk - Tq);
}

// One past the last key any query row in [m0, min(m0 + rows, Tq)) may see (0 when none may).
LD_HD constexpr int64_t key_end(bool causal, int64_t Tq, int64_t Tk, int64_t m0, int64_t rows) {
  if (!causal) return Tk;
  const int64_t last_i = (m0 + rows < Tq ? m0 + rows : Tq) - 1;
  const int64_t e = last_i + (Tk - Tq) + 1;
  return e < Tk ? (e > 0 ? e : 0) : Tk;
}

// First query row that may see any key at or after n0.
LD_HD constexpr int64_t query_begin(bool causal, int64_t Tq, int64_t Tk, int64_t n0) {
  if (!causal) return 0;
  const int64_t i = n0 - (Tk - Tq);
  return i > 0 ? i : 0;
}

}  // namespace ld::cuda::attn
