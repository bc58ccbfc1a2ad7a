// Minimal LoRA wrapping of a Linear, enough for the goldens until lora/ (issue 6) takes over:
// y = base(x) + s * (dropout(x) A^T) B^T with s = alpha / r, A [r, in], B [out, r]; PEFT names
// "<site>.lora_A.weight" / "<site>.lora_B.weight" (the base keeps "<site>.weight"/".bias").
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"

namespace ld::nn {

class LoraLinear : public Linear {
 public:
  // Takes over base's weight/bias (same tensors, same names). A is Kaiming-uniform (a = sqrt(5),
  // PEFT's default), B zero.
  LoraLinear(const Linear& base, int64_t r, double alpha, double dropout, Generator& gen);
  Tensor forward(const Tensor& x) override;  // x [..., in] -> [..., out]
  int64_t rank() const { return r_; }
  double scale() const { return scale_; }

 private:
  int64_t r_;
  double scale_;
};

// Replaces every Linear whose dotted name matches `pattern` (see name_matches) with a LoraLinear;
// returns the names. Throws when nothing matches. The base weights keep their trainable flag:
// freeze them first (freeze_all) for LoRA training.
std::vector<std::string> attach_lora(Module& root, const std::string& pattern, int64_t r,
                                     double alpha, double dropout, Generator& gen);

}  // namespace ld::nn
