// Shared model pieces: ModuleList (children "0", "1", ...), the HF activation by name, and the
// sequence-classification loss as transformers computes it from config.problem_type.
#pragma once
#include <string>

#include "core/ops.h"
#include "nn/module.h"

namespace ld::nn {

// Children named by index, as torch.nn.ModuleList ("layer.3", "layers.5").
class ModuleList : public Module {
 public:
  ModuleList() : Module("ModuleList") {}
  template <class M>
  std::shared_ptr<M> append(std::shared_ptr<M> m) {
    return register_module(std::to_string(size_++), std::move(m));
  }
  int64_t size() const { return size_; }
  template <class M>
  M& at(int64_t i) const {
    return child<M>(std::to_string(i));
  }

 private:
  int64_t size_ = 0;
};

// ACT2FN: "gelu" (exact erf), "gelu_new" / "gelu_pytorch_tanh" (tanh form), "silu", "relu".
Tensor activation(const std::string& name, const Tensor& x);

// transformers' sequence-classification loss: problem_type given, or inferred as HF does
// (num_labels == 1 -> regression; integer labels -> single_label_classification; else
// multi_label_classification). logits [B, C]; labels i64 [B] or floating [B] / [B, C].
// regression: MSE (both squeezed when C == 1); single label: mean cross-entropy; multi label:
// BCE with logits (mean).
Tensor sequence_classification_loss(const Tensor& logits, const Tensor& labels, int64_t num_labels,
                                    const std::string& problem_type);

// Causal-LM loss as transformers' ForCausalLMLoss: logits [B, T, V] predict labels shifted left
// by one; -100 is ignored; mean over the counted tokens.
Tensor causal_lm_loss(const Tensor& logits, const Tensor& labels);

// bool [B, T] (true = real token) from an attention mask of any dtype (nonzero = real).
Tensor mask_to_bool(const Tensor& attention_mask);

}  // namespace ld::nn
