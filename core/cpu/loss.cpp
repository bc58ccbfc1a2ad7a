// CPU cross-entropy over rows of logits [N, C] (f64 accumulation; f32/f64 and, widened on load,
// bf16/f16), forward and backward. Targets are validated by the op layer (core/ops/nn.cpp).
#include <cmath>
#include <limits>

#include "core/cpu/loops.h"
#include "core/kernels.h"

namespace ld::cpu {

// loss [N], lse [N] contiguous in stat_dtype(logits) (f64 for f64, else f32); logits [N, C]
// contiguous; targets i64 [N] contiguous. loss = lse - logits[t], 0 for rows whose target is
// ignore_index.
void cross_entropy_fwd(const Tensor& loss, const Tensor& lse, const Tensor& logits,
                       const Tensor& targets, int64_t ignore_index) {
  check_stats("cross_entropy_fwd", logits, loss);
  check_stats("cross_entropy_fwd", logits, lse);
  const int64_t N = logits.size(0), C = logits.size(1);
  const int64_t* tp = static_cast<const int64_t*>(targets.raw_data());
  LD_DISPATCH_FLOAT_HALF(logits.dtype(), "cross_entropy_fwd", [&] {
    using T = scalar_t;
    using S = stat_t<T>;
    const T* xp = static_cast<const T*>(logits.raw_data());
    S* lp = static_cast<S*>(loss.raw_data());
    S* sp = static_cast<S*>(lse.raw_data());
    parallel_for(N, 2 * C, [&](int64_t r) {
      const T* xr = xp + r * C;
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < C; ++j) m = std::max(m, wide(xr[j]));
      double s = 0;
      for (int64_t j = 0; j < C; ++j) s += std::exp(wide(xr[j]) - m);
      const double l = m + std::log(s);
      sp[r] = static_cast<S>(l);
      lp[r] = tp[r] == ignore_index ? S(0) : static_cast<S>(l - wide(xr[tp[r]]));
    });
  });
}

// dlogits[r, j] = grad_row[r] * (exp(logits[r, j] - lse[r]) - [j == t_r]); 0 for ignored rows.
// grad_row and lse are in stat_dtype(logits); dlogits has the logits' dtype.
void cross_entropy_bwd(const Tensor& dlogits, const Tensor& grad_row, const Tensor& logits,
                       const Tensor& lse, const Tensor& targets, int64_t ignore_index) {
  check_stats("cross_entropy_bwd", logits, grad_row);
  check_stats("cross_entropy_bwd", logits, lse);
  const int64_t N = logits.size(0), C = logits.size(1);
  const int64_t* tp = static_cast<const int64_t*>(targets.raw_data());
  const int64_t gs = grad_row.dim() == 0 ? 0 : grad_row.stride(0);
  LD_DISPATCH_FLOAT_HALF(logits.dtype(), "cross_entropy_bwd", [&] {
    using T = scalar_t;
    using S = stat_t<T>;
    const T* xp = static_cast<const T*>(logits.raw_data());
    const S* gp = static_cast<const S*>(grad_row.raw_data());
    const S* sp = static_cast<const S*>(lse.raw_data());
    T* dp = static_cast<T*>(dlogits.raw_data());
    parallel_for(N, 2 * C, [&](int64_t r) {
      T* dr = dp + r * C;
      if (tp[r] == ignore_index) {
        for (int64_t j = 0; j < C; ++j) dr[j] = narrow<T>(0.0);
        return;
      }
      const T* xr = xp + r * C;
      const double g = gp[r * gs], l = sp[r];
      for (int64_t j = 0; j < C; ++j) {
        const double p = std::exp(wide(xr[j]) - l) - (j == tp[r] ? 1.0 : 0.0);
        dr[j] = narrow<T>(g * p);
      }
    });
  });
}

}  // namespace ld::cpu
