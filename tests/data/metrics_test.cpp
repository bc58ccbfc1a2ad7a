// Metrics against golden values from sacrebleu / rouge-score / nltk / scikit-learn / scipy
// (tests/fixtures/data/metrics_golden.json, written by tools/make_data_goldens.py), plus
// hand-computed cases.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "data/metrics.h"

using namespace ld::data;
using nlohmann::json;

namespace {

const json& golden() {
  static const json j = [] {
    std::ifstream in(std::string(LD_SOURCE_DIR) + "/tests/fixtures/data/metrics_golden.json");
    EXPECT_TRUE(in.good()) << "missing tests/fixtures/data/metrics_golden.json";
    std::stringstream ss;
    ss << in.rdbuf();
    return json::parse(ss.str());
  }();
  return j;
}

// BLEU and ROUGE: 1e-6 (scores are sums of logs / ratios of small integers; the reference
// implementations are double precision too, so agreement is usually exact).
constexpr double kTextTol = 1e-6;
// Counting metrics and correlations: 1e-9 (summation order differs from numpy's pairwise sums).
constexpr double kNumTol = 1e-9;

}  // namespace

TEST(MetricsGolden, Tokenize13a) {
  for (const auto& c : golden().at("tokenize_13a"))
    EXPECT_EQ(tokenize_13a(c.at("input").get<std::string>()), c.at("output").get<std::string>())
        << "input: " << c.at("input");
}

TEST(MetricsGolden, CorpusBleu) {
  int n = 0;
  for (const auto& c : golden().at("bleu")) {
    auto hyps = c.at("hypotheses").get<std::vector<std::string>>();
    auto refs = c.at("references").get<std::vector<std::vector<std::string>>>();
    BleuScore b = corpus_bleu(hyps, refs);
    const std::string name = c.at("name");
    EXPECT_NEAR(b.score, c.at("score").get<double>(), kTextTol) << name;
    EXPECT_NEAR(b.bp, c.at("bp").get<double>(), kTextTol) << name;
    EXPECT_EQ(b.sys_len, c.at("sys_len").get<int64_t>()) << name;
    EXPECT_EQ(b.ref_len, c.at("ref_len").get<int64_t>()) << name;
    for (int k = 0; k < 4; ++k) {
      EXPECT_EQ(b.counts[k], c.at("counts")[k].get<int64_t>()) << name << " order " << k + 1;
      EXPECT_EQ(b.totals[k], c.at("totals")[k].get<int64_t>()) << name << " order " << k + 1;
      EXPECT_NEAR(b.precisions[k], c.at("precisions")[k].get<double>(), kTextTol) << name;
    }
    ++n;
  }
  EXPECT_GT(n, 40);
}

TEST(MetricsGolden, RougeTokenize) {
  for (const auto& c : golden().at("rouge_tokenize")) {
    const std::string in = c.at("input");
    EXPECT_EQ(rouge_tokenize(in, false), c.at("output").get<std::vector<std::string>>()) << in;
    EXPECT_EQ(rouge_tokenize(in, true), c.at("stem_output").get<std::vector<std::string>>()) << in;
  }
}

TEST(MetricsGolden, PorterStemmer) {
  int bad = 0, n = 0;
  for (const auto& c : golden().at("porter")) {
    const std::string w = c.at("word"), want = c.at("stem");
    const std::string got = porter_stem(w);
    if (got != want && ++bad <= 20) ADD_FAILURE() << w << ": got " << got << ", nltk " << want;
    ++n;
  }
  EXPECT_EQ(bad, 0) << "of " << n << " words";
  EXPECT_GT(n, 1000);
}

