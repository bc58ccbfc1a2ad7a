// Sparse Adapter baseline: LoRA pruned at initialisation by SNIP (connection sensitivity |g ⊙ θ|
// summed over a few batches, one global threshold to the target sparsity, masks fixed afterwards).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "lora/adapter.h"

namespace ld::lora {

struct SnipOptions {
  double sparsity = 0.5;  // fraction of adapter entries pruned (the paper's 0.5)
  // LoRA's B starts at zero, so |g_B ⊙ B| = 0 and g_A = s Bᵀ g xᵀ = 0: plain SNIP would see no
  // saliency at all. With probe_B, the saliency is measured at a probe point where B holds a
  // Kaiming-uniform draw (a = sqrt(5)) from `probe_seed`: A's entries are scored by |g_A ⊙ A| and
  // B's by |g_B ⊙ B_probe|. B is zero again afterwards, so training starts at ΔW = 0 as LoRA does.
  bool probe_B = true;
  uint64_t probe_seed = 1234;
};

// Computes saliencies of every entry of every unique adapter tensor (A and B) of a Sparse
// AdapterSet from `batches` calls of loss(i) (i = 0..batches-1; each returns a scalar loss whose
// backward reaches the adapters), keeps the k = round((1 - sparsity) · N) most salient entries
// over all adapters together (one global threshold; ties broken by position), sets the masks,
// zeroes the pruned entries and clears the gradients. Returns the threshold (the k-th saliency).
double snip_prune(AdapterSet& set, const std::function<Tensor(int64_t)>& loss, int64_t batches,
                  const SnipOptions& opt = {});

// Global top-k masks from per-tensor saliencies (exposed for tests): masks[i][j] = 1 for the k
// largest values over all tensors, ties broken by (tensor, index) order.
std::vector<std::vector<uint8_t>> global_topk_masks(const std::vector<std::vector<double>>& sal,
                                                    int64_t k, double* threshold = nullptr);

}  // namespace ld::lora
