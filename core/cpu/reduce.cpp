// CPU row reductions with wide (f64) accumulation.
#include <limits>

#include "core/cpu/loops.h"
#include "core/kernels.h"

namespace ld::cpu {

void reduce_sum_rows(const Tensor& out, const Tensor& x) {
  const int64_t rows = x.size(0), n = x.size(1);
  LD_DISPATCH_FLOAT(x.dtype(), "sum", [&] {
    const scalar_t* p = static_cast<const scalar_t*>(x.raw_data());
    scalar_t* o = static_cast<scalar_t*>(out.raw_data());
    parallel_for(rows, n, [&](int64_t r) {
      double acc = 0;
      const scalar_t* row = p + r * n;
      for (int64_t i = 0; i < n; ++i) acc += row[i];
      o[r] = static_cast<scalar_t>(acc);
    });
  });
}

void reduce_max_rows(const Tensor& out, const Tensor& argmax, const Tensor& x) {
  const int64_t rows = x.size(0), n = x.size(1);
  LD_DISPATCH_FLOAT(x.dtype(), "max", [&] {
    const scalar_t* p = static_cast<const scalar_t*>(x.raw_data());
    scalar_t* o = static_cast<scalar_t*>(out.raw_data());
    int64_t* idx = static_cast<int64_t*>(argmax.raw_data());
    parallel_for(rows, n, [&](int64_t r) {
      const scalar_t* row = p + r * n;
      int64_t best = 0;
      for (int64_t i = 1; i < n; ++i)
        if (row[i] > row[best] || (row[i] != row[i] && row[best] == row[best])) best = i;
      o[r] = row[best];
      idx[r] = best;
    });
  });
}

}  // namespace ld::cpu
