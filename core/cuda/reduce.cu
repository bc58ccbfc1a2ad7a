// CUDA row reductions over [rows, n] contiguous inputs: a warp per row for narrow rows, a block per
// row for wide ones (warp shuffles, then one block-level combine), f32 accumulation (f64 for f64).
#include "core/cuda/common.cuh"
#include "core/kernels.h"

namespace ld::cuda {

namespace {

constexpr int kBlock = 256;
constexpr int64_t kWarpRowMax = 1024;  // rows up to this width: one warp per row

// kPerBlock: one row per block (block reduction), else one row per warp.
template <class T, bool kPerBlock>
__global__ void sum_rows_kernel(T* out, const T* x, int64_t rows, int64_t n) {
  using A = acc_t<T>;
  __shared__ A shm[32];
  const int lane = threadIdx.x & 31;
  const int64_t row =
      kPerBlock ? blockIdx.x : int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= rows) return;  // whole warps (per-warp) or whole blocks (per-block) leave together
  const T* xr = x + row * n;
  A acc = 0;
  const int start = kPerBlock ? threadIdx.x : lane, step = kPerBlock ? blockDim.x : 32;
  for (int64_t j = start; j < n; j += step) acc += to_acc(xr[j]);
  acc = kPerBlock ? block_sum(acc, shm) : warp_sum(acc);
  if (start == 0) out[row] = from_acc<T>(acc);
}

// (value, index) with NaN winning (first NaN), else the larger value, ties to the smaller index:
// the CPU reference's first-max rule.
template <class A>
__device__ __forceinline__ bool better(A v, int64_t i, A bv, int64_t bi) {
  const bool vn = v != v, bn = bv != bv;
  if (vn || bn) return vn && (!bn || i < bi);
  return v > bv || (v == bv && i < bi);
}

template <class T, bool kPerBlock>
__global__ void max_rows_kernel(T* out, int64_t* arg, const T* x, int64_t rows, int64_t n) {
  using A = acc_t<T>;
  __shared__ A sv[32];
  __shared__ int64_t si[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t row = kPerBlock ? blockIdx.x : int64_t(blockIdx.x) * (blockDim.x / 32) + warp;
  if (row >= rows) return;
  const T* xr = x + row * n;
  A best = -std::numeric_limits<A>::infinity();
  int64_t bi = n;  // "none yet"; any real element beats it below
  const int start = kPerBlock ? threadIdx.x : lane, step = kPerBlock ? blockDim.x : 32;
  for (int64_t j = start; j < n; j += step) {
    A v = to_acc(xr[j]);
    if (bi == n || better(v, j, best, bi)) {
      best = v;
      bi = j;
    }
  }
  auto combine = [&](A& b, int64_t& i) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      A ov = __shfl_xor_sync(0xffffffffu, b, o);
      int64_t oi = __shfl_xor_sync(0xffffffffu, i, o);
      if (oi != n && (i == n || better(ov, oi, b, i))) {
        b = ov;
        i = oi;
      }
    }
  };
  combine(best, bi);
  if (kPerBlock) {
    if (lane == 0) {
      sv[warp] = best;
      si[warp] = bi;
    }
    __syncthreads();
    if (warp == 0) {
      const int nw = blockDim.x >> 5;
      best = lane < nw ? sv[lane] : A(0);
      bi = lane < nw ? si[lane] : n;
      combine(best, bi);
    }
  }
  if (start == 0) {
    out[row] = xr[bi];
    arg[row] = bi;
  }
}

}  // namespace

void reduce_sum_rows(const Tensor& out, const Tensor& x) {
  LD_NVTX_FN();
  const int64_t rows = x.size(0), n = x.size(1);
  if (rows == 0) return;
  LD_CHECK(x.is_contiguous(), "reduce_sum_rows: input must be contiguous, got {}", x.desc());
  LD_CUDA_DISPATCH_FLOAT(x.dtype(), "reduce_sum_rows", [&] {
    using T = scalar_t;
    if (n > kWarpRowMax) {
      sum_rows_kernel<T, true>
          <<<rows, kBlock, 0, current_stream()>>>(dptr<T>(out), dptr<const T>(x), rows, n);
    } else {
      sum_rows_kernel<T, false><<<ceil_div(rows, kBlock / 32), kBlock, 0, current_stream()>>>(
          dptr<T>(out), dptr<const T>(x), rows, n);
    }
    LD_CUDA_LAUNCH_CHECK();
  });
}

void reduce_max_rows(const Tensor& out, const Tensor& argmax, const Tensor& x) {
  LD_NVTX_FN();
  const int64_t rows = x.size(0), n = x.size(1);
  if (rows == 0) return;
  LD_CHECK(n > 0, "reduce_max_rows: empty rows in {}", x.desc());
  LD_CHECK(x.is_contiguous(), "reduce_max_rows: input must be contiguous, got {}", x.desc());
  LD_CUDA_DISPATCH_FLOAT(x.dtype(), "reduce_max_rows", [&] {
    using T = scalar_t;
    if (n > kWarpRowMax) {
      max_rows_kernel<T, true><<<rows, kBlock, 0, current_stream()>>>(
          dptr<T>(out), dptr<int64_t>(argmax), dptr<const T>(x), rows, n);
    } else {
      max_rows_kernel<T, false><<<ceil_div(rows, kBlock / 32), kBlock, 0, current_stream()>>>(
          dptr<T>(out), dptr<int64_t>(argmax), dptr<const T>(x), rows, n);
    }
    LD_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace ld::cuda
