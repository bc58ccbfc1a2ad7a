// Arithmetic estimate of LoRA training memory for a Llama-style decoder (see docs/memory.md).
#pragma once
#include <cstdint>

namespace ld::nn {

struct DecoderDims {
  int64_t layers, hidden, heads, kv_heads, intermediate, vocab;
};
inline DecoderDims llama2_7b() { return {32, 4096, 32, 32, 11008, 32000}; }

struct MemoryInputs {
  DecoderDims d;
  int64_t lora_r = 8;
  int64_t lora_sites_per_layer = 2;  // q_proj and v_proj (hidden -> hidden each)
  int64_t batch = 4, seq = 512;
  bool checkpointing = false;
  int64_t weight_bytes = 2;  // bf16 frozen base
  int64_t act_bytes = 2;     // bf16 activations
  int64_t lora_bytes = 4;    // f32 LoRA params, grads, Adam m and v
};

struct MemoryEstimate {
  int64_t base_params, lora_params;
  double weights_b, lora_state_b, activations_b, logits_b, total_b;
};

// Counts (bytes):
//  base params = L (4 h^2 with GQA-sized k/v: h^2 (2 + 2 kv/heads) + 3 h i + 2 h) + 2 V h + h
//  LoRA params = L * sites * r * (h + h); state = params * lora_bytes * 4 (param, grad, m, v)
//  activations kept per layer (elements): 7 b s h + 4 b s i + heads b s^2 (softmax probs)
//    + sites b s r (LoRA u); with checkpointing only the layer input b s h per layer is kept plus
//    one layer's full set during its recomputation.
//  logits: b s V in f32, twice (logits and the log-softmax kept by cross-entropy).
MemoryEstimate estimate_lora_memory(const MemoryInputs& in);

}  // namespace ld::nn
