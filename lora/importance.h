// Importance statistics of LoRA sites: per-example ||ΔW x||² (summed over real tokens), their
// running mean g_i and count, histograms (log-spaced bins by default) and optional raw values.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace ld::lora {

struct Histogram {
  std::vector<double> edges;    // bins + 1 increasing edges
  std::vector<int64_t> counts;  // bins
  int64_t underflow = 0, overflow = 0;

  // `bins` bins with edges lo * (hi/lo)^(i/bins); lo > 0.
  static Histogram log_spaced(double lo, double hi, int64_t bins);
  static Histogram linear(double lo, double hi, int64_t bins);
  // Values below edges[0] (zeros included) count as underflow, above edges.back() as overflow;
  // a value equal to the last edge falls into the last bin.
  void add(double v);
  int64_t total() const;
};

struct SiteStats {
  std::string site;    // full module name, e.g. roberta.encoder.layer.3.attention.self.query
  std::string target;  // target type, e.g. query
  int64_t layer = -1;
  double sum = 0;     // sum of per-example values
  int64_t count = 0;  // examples seen
  Histogram hist;
  std::vector<double> raw;  // per-example values when kept
  double mean() const { return count ? sum / static_cast<double>(count) : 0.0; }
};

struct ImportanceOptions {
  int64_t bins = 50;
  double hist_lo = 1e-8, hist_hi = 1e4;  // fixed range (auto_range = false)
  bool log_bins = true;
  bool keep_raw = false;
  // Histogram range from the data: the values are kept (raw) and the histograms are built by
  // ImportanceTracker::finalize_histograms() with one set of edges per target spanning the
  // smallest positive and the largest value seen at any site of that target (log bins; zeros
  // are underflow). Fixed bins squeeze a small model's values into a few bins.
  bool auto_range = false;
};

// The auto range of a set of values: [lo, hi] with lo the smallest positive value and hi the
// largest, widened by a factor 1.001 (log bins) so both ends fall inside; a single value v gives
// [v/10, v*10]; no positive value gives [1e-12, 1] (everything is underflow then).
std::pair<double, double> auto_histogram_range(const std::vector<double>& values, bool log_bins);

// Collects statistics of every site; sites register once (name, target, layer).
class ImportanceTracker {
 public:
  explicit ImportanceTracker(ImportanceOptions opt = {}) : opt_(opt) {}
  void register_site(const std::string& site, const std::string& target, int64_t layer);
  bool has_site(const std::string& site) const { return sites_.count(site) > 0; }
  // Adds a batch of per-example values (1-D tensor, any float dtype/device) for `site`.
  void add(const std::string& site, const Tensor& per_example);
  void add(const std::string& site, const std::vector<double>& per_example);
  void reset();

  const SiteStats& stats(const std::string& site) const;
  std::vector<std::string> targets() const;  // sorted
  // Sites of one target ordered by layer.
  std::vector<const SiteStats*> sites_of(const std::string& target) const;
  // g_i (running means) and y_i = g_i / sum g of one target, ordered by layer.
  std::vector<double> means(const std::string& target) const;
  std::vector<double> normalised(const std::string& target) const;
  const ImportanceOptions& options() const { return opt_; }
  // With auto_range: (re)builds every site's histogram from its raw values, edges per target
  // (see ImportanceOptions::auto_range). No-op otherwise. Call after the pass, before reading
  // stats().hist.
  void finalize_histograms();

 private:
  ImportanceOptions opt_;
  std::map<std::string, SiteStats> sites_;
};

}  // namespace ld::lora