TEST(MetricsGolden, RougeL) {
  for (const auto& set : golden().at("rouge_l")) {
    std::vector<std::string> preds;
    std::vector<std::vector<std::string>> refs;
    for (const auto& it : set.at("items")) {
      auto r = it.at("references").get<std::vector<std::string>>();
      const std::string p = it.at("prediction");
      RougeScore a = rouge_l_multi(r, p, false), b = rouge_l_multi(r, p, true);
      EXPECT_NEAR(a.precision, it.at("precision").get<double>(), kTextTol) << p;
      EXPECT_NEAR(a.recall, it.at("recall").get<double>(), kTextTol) << p;
      EXPECT_NEAR(a.fmeasure, it.at("f").get<double>(), kTextTol) << p;
      EXPECT_NEAR(b.precision, it.at("stem_precision").get<double>(), kTextTol) << p;
      EXPECT_NEAR(b.recall, it.at("stem_recall").get<double>(), kTextTol) << p;
      EXPECT_NEAR(b.fmeasure, it.at("stem_f").get<double>(), kTextTol) << p;
      preds.push_back(p);
      refs.push_back(r);
    }
    const std::string name = set.at("name");
    EXPECT_NEAR(corpus_rouge_l(preds, refs, false), set.at("mean_f").get<double>(), kTextTol)
        << name;
    EXPECT_NEAR(corpus_rouge_l(preds, refs, true), set.at("mean_stem_f").get<double>(), kTextTol)
        << name;
  }
}

TEST(MetricsGolden, Classification) {
  for (const auto& c : golden().at("classification")) {
    auto y = c.at("labels").get<std::vector<int64_t>>();
    auto p = c.at("predictions").get<std::vector<int64_t>>();
    const std::string name = c.at("name");
    EXPECT_NEAR(accuracy(p, y), c.at("accuracy").get<double>(), kNumTol) << name;
    EXPECT_NEAR(matthews_corr(p, y), c.at("matthews").get<double>(), kNumTol) << name;
    if (c.contains("f1")) {
      EXPECT_NEAR(f1_binary(p, y), c.at("f1").get<double>(), kNumTol) << name;
    }
  }
}

TEST(MetricsGolden, Correlation) {
  for (const auto& c : golden().at("correlation")) {
    auto x = c.at("x").get<std::vector<double>>();
    auto y = c.at("y").get<std::vector<double>>();
    const std::string name = c.at("name");
    EXPECT_NEAR(pearson(x, y), c.at("pearson").get<double>(), kNumTol) << name;
    EXPECT_NEAR(spearman(x, y), c.at("spearman").get<double>(), kNumTol) << name;
    auto rx = c.at("ranks_x").get<std::vector<double>>();
    EXPECT_EQ(average_ranks(x), rx) << name;
  }
}

TEST(Metrics, HandComputed) {
  // 3 of 4 right; tp=1 fp=1 fn=0 -> F1 = 2/3; MCC of [[2,0],[1,1]] = 1/sqrt(3).
  std::vector<int64_t> y = {0, 0, 1, 0}, p = {0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(accuracy(p, y), 0.75);
  EXPECT_DOUBLE_EQ(f1_binary(p, y), 2.0 / 3.0);
  EXPECT_NEAR(matthews_corr(p, y), 1.0 / std::sqrt(3.0), 1e-15);
  EXPECT_EQ(average_ranks({3, 1, 3, 2}), (std::vector<double>{3.5, 1, 3.5, 2}));
  EXPECT_TRUE(std::isnan(pearson({1, 1, 1}, {1, 2, 3})));
  // Identical hypothesis and reference: BLEU 100, ROUGE-L 1.
  EXPECT_NEAR(corpus_bleu({"the cat sat on the mat"}, {{"the cat sat on the mat"}}).score, 100.0,
              1e-12);
  EXPECT_DOUBLE_EQ(rouge_l("The cat sat.", "the cat sat").fmeasure, 1.0);
  // LCS("a b c d", "a c x d") = 3 -> P = R = F = 3/4.
  EXPECT_DOUBLE_EQ(rouge_l("a b c d", "a c x d").fmeasure, 0.75);
}

TEST(MetricsBadInput, SizeMismatchAndEmpty) {
  EXPECT_THROW(accuracy({1, 0}, {1}), ld::Error);
  EXPECT_THROW(accuracy({}, {}), ld::Error);
  EXPECT_THROW(pearson({1.0}, {2.0}), ld::Error);
  EXPECT_THROW(corpus_bleu({"a"}, {}), ld::Error);
  EXPECT_THROW(corpus_bleu({"a"}, {{}}), ld::Error);
  EXPECT_THROW(corpus_rouge_l({"a"}, {{"a"}, {"b"}}), ld::Error);
}
