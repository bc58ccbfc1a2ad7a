// LoRA-drop selection: the threshold rule, its edge cases and every ablation.
#include "lora/selection.h"

#include <gtest/gtest.h>

#include <numeric>

#include "core/error.h"

using namespace ld;
using namespace ld::lora;

static std::vector<int64_t> kept(const std::vector<bool>& k) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < k.size(); ++i)
    if (k[i]) out.push_back(static_cast<int64_t>(i));
  return out;
}

TEST(Selection, ThresholdKeepsMostImportantUntilCumulativeReachesT) {
  // y = [0.05, 0.4, 0.1, 0.3, 0.15]: sorted 0.4 (1), 0.3 (3), 0.15 (4), 0.1 (2), 0.05 (0)
  std::vector<double> g{1, 8, 2, 6, 3};
  EXPECT_EQ(threshold_count(g, 0.9), 4);  // 0.4+0.3+0.15 = 0.85 < 0.9; +0.1 = 0.95
  EXPECT_EQ(kept(select_layers(g, {})), (std::vector<int64_t>{1, 2, 3, 4}));
  SelectionConfig c;
  c.threshold = 0.7;  // 0.4 + 0.3 = 0.7 exactly: reaching T counts
  EXPECT_EQ(kept(select_layers(g, c)), (std::vector<int64_t>{1, 3}));
  c.threshold = 0.85;
  EXPECT_EQ(kept(select_layers(g, c)), (std::vector<int64_t>{1, 3, 4}));
}

TEST(Selection, EdgeCases) {
  std::vector<double> g{1, 2, 3, 4};
  SelectionConfig c;
  c.threshold = 1.0;  // T = 1 keeps all
  EXPECT_EQ(kept(select_layers(g, c)).size(), 4u);
  c.threshold = 1e-9;  // tiny T keeps one: the most important
  EXPECT_EQ(kept(select_layers(g, c)), (std::vector<int64_t>{3}));
  // ties: the lower layer index ranks first
  std::vector<double> tie{5, 5, 5, 5};
  c.threshold = 0.5;
  EXPECT_EQ(kept(select_layers(tie, c)), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(rank_layers(tie), (std::vector<int64_t>{0, 1, 2, 3}));
  // a zero-importance layer is never needed to reach T < 1
  std::vector<double> z{0, 1, 0, 1};
  c.threshold = 0.99;
  EXPECT_EQ(kept(select_layers(z, c)), (std::vector<int64_t>{1, 3}));
}

TEST(SelectionBadInput, ClearErrors) {
  SelectionConfig c;
  try {
    select_layers({0, 0, 0}, c);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("zero for all 3 layers"), std::string::npos) << e.what();
  }
  EXPECT_THROW(select_layers({}, c), Error);
  EXPECT_THROW(select_layers({1, -1}, c), Error);
  EXPECT_THROW(select_layers({1, std::nan("")}, c), Error);
  c.threshold = 0;
  EXPECT_THROW(select_layers({1, 2}, c), Error);
  c.threshold = 1.5;
  EXPECT_THROW(select_layers({1, 2}, c), Error);
  SelectionConfig e;
  e.mode = SelectMode::Explicit;
  e.layers = {5};
  EXPECT_THROW(select_layers({1, 2}, e), Error);
  EXPECT_THROW(parse_select_mode("nope"), Error);
}

TEST(Selection, AblationsSelectWhatTheyClaim) {
  std::vector<double> g{1, 8, 2, 6, 3, 0.5, 0.25, 9};  // L = 8
  SelectionConfig base;
  base.threshold = 0.8;
  std::vector<int64_t> thr = kept(select_layers(g, base));
  const size_t n = thr.size();
  ASSERT_GT(n, 1u);
  ASSERT_LT(n, 8u);

  SelectionConfig inv = base;
  inv.mode = SelectMode::Inverted;
  std::vector<bool> iv = select_layers(g, inv);
  for (int64_t l : thr) EXPECT_FALSE(iv[l]) << "inverted keeps important layer " << l;
  EXPECT_EQ(kept(iv).size(), 8 - n);

  SelectionConfig last = base;
  last.mode = SelectMode::LastK;  // k defaults to the threshold count
  std::vector<int64_t> lk = kept(select_layers(g, last));
  ASSERT_EQ(lk.size(), n);
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(lk[i], static_cast<int64_t>(8 - n + i));

  SelectionConfig topk = base;
  topk.mode = SelectMode::TopK;
  topk.k = 2;
  EXPECT_EQ(kept(select_layers(g, topk)), (std::vector<int64_t>{1, 7}));

  SelectionConfig rnd = base;
  rnd.mode = SelectMode::RandomK;
  rnd.k = 3;
  rnd.seed = 7;
  std::vector<int64_t> r1 = kept(select_layers(g, rnd));
  EXPECT_EQ(r1.size(), 3u);
  EXPECT_EQ(kept(select_layers(g, rnd)), r1) << "same seed, same layers";
  // different seeds give different draws at least once over a few seeds
  bool differs = false;
  for (uint64_t s = 8; s < 16 && !differs; ++s) {
    rnd.seed = s;
    differs = kept(select_layers(g, rnd)) != r1;
  }
  EXPECT_TRUE(differs);
  // random k is uniform-ish: every layer is picked at least once over many seeds
  std::vector<int> hits(8, 0);
  for (uint64_t s = 0; s < 200; ++s) {
    rnd.seed = s;
    for (int64_t l : kept(select_layers(g, rnd))) ++hits[l];
  }
  for (int h : hits) EXPECT_GT(h, 30);

  SelectionConfig ex = base;
  ex.mode = SelectMode::Explicit;
  ex.layers = {0, 5};
  EXPECT_EQ(kept(select_layers(g, ex)), (std::vector<int64_t>{0, 5}));
}

TEST(Selection, NormalisedImportanceSumsToOne) {
  std::vector<double> y = normalise_importance({1, 3, 4});
  EXPECT_DOUBLE_EQ(y[0], 0.125);
  EXPECT_DOUBLE_EQ(y[1], 0.375);
  EXPECT_DOUBLE_EQ(y[2], 0.5);
  EXPECT_DOUBLE_EQ(std::accumulate(y.begin(), y.end(), 0.0), 1.0);
}
