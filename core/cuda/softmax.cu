// CUDA softmax / log-softmax over the last dim with an optional additive (broadcast) mask, and
// cross-entropy fused with log-softmax. A warp per row up to 1024 columns, a block per row above;
// f32 statistics (cross-entropy saves lse/loss and reads grad_row in f32, f64 for f64). Fully
// masked rows give softmax 0 / log-softmax -inf, as on the CPU.
#include "core/cuda/common.cuh"
#include "core/kernels.h"

namespace ld::cuda {

namespace {

constexpr int kBlock = 256;
constexpr int64_t kWarpRowMax = 1024;

template <bool kPerBlock, class A>
__device__ __forceinline__ A gsum(A v, A* shm) {
  if constexpr (kPerBlock)
    return block_sum(v, shm);
  else
    return warp_sum(v);
}
template <bool kPerBlock, class A>
__device__ __forceinline__ A gmax(A v, A* shm) {
  if constexpr (kPerBlock)
    return block_max(v, shm);
  else
    return warp_max(v);
}

// x and mask rows are located by `rows_ix` (strides over all dims but the last); xj/mj are the
// last-dim strides. y is contiguous.
template <class T, bool kPerBlock>
__global__ void softmax_fwd_kernel(T* y, const T* x, const T* mask, int64_t rows, int64_t n,
                                   Strided<2> rows_ix, int64_t xj, int64_t mj, bool log) {
  using A = acc_t<T>;
  __shared__ A shm[32];
  const int64_t row =
      kPerBlock ? blockIdx.x : int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= rows) return;
  const int start = kPerBlock ? threadIdx.x : (threadIdx.x & 31);
  const int step = kPerBlock ? blockDim.x : 32;
  int64_t off[2];
  rows_ix.offsets(row, off);
  const T* xr = x + off[0];
  const T* mr = mask ? mask + off[1] : nullptr;
  auto v = [&](int64_t j) {
    A a = to_acc(xr[j * xj]);
    if (mr) a += to_acc(mr[j * mj]);
    return a;
  };
  A m = -std::numeric_limits<A>::infinity();
  for (int64_t j = start; j < n; j += step) m = max(m, v(j));
  m = gmax<kPerBlock>(m, shm);
  T* yr = y + row * n;
  if (m == -std::numeric_limits<A>::infinity()) {
    const A fill = log ? -std::numeric_limits<A>::infinity() : A(0);
    for (int64_t j = start; j < n; j += step) yr[j] = from_acc<T>(fill);
    return;
  }
  A s = 0;
  for (int64_t j = start; j < n; j += step) s += exp(v(j) - m);
  s = gsum<kPerBlock>(s, shm);
  if (log) {
    const A lse = m + ::log(s);
    for (int64_t j = start; j < n; j += step) yr[j] = from_acc<T>(v(j) - lse);
  } else {
    const A inv = A(1) / s;
    for (int64_t j = start; j < n; j += step) yr[j] = from_acc<T>(exp(v(j) - m) * inv);
  }
}

template <class T, bool kPerBlock>
__global__ void softmax_bwd_kernel(T* dx, const T* y, const T* dy, int64_t rows, int64_t n,
                                   bool log) {
  using A = acc_t<T>;
  __shared__ A shm[32];
  const int64_t row =
      kPerBlock ? blockIdx.x : int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= rows) return;
  const int start = kPerBlock ? threadIdx.x : (threadIdx.x & 31);
  const int step = kPerBlock ? blockDim.x : 32;
  const T* yr = y + row * n;
  const T* gr = dy + row * n;
  T* dr = dx + row * n;
  if (log) {
    A sg = 0, se = 0;
    for (int64_t j = start; j < n; j += step) {
      sg += to_acc(gr[j]);
      se += exp(to_acc(yr[j]));
    }
    sg = gsum<kPerBlock>(sg, shm);
    se = gsum<kPerBlock>(se, shm);
    for (int64_t j = start; j < n; j += step)
      dr[j] = from_acc<T>(se == A(0) ? A(0) : to_acc(gr[j]) - exp(to_acc(yr[j])) * sg);
  } else {
    A s = 0;
    for (int64_t j = start; j < n; j += step) s += to_acc(gr[j]) * to_acc(yr[j]);
    s = gsum<kPerBlock>(s, shm);
    for (int64_t j = start; j < n; j += step)
      dr[j] = from_acc<T>(to_acc(yr[j]) * (to_acc(gr[j]) - s));
  }
}

// One block per row of logits [N, C]: lse and loss = lse - logit[target] (0 when ignored), both
// saved unrounded in acc_t<T> (= stat_dtype: f32, f64 for f64).
template <class T>
__global__ void cross_entropy_fwd_kernel(acc_t<T>* loss, acc_t<T>* lse_out, const T* logits,
                                         const int64_t* tg, int64_t C, int64_t ignore_index) {
  using A = acc_t<T>;
  __shared__ A shm[32];
  const int64_t row = blockIdx.x;
  const T* xr = logits + row * C;
  A m = -std::numeric_limits<A>::infinity();
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) m = max(m, to_acc(xr[j]));
  m = block_max(m, shm);
  A s = 0;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) s += exp(to_acc(xr[j]) - m);
  s = block_sum(s, shm);
  if (threadIdx.x == 0) {
    const A l = m + ::log(s);
    const int64_t t = tg[row];
    lse_out[row] = l;
    loss[row] = t == ignore_index ? A(0) : l - to_acc(xr[t]);
  }
}

