// Seeded stratified sampling and shuffling (see sampling.h for the exact procedure).
#include "data/sampling.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "core/error.h"

namespace ld::data {

uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  LD_CHECK(n > 0, "uniform_below(0)");
  // Largest multiple of n that fits: reject draws at or above it.
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % n + 1) % n;
  while (true) {
    const uint64_t x = rng();
    if (x <= limit) return x % n;
  }
}

std::vector<size_t> shuffled_indices(size_t n, uint64_t seed) {
  std::vector<size_t> v(n);
  std::iota(v.begin(), v.end(), size_t{0});
  std::mt19937_64 rng(seed);
  shuffle_in_place(v, rng);
  return v;
}

std::vector<size_t> stratified_sample(const std::vector<int64_t>& labels, double alpha,
                                      uint64_t seed) {
  LD_CHECK(alpha > 0 && alpha <= 1, "stratified_sample: alpha must be in (0, 1], got {}", alpha);
  std::map<int64_t, std::vector<size_t>> strata;
  for (size_t i = 0; i < labels.size(); ++i) strata[labels[i]].push_back(i);
  std::mt19937_64 rng(seed);
  std::vector<size_t> out;
  for (auto& [label, idx] : strata) {
    const auto n = static_cast<double>(idx.size());
    auto k = static_cast<size_t>(std::llround(alpha * n));
    k = std::clamp<size_t>(k, 1, idx.size());
    // Partial Fisher-Yates: the first k slots become a uniform k-subset.
    for (size_t i = 0; i < k; ++i) std::swap(idx[i], idx[i + uniform_below(rng, idx.size() - i)]);
    out.insert(out.end(), idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int64_t> quantile_bins(const std::vector<double>& targets, int bins) {
  LD_CHECK(bins >= 1, "quantile_bins: bins must be >= 1, got {}", bins);
  for (size_t i = 0; i < targets.size(); ++i)
    LD_CHECK(std::isfinite(targets[i]), "quantile_bins: target {} is not finite ({})", i,
             targets[i]);
  std::vector<size_t> order(targets.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return targets[a] < targets[b]; });
  std::vector<int64_t> bin(targets.size());
  const size_t n = targets.size();
  for (size_t r = 0; r < n; ++r)
    bin[order[r]] = static_cast<int64_t>(r * static_cast<size_t>(bins) / n);
  return bin;
}

std::vector<size_t> stratified_sample_regression(const std::vector<double>& targets, double alpha,
                                                 uint64_t seed, int bins) {
  return stratified_sample(quantile_bins(targets, bins), alpha, seed);
}

}  // namespace ld::data
