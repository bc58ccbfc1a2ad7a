// CPU LayerNorm and RMSNorm over the last dim (scalar reference, f64 accumulation; f32/f64 and,
// widened on load, bf16/f16). x/y/dx/dy are contiguous [rows, n]; mean/rstd are [rows] in
// stat_dtype(x) (f64 for f64, else f32); w, b, dw, db are [n] in x's dtype and may be undefined
// (no affine / no gradient wanted).
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/cpu/loops.h"
#include "core/kernels.h"

namespace ld::cpu {

namespace {

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.raw_data()) : nullptr;
}
template <class T>
T* mut_ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
}

int64_t row_width(const Tensor& x) { return x.dim() == 0 ? 1 : x.size(-1); }

// Column sums over rows, deterministic: threads split the columns into blocks and each block
// walks the rows in order. term(r, j) gives the per-element contribution (as double).
template <class T, class Term>
void column_sums(T* out, int64_t rows, int64_t n, Term term) {
  constexpr int64_t kBlock = 128;
  const int64_t nblocks = (n + kBlock - 1) / kBlock;
  parallel_for(nblocks, rows * kBlock, [&](int64_t blk) {
    const int64_t j0 = blk * kBlock, j1 = std::min(n, j0 + kBlock);
    double acc[kBlock] = {};
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = j0; j < j1; ++j) acc[j - j0] += term(r, j);
    for (int64_t j = j0; j < j1; ++j) out[j] = narrow<T>(acc[j - j0]);
  });
}

}  // namespace

void layer_norm_fwd(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                    const Tensor& w, const Tensor& b, double eps) {
  check_stats("layer_norm_fwd", x, mean);
  check_stats("layer_norm_fwd", x, rstd);
  const int64_t n = row_width(x), rows = n == 0 ? 0 : x.numel() / n;
  LD_DISPATCH_FLOAT_HALF(x.dtype(), "layer_norm_fwd", [&] {
    using T = scalar_t;
    using S = stat_t<T>;
    const T* xp = static_cast<const T*>(x.raw_data());
    const T* wp = ptr_or_null<T>(w);
    const T* bp = ptr_or_null<T>(b);
    T* yp = static_cast<T*>(y.raw_data());
    S* mp = static_cast<S*>(mean.raw_data());
    S* rp = static_cast<S*>(rstd.raw_data());
    parallel_for(rows, n, [&](int64_t r) {
      const T* xr = xp + r * n;
      T* yr = yp + r * n;
      double s = 0;
      for (int64_t j = 0; j < n; ++j) s += wide(xr[j]);
      const double mu = s / static_cast<double>(n);
      double ss = 0;  // two-pass variance: no cancellation for rows with a large mean
      for (int64_t j = 0; j < n; ++j) {
        const double c = wide(xr[j]) - mu;
        ss += c * c;
      }
      const double rs = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
      for (int64_t j = 0; j < n; ++j) {
        double v = (wide(xr[j]) - mu) * rs;
        if (wp) v *= wide(wp[j]);
        if (bp) v += wide(bp[j]);
        yr[j] = narrow<T>(v);
      }
      mp[r] = static_cast<S>(mu);
      rp[r] = static_cast<S>(rs);
    });
  });
}

