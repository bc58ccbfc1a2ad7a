// Tensor-core (mma.sync m16n8k16, bf16/f16 in, f32 accumulate) variant of the fused attention
// kernels (core/cuda/attention_tc.cu); core/cuda/attention.cu routes bf16/f16 inputs with head dim
// 64 or 128 here on sm_80+ devices and keeps its CUDA-core kernels for everything else.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace ld::cuda {

// Whether fused attention may use the tensor-core kernels (default on; LD_ATTENTION_TC=0 in the
// environment sets it off). Off, bf16/f16 run the CUDA-core kernels, as f32 always does.
void set_attention_tensor_cores(bool on);
bool attention_tensor_cores();

// True when fused attention on CUDA inputs of dtype dt and head dim head_dim runs the tensor-core
// kernels on the current device: enabled above, bf16 or f16, head_dim 64 or 128, compute
// capability 8.0 or newer.
bool attention_tc_eligible(DType dt, int64_t head_dim);

// Launchers, called by attention.cu for eligible inputs whose last dim is contiguous. Shapes:
// q [B, Hq, Tq, D], k and v [B, Hkv, Tk, D], kpm [B, Tk] b8 (true = real key) or undefined.
// Forward returns out [B, Hq, Tq, D] (contiguous) and sets lse [B, Hq, Tq] (f32, natural log;
// -inf for a row that sees no key). Backward takes gout in q's dtype (last dim contiguous) and
// returns contiguous {dq, dk, dv}.
Tensor flash_fwd_tc(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& kpm,
                    bool causal, double scale, Tensor& lse);
std::vector<Tensor> flash_bwd_tc(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const Tensor& kpm, bool causal, double scale, const Tensor& out,
                                 const Tensor& lse, const Tensor& gout);

}  // namespace ld::cuda
