// The fused LoRA linear op: y = x W^T + b + s * B A dropout(x), with the importance statistic
// ||ΔW x||^2 = s^2 u^T (B^T B) u (u = A dropout(x)) per example, in the Gram form (DESIGN.md).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace ld {

// x [batch, tokens..., d_in] (or [N, d_in]: one token per example), W [d_out, d_in] (frozen: it
// never receives a gradient), b [d_out] or undefined, A [r, d_in], B [d_out, r]; all one dtype.
// Gradients flow to x, A, B (and b when it requires grad). Dropout is the Philox dropout of
// core/ops/nn.h (same mask on both backends for the same seed/offset); identity unless training.
//
// importance_out: when non-null, receives f32 [batch] with, per example,
//   s^2 * sum over tokens t with token_mask[b, t] of u_t^T (B^T B) u_t,  u_t = A dropout(x_t)
// (no gradient). When *importance_out is already a defined f32 [batch] tensor on x's device the
// values are added to it (accumulation across calls). token_mask: bool [batch, tokens] (tokens =
// the product of x's middle dims), true = real token; undefined: every token counts.
//
// CPU: the composition of ops (the reference). CUDA: cuBLASLt GEMMs with a fused bias epilogue,
// the up-projection accumulated in place, the Gram matrix computed once and the per-token
// quadratic form in one kernel after the A-projection.
Tensor lora_linear(const Tensor& x, const Tensor& W, const Tensor& b, const Tensor& A,
                   const Tensor& B, double scale, double dropout_p, bool training, uint64_t seed,
                   uint64_t offset, Tensor* importance_out = nullptr,
                   const Tensor& token_mask = Tensor());

// The composition of plain ops (what the CPU runs), usable on any device: the reference the fused
// CUDA path is tested against.
Tensor lora_linear_reference(const Tensor& x, const Tensor& W, const Tensor& b, const Tensor& A,
                             const Tensor& B, double scale, double dropout_p, bool training,
                             uint64_t seed, uint64_t offset, Tensor* importance_out = nullptr,
                             const Tensor& token_mask = Tensor());

}  // namespace ld
