// LoRA-drop selection rules and ablations.
#include "lora/selection.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/error.h"

namespace ld::lora {

SelectMode parse_select_mode(const std::string& s) {
  if (s == "threshold" || s == "loradrop") return SelectMode::Threshold;
  if (s == "topk") return SelectMode::TopK;
  if (s == "explicit") return SelectMode::Explicit;
  if (s == "inverted") return SelectMode::Inverted;
  if (s == "random") return SelectMode::RandomK;
  if (s == "last" || s == "lastk") return SelectMode::LastK;
  LD_FAIL(
      "unknown selection mode '{}': expected threshold, topk, explicit, inverted, random or last",
      s);
}

const char* select_mode_name(SelectMode m) {
  switch (m) {
    case SelectMode::Threshold:
      return "threshold";
    case SelectMode::TopK:
      return "topk";
    case SelectMode::Explicit:
      return "explicit";
    case SelectMode::Inverted:
      return "inverted";
    case SelectMode::RandomK:
      return "random";
    case SelectMode::LastK:
      return "last";
  }
  return "?";
}

std::vector<double> normalise_importance(const std::vector<double>& g) {
  LD_CHECK(!g.empty(), "importance: no layers to select from");
  double total = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    LD_CHECK(std::isfinite(g[i]) && g[i] >= 0,
             "importance of layer {} is {} (must be finite, >= 0)", i, g[i]);
    total += g[i];
  }
  LD_CHECK(total > 0,
           "importance is zero for all {} layers: nothing to rank (was the LoRA trained? B starts "
           "at zero)",
           g.size());
  std::vector<double> y(g.size());
  for (size_t i = 0; i < g.size(); ++i) y[i] = g[i] / total;
  return y;
}

std::vector<int64_t> rank_layers(const std::vector<double>& g) {
  std::vector<int64_t> idx(g.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return g[a] > g[b]; });
  return idx;
}

int64_t threshold_count(const std::vector<double>& g, double threshold) {
  LD_CHECK(threshold > 0 && threshold <= 1.0 + 1e-12, "threshold T must be in (0, 1], got {}",
           threshold);
  std::vector<double> y = normalise_importance(g);
  if (threshold >= 1.0) return static_cast<int64_t>(g.size());
  std::vector<int64_t> order = rank_layers(y);
  double cum = 0;
  for (size_t n = 0; n < order.size(); ++n) {
    cum += y[order[n]];
    // tolerance: y sums to 1 only up to rounding
    if (cum >= threshold - 1e-12) return static_cast<int64_t>(n + 1);
  }
  return static_cast<int64_t>(g.size());
}

std::vector<bool> select_layers(const std::vector<double>& g, const SelectionConfig& cfg) {
  const int64_t L = static_cast<int64_t>(g.size());
  std::vector<bool> keep(L, false);
  auto k_or_threshold = [&] {
    int64_t k = cfg.k >= 0 ? cfg.k : threshold_count(g, cfg.threshold);
    LD_CHECK(k >= 0 && k <= L, "k = {} out of range for {} layers", k, L);
    return k;
  };
  switch (cfg.mode) {
    case SelectMode::Threshold: {
      int64_t n = threshold_count(g, cfg.threshold);
      std::vector<int64_t> order = rank_layers(g);
      for (int64_t i = 0; i < n; ++i) keep[order[i]] = true;
      break;
    }
    case SelectMode::TopK: {
      normalise_importance(g);  // validates
      int64_t k = k_or_threshold();
      std::vector<int64_t> order = rank_layers(g);
      for (int64_t i = 0; i < k; ++i) keep[order[i]] = true;
      break;
    }
    case SelectMode::Explicit:
      for (int64_t l : cfg.layers) {
        LD_CHECK(l >= 0 && l < L, "explicit layer {} out of range for {} layers", l, L);
        keep[l] = true;
      }
      break;
    case SelectMode::Inverted: {
      SelectionConfig c = cfg;
      c.mode = SelectMode::Threshold;
      std::vector<bool> sel = select_layers(g, c);
      for (int64_t i = 0; i < L; ++i) keep[i] = !sel[i];
      break;
    }
    case SelectMode::RandomK: {
      int64_t k = k_or_threshold();
      std::vector<int64_t> idx(L);
      std::iota(idx.begin(), idx.end(), 0);
      std::mt19937_64 rng(cfg.seed);
      // Fisher-Yates with an explicit modulo draw so the result is the same on every platform.
      for (int64_t i = L - 1; i > 0; --i)
        std::swap(idx[i], idx[rng() % static_cast<uint64_t>(i + 1)]);
      for (int64_t i = 0; i < k; ++i) keep[idx[i]] = true;
      break;
    }
    case SelectMode::LastK: {
      int64_t k = k_or_threshold();
      for (int64_t i = L - k; i < L; ++i) keep[i] = true;
      break;
    }
  }
  return keep;
}

}  // namespace ld::lora
