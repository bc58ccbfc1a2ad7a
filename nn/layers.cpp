// ModuleList, activations and the HF losses, composed from core ops.
#include "nn/layers.h"

namespace ld::nn {

Tensor activation(const std::string& name, const Tensor& x) {
  if (name == "gelu") return gelu(x, false);
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return gelu(x, true);
  if (name == "silu" || name == "swish") return silu(x);
  if (name == "relu") return relu(x);
  LD_FAIL("activation '{}' is not supported (gelu, gelu_new, gelu_pytorch_tanh, silu, relu)", name);
}

Tensor sequence_classification_loss(const Tensor& logits, const Tensor& labels, int64_t num_labels,
                                    const std::string& problem_type) {
  LD_CHECK(logits.dim() == 2 && logits.size(1) == num_labels,
           "sequence_classification_loss: logits {} must be [B, num_labels={}]", logits.desc(),
           num_labels);
  LD_CHECK(labels.defined() && labels.size(0) == logits.size(0),
           "sequence_classification_loss: labels {} do not match logits {}", labels.desc(),
           logits.desc());
  std::string pt = problem_type;
  if (pt.empty()) {
    if (num_labels == 1)
      pt = "regression";
    else if (labels.dtype() == DType::i64 || labels.dtype() == DType::i32)
      pt = "single_label_classification";
    else
      pt = "multi_label_classification";
  }
  if (pt == "regression") {
    Tensor y = labels.to(logits.dtype());
    if (num_labels == 1) return mse_loss(logits.reshape({-1}), y.reshape({-1}));
    return mse_loss(logits, y.reshape(logits.shape()));
  }
  if (pt == "single_label_classification") {
    LD_CHECK(labels.dtype() == DType::i64 || labels.dtype() == DType::i32,
             "single_label_classification needs integer labels, got {}", labels.desc());
    return cross_entropy(logits, labels.to(DType::i64).reshape({-1}));
  }
  LD_CHECK(pt == "multi_label_classification", "unknown problem_type '{}'", pt);
  // BCEWithLogits, stable form: max(x, 0) - x y + log(1 + exp(-|x|)).
  Tensor y = labels.to(logits.dtype()).reshape(logits.shape());
  Tensor l = relu(logits) - logits * y + log(exp(neg(abs(logits))) + 1.0);
  return mean(l);
}

Tensor causal_lm_loss(const Tensor& logits, const Tensor& labels) {
  LD_CHECK(logits.dim() == 3 && labels.dim() == 2 && labels.size(0) == logits.size(0) &&
               labels.size(1) == logits.size(1),
           "causal_lm_loss: logits {} must be [B, T, V] and labels {} [B, T]", logits.desc(),
           labels.desc());
  const int64_t B = logits.size(0), T = logits.size(1), V = logits.size(2);
  // HF pads labels with one -100 on the right and shifts: position t predicts labels[t + 1].
  Tensor pad = Tensor::full({B, 1}, -100.0, DType::i64, labels.device());
  Tensor shifted = cat({labels.to(DType::i64).slice(1, 1, T), pad}, 1);
  return cross_entropy(logits.reshape({B * T, V}), shifted.reshape({B * T}), -100);
}

Tensor mask_to_bool(const Tensor& attention_mask) {
  if (attention_mask.dtype() == DType::b8) return attention_mask;
  return ne(attention_mask, 0.0);
}

}  // namespace ld::nn
