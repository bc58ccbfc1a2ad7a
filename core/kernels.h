// Backend kernel entry points: ld::cpu:: (always built) and ld::cuda:: (when LD_WITH_CUDA).
#pragma once
#include <cstdint>

#include "core/functors.h"
#include "core/tensor.h"

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
