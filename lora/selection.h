// LoRA-drop layer selection from per-layer importance, and the paper's ablations.
// Importance g_i of the sites of one target type (e.g. every layer's `query`) is normalised to
// y_i = g_i / sum(g); layers sorted by y descending are kept until the cumulative y reaches T.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ld::lora {

enum class SelectMode {
  Threshold,  // LoRA-drop: keep the most important layers until cumulative y >= T
  TopK,       // keep the k most important layers
  Explicit,   // keep the listed layers
  Inverted,   // ablation: the layers Threshold would keep are shared, the others keep their own
  RandomK,    // ablation: k layers chosen at random (seeded)
  LastK,      // ablation "top-k": the last k layers of the network
};

SelectMode parse_select_mode(const std::string& s);  // threshold|topk|explicit|inverted|random|last
const char* select_mode_name(SelectMode m);

struct SelectionConfig {
  SelectMode mode = SelectMode::Threshold;
  double threshold = 0.9;       // T
  int64_t k = -1;               // TopK/RandomK/LastK; -1 = as many as Threshold keeps
  std::vector<int64_t> layers;  // Explicit
  uint64_t seed = 0;            // RandomK
  bool share_rest = true;       // false = "w/o share": unselected layers get no adapter
};

// y_i = g_i / sum(g). Throws ld::Error when the importance is empty, negative, non-finite or
// all zero (nothing to rank: usually a LoRA whose B is still zero).
std::vector<double> normalise_importance(const std::vector<double>& g);

// Indices of layers sorted by importance, descending; ties keep the lower layer index first.
std::vector<int64_t> rank_layers(const std::vector<double>& g);

// How many layers the threshold rule keeps: the smallest n such that the n most important
// layers' y sum to >= T (T >= 1 keeps every layer; at least one layer is always kept).
int64_t threshold_count(const std::vector<double>& g, double threshold);

// keep[i] = true when layer i keeps its own adapter under `cfg`.
std::vector<bool> select_layers(const std::vector<double>& g, const SelectionConfig& cfg);

}  // namespace ld::lora
