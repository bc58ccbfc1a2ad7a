// Seeded, platform-independent sampling: stratified subsets (the LoRA-drop sample of ratio alpha)
// and shuffles. Randomness is std::mt19937_64 (its output sequence is fixed by the C++ standard)
// with our own Fisher-Yates and bounded draws, since std::shuffle / uniform_int_distribution differ
// between standard libraries.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace ld::data {

// Uniform integer in [0, n) from `rng` by rejection (no modulo bias); n > 0.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n);

// In-place Fisher-Yates shuffle: for i = n-1 .. 1, swap v[i] with v[uniform_below(i + 1)].
template <class T>
void shuffle_in_place(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[uniform_below(rng, i)]);
}

// 0..n-1 in an order fixed by `seed`.
std::vector<size_t> shuffled_indices(size_t n, uint64_t seed);

// Stratified sample of ratio alpha in (0, 1]: for each class c with n_c examples, take
// k_c = clamp(round(alpha * n_c), 1, n_c) of them uniformly without replacement (seeded). Classes
// are visited in increasing label order, each with its own draws from one mt19937_64(seed).
// Returns the chosen indices sorted ascending (shuffle per epoch separately).
std::vector<size_t> stratified_sample(const std::vector<int64_t>& labels, double alpha,
                                      uint64_t seed);

// Regression targets: examples are ranked by value (ties by index) and cut into `bins` groups of
// near-equal size (rank r goes to bin floor(r * bins / n)); each bin is then a stratum as above.
std::vector<size_t> stratified_sample_regression(const std::vector<double>& targets, double alpha,
                                                 uint64_t seed, int bins = 10);

// The quantile-bin id of every target, as used above.
std::vector<int64_t> quantile_bins(const std::vector<double>& targets, int bins);

}  // namespace ld::data
