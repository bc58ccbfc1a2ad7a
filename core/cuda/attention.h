// Entry to the fused CUDA attention path used by ld::scaled_dot_product_attention.
#pragma once
#include "core/tensor.h"

namespace ld::cuda {

// Which attention implementation CUDA tensors use: the fused flash-style kernel (default), the
// unfused composition of ops (the reference), or cuDNN's fused SDPA. LD_ATTENTION=fused|unfused|
// cudnn in the environment sets the initial value.
enum class AttentionImpl { Fused, Unfused, Cudnn };
AttentionImpl attention_impl();
void set_attention_impl(AttentionImpl impl);

// Fused scaled-dot-product attention on CUDA tensors, recorded in autograd with its own backward.
// Same contract as ld::scaled_dot_product_attention (core/ops/nn.h). Returns an undefined tensor
// when the selected implementation is Unfused or the inputs are outside what the kernel supports
// (the caller then runs the unfused composition).
Tensor fused_sdpa(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_padding_mask,
                  bool causal, double scale);

}  // namespace ld::cuda
