// Matrix products. matmul follows torch.matmul: 1-D operands are promoted, batch dims broadcast;
// transposed views are passed to BLAS without a copy.
#pragma once
#include "core/tensor.h"

namespace ld {

Tensor matmul(const Tensor& a, const Tensor& b);
// y = x W^T + b, x [..., in], W [out, in], b [out] (optional).
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());

}  // namespace ld
