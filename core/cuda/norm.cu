// CUDA LayerNorm / RMSNorm over the last dim, forward and backward: a warp per row up to 1024
// columns, a block per row above; f32 statistics (two-pass variance), saved as f32 (f64 for f64
// inputs: acc_t<T> = stat_dtype) so the backward of bf16/f16 rows sees the unrounded mean/rstd;
// weight/bias gradients by a
// deterministic two-stage column sum (fixed row chunks, then chunks summed in order).
#include "core/cuda/common.cuh"
#include "core/kernels.h"

namespace ld::cuda {

namespace {

constexpr int kBlock = 256;
constexpr int64_t kWarpRowMax = 1024;
constexpr int kColChunkRows = 64;  // rows per partial column sum

// Sum over the row group (a warp or the whole block) of v.
template <bool kPerBlock, class A>
__device__ __forceinline__ A group_sum(A v, A* shm) {
  if constexpr (kPerBlock)
    return block_sum(v, shm);
  else
    return warp_sum(v);
}

// kRms: RMSNorm (no mean, no bias). mean may be null for RMSNorm.
template <class T, bool kPerBlock, bool kRms>
__global__ void norm_fwd_kernel(T* y, acc_t<T>* mean_out, acc_t<T>* rstd_out, const T* x,
                                const T* w, const T* b, int64_t rows, int64_t n, double eps) {
  using A = acc_t<T>;
  __shared__ A shm[32];
  const int64_t row =
      kPerBlock ? blockIdx.x : int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= rows) return;
  const int start = kPerBlock ? threadIdx.x : (threadIdx.x & 31);
  const int step = kPerBlock ? blockDim.x : 32;
  const T* xr = x + row * n;
  T* yr = y + row * n;
  A mu = 0;
  if constexpr (!kRms) {
    A s = 0;
    for (int64_t j = start; j < n; j += step) s += to_acc(xr[j]);
    mu = group_sum<kPerBlock>(s, shm) / A(n);
  }
  A ss = 0;
  for (int64_t j = start; j < n; j += step) {
    const A c = to_acc(xr[j]) - mu;
    ss += c * c;
  }
  ss = group_sum<kPerBlock>(ss, shm);
  const A rs = A(1) / sqrt(ss / A(n) + A(eps));
  for (int64_t j = start; j < n; j += step) {
    A v = (to_acc(xr[j]) - mu) * rs;
    if (w) v *= to_acc(w[j]);
    if (!kRms && b) v += to_acc(b[j]);
    yr[j] = from_acc<T>(v);
  }
  if (start == 0) {
    if (!kRms) mean_out[row] = mu;
    rstd_out[row] = rs;
  }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) (LayerNorm), g = dy * w;
// dx = rstd * (g - xhat * mean(g * xhat)) (RMSNorm).
template <class T, bool kPerBlock, bool kRms>
__global__ void norm_bwd_dx_kernel(T* dx, const T* dy, const T* x, const acc_t<T>* mean,
                                   const acc_t<T>* rstd, const T* w, int64_t rows, int64_t n) {
  using A = acc_t<T>;
  __shared__ A shm[32];
  const int64_t row =
      kPerBlock ? blockIdx.x : int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= rows) return;
  const int start = kPerBlock ? threadIdx.x : (threadIdx.x & 31);
  const int step = kPerBlock ? blockDim.x : 32;
  const T* xr = x + row * n;
  const T* gr = dy + row * n;
  const A mu = kRms ? A(0) : mean[row], rs = rstd[row];
  A sg = 0, sgx = 0;
  for (int64_t j = start; j < n; j += step) {
    const A g = w ? to_acc(gr[j]) * to_acc(w[j]) : to_acc(gr[j]);
    sg += g;
    sgx += g * (to_acc(xr[j]) - mu) * rs;
  }
  if constexpr (!kRms) sg = group_sum<kPerBlock>(sg, shm) / A(n);
  sgx = group_sum<kPerBlock>(sgx, shm) / A(n);
  T* dr = dx + row * n;
  for (int64_t j = start; j < n; j += step) {
    const A g = w ? to_acc(gr[j]) * to_acc(w[j]) : to_acc(gr[j]);
    const A xh = (to_acc(xr[j]) - mu) * rs;
    dr[j] = from_acc<T>(rs * (kRms ? g - xh * sgx : g - sg - xh * sgx));
  }
}

// Stage 1: partial[chunk, j] = sum over the chunk's rows of dy * xhat (dw) and dy (db).
template <class T, bool kRms>
__global__ void norm_bwd_cols_kernel(acc_t<T>* pdw, acc_t<T>* pdb, const T* dy, const T* x,
                                     const acc_t<T>* mean, const acc_t<T>* rstd, int64_t rows,
                                     int64_t n) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t r0 = int64_t(blockIdx.y) * kColChunkRows;
  if (j >= n) return;
  const int64_t r1 = min(rows, r0 + kColChunkRows);
  using A = acc_t<T>;
  A sw = 0, sb = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const A g = to_acc(dy[r * n + j]);
    const A mu = kRms ? A(0) : mean[r];
    sw += g * (to_acc(x[r * n + j]) - mu) * rstd[r];
    sb += g;
  }
  if (pdw) pdw[blockIdx.y * n + j] = sw;
  if (pdb) pdb[blockIdx.y * n + j] = sb;
}

// Stage 2: out[j] = sum over chunks in order.
template <class T>
__global__ void sum_chunks_kernel(T* out, const acc_t<T>* part, int64_t chunks, int64_t n) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n) return;
  acc_t<T> s = 0;
  for (int64_t c = 0; c < chunks; ++c) s += part[c * n + j];
  out[j] = from_acc<T>(s);
}

