// Shape ops: cat/split, index_select, arange.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace ld {

Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);
// x.index_select(dim, idx), idx i64 [n]; every index checked against the dim's size.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& idx);
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::i64,
              Device device = kCPU);

}  // namespace ld
