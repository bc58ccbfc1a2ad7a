// Importance statistics: running means, histograms, per-target normalisation.
#include "lora/importance.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "core/error.h"
#include "lora/selection.h"

namespace ld::lora {

Histogram Histogram::log_spaced(double lo, double hi, int64_t bins) {
  LD_CHECK(lo > 0 && hi > lo && bins > 0,
           "log-spaced histogram needs 0 < lo < hi and bins > 0, "
           "got lo={} hi={} bins={}",
           lo, hi, bins);
  Histogram h;
  double a = std::log(lo), b = std::log(hi);
  for (int64_t i = 0; i <= bins; ++i)
    h.edges.push_back(i == bins ? hi : std::exp(a + (b - a) * static_cast<double>(i) / bins));
  h.edges[0] = lo;
  h.counts.assign(bins, 0);
  return h;
}

Histogram Histogram::linear(double lo, double hi, int64_t bins) {
  LD_CHECK(hi > lo && bins > 0, "histogram needs lo < hi and bins > 0, got lo={} hi={} bins={}", lo,
           hi, bins);
  Histogram h;
  for (int64_t i = 0; i <= bins; ++i)
    h.edges.push_back(i == bins ? hi : lo + (hi - lo) * static_cast<double>(i) / bins);
  h.counts.assign(bins, 0);
  return h;
}

void Histogram::add(double v) {
  if (edges.empty()) return;
  if (!(v >= edges.front())) {  // also catches nan
    ++underflow;
    return;
  }
  if (v > edges.back()) {
    ++overflow;
    return;
  }
  auto it = std::upper_bound(edges.begin(), edges.end(), v);
  int64_t bin = static_cast<int64_t>(it - edges.begin()) - 1;
  bin = std::min<int64_t>(bin, static_cast<int64_t>(counts.size()) - 1);
  ++counts[bin];
}

int64_t Histogram::total() const {
  int64_t t = underflow + overflow;
  for (int64_t c : counts) t += c;
  return t;
}

void ImportanceTracker::register_site(const std::string& site, const std::string& target,
                                      int64_t layer) {
  LD_CHECK(!sites_.count(site), "importance site '{}' registered twice", site);
  SiteStats s;
  s.site = site;
  s.target = target;
  s.layer = layer;
  // Auto range: no edges until finalize_histograms() (Histogram::add ignores values then).
  if (!opt_.auto_range)
    s.hist = opt_.log_bins ? Histogram::log_spaced(opt_.hist_lo, opt_.hist_hi, opt_.bins)
                           : Histogram::linear(opt_.hist_lo, opt_.hist_hi, opt_.bins);
  sites_.emplace(site, std::move(s));
}

void ImportanceTracker::add(const std::string& site, const std::vector<double>& v) {
  auto it = sites_.find(site);
  LD_CHECK(it != sites_.end(), "importance for unknown site '{}'", site);
  SiteStats& s = it->second;
  for (double x : v) {
    LD_CHECK(std::isfinite(x), "non-finite importance {} at site '{}'", x, site);
    s.sum += x;
    ++s.count;
    s.hist.add(x);
    if (opt_.keep_raw || opt_.auto_range) s.raw.push_back(x);
  }
}

void ImportanceTracker::add(const std::string& site, const Tensor& per_example) {
  LD_CHECK(per_example.dim() == 1, "per-example importance must be 1-D, got {}",
           per_example.desc());
  add(site, per_example.to(kCPU, DType::f64).to_vector<double>());
}

void ImportanceTracker::reset() {
  for (auto& [name, s] : sites_) {
    s.sum = 0;
    s.count = 0;
    s.raw.clear();
    std::fill(s.hist.counts.begin(), s.hist.counts.end(), 0);
    s.hist.underflow = s.hist.overflow = 0;
  }
}

const SiteStats& ImportanceTracker::stats(const std::string& site) const {
  auto it = sites_.find(site);
  LD_CHECK(it != sites_.end(), "no importance statistics for site '{}'", site);
  return it->second;
}

std::pair<double, double> auto_histogram_range(const std::vector<double>& values, bool log_bins) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : values) {
    if (!std::isfinite(v) || (log_bins && v <= 0)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (!(lo <= hi)) return {1e-12, 1.0};
  if (log_bins) {
    if (hi / lo < 1.01) return {lo / 10, hi * 10};
    return {lo / 1.001, hi * 1.001};
  }
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) return {lo - 1, hi + 1};
  const double pad = 1e-3 * (hi - lo);
  return {lo - pad, hi + pad};
}

void ImportanceTracker::finalize_histograms() {
  if (!opt_.auto_range) return;
  for (const std::string& t : targets()) {
    std::vector<double> all;
    for (const SiteStats* s : sites_of(t)) all.insert(all.end(), s->raw.begin(), s->raw.end());
    const auto [lo, hi] = auto_histogram_range(all, opt_.log_bins);
    for (auto& [name, s] : sites_) {
      if (s.target != t) continue;
      s.hist = opt_.log_bins ? Histogram::log_spaced(lo, hi, opt_.bins)
                             : Histogram::linear(lo, hi, opt_.bins);
      for (double x : s.raw) s.hist.add(x);
    }
  }
}

std::vector<std::string> ImportanceTracker::targets() const {
  std::set<std::string> t;
  for (const auto& [name, s] : sites_) t.insert(s.target);
  return {t.begin(), t.end()};
}

std::vector<const SiteStats*> ImportanceTracker::sites_of(const std::string& target) const {
  std::vector<const SiteStats*> out;
  for (const auto& [name, s] : sites_)
    if (s.target == target) out.push_back(&s);
  std::stable_sort(out.begin(), out.end(),
                   [](const SiteStats* a, const SiteStats* b) { return a->layer < b->layer; });
  return out;
}

std::vector<double> ImportanceTracker::means(const std::string& target) const {
  std::vector<double> g;
  for (const SiteStats* s : sites_of(target)) g.push_back(s->mean());
  LD_CHECK(!g.empty(), "no importance sites for target '{}'", target);
  return g;
}

std::vector<double> ImportanceTracker::normalised(const std::string& target) const {
  return normalise_importance(means(target));
}

}  // namespace ld::lora
