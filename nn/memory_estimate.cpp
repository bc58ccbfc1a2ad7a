// The arithmetic behind docs/memory.md.
#include "nn/memory_estimate.h"

namespace ld::nn {

MemoryEstimate estimate_lora_memory(const MemoryInputs& in) {
  const DecoderDims& d = in.d;
  const int64_t h = d.hidden, i = d.intermediate, L = d.layers;
  const int64_t kvh = h * d.kv_heads / d.heads;
  MemoryEstimate e{};
  const int64_t per_layer = 2 * h * h + 2 * h * kvh + 3 * h * i + 2 * h;
  e.base_params = L * per_layer + 2 * d.vocab * h + h;
  e.lora_params = L * in.lora_sites_per_layer * in.lora_r * (h + h);
  e.weights_b = static_cast<double>(e.base_params) * in.weight_bytes;
  e.lora_state_b = static_cast<double>(e.lora_params) * in.lora_bytes * 4;
  const double b = static_cast<double>(in.batch), s = static_cast<double>(in.seq);
  const double layer_elems = 7 * b * s * h + 4 * b * s * i + d.heads * b * s * s +
                             in.lora_sites_per_layer * b * s * in.lora_r;
  const double layer_b = layer_elems * in.act_bytes;
  if (in.checkpointing)
    e.activations_b = L * b * s * h * in.act_bytes + layer_b;
  else
    e.activations_b = L * layer_b;
  e.logits_b = 2 * b * s * d.vocab * 4.0;
  e.total_b = e.weights_b + e.lora_state_b + e.activations_b + e.logits_b;
  return e;
}

}  // namespace ld::nn
