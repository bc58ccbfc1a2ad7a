// CPU cross-entropy over rows of logits [N, C] (f64 accumulation), forward and backward.
// Targets are validated by the op layer (core/ops/nn.cpp).
#include <cmath>
#include <limits>

#include "core/cpu/loops.h"
#include "core/kernels.h"

namespace ld::cpu {

// loss [N], lse [N] contiguous; logits [N, C] contiguous; targets i64 [N] contiguous.
// loss = lse - logits[t], 0 for rows whose target is ignore_index.
void cross_entropy_fwd(const Tensor& loss, const Tensor& lse, const Tensor& logits,
                       const Tensor& targets, int64_t ignore_index) {
  const int64_t N = logits.size(0), C = logits.size(1);
  const int64_t* tp = static_cast<const int64_t*>(targets.raw_data());
  LD_DISPATCH_FLOAT(logits.dtype(), "cross_entropy_fwd", [&] {
    using T = scalar_t;
    const T* xp = static_cast<const T*>(logits.raw_data());
    T* lp = static_cast<T*>(loss.raw_data());
    T* sp = static_cast<T*>(lse.raw_data());
    parallel_for(N, 2 * C, [&](int64_t r) {
      const T* xr = xp + r * C;
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < C; ++j) m = std::max(m, double(xr[j]));
      double s = 0;
      for (int64_t j = 0; j < C; ++j) s += std::exp(double(xr[j]) - m);
      const double l = m + std::log(s);
      sp[r] = static_cast<T>(l);
      lp[r] = tp[r] == ignore_index ? T(0) : static_cast<T>(l - double(xr[tp[r]]));
    });
  });
}

// dlogits[r, j] = grad_row[r] * (exp(logits[r, j] - lse[r]) - [j == t_r]); 0 for ignored rows.
void cross_entropy_bwd(const Tensor& dlogits, const Tensor& grad_row, const Tensor& logits,
                       const Tensor& lse, const Tensor& targets, int64_t ignore_index) {
  const int64_t N = logits.size(0), C = logits.size(1);
  const int64_t* tp = static_cast<const int64_t*>(targets.raw_data());
  LD_DISPATCH_FLOAT(logits.dtype(), "cross_entropy_bwd", [&] {
    using T = scalar_t;
    const T* xp = static_cast<const T*>(logits.raw_data());
    const T* gp = static_cast<const T*>(grad_row.raw_data());
    const T* sp = static_cast<const T*>(lse.raw_data());
    T* dp = static_cast<T*>(dlogits.raw_data());
    parallel_for(N, 2 * C, [&](int64_t r) {
      T* dr = dp + r * C;
      if (tp[r] == ignore_index) {
        for (int64_t j = 0; j < C; ++j) dr[j] = T(0);
        return;
      }
      const T* xr = xp + r * C;
      const double g = gp[r], l = sp[r];
      for (int64_t j = 0; j < C; ++j) {
        const double p = std::exp(double(xr[j]) - l) - (j == tp[r] ? 1.0 : 0.0);
        dr[j] = static_cast<T>(g * p);
      }
    });
  });
}

}  // namespace ld::cpu
