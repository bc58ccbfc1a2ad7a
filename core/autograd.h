// Define-by-run autograd: each op records a Node holding its inputs and a backward closure;
// Tensor::backward walks the graph in reverse topological order and accumulates into .grad.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ld {

// Given the gradient of the node's output, returns one gradient per input (undefined = none).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_out)>;

struct Node {
  const char* name = "";
  std::vector<Tensor> inputs;  // the op's differentiable inputs (kept alive for traversal)
  BackwardFn backward;
  Shape out_shape;
  DType out_dtype = DType::f32;
  // Releases the inputs iteratively, so dropping a deep graph cannot overflow the stack.
  ~Node();
};

bool grad_enabled();
void set_grad_enabled(bool on);

// Disables recording for its lifetime (evaluation, importance passes, optimiser steps).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// True when grad mode is on and one of `inputs` requires grad.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
inline bool needs_grad(const Tensor& a) { return needs_grad({&a}); }
inline bool needs_grad(const Tensor& a, const Tensor& b) { return needs_grad({&a, &b}); }

// Records `out` as produced by an op over `inputs` when any requires grad (no-op otherwise).
// The closure must not capture `out` itself (that would be a cycle): capture out.detach().
Tensor record(const char* name, Tensor out, std::vector<Tensor> inputs, BackwardFn fn);

// Reduces a broadcast gradient back to `shape` by summing over expanded dims.
Tensor sum_to(const Tensor& grad, const Shape& shape);

}  // namespace ld
