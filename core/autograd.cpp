// The backward engine: reverse topological order over Nodes, gradient accumulation into leaves.
#include "core/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/profiler.h"

namespace ld {

namespace {
thread_local bool t_grad_enabled = true;
}

// Destroying a node drops its inputs, whose impls may hold the only reference to the next node:
// naive destruction recurses once per graph level. The outermost destructor drains a worklist;
// nested ones hand their inputs to it instead of recursing.
Node::~Node() {
  thread_local std::vector<Tensor>* pending = nullptr;
  if (pending) {
    for (Tensor& t : inputs) pending->push_back(std::move(t));
    return;
  }
  std::vector<Tensor> work = std::move(inputs);
  backward = nullptr;  // captured tensors go now, while the worklist is active
  pending = &work;
  while (!work.empty()) {
    Tensor t = std::move(work.back());
    work.pop_back();
  }
  pending = nullptr;
}

bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool on) { t_grad_enabled = on; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

Tensor record(const char* name, Tensor out, std::vector<Tensor> inputs, BackwardFn fn) {
  if (!t_grad_enabled) return out;
  bool any = false;
  for (const Tensor& t : inputs) any = any || (t.defined() && t.requires_grad());
  if (!any) return out;
  auto node = std::make_shared<Node>();
  node->name = name;
  for (Tensor& t : inputs)
    if (t.defined() && !t.requires_grad()) t = Tensor();  // no gradient flows there
  node->inputs = std::move(inputs);
  node->backward = std::move(fn);
  node->out_shape = out.shape();
  node->out_dtype = out.dtype();
  out.impl()->grad_fn = std::move(node);
  out.impl()->requires_grad = true;
  return out;
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  int64_t lead = grad.dim() - static_cast<int64_t>(shape.size());
  LD_CHECK(lead >= 0, "sum_to: cannot reduce {} to {}", grad.desc(), shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t i = 0; i < grad.dim(); ++i) {
    if (i < lead)
      dims.push_back(i);
    else if (shape[i - lead] == 1 && grad.size(i) != 1)
      dims.push_back(i);
  }
  Tensor r = dims.empty() ? grad : sum(grad, dims, /*keepdim=*/true);
  return r.reshape(shape);
}

void Tensor::backward(const Tensor& grad_in, bool retain_graph) const {
  LD_CHECK(defined(), "backward on an undefined tensor");
  LD_CHECK(requires_grad(), "backward on {} which does not require grad", desc());
  Tensor seed = grad_in;
  if (!seed.defined()) {
    LD_CHECK(numel() == 1, "backward without a gradient needs a scalar, got {}", desc());
    seed = Tensor::ones(shape(), dtype(), device());
  }
  LD_CHECK(seed.shape() == shape(), "backward: gradient {} does not match output {}", seed.desc(),
           desc());
  NoGradGuard no_grad;

  auto accumulate_leaf = [](TensorImpl* leaf, const Tensor& g) {
    if (!leaf->grad) {
      leaf->grad = g.clone().detach().impl_;  // own the buffer: g may alias others
    } else {
      Tensor acc(leaf->grad);
      add_(acc, g);
    }
  };

  if (!grad_fn()) {
    accumulate_leaf(impl_.get(), seed);
    return;
  }

  // Topological order (iterative DFS, post-order). `order` holds strong references: freeing a
  // node's inputs below would otherwise destroy nodes that are still to be visited.
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> visited;
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{grad_fn(), 0}};
  visited.insert(grad_fn().get());
  while (!stack.empty()) {
    Node* n = stack.back().first.get();
    size_t& i = stack.back().second;
    if (i < n->inputs.size()) {
      const Tensor& in = n->inputs[i++];
      if (in.defined() && in.grad_fn() && !visited.count(in.grad_fn().get())) {
        visited.insert(in.grad_fn().get());
        stack.emplace_back(in.grad_fn(), 0);
      }
    } else {
      order.push_back(std::move(stack.back().first));
      stack.pop_back();
    }
  }

  std::unordered_map<Node*, Tensor> grads;
  grads[grad_fn().get()] = seed;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* n = it->get();
    auto gi = grads.find(n);
    if (gi == grads.end()) continue;  // no gradient reached this node
    Tensor g = std::move(gi->second);
    grads.erase(gi);
    LD_CHECK(n->backward, "backward through node '{}' a second time (use retain_graph)", n->name);
    std::vector<Tensor> in_grads;
    {
      BackwardScope scope(n->name);  // "<op>_bwd" in NVTX and the profiler
      in_grads = n->backward(g);
    }
    LD_CHECK(in_grads.size() == n->inputs.size(), "node '{}' returned {} gradients for {} inputs",
             n->name, in_grads.size(), n->inputs.size());
    for (size_t k = 0; k < in_grads.size(); ++k) {
      const Tensor& in = n->inputs[k];
      Tensor& ig = in_grads[k];
      if (!in.defined() || !ig.defined()) continue;
      LD_CHECK(ig.shape() == in.shape(), "node '{}' gave gradient {} for input {}", n->name,
               ig.desc(), in.desc());
      if (ig.dtype() != in.dtype()) ig = ig.to(in.dtype());
      if (in.grad_fn()) {
        auto& slot = grads[in.grad_fn().get()];
        slot = slot.defined() ? add(slot, ig) : ig;
      } else if (in.requires_grad()) {
        accumulate_leaf(in.impl(), ig);
      }
    }
    if (!retain_graph) {
      n->backward = nullptr;
      n->inputs.clear();
    }
  }
}

}  // namespace ld
