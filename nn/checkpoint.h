// Activation checkpointing: run a block without keeping its activations and recompute it (under
// grad mode) during backward.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "core/ops.h"

namespace ld::nn {

// y = fn(x), recorded as ONE node over x and `params` (the block's trainable parameters, so the
// node is recorded even when x needs no gradient, e.g. frozen embeddings under LoRA). Backward
// re-runs fn on a fresh leaf copy of x with grad on, backpropagates the incoming gradient
// through it (parameter gradients accumulate into their .grad directly) and returns dL/dx.
// `gen` (may be null) is the dropout stream: its state is saved before the forward and restored
// for the recomputation, so dropout masks are identical in both runs.
Tensor checkpoint(const std::function<Tensor(const Tensor&)>& fn, const Tensor& x,
                  const std::vector<Tensor>& params, const std::shared_ptr<Generator>& gen);

}  // namespace ld::nn
