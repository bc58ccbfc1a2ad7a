// AdamW state, schedule and clipping; the update itself is the backend's adamw_step kernel.
#include "nn/optim.h"

#include <set>
#include <tuple>

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/kernels.h"
#include "core/nvtx.h"
#include "core/ops.h"

namespace ld::nn {

AdamW::AdamW(std::vector<std::pair<std::string, Tensor>> params, AdamWOptions opt) : opt_(opt) {
  // A tensor shared by several sites (a shared LoRA adapter, tied weights) is listed once per
  // site by named_parameters(); it must be stepped once, so keep its first name only.
  std::set<std::tuple<const void*, int64_t, Shape>> seen;
  for (auto& [n, p] : params) {
    if (!p.requires_grad()) continue;
    if (!seen.insert({p.storage()->data(), p.offset(), p.shape()}).second) continue;
    params_.emplace_back(n, p);
  }
  LD_CHECK(!params_.empty(), "AdamW: no trainable parameters");
  state_.resize(params_.size());
}

void AdamW::step() {
  LD_NVTX_RANGE("AdamW.step");
  NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    State& s = state_[i];
    if (!s.exp_avg.defined()) {
      s.exp_avg = Tensor::zeros(p.shape(), p.dtype(), p.device());
      s.exp_avg_sq = Tensor::zeros(p.shape(), p.dtype(), p.device());
    }
    ++s.step;
    Tensor pd = p.detach();
    LD_DISPATCH_DEVICE(pd, adamw_step, pd, g, s.exp_avg, s.exp_avg_sq, opt_.lr, opt_.beta1,
                       opt_.beta2, opt_.eps, opt_.weight_decay, s.step);
  }
}

void AdamW::zero_grad() {
  for (auto& [n, p] : params_) Tensor(p).zero_grad();
}

std::map<std::string, Tensor> AdamW::state_tensors() const {
  std::map<std::string, Tensor> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!state_[i].exp_avg.defined()) continue;
    out[params_[i].first + ".exp_avg"] = state_[i].exp_avg;
    out[params_[i].first + ".exp_avg_sq"] = state_[i].exp_avg_sq;
  }
  return out;
}

std::map<std::string, int64_t> AdamW::steps() const {
  std::map<std::string, int64_t> out;
  for (size_t i = 0; i < params_.size(); ++i) out[params_[i].first] = state_[i].step;
  return out;
}

void AdamW::load_state(const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, int64_t>& steps) {
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& n = params_[i].first;
    const Tensor& p = params_[i].second;
    auto st = steps.find(n);
    LD_CHECK(st != steps.end(), "optimiser state lacks the step count of parameter '{}'", n);
    State& s = state_[i];
    s.step = st->second;
    if (s.step == 0) {
      s.exp_avg = s.exp_avg_sq = Tensor();
      continue;
    }
    for (auto [suffix, slot] :
         {std::pair{".exp_avg", &s.exp_avg}, std::pair{".exp_avg_sq", &s.exp_avg_sq}}) {
      auto it = tensors.find(n + suffix);
      LD_CHECK(it != tensors.end(), "optimiser state lacks '{}{}'", n, suffix);
      LD_CHECK(it->second.shape() == p.shape(),
               "optimiser state '{}{}' has shape {}, parameter is {}", n, suffix,
               shape_str(it->second.shape()), shape_str(p.shape()));
      *slot = Tensor::empty(p.shape(), p.dtype(), p.device());
      slot->copy_(it->second);
    }
  }
}

double linear_warmup_factor(int64_t step, int64_t warmup, int64_t total) {
  if (step < warmup)
    return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
  return std::max(0.0, static_cast<double>(total - step) /
                           static_cast<double>(std::max<int64_t>(1, total - warmup)));
}

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm) {
  NoGradGuard ng;
  std::vector<Tensor> norms;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (g.defined()) norms.push_back(sqrt(sum(square(g))).reshape({1}));
  }
  if (norms.empty()) return 0.0;
  Tensor total_t = sqrt(sum(square(cat(norms, 0))));
  double total = total_t.item();
  // torch: clip_coef = max_norm / (total + 1e-6), clamped to 1, computed in the grads' dtype.
  Tensor coef = rdiv(add(total_t, 1e-6), max_norm);
  double c = std::min(coef.item(), 1.0);
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (g.defined()) mul_(g, c);
  }
  return total;
}

}  // namespace ld::nn
