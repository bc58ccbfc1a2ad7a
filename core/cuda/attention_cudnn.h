// cuDNN's fused scaled-dot-product attention (cudnn-frontend graph API), the third attention path
// (LD_ATTENTION=cudnn, ld::cuda::set_attention_impl(AttentionImpl::Cudnn)).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace ld::cuda {

// True when this build compiled the cuDNN path (the cudnn-frontend headers were found at configure
// time: tools/fetch_cudnn_frontend.sh, then reconfigure). Says nothing about a device.
bool cudnn_sdpa_built();

// Same contract as ld::scaled_dot_product_attention (core/ops/nn.h): q [B, Hq, Tq, D], k/v
// [B, Hkv, Tk, D], key_padding_mask bool [B, Tk] (true = real token), causal bottom-right aligned
// (query i attends keys j <= i + Tk - Tq), rows with no key output 0 and pass no gradient. Records
// its own backward (cuDNN sdpa_backward from the saved softmax statistics).
// Returns an undefined tensor (the caller runs the unfused composition) for inputs cuDNN's SDPA
// does not take: f32 (cuDNN's SDPA is bf16/f16 only), D != Dv, D not a multiple of 8 or > 256, or a
// graph cuDNN reports as unsupported on this device (noted once on stderr per shape).
// Throws ld::Error when the path is not built.
Tensor cudnn_sdpa(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_padding_mask,
                  bool causal, double scale);

// Calls of cudnn_sdpa served by cuDNN (forward graphs executed) since start: lets tests and the
// benchmark tell a cuDNN result from a fallback.
int64_t cudnn_sdpa_calls();

// Internal (attention_cudnn_masks.cu). From key_padding_mask (undefined: every key real) fills,
// when defined (contiguous, same floating dtype): `bias` [B, 1, 1, Tk] or [B, 1, Tq, Tk] (its
// shape says which; only the full form folds in the causal mask), 0 where attended and `neg`
// where not; and `rowscale` [B, 1, Tq, 1], 1 for a query row with at least one key to attend
// (causal included) and 0 otherwise.
void cudnn_sdpa_masks(const Tensor& key_padding_mask, int64_t B, int64_t Tq, int64_t Tk,
                      bool causal, double neg, const Tensor& bias, const Tensor& rowscale);

}  // namespace ld::cuda
