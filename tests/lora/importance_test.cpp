// Importance tracker: running means, histograms and per-target normalisation.
#include "lora/importance.h"

#include <gtest/gtest.h>

#include "core/error.h"

using namespace ld;
using namespace ld::lora;

TEST(Histogram, LogSpacedBinsAndEdges) {
  Histogram h = Histogram::log_spaced(1e-2, 1e2, 4);  // edges 1e-2, 1e-1, 1, 10, 100
  ASSERT_EQ(h.edges.size(), 5u);
  EXPECT_NEAR(h.edges[1], 1e-1, 1e-12);
  EXPECT_NEAR(h.edges[2], 1.0, 1e-12);
  EXPECT_EQ(h.edges.back(), 1e2);
  for (double v : {0.0, 0.005, 0.01, 0.05, 0.5, 5.0, 50.0, 100.0, 1000.0, std::nan("")}) h.add(v);
  EXPECT_EQ(h.underflow, 3);                                // 0, 0.005, nan
  EXPECT_EQ(h.overflow, 1);                                 // 1000
  EXPECT_EQ(h.counts, (std::vector<int64_t>{2, 1, 1, 2}));  // 100 falls into the last bin
  EXPECT_EQ(h.total(), 10);
  EXPECT_THROW(Histogram::log_spaced(0, 1, 3), Error);
}

TEST(ImportanceTracker, MeansHistogramsAndNormalisation) {
  ImportanceOptions opt;
  opt.keep_raw = true;
  ImportanceTracker t(opt);
  t.register_site("enc.layer.1.query", "query", 1);
  t.register_site("enc.layer.0.query", "query", 0);
  t.register_site("enc.layer.0.value", "value", 0);
  EXPECT_THROW(t.register_site("enc.layer.0.value", "value", 0), Error);
  t.add("enc.layer.0.query", std::vector<double>{1, 3});
  t.add("enc.layer.0.query", Tensor::from_vector<float>({5}, {1}));
  t.add("enc.layer.1.query", std::vector<double>{6});
  t.add("enc.layer.0.value", std::vector<double>{2});
  EXPECT_EQ(t.stats("enc.layer.0.query").count, 3);
  EXPECT_DOUBLE_EQ(t.stats("enc.layer.0.query").mean(), 3.0);
  EXPECT_EQ(t.stats("enc.layer.0.query").raw, (std::vector<double>{1, 3, 5}));
  EXPECT_EQ(t.means("query"), (std::vector<double>{3, 6}));  // ordered by layer
  std::vector<double> y = t.normalised("query");
  EXPECT_DOUBLE_EQ(y[0], 1.0 / 3);
  EXPECT_DOUBLE_EQ(y[1], 2.0 / 3);
  EXPECT_EQ(t.targets(), (std::vector<std::string>{"query", "value"}));
  EXPECT_EQ(t.stats("enc.layer.0.query").hist.total(), 3);
  EXPECT_THROW(t.add("nope", std::vector<double>{1}), Error);
  EXPECT_THROW(t.add("enc.layer.0.value", std::vector<double>{std::nan("")}), Error);
  EXPECT_THROW(t.means("key"), Error);
  t.reset();
  EXPECT_EQ(t.stats("enc.layer.0.query").count, 0);
  EXPECT_THROW(t.normalised("query"), Error);  // all zero after reset
}

TEST(ImportanceTracker, AutoRangeSpansObservedValuesPerTarget) {
  ImportanceOptions opt;
  opt.auto_range = true;
  opt.bins = 8;
  ImportanceTracker t(opt);
  t.register_site("l.0.query", "query", 0);
  t.register_site("l.1.query", "query", 1);
  t.register_site("l.0.value", "value", 0);
  // Small-model magnitudes, far below the old fixed range's useful part.
  t.add("l.0.query", std::vector<double>{1e-7, 3e-7, 0.0});
  t.add("l.1.query", std::vector<double>{2e-6, 4e-5});
  t.add("l.0.value", std::vector<double>{5.0, 5.0});     // one distinct value
  EXPECT_TRUE(t.stats("l.0.query").hist.edges.empty());  // no edges before finalize
  t.finalize_histograms();
  const Histogram& q0 = t.stats("l.0.query").hist;
  const Histogram& q1 = t.stats("l.1.query").hist;
  ASSERT_EQ(q0.edges.size(), 9u);
  EXPECT_EQ(q0.edges, q1.edges);  // one set of edges per target: layers are comparable
  EXPECT_LE(q0.edges.front(), 1e-7);
  EXPECT_GT(q0.edges.front(), 1e-7 / 1.01);
  EXPECT_GE(q0.edges.back(), 4e-5);
  EXPECT_LT(q0.edges.back(), 4e-5 * 1.01);
  EXPECT_EQ(q0.underflow, 1);  // the zero
  EXPECT_EQ(q0.overflow, 0);
  EXPECT_EQ(q0.total(), 3);
  EXPECT_EQ(q1.underflow + q1.overflow, 0);
  EXPECT_EQ(q1.total(), 2);
  // The values spread over the bins rather than landing in one or two.
  int64_t used = 0;
  for (size_t i = 0; i < q0.counts.size(); ++i) used += (q0.counts[i] + q1.counts[i]) > 0;
  EXPECT_GE(used, 3);
  const Histogram& v0 = t.stats("l.0.value").hist;
  EXPECT_NEAR(v0.edges.front(), 0.5, 1e-12);
  EXPECT_NEAR(v0.edges.back(), 50.0, 1e-12);
  EXPECT_EQ(v0.total(), 2);
  EXPECT_EQ(v0.underflow + v0.overflow, 0);
  // Means do not depend on the binning.
  EXPECT_DOUBLE_EQ(t.stats("l.1.query").mean(), (2e-6 + 4e-5) / 2);
}

TEST(ImportanceTracker, AutoRangeEdgeCasesAndFixedRangeUnchanged) {
  EXPECT_EQ(auto_histogram_range({0.0, 0.0}, true), (std::pair<double, double>{1e-12, 1.0}));
  EXPECT_EQ(auto_histogram_range({}, true), (std::pair<double, double>{1e-12, 1.0}));
  auto [lo, hi] = auto_histogram_range({-1.0, 3.0}, false);
  EXPECT_LT(lo, -1.0);
  EXPECT_GT(hi, 3.0);
  // Without auto_range the fixed edges are used from registration on, and finalize is a no-op.
  ImportanceOptions opt;
  opt.hist_lo = 1e-2;
  opt.hist_hi = 1e2;
  opt.bins = 4;
  ImportanceTracker t(opt);
  t.register_site("l.0.query", "query", 0);
  t.add("l.0.query", std::vector<double>{0.5, 1e-5});
  t.finalize_histograms();
  const Histogram& h = t.stats("l.0.query").hist;
  EXPECT_EQ(h.edges.front(), 1e-2);
  EXPECT_EQ(h.edges.back(), 1e2);
  EXPECT_EQ(h.underflow, 1);
  EXPECT_TRUE(t.stats("l.0.query").raw.empty());  // raw values kept only when asked or auto
}
