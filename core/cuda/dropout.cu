// CUDA inverted dropout: element i (row-major) is kept iff ld::dropout_keep(seed, offset, i, p),
// the same Philox draw as the CPU backend, so masks are bit-identical across devices.
#include "core/cuda/common.cuh"
#include "core/kernels.h"
#include "core/philox.h"

namespace ld::cuda {

namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void dropout_fwd_kernel(T* out, bool* keep, const T* x, int64_t n, float p,
                                   acc_t<T> scale, uint64_t seed, uint64_t offset) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const bool k = p < 1.f && dropout_keep(seed, offset, static_cast<uint64_t>(i), p);
    keep[i] = k;
    out[i] = k ? from_acc<T>(to_acc(x[i]) * scale) : from_acc<T>(acc_t<T>(0));
  }
}

}  // namespace

// out, keep_b8, x contiguous and of the same shape.
void dropout_fwd(const Tensor& out, const Tensor& keep_b8, const Tensor& x, double p, uint64_t seed,
                 uint64_t offset) {
  LD_NVTX_FN();
  const int64_t n = x.numel();
  if (n == 0) return;
  LD_CHECK(x.is_contiguous() && out.is_contiguous() && keep_b8.is_contiguous(),
           "dropout_fwd: operands must be contiguous: {} {} {}", out.desc(), keep_b8.desc(),
           x.desc());
  LD_CUDA_DISPATCH_FLOAT(x.dtype(), "dropout_fwd", [&] {
    using T = scalar_t;
    // The CPU computes the scale in T from 1 / (1 - p) in double; do the same.
    const acc_t<T> scale = p < 1.0 ? static_cast<acc_t<T>>(1.0 / (1.0 - p)) : acc_t<T>(0);
    dropout_fwd_kernel<T><<<grid_for(n, kThreads), kThreads, 0, current_stream()>>>(
        dptr<T>(out), dptr<bool>(keep_b8), dptr<const T>(x), n, static_cast<float>(p), scale, seed,
        offset);
    LD_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace ld::cuda
