// Reductions over dims (sum, mean, max) with keepdim, and argmax.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace ld {

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor sum(const Tensor& x);  // all elements -> scalar
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
// Max over one dim; the gradient flows to the first maximal element (as torch.max(dim)).
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x);                                        // all elements -> scalar
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);  // i64

}  // namespace ld
