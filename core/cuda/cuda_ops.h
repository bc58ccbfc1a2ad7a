// CUDA entry points beyond core/backend_api.inc: strided copy/cast and fill, the fused multi-tensor
// AdamW, the GEMM with a fused bias/GELU epilogue, and the fused LoRA kernels.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace ld::cuda {

// dst = src (same shape, any dtypes, any strides; dst may be a strided view). Device to device.
void copy_strided(const Tensor& dst, const Tensor& src);
// Every element of dst (any strides) = value.
void fill(const Tensor& dst, double value);
// A contiguous copy of a CUDA tensor (the tensor itself when already contiguous). No autograd.
Tensor contiguous(const Tensor& t);

// ---- GEMM ----
// y[N, out] = x[N, in] @ w[out, in]^T (+ bias[out]) (then GELU, tanh form, when gelu is true: the
// cuBLASLt epilogue is the tanh approximation). x, w row-major with unit inner stride.
void linear_fwd(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, bool gelu);

// ---- fused multi-tensor AdamW (torch.optim.AdamW semantics); every list has the same length and
// each param/grad/exp_avg/exp_avg_sq quadruple is contiguous, same shape; params f32/bf16/f16 with
// grads of the same dtype, states f32. One launch for all tensors.
void adamw_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                 const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                 double lr, double beta1, double beta2, double eps, double weight_decay,
                 int64_t step);

// ---- fused LoRA pieces (core/ops/lora_linear.cpp) ----
// G[r, r] = B^T B for B [d_out, r] (f32 output, any float input).
void lora_gram(const Tensor& G, const Tensor& B);
// importance[b] += s2 * sum_t mask[b, t] * u[b, t]^T G u[b, t] for u [batch, tokens, r]
// (contiguous), G [r, r] f32, mask b8 [batch, tokens] or undefined (every token real), importance
// f32 [batch].
void lora_importance(const Tensor& importance, const Tensor& u, const Tensor& G,
                     const Tensor& token_mask, double s2);
// y[N, out] += s * u[N, r] @ B[out, r]^T, in place (a GEMM with beta = 1).
void lora_add_up(const Tensor& y, const Tensor& u, const Tensor& B, double s);

}  // namespace ld::cuda