template <class T, bool kRms>
void launch_norm_fwd(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                     const Tensor& w, const Tensor& b, double eps, cudaStream_t s) {
  const int64_t n = x.dim() == 0 ? 1 : x.size(-1), rows = n == 0 ? 0 : x.numel() / n;
  if (rows == 0) return;
  using A = acc_t<T>;
  auto args = std::make_tuple(dptr<T>(y), dptr<A>(mean), dptr<A>(rstd), dptr<const T>(x),
                              dptr<const T>(w), dptr<const T>(b), rows, n, eps);
  if (n > kWarpRowMax) {
    std::apply([&](auto... a) { norm_fwd_kernel<T, true, kRms><<<rows, kBlock, 0, s>>>(a...); },
               args);
  } else {
    std::apply(
        [&](auto... a) {
          norm_fwd_kernel<T, false, kRms><<<ceil_div(rows, kBlock / 32), kBlock, 0, s>>>(a...);
        },
        args);
  }
  LD_CUDA_LAUNCH_CHECK();
}

template <class T, bool kRms>
void launch_norm_bwd(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                     const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& w,
                     cudaStream_t s) {
  const int64_t n = x.dim() == 0 ? 1 : x.size(-1), rows = n == 0 ? 0 : x.numel() / n;
  if (n == 0) return;
  if (dx.defined() && rows > 0) {
    if (n > kWarpRowMax) {
      norm_bwd_dx_kernel<T, true, kRms><<<rows, kBlock, 0, s>>>(
          dptr<T>(dx), dptr<const T>(dy), dptr<const T>(x), dptr<const acc_t<T>>(mean),
          dptr<const acc_t<T>>(rstd), dptr<const T>(w), rows, n);
    } else {
      norm_bwd_dx_kernel<T, false, kRms><<<ceil_div(rows, kBlock / 32), kBlock, 0, s>>>(
          dptr<T>(dx), dptr<const T>(dy), dptr<const T>(x), dptr<const acc_t<T>>(mean),
          dptr<const acc_t<T>>(rstd), dptr<const T>(w), rows, n);
    }
    LD_CUDA_LAUNCH_CHECK();
  }
  if (!dw.defined() && !db.defined()) return;
  const int64_t chunks = std::max<int64_t>(1, ceil_div(rows, kColChunkRows));
  using A = acc_t<T>;
  DeviceBuffer part(size_t(2 * chunks * n) * sizeof(A));
  A* pdw = dw.defined() ? part.as<A>() : nullptr;
  A* pdb = db.defined() ? part.as<A>() + chunks * n : nullptr;
  if (rows == 0) {
    LD_CUDA_CHECK(cudaMemsetAsync(part.get(), 0, part.size(), s));
  } else {
    dim3 grid(static_cast<unsigned>(ceil_div(n, kBlock)), static_cast<unsigned>(chunks));
    norm_bwd_cols_kernel<T, kRms>
        <<<grid, kBlock, 0, s>>>(pdw, pdb, dptr<const T>(dy), dptr<const T>(x),
                                 dptr<const acc_t<T>>(mean), dptr<const acc_t<T>>(rstd), rows, n);
    LD_CUDA_LAUNCH_CHECK();
  }
  if (pdw) {
    sum_chunks_kernel<T><<<ceil_div(n, kBlock), kBlock, 0, s>>>(dptr<T>(dw), pdw, chunks, n);
    LD_CUDA_LAUNCH_CHECK();
  }
  if (pdb) {
    sum_chunks_kernel<T><<<ceil_div(n, kBlock), kBlock, 0, s>>>(dptr<T>(db), pdb, chunks, n);
    LD_CUDA_LAUNCH_CHECK();
  }
}

}  // namespace

void layer_norm_fwd(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                    const Tensor& w, const Tensor& b, double eps) {
  LD_NVTX_FN();
  check_stats("layer_norm_fwd", x, mean);
  check_stats("layer_norm_fwd", x, rstd);
  LD_CUDA_DISPATCH_FLOAT(x.dtype(), "layer_norm_fwd", [&] {
    launch_norm_fwd<scalar_t, false>(y, mean, rstd, x, w, b, eps, current_stream());
  });
}

void layer_norm_bwd(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                    const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& w) {
  LD_NVTX_FN();
  check_stats("layer_norm_bwd", x, mean);
  check_stats("layer_norm_bwd", x, rstd);
  LD_CUDA_DISPATCH_FLOAT(x.dtype(), "layer_norm_bwd", [&] {
    launch_norm_bwd<scalar_t, false>(dx, dw, db, dy, x, mean, rstd, w, current_stream());
  });
}

void rms_norm_fwd(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& w,
                  double eps) {
  LD_NVTX_FN();
  check_stats("rms_norm_fwd", x, rstd);
  LD_CUDA_DISPATCH_FLOAT(x.dtype(), "rms_norm_fwd", [&] {
    launch_norm_fwd<scalar_t, true>(y, Tensor(), rstd, x, w, Tensor(), eps, current_stream());
  });
}

void rms_norm_bwd(const Tensor& dx, const Tensor& dw, const Tensor& dy, const Tensor& x,
                  const Tensor& rstd, const Tensor& w) {
  LD_NVTX_FN();
  check_stats("rms_norm_bwd", x, rstd);
  LD_CUDA_DISPATCH_FLOAT(x.dtype(), "rms_norm_bwd", [&] {
    launch_norm_bwd<scalar_t, true>(dx, dw, Tensor(), dy, x, Tensor(), rstd, w, current_stream());
  });
}

}  // namespace ld::cuda
