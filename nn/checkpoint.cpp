// The checkpoint op: forward without a graph, backward by recomputation.
#include "nn/checkpoint.h"

#include "core/nvtx.h"

namespace ld::nn {

Tensor checkpoint(const std::function<Tensor(const Tensor&)>& fn, const Tensor& x,
                  const std::vector<Tensor>& params, const std::shared_ptr<Generator>& gen) {
  bool need = grad_enabled() && (x.requires_grad() || [&] {
                for (auto& p : params)
                  if (p.requires_grad()) return true;
                return false;
              }());
  if (!need) return fn(x);
  uint64_t seed = gen ? gen->seed() : 0, off = gen ? gen->offset() : 0;
  Tensor y;
  {
    NoGradGuard ng;
    y = fn(x.detach());
  }
  uint64_t off_after = gen ? gen->offset() : 0;
  std::vector<Tensor> inputs{x};
  for (auto& p : params) inputs.push_back(p);
  Tensor xd = x.detach();
  bool x_grad = x.requires_grad();
  size_t n = inputs.size();
  return record("checkpoint", y, inputs, [=](const Tensor& g) {
    LD_NVTX_RANGE("checkpoint.recompute");
    Tensor xin = xd.clone().detach();
    if (x_grad) xin.set_requires_grad(true);
    Tensor yr;
    {
      // The engine runs backward under NoGradGuard; recompute with grad on.
      bool prev = grad_enabled();
      set_grad_enabled(true);
      uint64_t cur = gen ? gen->offset() : 0;
      if (gen) gen->set_state(seed, off);
      yr = fn(xin);
      if (gen) gen->set_state(seed, cur > off_after ? cur : off_after);
      set_grad_enabled(prev);
    }
    std::vector<Tensor> grads(n);
    if (yr.requires_grad()) {
      yr.backward(g);
      if (x_grad) grads[0] = xin.grad();
    }
    return grads;
  });
}

}  // namespace ld::nn
