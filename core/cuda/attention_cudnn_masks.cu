// Mask preparation for the cuDNN attention path (attention_cudnn.cpp): the additive bias that
// expresses our arbitrary key_padding_mask (cuDNN's own padding mask only knows right padding) and
// the per-row scale that zeroes query rows with no key to attend.
#include "core/cuda/attention_cudnn.h"
#include "core/cuda/common.cuh"

namespace ld::cuda {

namespace {

// One block per batch row b: the first real key f_b (Tk when none), then the bias and row scale.
// Query row i can attend some key iff f_b <= last(i), last(i) = i + Tk - Tq when causal else Tk
// - 1.
template <class T>
__global__ void cudnn_sdpa_masks_kernel(const bool* kpm, int64_t kpm_sb, int64_t kpm_st, int64_t Tq,
                                        int64_t Tk, bool causal, float neg, T* bias, bool bias_full,
                                        T* rowscale) {
  const int64_t b = blockIdx.x;
  __shared__ int64_t first;
  if (threadIdx.x == 0) first = kpm ? Tk : 0;
  __syncthreads();
  if (kpm) {
    int64_t mine = Tk;
    for (int64_t j = threadIdx.x; j < Tk; j += blockDim.x)
      if (kpm[b * kpm_sb + j * kpm_st]) {
        mine = j;
        break;  // j only grows for this thread
      }
    if (mine < Tk)
      atomicMin(reinterpret_cast<unsigned long long*>(&first),
                static_cast<unsigned long long>(mine));
  }
  __syncthreads();
  const int64_t f = first;
  auto attended = [&](int64_t i, int64_t j) {
    return (!kpm || kpm[b * kpm_sb + j * kpm_st]) && (!causal || j <= i + Tk - Tq);
  };
  if (bias) {
    if (bias_full) {
      for (int64_t e = threadIdx.x; e < Tq * Tk; e += blockDim.x)
        bias[b * Tq * Tk + e] = from_acc<T>(attended(e / Tk, e % Tk) ? 0.f : neg);
    } else {
      for (int64_t j = threadIdx.x; j < Tk; j += blockDim.x)
        bias[b * Tk + j] = from_acc<T>(!kpm || kpm[b * kpm_sb + j * kpm_st] ? 0.f : neg);
    }
  }
  if (rowscale)
    for (int64_t i = threadIdx.x; i < Tq; i += blockDim.x)
      rowscale[b * Tq + i] = from_acc<T>(f <= (causal ? i + Tk - Tq : Tk - 1) ? 1.f : 0.f);
}

}  // namespace

void cudnn_sdpa_masks(const Tensor& kpm, int64_t B, int64_t Tq, int64_t Tk, bool causal, double neg,
                      const Tensor& bias, const Tensor& rowscale) {
  LD_NVTX_FN();
  if (B == 0 || (!bias.defined() && !rowscale.defined())) return;
  const Tensor& ref = bias.defined() ? bias : rowscale;
  const bool full = bias.defined() && bias.size(2) > 1;
  LD_CUDA_DISPATCH_FLOAT(ref.dtype(), "cudnn_sdpa_masks", [&] {
    using T = scalar_t;
    cudnn_sdpa_masks_kernel<T><<<static_cast<unsigned>(B), 256, 0, current_stream()>>>(
        kpm.defined() ? static_cast<const bool*>(kpm.raw_data()) : nullptr,
        kpm.defined() ? kpm.stride(0) : 0, kpm.defined() ? kpm.stride(1) : 0, Tq, Tk, causal,
        static_cast<float>(neg), bias.defined() ? dptr<T>(bias) : nullptr, full,
        rowscale.defined() ? dptr<T>(rowscale) : nullptr);
    LD_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace ld::cuda
