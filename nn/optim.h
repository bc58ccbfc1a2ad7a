// AdamW exactly as torch.optim.AdamW (backend adamw_step kernel), transformers'
// get_linear_schedule_with_warmup, and torch.nn.utils.clip_grad_norm_.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace ld::nn {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;  // torch's default
};

class AdamW {
 public:
  // Named parameters (names key the saved state); only those with requires_grad are updated.
  AdamW(std::vector<std::pair<std::string, Tensor>> params, AdamWOptions opt = {});
  // One update of every parameter that has a gradient (torch skips grad-less params, and so
  // their step counts do not advance). lr is the current learning rate (the schedule's).
  void step();
  void zero_grad();  // drops .grad (torch's set_to_none=True)
  void set_lr(double lr) { opt_.lr = lr; }
  double lr() const { return opt_.lr; }
  const AdamWOptions& options() const { return opt_; }
  const std::vector<std::pair<std::string, Tensor>>& params() const { return params_; }
  std::vector<Tensor> parameters_for_clip() const {
    std::vector<Tensor> v;
    for (auto& [n, p] : params_) v.push_back(p);
    return v;
  }

  // Moments as "<name>.exp_avg" / "<name>.exp_avg_sq" and step counts, for checkpoints.
  std::map<std::string, Tensor> state_tensors() const;
  std::map<std::string, int64_t> steps() const;
  // Restores from the above; throws naming a missing or mis-shaped entry.
  void load_state(const std::map<std::string, Tensor>& tensors,
                  const std::map<std::string, int64_t>& steps);

 private:
  struct State {
    Tensor exp_avg, exp_avg_sq;
    int64_t step = 0;
  };
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<State> state_;
  AdamWOptions opt_;
};

// transformers.get_linear_schedule_with_warmup as a function of the scheduler step (0-based
// count of completed optimiser steps): step / warmup during warmup, then linear decay to 0 at
// total. LambdaLR applies factor(0) before the first step, so with warmup > 0 the first update
// uses lr 0, exactly as in transformers.
double linear_warmup_factor(int64_t step, int64_t warmup, int64_t total);

// torch.nn.utils.clip_grad_norm_ (norm_type 2): total = ||(||g_1||, ..., ||g_n||)||, every grad
// multiplied by min(max_norm / (total + 1e-6), 1). Returns the total norm (before clipping).
// Parameters without a gradient are skipped.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm);

}  // namespace ld::nn