// xhat = (x - mean) * rstd, g = dy * w:
// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), dw = sum_rows dy * xhat, db = sum_rows dy.
void layer_norm_bwd(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                    const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& w) {
  check_stats("layer_norm_bwd", x, mean);
  check_stats("layer_norm_bwd", x, rstd);
  const int64_t n = row_width(x), rows = n == 0 ? 0 : x.numel() / n;
  LD_DISPATCH_FLOAT_HALF(x.dtype(), "layer_norm_bwd", [&] {
    using T = scalar_t;
    using S = stat_t<T>;
    const T* xp = static_cast<const T*>(x.raw_data());
    const T* gp = static_cast<const T*>(dy.raw_data());
    const S* mp = static_cast<const S*>(mean.raw_data());
    const S* rp = static_cast<const S*>(rstd.raw_data());
    const T* wp = ptr_or_null<T>(w);
    if (T* dxp = mut_ptr_or_null<T>(dx)) {
      parallel_for(rows, 2 * n, [&](int64_t r) {
        const T* xr = xp + r * n;
        const T* gr = gp + r * n;
        const double mu = mp[r], rs = rp[r];
        double sg = 0, sgx = 0;
        for (int64_t j = 0; j < n; ++j) {
          const double g = wp ? wide(gr[j]) * wide(wp[j]) : wide(gr[j]);
          sg += g;
          sgx += g * (wide(xr[j]) - mu) * rs;
        }
        sg /= static_cast<double>(n);
        sgx /= static_cast<double>(n);
        T* dr = dxp + r * n;
        for (int64_t j = 0; j < n; ++j) {
          const double g = wp ? wide(gr[j]) * wide(wp[j]) : wide(gr[j]);
          const double xh = (wide(xr[j]) - mu) * rs;
          dr[j] = narrow<T>(rs * (g - sg - xh * sgx));
        }
      });
    }
    if (T* dwp = mut_ptr_or_null<T>(dw)) {
      column_sums(dwp, rows, n, [&](int64_t r, int64_t j) {
        return wide(gp[r * n + j]) * ((wide(xp[r * n + j]) - double(mp[r])) * double(rp[r]));
      });
    }
    if (T* dbp = mut_ptr_or_null<T>(db)) {
      column_sums(dbp, rows, n, [&](int64_t r, int64_t j) { return wide(gp[r * n + j]); });
    }
  });
}

void rms_norm_fwd(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& w,
                  double eps) {
  check_stats("rms_norm_fwd", x, rstd);
  const int64_t n = row_width(x), rows = n == 0 ? 0 : x.numel() / n;
  LD_DISPATCH_FLOAT_HALF(x.dtype(), "rms_norm_fwd", [&] {
    using T = scalar_t;
    using S = stat_t<T>;
    const T* xp = static_cast<const T*>(x.raw_data());
    const T* wp = ptr_or_null<T>(w);
    T* yp = static_cast<T*>(y.raw_data());
    S* rp = static_cast<S*>(rstd.raw_data());
    parallel_for(rows, n, [&](int64_t r) {
      const T* xr = xp + r * n;
      T* yr = yp + r * n;
      double ss = 0;
      for (int64_t j = 0; j < n; ++j) ss += wide(xr[j]) * wide(xr[j]);
      const double rs = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
      for (int64_t j = 0; j < n; ++j) {
        double v = wide(xr[j]) * rs;
        if (wp) v *= wide(wp[j]);
        yr[j] = narrow<T>(v);
      }
      rp[r] = static_cast<S>(rs);
    });
  });
}

// xhat = x * rstd, g = dy * w: dx = rstd * (g - xhat * mean(g * xhat)), dw = sum_rows dy * xhat.
void rms_norm_bwd(const Tensor& dx, const Tensor& dw, const Tensor& dy, const Tensor& x,
                  const Tensor& rstd, const Tensor& w) {
  check_stats("rms_norm_bwd", x, rstd);
  const int64_t n = row_width(x), rows = n == 0 ? 0 : x.numel() / n;
  LD_DISPATCH_FLOAT_HALF(x.dtype(), "rms_norm_bwd", [&] {
    using T = scalar_t;
    using S = stat_t<T>;
    const T* xp = static_cast<const T*>(x.raw_data());
    const T* gp = static_cast<const T*>(dy.raw_data());
    const S* rp = static_cast<const S*>(rstd.raw_data());
    const T* wp = ptr_or_null<T>(w);
    if (T* dxp = mut_ptr_or_null<T>(dx)) {
      parallel_for(rows, 2 * n, [&](int64_t r) {
        const T* xr = xp + r * n;
        const T* gr = gp + r * n;
        const double rs = rp[r];
        double sgx = 0;
        for (int64_t j = 0; j < n; ++j) {
          const double g = wp ? wide(gr[j]) * wide(wp[j]) : wide(gr[j]);
          sgx += g * wide(xr[j]) * rs;
        }
        sgx /= static_cast<double>(n);
        T* dr = dxp + r * n;
        for (int64_t j = 0; j < n; ++j) {
          const double g = wp ? wide(gr[j]) * wide(wp[j]) : wide(gr[j]);
          dr[j] = narrow<T>(rs * (g - wide(xr[j]) * rs * sgx));
        }
      });
    }
    if (T* dwp = mut_ptr_or_null<T>(dw)) {
      column_sums(dwp, rows, n, [&](int64_t r, int64_t j) {
        return wide(gp[r * n + j]) * wide(xp[r * n + j]) * double(rp[r]);
      });
    }
  });
}

}  // namespace ld::cpu
