// CPU AdamW step, exactly torch.optim.AdamW (single-tensor, non-amsgrad): decoupled weight decay,
// bias-corrected first and second moments, eps added after the bias-corrected sqrt.
#include <cmath>

#include "core/cpu/loops.h"
#include "core/kernels.h"

namespace ld::cpu {

// param, exp_avg, exp_avg_sq updated in place; grad read. All of one shape (any strides).
// step is the 1-based count of this update (bias corrections 1 - beta^step).
void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps,
                double weight_decay, int64_t step) {
  LD_CHECK(step >= 1, "adamw_step: step must be >= 1 (1-based), got {}", step);
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  LD_DISPATCH_FLOAT(param.dtype(), "adamw_step", [&] {
    using T = scalar_t;
    T* p = static_cast<T*>(param.raw_data());
    const T* g = static_cast<const T*>(grad.raw_data());
    T* m = static_cast<T*>(exp_avg.raw_data());
    T* v = static_cast<T*>(exp_avg_sq.raw_data());
    const T decay = static_cast<T>(1.0 - lr * weight_decay);
    const T b1 = static_cast<T>(beta1), b2 = static_cast<T>(beta2);
    const T c1 = static_cast<T>(1.0 - beta1), c2 = static_cast<T>(1.0 - beta2);
    const T step_size = static_cast<T>(lr / bc1);
    const T bc2_sqrt = static_cast<T>(std::sqrt(bc2));
    const T e = static_cast<T>(eps);
    const Shape& shape = param.shape();
    strided_loop<4>(
        shape,
        {param.strides(), broadcast_strides(grad, shape), exp_avg.strides(), exp_avg_sq.strides()},
        [&](const std::array<int64_t, 4>& off, int64_t n, const std::array<int64_t, 4>& st) {
          for (int64_t i = 0; i < n; ++i) {
            T& pi = p[off[0] + i * st[0]];
            const T gi = g[off[1] + i * st[1]];
            T& mi = m[off[2] + i * st[2]];
            T& vi = v[off[3] + i * st[3]];
            pi *= decay;
            mi = b1 * mi + c1 * gi;
            vi = b2 * vi + c2 * gi * gi;
            const T denom = std::sqrt(vi) / bc2_sqrt + e;
            pi -= step_size * mi / denom;
          }
        });
  });
}

}  // namespace ld::cpu
