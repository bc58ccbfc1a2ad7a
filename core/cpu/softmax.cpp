// CPU softmax / log-softmax over the last dim with an optional additive mask (f64 accumulation).
// A row whose every (masked) logit is -inf gives softmax 0 and log-softmax -inf instead of nan,
// so fully padded attention rows come out as zeros.
#include <cmath>
#include <limits>
#include <vector>

#include "core/cpu/loops.h"
#include "core/cpu/vec_math.h"
#include "core/kernels.h"

namespace ld::cpu {

namespace {

// Element offset of row r (over all dims but the last) in a tensor with `shape` and `strides`.
int64_t row_offset(int64_t r, const Shape& shape, const Shape& strides) {
  int64_t off = 0;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 2; d >= 0; --d) {
    off += (r % shape[d]) * strides[d];
    r /= shape[d];
  }
  return off;
}

}  // namespace

// y [..., n] contiguous; x [..., n] any strides; mask undefined or x's shape (broadcast stride 0).
void softmax_fwd(const Tensor& y, const Tensor& x, const Tensor& mask, bool log) {
  if (x.numel() == 0) return;
  const Shape& shape = x.shape();
  const int64_t n = x.dim() == 0 ? 1 : x.size(-1), rows = x.numel() / n;
  const Shape xs = x.dim() == 0 ? Shape{1} : x.strides();
  const Shape ms = mask.defined() ? broadcast_strides(mask, shape) : Shape();
  const Shape sh = x.dim() == 0 ? Shape{1} : shape;
  LD_DISPATCH_FLOAT(x.dtype(), "softmax_fwd", [&] {
    using T = scalar_t;
    const T* xp = static_cast<const T*>(x.raw_data());
    const T* mp = mask.defined() ? static_cast<const T*>(mask.raw_data()) : nullptr;
    T* yp = static_cast<T*>(y.raw_data());
    const int64_t xj = xs.back(), mj = mp ? ms.back() : 0;
    // One row at a time: the masked logits in f64 (a per-thread scratch row), each exp once.
    auto row = [&](int64_t r, double* v) {
      const T* xr = xp + row_offset(r, sh, xs);
      const T* mr = mp ? mp + row_offset(r, sh, ms) : nullptr;
      T* yr = yp + r * n;
      for (int64_t j = 0; j < n; ++j) v[j] = double(xr[j * xj]);
      if (mr)
        for (int64_t j = 0; j < n; ++j) v[j] += double(mr[j * mj]);
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < n; ++j) m = std::max(m, v[j]);
      if (m == -std::numeric_limits<double>::infinity()) {
        const T fill = log ? -std::numeric_limits<T>::infinity() : T(0);
        for (int64_t j = 0; j < n; ++j) yr[j] = fill;
        return;
      }
      double s = 0;
      if (log) {
        for (int64_t j = 0; j < n; ++j) s += std::exp(v[j] - m);
        const double lse = m + std::log(s);
        for (int64_t j = 0; j < n; ++j) yr[j] = static_cast<T>(v[j] - lse);
      } else {
        s = exp_shifted_sum_f64(v, n, m);  // vectorised exp (core/cpu/vec_math.h)
        const double inv = 1.0 / s;
        for (int64_t j = 0; j < n; ++j) yr[j] = static_cast<T>(v[j] * inv);
      }
    };
    parallel_rows(rows, 4 * n, [&](int64_t begin, int64_t end) {
      std::vector<double> scratch(static_cast<size_t>(n));
      for (int64_t r = begin; r < end; ++r) row(r, scratch.data());
    });
  });
}

// dx, y, dy contiguous [..., n].
// softmax: dx = y * (dy - sum(dy * y)); log-softmax: dx = dy - exp(y) * sum(dy).
// Fully masked rows (softmax all 0 / log-softmax all -inf) get dx = 0.
void softmax_bwd(const Tensor& dx, const Tensor& y, const Tensor& dy, bool log) {
  if (y.numel() == 0) return;
  const int64_t n = y.dim() == 0 ? 1 : y.size(-1), rows = y.numel() / n;
  LD_DISPATCH_FLOAT(y.dtype(), "softmax_bwd", [&] {
    using T = scalar_t;
    const T* yp = static_cast<const T*>(y.raw_data());
    const T* gp = static_cast<const T*>(dy.raw_data());
    T* dp = static_cast<T*>(dx.raw_data());
    parallel_for(rows, 3 * n, [&](int64_t r) {
      const T* yr = yp + r * n;
      const T* gr = gp + r * n;
      T* dr = dp + r * n;
      if (log) {
        double sg = 0, se = 0;
        for (int64_t j = 0; j < n; ++j) {
          sg += gr[j];
          se += std::exp(double(yr[j]));
        }
        if (se == 0) {
          for (int64_t j = 0; j < n; ++j) dr[j] = T(0);
          return;
        }
        for (int64_t j = 0; j < n; ++j)
          dr[j] = static_cast<T>(gr[j] - std::exp(double(yr[j])) * sg);
      } else {
        double s = 0;
        for (int64_t j = 0; j < n; ++j) s += double(gr[j]) * yr[j];
        for (int64_t j = 0; j < n; ++j) dr[j] = static_cast<T>(yr[j] * (gr[j] - s));
      }
    });
  });
}

}  // namespace ld::cpu
