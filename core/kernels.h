// Backend kernel entry points: ld::cpu:: (always built) and ld::cuda:: (when LD_WITH_CUDA).
#pragma once
#include <cstdint>

#include "core/functors.h"
#include "core/tensor.h"

namespace ld {
// Saved per-row statistics (norm mean/rstd, cross-entropy lse, per-row loss and grad_row) are f32
// for f32/bf16/f16 inputs and f64 for f64 ones, on both backends: statistics rounded to 8 mantissa
// bits would shift every normalised value (and softmax probability) the backward recomputes.
inline DType stat_dtype(DType t) { return t == DType::f64 ? DType::f64 : DType::f32; }

// The saved statistics of the norm and cross-entropy kernels (mean/rstd, loss/lse/grad_row) must
// be stat_dtype(input) on every backend; both check with this.
inline void check_stats(const char* op, const Tensor& input, const Tensor& stat) {
  if (!stat.defined()) return;
  LD_CHECK(stat.dtype() == stat_dtype(input.dtype()),
           "{}: statistics {} must be {} for input {} (f32 statistics for f32/bf16/f16 inputs, "
           "f64 for f64)",
           op, stat.desc(), dtype_name(stat_dtype(input.dtype())), input.desc());
}
}  // namespace ld

namespace ld::cpu {
#include "core/backend_api.inc"
}  // namespace ld::cpu

#ifdef LD_WITH_CUDA
namespace ld::cuda {
#include "core/backend_api.inc"
}  // namespace ld::cuda
// Run `expr` for CUDA tensors.
#define LD_CUDA_ONLY(expr) expr
#else
#define LD_CUDA_ONLY(expr) ::ld::require_cuda(__func__)
#endif

// Dispatches a backend call on the device of tensor `t`: LD_DISPATCH_DEVICE(t, unary, op, out, x,
// s)
#define LD_DISPATCH_DEVICE(t, fn, ...)           \
  do {                                           \
    if ((t).device().is_cpu()) {                 \
      ::ld::cpu::fn(__VA_ARGS__);                \
    } else {                                     \
      LD_CUDA_ONLY(::ld::cuda::fn(__VA_ARGS__)); \
    }                                            \
  } while (0)
