// CUDA rotary position embedding (Llama's rotate-half) on x [B, H, T, D] with positions i64 [B, T]:
// for j < D/2, angle = pos * theta^(-2j/D) (computed in f64, as the CPU reference does),
// out[j] = x[j] cos - x[j + D/2] sin, out[j + D/2] = x[j + D/2] cos + x[j] sin; sign = -1 inverts.
#include "core/cuda/common.cuh"
#include "core/kernels.h"

namespace ld::cuda {

namespace {

constexpr int kThreads = 256;

// One thread per rotated pair (b, h, t, j). x has arbitrary strides; out is contiguous.
template <class T>
__global__ void rope_kernel(T* out, const T* x, const int64_t* pos, int64_t B, int64_t H,
                            int64_t Tn, int64_t D, int64_t xs0, int64_t xs1, int64_t xs2,
                            int64_t xs3, int64_t ps0, int64_t ps1, double log_theta, int sign) {
  using A = acc_t<T>;
  const int64_t half = D / 2, total = B * H * Tn * half;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    int64_t r = i;
    const int64_t j = r % half;
    r /= half;
    const int64_t t = r % Tn;
    r /= Tn;
    const int64_t h = r % H;
    const int64_t b = r / H;
    const double inv_freq = exp(-log_theta * (2.0 * double(j) / double(D)));
    const double ang = double(pos[b * ps0 + t * ps1]) * inv_freq;
    double sn, cs;
    sincos(ang, &sn, &cs);
    const A c = A(cs), s = A(sign) * A(sn);
    const T* xr = x + b * xs0 + h * xs1 + t * xs2;
    const A x1 = to_acc(xr[j * xs3]), x2 = to_acc(xr[(j + half) * xs3]);
    T* orow = out + ((b * H + h) * Tn + t) * D;
    orow[j] = from_acc<T>(x1 * c - x2 * s);
    orow[j + half] = from_acc<T>(x2 * c + x1 * s);
  }
}

}  // namespace

void rope(const Tensor& out, const Tensor& x, const Tensor& positions, double theta, int sign) {
  LD_NVTX_FN();
  LD_CHECK(x.dim() == 4 && x.size(-1) % 2 == 0, "rope: x must be [B, H, T, D] with D even, got {}",
           x.desc());
  LD_CHECK(out.is_contiguous(), "rope: output must be contiguous, got {}", out.desc());
  const int64_t B = x.size(0), H = x.size(1), Tn = x.size(2), D = x.size(3);
  if (x.numel() == 0) return;
  // positions [B, T] or [T] (shared by the batch).
  int64_t ps0 = 0, ps1 = 0;
  if (positions.dim() == 2) {
    ps0 = positions.size(0) == 1 ? 0 : positions.stride(0);
    ps1 = positions.stride(1);
  } else {
    LD_CHECK(positions.dim() == 1, "rope: positions must be [B, T] or [T], got {}",
             positions.desc());
    ps1 = positions.stride(0);
  }
  LD_CUDA_DISPATCH_FLOAT(x.dtype(), "rope", [&] {
    using T = scalar_t;
    const int64_t total = B * H * Tn * (D / 2);
    rope_kernel<T><<<grid_for(total, kThreads), kThreads, 0, current_stream()>>>(
        dptr<T>(out), dptr<const T>(x), dptr<const int64_t>(positions), B, H, Tn, D, x.stride(0),
        x.stride(1), x.stride(2), x.stride(3), ps0, ps1, std::log(theta), sign);
    LD_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace ld::cuda
