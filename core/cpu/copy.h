// CPU copy with dtype conversion between any two strided tensors of the same shape, and fill.
#pragma once
#include "core/tensor.h"

namespace ld::cpu {
void copy_strided(const Tensor& dst, const Tensor& src);
void fill(const Tensor& dst, double value);
}  // namespace ld::cpu
