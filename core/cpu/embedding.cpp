// CPU embedding gather (forward) and deterministic scatter-add (backward).
// Ids are validated by the op layer (core/ops/nn.cpp); these kernels trust them.
#include <algorithm>
#include <cstring>

#include "core/cpu/loops.h"
#include "core/kernels.h"

namespace ld::cpu {

// out [rows, d] contiguous; weight [V, d] (any strides); ids i64 [rows] contiguous.
void embedding_fwd(const Tensor& out, const Tensor& weight, const Tensor& ids) {
  const int64_t rows = ids.numel(), d = weight.size(1);
  const int64_t ws0 = weight.stride(0), ws1 = weight.stride(1);
  const int64_t* ip = static_cast<const int64_t*>(ids.raw_data());
  LD_DISPATCH_FLOAT(weight.dtype(), "embedding_fwd", [&] {
    using T = scalar_t;
    const T* w = static_cast<const T*>(weight.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    parallel_for(rows, d, [&](int64_t r) {
      const T* src = w + ip[r] * ws0;
      T* dst = o + r * d;
      if (ws1 == 1) {
        std::memcpy(dst, src, static_cast<size_t>(d) * sizeof(T));
      } else {
        for (int64_t j = 0; j < d; ++j) dst[j] = src[j * ws1];
      }
    });
  });
}

// grad_weight [V, d] contiguous (accumulated into); grad_out [rows, d] contiguous.
// Deterministic: threads split the d columns, and every column sums its rows in order.
void embedding_bwd(const Tensor& grad_weight, const Tensor& grad_out, const Tensor& ids,
                   int64_t padding_idx) {
  const int64_t rows = ids.numel(), d = grad_weight.size(1);
  const int64_t* ip = static_cast<const int64_t*>(ids.raw_data());
  constexpr int64_t kBlock = 64;
  const int64_t nblocks = (d + kBlock - 1) / kBlock;
  LD_DISPATCH_FLOAT(grad_weight.dtype(), "embedding_bwd", [&] {
    using T = scalar_t;
    T* gw = static_cast<T*>(grad_weight.raw_data());
    const T* go = static_cast<const T*>(grad_out.raw_data());
    parallel_for(nblocks, rows * kBlock, [&](int64_t blk) {
      const int64_t j0 = blk * kBlock, j1 = std::min(d, j0 + kBlock);
      for (int64_t r = 0; r < rows; ++r) {
        if (ip[r] == padding_idx) continue;
        T* dst = gw + ip[r] * d;
        const T* src = go + r * d;
        for (int64_t j = j0; j < j1; ++j) dst[j] += src[j];
      }
    });
  });
}

}  // namespace ld::cpu
