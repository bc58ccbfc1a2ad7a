// CUDA pieces of the fused LoRA op: the r x r Gram matrix G = B^T B (one block per entry, fixed
// reduction order) and the per-example importance s^2 sum_t mask u_t^T G u_t (one block per
// example, G in shared memory, f32 accumulation), both deterministic.
#include "core/cuda/common.cuh"
#include "core/cuda/cuda_ops.h"

namespace ld::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxSharedR = 64;  // G in shared memory up to r = 64 (16 KB)

template <class T>
__global__ void lora_gram_kernel(float* G, const T* B, int64_t d_out, int64_t r, int64_t bs0,
                                 int64_t bs1) {
  __shared__ float shm[32];
  const int64_t i = blockIdx.x / r, j = blockIdx.x % r;
  float acc = 0.f;
  for (int64_t o = threadIdx.x; o < d_out; o += blockDim.x)
    acc += float(to_acc(B[o * bs0 + i * bs1])) * float(to_acc(B[o * bs0 + j * bs1]));
  acc = block_sum(acc, shm);
  if (threadIdx.x == 0) G[i * r + j] = acc;
}

template <class T>
__global__ void lora_importance_kernel(float* imp, const T* u, const float* G, const bool* mask,
                                       int64_t tokens, int64_t r, float s2) {
  extern __shared__ float Gs[];
  __shared__ float shm[32];
  const bool shared_g = r <= kMaxSharedR;
  if (shared_g)
    for (int64_t e = threadIdx.x; e < r * r; e += blockDim.x) Gs[e] = G[e];
  __syncthreads();
  const float* g = shared_g ? Gs : G;
  const int64_t b = blockIdx.x;
  float acc = 0.f;
  for (int64_t t = threadIdx.x; t < tokens; t += blockDim.x) {
    if (mask && !mask[b * tokens + t]) continue;
    const T* ut = u + (b * tokens + t) * r;
    float q = 0.f;
    for (int64_t i = 0; i < r; ++i) {
      float gi = 0.f;
      for (int64_t j = 0; j < r; ++j) gi += g[i * r + j] * float(to_acc(ut[j]));
      q += float(to_acc(ut[i])) * gi;
    }
    acc += q;
  }
  acc = block_sum(acc, shm);
  if (threadIdx.x == 0) imp[b] += s2 * acc;
}

}  // namespace

void lora_gram(const Tensor& G, const Tensor& B) {
  LD_NVTX_FN();
  const int64_t d_out = B.size(0), r = B.size(1);
  LD_CHECK(G.dtype() == DType::f32 && G.is_contiguous() && G.numel() == r * r,
           "lora_gram: G {} must be contiguous f32 [{}, {}]", G.desc(), r, r);
  if (r == 0) return;
  LD_CUDA_DISPATCH_FLOAT(B.dtype(), "lora_gram", [&] {
    using T = scalar_t;
    lora_gram_kernel<T><<<static_cast<unsigned>(r * r), kThreads, 0, current_stream()>>>(
        dptr<float>(G), dptr<const T>(B), d_out, r, B.stride(0), B.stride(1));
    LD_CUDA_LAUNCH_CHECK();
  });
}

void lora_importance(const Tensor& importance, const Tensor& u, const Tensor& G,
                     const Tensor& token_mask, double s2) {
  LD_NVTX_FN();
  const int64_t batch = u.size(0), tokens = u.size(1), r = u.size(2);
  LD_CHECK(u.is_contiguous(), "lora_importance: u {} must be contiguous", u.desc());
  LD_CHECK(
      importance.dtype() == DType::f32 && importance.is_contiguous() && importance.numel() == batch,
      "lora_importance: importance {} must be contiguous f32 [{}]", importance.desc(), batch);
  LD_CHECK(!token_mask.defined() || (token_mask.is_contiguous() && token_mask.dtype() == DType::b8),
           "lora_importance: token_mask {} must be contiguous bool", token_mask.desc());
  if (batch == 0 || r == 0) return;
  const size_t smem = r <= kMaxSharedR ? size_t(r * r) * sizeof(float) : 0;
  LD_CUDA_DISPATCH_FLOAT(u.dtype(), "lora_importance", [&] {
    using T = scalar_t;
    lora_importance_kernel<T><<<static_cast<unsigned>(batch), kThreads, smem, current_stream()>>>(
        dptr<float>(importance), dptr<const T>(u), dptr<const float>(G),
        token_mask.defined() ? dptr<const bool>(token_mask) : nullptr, tokens, r,
        static_cast<float>(s2));
    LD_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace ld::cuda
