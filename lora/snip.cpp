// SNIP pruning of LoRA adapters at initialisation (Sparse Adapter baseline).
#include "lora/snip.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace ld::lora {

std::vector<std::vector<uint8_t>> global_topk_masks(const std::vector<std::vector<double>>& sal,
                                                    int64_t k, double* threshold) {
  struct Ref {
    double v;
    size_t t, i;
  };
  std::vector<Ref> all;
  for (size_t t = 0; t < sal.size(); ++t)
    for (size_t i = 0; i < sal[t].size(); ++i) all.push_back({sal[t][i], t, i});
  LD_CHECK(k >= 0 && k <= static_cast<int64_t>(all.size()), "SNIP: cannot keep {} of {} entries", k,
           all.size());
  std::vector<std::vector<uint8_t>> masks(sal.size());
  for (size_t t = 0; t < sal.size(); ++t) masks[t].assign(sal[t].size(), 0);
  if (k == 0) {
    if (threshold) *threshold = INFINITY;
    return masks;
  }
  auto cmp = [](const Ref& a, const Ref& b) {
    if (a.v != b.v) return a.v > b.v;
    return a.t != b.t ? a.t < b.t : a.i < b.i;
  };
  std::nth_element(all.begin(), all.begin() + (k - 1), all.end(), cmp);
  if (threshold) *threshold = all[k - 1].v;
  for (int64_t j = 0; j < k; ++j) masks[all[j].t][all[j].i] = 1;
  return masks;
}

double snip_prune(AdapterSet& set, const std::function<Tensor(int64_t)>& loss, int64_t batches,
                  const SnipOptions& opt) {
  LD_CHECK(set.config().method == Method::Sparse, "snip_prune needs a Sparse adapter set, got {}",
           method_name(set.config().method));
  LD_CHECK(batches > 0, "snip_prune: need at least one batch, got {}", batches);
  LD_CHECK(opt.sparsity >= 0 && opt.sparsity < 1, "SNIP sparsity must be in [0, 1), got {}",
           opt.sparsity);
  std::vector<AdapterPtr> ads = set.adapters();
  std::vector<Tensor> params;
  for (const AdapterPtr& a : ads) {
    a->mask_A = Tensor();
    a->mask_B = Tensor();
    params.push_back(a->A);
    params.push_back(a->B);
  }
  // Probe point for B (see SnipOptions::probe_B).
  Generator pg(opt.probe_seed);
  if (opt.probe_B) {
    NoGradGuard ng;
    for (const AdapterPtr& a : ads) {
      Tensor b = Tensor::empty(a->B.shape(), a->B.dtype());
      kaiming_uniform_(b, std::sqrt(5.0), pg);
      Tensor(a->B).copy_(b);
    }
  }
  for (auto& [n, t] : set.trainable_parameters()) Tensor(t).zero_grad();
  std::vector<Tensor> sal;
  for (const Tensor& p : params) sal.push_back(Tensor::zeros(p.shape(), DType::f64));
  for (int64_t b = 0; b < batches; ++b) {
    Tensor l = loss(b);
    l.backward();
    NoGradGuard ng;
    for (size_t i = 0; i < params.size(); ++i) {
      Tensor g = params[i].grad();
      if (!g.defined()) continue;
      add_(sal[i], abs(g.to(kCPU, DType::f64) * params[i].detach().to(kCPU, DType::f64)));
    }
    for (auto& [n, t] : set.trainable_parameters()) Tensor(t).zero_grad();
  }
  std::vector<std::vector<double>> v;
  int64_t total = 0;
  for (const Tensor& s : sal) {
    v.push_back(s.to_vector<double>());
    total += s.numel();
  }
  const int64_t k =
      static_cast<int64_t>(std::llround((1.0 - opt.sparsity) * static_cast<double>(total)));
  double thr = 0;
  auto masks = global_topk_masks(v, k, &thr);
  NoGradGuard ng;
  for (size_t j = 0; j < ads.size(); ++j) {
    auto to_mask = [](const std::vector<uint8_t>& m, const Tensor& like) {
      std::vector<double> d(m.begin(), m.end());
      return Tensor::from_vector(d, like.shape()).to(like.device(), like.dtype());
    };
    ads[j]->mask_A = to_mask(masks[2 * j], ads[j]->A);
    ads[j]->mask_B = to_mask(masks[2 * j + 1], ads[j]->B);
    if (opt.probe_B) Tensor(ads[j]->B).zero_();
  }
  set.apply_masks_();
  return thr;
}

}  // namespace ld::lora
