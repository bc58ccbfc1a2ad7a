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
