// CPU LayerNorm and RMSNorm over the last dim (scalar reference, f64 accumulation).
// x/y/dx/dy are contiguous [rows, n]; mean/rstd are [rows] in x's dtype; w, b, dw, db are [n] and
// may be undefined (no affine / no gradient wanted).
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
    for (int64_t j = j0; j < j1; ++j) out[j] = static_cast<T>(acc[j - j0]);
  });
}

}  // namespace

void layer_norm_fwd(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                    const Tensor& w, const Tensor& b, double eps) {
  const int64_t n = row_width(x), rows = n == 0 ? 0 : x.numel() / n;
  LD_DISPATCH_FLOAT(x.dtype(), "layer_norm_fwd", [&] {
    using T = scalar_t;
    const T* xp = static_cast<const T*>(x.raw_data());
    const T* wp = ptr_or_null<T>(w);
    const T* bp = ptr_or_null<T>(b);
    T* yp = static_cast<T*>(y.raw_data());
    T* mp = static_cast<T*>(mean.raw_data());
    T* rp = static_cast<T*>(rstd.raw_data());
    parallel_for(rows, n, [&](int64_t r) {
      const T* xr = xp + r * n;
      T* yr = yp + r * n;
      double s = 0;
      for (int64_t j = 0; j < n; ++j) s += xr[j];
      const double mu = s / static_cast<double>(n);
      double ss = 0;  // two-pass variance: no cancellation for rows with a large mean
      for (int64_t j = 0; j < n; ++j) {
        const double c = xr[j] - mu;
        ss += c * c;
      }
      const double rs = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
      for (int64_t j = 0; j < n; ++j) {
        double v = (xr[j] - mu) * rs;
        if (wp) v *= wp[j];
        if (bp) v += bp[j];
        yr[j] = static_cast<T>(v);
      }
      mp[r] = static_cast<T>(mu);
      rp[r] = static_cast<T>(rs);
    });
  });
}

// xhat = (x - mean) * rstd, g = dy * w:
// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), dw = sum_rows dy * xhat, db = sum_rows dy.
void layer_norm_bwd(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                    const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& w) {
  const int64_t n = row_width(x), rows = n == 0 ? 0 : x.numel() / n;
  LD_DISPATCH_FLOAT(x.dtype(), "layer_norm_bwd", [&] {
    using T = scalar_t;
    const T* xp = static_cast<const T*>(x.raw_data());
    const T* gp = static_cast<const T*>(dy.raw_data());
    const T* mp = static_cast<const T*>(mean.raw_data());
    const T* rp = static_cast<const T*>(rstd.raw_data());
    const T* wp = ptr_or_null<T>(w);
    if (T* dxp = mut_ptr_or_null<T>(dx)) {
      parallel_for(rows, 2 * n, [&](int64_t r) {
        const T* xr = xp + r * n;
        const T* gr = gp + r * n;
        const double mu = mp[r], rs = rp[r];
        double sg = 0, sgx = 0;
        for (int64_t j = 0; j < n; ++j) {
          const double g = wp ? double(gr[j]) * wp[j] : double(gr[j]);
          sg += g;
          sgx += g * (xr[j] - mu) * rs;
        }
        sg /= static_cast<double>(n);
        sgx /= static_cast<double>(n);
        T* dr = dxp + r * n;
        for (int64_t j = 0; j < n; ++j) {
          const double g = wp ? double(gr[j]) * wp[j] : double(gr[j]);
          const double xh = (xr[j] - mu) * rs;
          dr[j] = static_cast<T>(rs * (g - sg - xh * sgx));
        }
      });
    }
    if (T* dwp = mut_ptr_or_null<T>(dw)) {
      column_sums(dwp, rows, n, [&](int64_t r, int64_t j) {
        return double(gp[r * n + j]) * ((xp[r * n + j] - double(mp[r])) * rp[r]);
      });
    }
    if (T* dbp = mut_ptr_or_null<T>(db)) {
      column_sums(dbp, rows, n, [&](int64_t r, int64_t j) { return double(gp[r * n + j]); });
    }
  });
}

void rms_norm_fwd(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& w,
                  double eps) {
  const int64_t n = row_width(x), rows = n == 0 ? 0 : x.numel() / n;
  LD_DISPATCH_FLOAT(x.dtype(), "rms_norm_fwd", [&] {
    using T = scalar_t;
    const T* xp = static_cast<const T*>(x.raw_data());
    const T* wp = ptr_or_null<T>(w);
    T* yp = static_cast<T*>(y.raw_data());
    T* rp = static_cast<T*>(rstd.raw_data());
    parallel_for(rows, n, [&](int64_t r) {
      const T* xr = xp + r * n;
      T* yr = yp + r * n;
      double ss = 0;
      for (int64_t j = 0; j < n; ++j) ss += double(xr[j]) * xr[j];
      const double rs = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
      for (int64_t j = 0; j < n; ++j) {
        double v = xr[j] * rs;
        if (wp) v *= wp[j];
        yr[j] = static_cast<T>(v);
      }
      rp[r] = static_cast<T>(rs);
    });
  });
}

// xhat = x * rstd, g = dy * w: dx = rstd * (g - xhat * mean(g * xhat)), dw = sum_rows dy * xhat.
void rms_norm_bwd(const Tensor& dx, const Tensor& dw, const Tensor& dy, const Tensor& x,
                  const Tensor& rstd, const Tensor& w) {
  const int64_t n = row_width(x), rows = n == 0 ? 0 : x.numel() / n;
  LD_DISPATCH_FLOAT(x.dtype(), "rms_norm_bwd", [&] {
    using T = scalar_t;
    const T* xp = static_cast<const T*>(x.raw_data());
    const T* gp = static_cast<const T*>(dy.raw_data());
    const T* rp = static_cast<const T*>(rstd.raw_data());
    const T* wp = ptr_or_null<T>(w);
    if (T* dxp = mut_ptr_or_null<T>(dx)) {
      parallel_for(rows, 2 * n, [&](int64_t r) {
        const T* xr = xp + r * n;
        const T* gr = gp + r * n;
        const double rs = rp[r];
        double sgx = 0;
        for (int64_t j = 0; j < n; ++j) {
          const double g = wp ? double(gr[j]) * wp[j] : double(gr[j]);
          sgx += g * xr[j] * rs;
        }
        sgx /= static_cast<double>(n);
        T* dr = dxp + r * n;
        for (int64_t j = 0; j < n; ++j) {
          const double g = wp ? double(gr[j]) * wp[j] : double(gr[j]);
          dr[j] = static_cast<T>(rs * (g - xr[j] * rs * sgx));
        }
      });
    }
    if (T* dwp = mut_ptr_or_null<T>(dw)) {
      column_sums(dwp, rows, n, [&](int64_t r, int64_t j) {
        return double(gp[r * n + j]) * xp[r * n + j] * double(rp[r]);
      });
    }
  });
}

}  // namespace ld::cpu
