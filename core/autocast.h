// Mixed precision: inside an AutocastGuard, ld::matmul / ld::linear on CUDA f32 tensors run their
// GEMM in bf16 (or f16) with f32 accumulation and hand back f32, so parameters stay f32 masters
// and their gradients come back in f32 (the casts are recorded in autograd).
#pragma once
#include "core/dtype.h"
#include "core/tensor.h"

namespace ld {

bool autocast_enabled();
DType autocast_dtype();

class AutocastGuard {
 public:
  explicit AutocastGuard(bool enabled = true, DType dtype = DType::bf16);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool prev_enabled_;
  DType prev_dtype_;
};

// When autocast applies to a @ b (both CUDA f32, autocast on), returns the f32 result of the
// low-precision product; otherwise an undefined tensor (the caller computes as usual).
Tensor autocast_matmul(const Tensor& a, const Tensor& b);

// Dtype conversion recorded in autograd (the gradient is converted back), done on the tensor's
// device.
Tensor autocast_cast(const Tensor& x, DType dt);

}  // namespace ld