template <class T>
__global__ void cross_entropy_bwd_kernel(T* dl, const acc_t<T>* grad_row, int64_t g_stride,
                                         const T* logits, const acc_t<T>* lse, const int64_t* tg,
                                         int64_t N, int64_t C, int64_t ignore_index) {
  using A = acc_t<T>;
  const int64_t row = blockIdx.x;
  if (row >= N) return;
  const int64_t t = tg[row];
  const A g = grad_row[row * g_stride], l = lse[row];
  for (int64_t j = int64_t(blockIdx.y) * blockDim.x + threadIdx.x; j < C;
       j += int64_t(gridDim.y) * blockDim.x) {
    A p = t == ignore_index ? A(0)
                            : g * (exp(to_acc(logits[row * C + j]) - l) - (j == t ? A(1) : A(0)));
    dl[row * C + j] = from_acc<T>(p);
  }
}

}  // namespace

void softmax_fwd(const Tensor& y, const Tensor& x, const Tensor& mask, bool log) {
  LD_NVTX_FN();
  if (x.numel() == 0) return;
  const int64_t n = x.dim() == 0 ? 1 : x.size(-1), rows = x.numel() / n;
  const Shape shape = x.dim() == 0 ? Shape{1} : x.shape();
  const Shape xs = x.dim() == 0 ? Shape{1} : x.strides();
  const Shape ms = mask.defined() ? bcast_strides(mask, shape) : Shape(shape.size(), 0);
  const Shape row_shape(shape.begin(), shape.end() - 1);
  Strided<2> rows_ix = make_strided<2>(
      row_shape, {Shape(xs.begin(), xs.end() - 1), Shape(ms.begin(), ms.end() - 1)});
  LD_CUDA_DISPATCH_FLOAT(x.dtype(), "softmax_fwd", [&] {
    using T = scalar_t;
    const T* mp = mask.defined() ? dptr<const T>(mask) : nullptr;
    if (mask.defined())
      LD_CHECK(mask.dtype() == x.dtype(), "softmax: mask {} must have x's dtype {}", mask.desc(),
               x.desc());
    if (n > kWarpRowMax) {
      softmax_fwd_kernel<T, true><<<rows, kBlock, 0, current_stream()>>>(
          dptr<T>(y), dptr<const T>(x), mp, rows, n, rows_ix, xs.back(), ms.back(), log);
    } else {
      softmax_fwd_kernel<T, false><<<ceil_div(rows, kBlock / 32), kBlock, 0, current_stream()>>>(
          dptr<T>(y), dptr<const T>(x), mp, rows, n, rows_ix, xs.back(), ms.back(), log);
    }
    LD_CUDA_LAUNCH_CHECK();
  });
}

void softmax_bwd(const Tensor& dx, const Tensor& y, const Tensor& dy, bool log) {
  LD_NVTX_FN();
  if (y.numel() == 0) return;
  const int64_t n = y.dim() == 0 ? 1 : y.size(-1), rows = y.numel() / n;
  LD_CUDA_DISPATCH_FLOAT(y.dtype(), "softmax_bwd", [&] {
    using T = scalar_t;
    if (n > kWarpRowMax) {
      softmax_bwd_kernel<T, true><<<rows, kBlock, 0, current_stream()>>>(
          dptr<T>(dx), dptr<const T>(y), dptr<const T>(dy), rows, n, log);
    } else {
      softmax_bwd_kernel<T, false><<<ceil_div(rows, kBlock / 32), kBlock, 0, current_stream()>>>(
          dptr<T>(dx), dptr<const T>(y), dptr<const T>(dy), rows, n, log);
    }
    LD_CUDA_LAUNCH_CHECK();
  });
}

void cross_entropy_fwd(const Tensor& loss, const Tensor& lse, const Tensor& logits,
                       const Tensor& targets, int64_t ignore_index) {
  LD_NVTX_FN();
  check_stats("cross_entropy_fwd", logits, loss);
  check_stats("cross_entropy_fwd", logits, lse);
  const int64_t N = logits.size(0), C = logits.size(1);
  if (N == 0) return;
  LD_CUDA_DISPATCH_FLOAT(logits.dtype(), "cross_entropy_fwd", [&] {
    using T = scalar_t;
    using A = acc_t<T>;
    cross_entropy_fwd_kernel<T>
        <<<N, kBlock, 0, current_stream()>>>(dptr<A>(loss), dptr<A>(lse), dptr<const T>(logits),
                                             dptr<const int64_t>(targets), C, ignore_index);
    LD_CUDA_LAUNCH_CHECK();
  });
}

void cross_entropy_bwd(const Tensor& dlogits, const Tensor& grad_row, const Tensor& logits,
                       const Tensor& lse, const Tensor& targets, int64_t ignore_index) {
  LD_NVTX_FN();
  check_stats("cross_entropy_bwd", logits, grad_row);
  check_stats("cross_entropy_bwd", logits, lse);
  const int64_t N = logits.size(0), C = logits.size(1);
  if (N == 0 || C == 0) return;
  LD_CUDA_DISPATCH_FLOAT(logits.dtype(), "cross_entropy_bwd", [&] {
    using T = scalar_t;
    dim3 grid(static_cast<unsigned>(N),
              static_cast<unsigned>(std::min<int64_t>(ceil_div(C, kBlock), 64)));
    const int64_t gs = grad_row.dim() == 0 ? 0 : grad_row.stride(0);
    cross_entropy_bwd_kernel<T><<<grid, kBlock, 0, current_stream()>>>(
        dptr<T>(dlogits), dptr<const acc_t<T>>(grad_row), gs, dptr<const T>(logits),
        dptr<const acc_t<T>>(lse), dptr<const int64_t>(targets), N, C, ignore_index);
    LD_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace ld::cuda
