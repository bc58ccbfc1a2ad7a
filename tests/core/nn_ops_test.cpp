// Tests of the nn ops embedding, dropout, cross_entropy, mse_loss and the CPU AdamW kernel:
// hand-computed forward values, f64 finite-difference gradients, and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/kernels.h"
#include "core/ops.h"
#include "core/philox.h"
#include "tests/core/nn_test_util.h"
#include "tests/test_util.h"

using namespace ld;
using ld::test::expect_error;
using ld::test::ids_tensor;

// ---------------- embedding ----------------

TEST(EmbeddingGolden, GathersRows) {
  Tensor w = Tensor::from_vector<float>({0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32}, {4, 3});
  Tensor y = embedding(w, ids_tensor({2, 0, 3, 3}, {2, 2}));
  EXPECT_EQ(y.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(y.to_vector<float>(),
            (std::vector<float>{20, 21, 22, 0, 1, 2, 30, 31, 32, 30, 31, 32}));
  // A transposed (non-contiguous) weight gathers the same rows.
  Tensor wt = w.t().contiguous().t();
  EXPECT_FALSE(wt.is_contiguous());
  EXPECT_EQ(embedding(wt, ids_tensor({1}, {1})).to_vector<float>(),
            (std::vector<float>{10, 11, 12}));
}

TEST(EmbeddingGradCheck, RandomIdsWithRepeats) {
  Tensor ids = ids_tensor({3, 0, 6, 3, 3, 1, 5, 0, 2, 6, 4, 3}, {3, 4});
  test::gradcheck([&](const std::vector<Tensor>& in) { return embedding(in[0], ids); },
                  {test::randn({7, 5}, 1)});
}

TEST(EmbeddingGradCheck, NonContiguousWeightAndScalarId) {
  Tensor wt = test::randn({5, 7}, 2).t();  // [7, 5] view
  ASSERT_FALSE(wt.is_contiguous());
  Tensor ids = ids_tensor({4, 4, 0}, {3});
  test::gradcheck([&](const std::vector<Tensor>& in) { return embedding(in[0], ids); }, {wt});
  Tensor id0 = Tensor::full({}, 6, DType::i64);
  test::gradcheck([&](const std::vector<Tensor>& in) { return embedding(in[0], id0); },
                  {test::randn({7, 3}, 3)});
}

TEST(EmbeddingGradCheck, PaddingIdxRowGetsNoGradient) {
  Tensor w = test::randn({5, 3}, 4).set_requires_grad(true);
  Tensor ids = ids_tensor({2, 1, 2, 4, 1}, {5});
  Tensor y = embedding(w, ids, /*padding_idx=*/2);
  // Forward still gathers the padding row.
  EXPECT_CLOSE(y.select(0, 0), w.detach().select(0, 2), 0, 0);
  Tensor g = test::randn({5, 3}, 5);
  sum(mul(y, g)).backward();
  std::vector<double> gw = w.grad().to_vector<double>(), gv = g.to_vector<double>();
  for (int j = 0; j < 3; ++j) {
    EXPECT_EQ(gw[0 * 3 + j], 0.0);
    EXPECT_NEAR(gw[1 * 3 + j], gv[1 * 3 + j] + gv[4 * 3 + j], 1e-12);
    EXPECT_EQ(gw[2 * 3 + j], 0.0) << "padding row received gradient";
    EXPECT_EQ(gw[3 * 3 + j], 0.0);
    EXPECT_NEAR(gw[4 * 3 + j], gv[3 * 3 + j], 1e-12);
  }
}

TEST(EmbeddingBadInput, OutOfRangeIdNamesIdAndVocab) {
  Tensor w = Tensor::zeros({7, 4});
  expect_error(
      [&] {
        embedding(w, ids_tensor({1, 7}, {2}));
      },
      {"id 7", "vocabulary size 7", "[7, 4]"});
  expect_error([&] { embedding(w, ids_tensor({-1}, {1})); }, {"id -1", "vocabulary size 7"});
  expect_error([&] { embedding(w, Tensor::zeros({2}, DType::f32)); }, {"i64", "[2] f32"});
  expect_error([&] { embedding(Tensor::zeros({7}), ids_tensor({1}, {1})); }, {"[V, d]", "[7]"});
  expect_error([&] { embedding(w, ids_tensor({1}, {1}), 9); }, {"padding_idx 9"});
}

// ---------------- dropout ----------------

TEST(DropoutGolden, MaskEqualsPhiloxDraws) {
  const uint64_t seed = 42, offset = 7;
  const double p = 0.3;
  Tensor x = test::randn({37, 53}, 6, DType::f32);
  Tensor y = dropout(x, p, true, seed, offset);
  std::vector<float> xv = x.to_vector<float>(), yv = y.to_vector<float>();
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  for (size_t i = 0; i < xv.size(); ++i) {
    const bool keep = dropout_keep(seed, offset, i, static_cast<float>(p));
    ASSERT_EQ(yv[i], keep ? xv[i] * scale : 0.0f) << "element " << i;
  }
  // Same (seed, offset): same mask; another offset: another mask.
  EXPECT_EQ(dropout(x, p, true, seed, offset).to_vector<float>(), yv);
  EXPECT_NE(dropout(x, p, true, seed, offset + 1).to_vector<float>(), yv);
}

TEST(DropoutGolden, KeptFractionNearOneMinusP) {
  Tensor x = Tensor::ones({300, 200});
  for (double p : {0.1, 0.5, 0.9}) {
    Tensor y = dropout(x, p, true, 1234, 0);
    double kept = sum(ne(y, 0.0).to(DType::f64)).item() / 60000.0;
    // Binomial std is sqrt(p(1-p)/60000) < 0.0021; 0.01 is about 5 sigma.
    EXPECT_NEAR(kept, 1 - p, 0.01) << "p = " << p;
    // Inverted dropout keeps the mean.
    EXPECT_NEAR(mean(y).item(), 1.0, 0.03) << "p = " << p;
  }
}

TEST(DropoutGolden, IdentityAndAllDropped) {
  Tensor x = test::randn({4, 5}, 7, DType::f32);
  EXPECT_TRUE(dropout(x, 0.5, false, 1, 0).shares_storage(x));
  EXPECT_TRUE(dropout(x, 0.0, true, 1, 0).shares_storage(x));
  Tensor xg = test::randn({4, 5}, 8).set_requires_grad(true);
  Tensor y = dropout(xg, 1.0, true, 1, 0);
  EXPECT_EQ(sum(abs(y)).item(), 0.0);
  sum(y).backward();
  EXPECT_EQ(sum(abs(xg.grad())).item(), 0.0);
  EXPECT_TRUE(std::isfinite(sum(xg.grad()).item()));
}

TEST(DropoutGradCheck, NonContiguousInput) {
  Tensor xt = test::randn({7, 5}, 9).t();  // [5, 7] view
  test::gradcheck([](const std::vector<Tensor>& in) { return dropout(in[0], 0.4, true, 99, 3); },
                  {xt});
  // The backward uses the forward's mask: grad = keep / (1 - p).
  Tensor x = test::randn({6, 11}, 10).set_requires_grad(true);
  Tensor y = dropout(x, 0.25, true, 5, 2);
  sum(y).backward();
  std::vector<double> gv = x.grad().to_vector<double>();
  for (size_t i = 0; i < gv.size(); ++i)
    EXPECT_EQ(gv[i], dropout_keep(5, 2, i, 0.25f) ? 1.0 / 0.75 : 0.0) << i;
}

TEST(DropoutBadInput, ProbabilityOutOfRange) {
  Tensor x = Tensor::ones({2, 3});
  expect_error([&] { dropout(x, -0.1, true, 0, 0); }, {"[0, 1]", "-0.1", "[2, 3]"});
  expect_error([&] { dropout(x, 1.5, true, 0, 0); }, {"1.5"});
  expect_error([&] { dropout(Tensor::ones({2}, DType::i64), 0.5, true, 0, 0); }, {"floating"});
}

// ---------------- cross_entropy ----------------

TEST(CrossEntropyGolden, KnownRowAndIgnoredRows) {
  Tensor logits = Tensor::from_vector<double>({1, 2, 3, 5, -1, 0.5, 0, 0, 0}, {3, 3});
  // Row 0: log(e^1 + e^2 + e^3) - 3.
  const double l0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0;
  EXPECT_NEAR(l0, 0.40760596444438, 1e-12);
  EXPECT_NEAR(cross_entropy(logits.narrow(0, 0, 1), ids_tensor({2}, {1})).item(), l0, 1e-12);
  // Row 2 (uniform) with target 1: log 3. Row 1 ignored: mean over rows 0 and 2.
  Tensor t = ids_tensor({2, -100, 1}, {3});
  EXPECT_NEAR(cross_entropy(logits, t).item(), (l0 + std::log(3.0)) / 2, 1e-12);
  // Custom ignore_index.
  EXPECT_NEAR(cross_entropy(logits, ids_tensor({2, 7, 1}, {3}), 7).item(), (l0 + std::log(3.0)) / 2,
              1e-12);
  // f32 agrees with f64.
  EXPECT_NEAR(cross_entropy(logits.to(DType::f32), t).item(), (l0 + std::log(3.0)) / 2, 1e-6);
}

TEST(CrossEntropyGolden, GradientIsSoftmaxMinusOneHotOverCount) {
  Tensor logits = Tensor::from_vector<double>({1, 2, 3, 4, 4, 4}, {2, 3});
  Tensor x = logits.clone().detach().set_requires_grad(true);
  cross_entropy(x, ids_tensor({0, 2}, {2})).backward();
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  std::vector<double> expect = {(std::exp(1.0) / z - 1) / 2,
                                std::exp(2.0) / z / 2,
                                std::exp(3.0) / z / 2,
                                1.0 / 6,
                                1.0 / 6,
                                (1.0 / 3 - 1) / 2};
  EXPECT_CLOSE(x.grad(), Tensor::from_vector<double>(expect, {2, 3}), 1e-12, 1e-12);
}

TEST(CrossEntropyGolden, AllIgnoredIsNanWithZeroGradient) {
  Tensor x = test::randn({3, 4}, 11).set_requires_grad(true);
  Tensor l = cross_entropy(x, ids_tensor({-100, -100, -100}, {3}));
  EXPECT_TRUE(std::isnan(l.item()));
  l.backward();
  EXPECT_EQ(sum(abs(x.grad())).item(), 0.0);
}

// The saved lse and per-row losses are f32 for bf16 logits (f64 for f64): logits near 40 put a
// bf16 lse off by up to 0.125, which would scale every softmax probability by up to e^0.125.
TEST(CrossEntropyGolden, Bf16LogitsSaveF32LseAndMatchF32Reference) {
  const int64_t N = 6, C = 37;
  Tensor logits = add(test::randn({N, C}, 14, DType::f64, 3.0), 40.0).to(DType::bf16);
  Tensor t = ids_tensor({0, 5, 36, -100, 3, 8}, {N});
  // Kernel contract: lse/loss in f32, equal to the f64 values of the same bf16 logits.
  Tensor loss = Tensor::empty({N}, DType::f32), lse = Tensor::empty({N}, DType::f32);
  cpu::cross_entropy_fwd(loss, lse, logits, t, -100);
  const std::vector<double> xv = logits.to(DType::f64).to_vector<double>();
  const std::vector<float> lv = lse.to_vector<float>(), ls = loss.to_vector<float>();
  const std::vector<int64_t> tv = t.to_vector<int64_t>();
  for (int64_t r = 0; r < N; ++r) {
    double m = -1e300, s = 0;
    for (int64_t j = 0; j < C; ++j) m = std::max(m, xv[r * C + j]);
    for (int64_t j = 0; j < C; ++j) s += std::exp(xv[r * C + j] - m);
    const double l = m + std::log(s);
    EXPECT_NEAR(lv[r], l, 1e-7 * l) << "row " << r;
    EXPECT_NEAR(ls[r], tv[r] == -100 ? 0.0 : l - xv[r * C + tv[r]], 1e-5) << "row " << r;
  }
  expect_error([&] { cpu::cross_entropy_fwd(loss, lse.to(DType::bf16), logits, t, -100); },
               {"cross_entropy_fwd", "statistics", "must be f32"});
  expect_error(
      [&] {
        cpu::cross_entropy_bwd(Tensor::empty({N, C}, DType::bf16), Tensor::empty({N}, DType::bf16),
                               logits, lse, t, -100);
      },
      {"cross_entropy_bwd", "must be f32"});
  // Op layer: bf16 loss and gradient against the f32 op on the same bf16 values (bf16 output
  // rounding, 2^-9 relative; the gradients span a few decades, so the absolute part is tiny).
  Tensor x16 = logits.clone().detach().set_requires_grad(true);
  Tensor x32 = logits.to(DType::f32).detach().set_requires_grad(true);
  Tensor l16 = cross_entropy(x16, t), l32 = cross_entropy(x32, t);
  EXPECT_EQ(l16.dtype(), DType::bf16);
  EXPECT_NEAR(l16.to(DType::f64).item(), l32.item(), 8e-3 * std::abs(l32.item()));
  l16.backward();
  l32.backward();
  EXPECT_CLOSE(x16.grad().to(DType::f32), x32.grad(), 1e-7, 8e-3);
}

TEST(CrossEntropyGradCheck, OddShapeNonContiguousWithIgnoredRow) {
  Tensor xt = test::randn({5, 6}, 12, DType::f64, 2.0).t();  // [6, 5] view
  Tensor t = ids_tensor({4, 0, -100, 2, 2, 1}, {6});
  test::gradcheck([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t); }, {xt});
  Tensor t2 = ids_tensor({0, 3, 6}, {3});
  test::gradcheck([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t2, 3); },
                  {test::randn({3, 7}, 13)});
}

TEST(CrossEntropyBadInput, TargetsOutOfRangeAndShapes) {
  Tensor logits = Tensor::zeros({3, 5});
  expect_error(
      [&] {
        cross_entropy(logits, ids_tensor({0, 5, 1}, {3}));
      },
      {"target 5", "row 1", "5 classes", "[3, 5]"});
  expect_error([&] { cross_entropy(logits, ids_tensor({0, -2, 1}, {3})); }, {"target -2"});
  expect_error([&] { cross_entropy(logits, ids_tensor({0, 1}, {2})); }, {"[3]", "[3, 5]", "[2]"});
  expect_error([&] { cross_entropy(logits, Tensor::zeros({3})); }, {"i64", "[3] f32"});
  expect_error(
      [&] {
        cross_entropy(Tensor::zeros({2, 3, 5}), ids_tensor({0, 1}, {2}));
      },
      {"[N, C]", "[2, 3, 5]"});
}

// ---------------- mse_loss ----------------

TEST(MseLossGolden, KnownValues) {
  Tensor a = Tensor::from_vector<float>({1, 2, 3}, {3});
  Tensor b = Tensor::from_vector<float>({0, 2, 5}, {3});
  EXPECT_NEAR(mse_loss(a, b).item(), 5.0 / 3.0, 1e-6);
}

TEST(MseLossGradCheck, BothInputsNonContiguous) {
  test::gradcheck([](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1]); },
                  {test::randn({5, 3}, 14).t(), test::randn({3, 5}, 15)});
}

TEST(MseLossBadInput, ShapeAndDtypeMismatch) {
  expect_error(
      [&] {
        mse_loss(Tensor::zeros({2, 3}), Tensor::zeros({3, 2}));
      },
      {"[2, 3]", "[3, 2]"});
  expect_error(
      [&] {
        mse_loss(Tensor::zeros({2, 3}), Tensor::zeros({2, 3}, DType::f64));
      },
      {"dtype", "f64"});
}

// ---------------- AdamW (CPU kernel) ----------------

// Three steps of torch.optim.AdamW (lr 0.1, betas (0.9, 0.999), eps 1e-8, weight_decay 0.01),
// expected values computed by hand from the update rule (scalar Python, f64).
TEST(AdamWGolden, ThreeStepsMatchHandComputed) {
  const std::vector<std::vector<double>> grads = {
      {0.1, -0.2, 0.3}, {0.05, 0.4, -0.1}, {-0.3, 0.1, 0.2}};
  const std::vector<std::vector<double>> expect_p = {
      {0.399500009999999, -0.8990000049999998, 1.8980000033333333},
      {0.30588255790187063, -0.9347113565410368, 1.8560801479247475},
      {0.3402990241624869, -0.9753417636022937, 1.7939154214248811}};
  const std::vector<double> expect_m = {-0.017399999999999992, 0.029799999999999993,
                                        0.03529999999999999};
  const std::vector<double> expect_v = {0.00010247751000000009, 0.00020976004000000022,
                                        0.00013981009000000013};
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-12 : 2e-6;
    Tensor p = Tensor::from_vector<double>({0.5, -1.0, 2.0}, {3}).to(dt);
    Tensor m = Tensor::zeros({3}, dt), v = Tensor::zeros({3}, dt);
    for (int s = 0; s < 3; ++s) {
      Tensor g = Tensor::from_vector<double>(grads[s], {3}).to(dt);
      cpu::adamw_step(p, g, m, v, 0.1, 0.9, 0.999, 1e-8, 0.01, s + 1);
      SCOPED_TRACE(fmt::format("{} step {}", dtype_name(dt), s + 1));
      EXPECT_CLOSE(p, Tensor::from_vector<double>(expect_p[s], {3}), tol, tol);
    }
    EXPECT_CLOSE(m, Tensor::from_vector<double>(expect_m, {3}), tol, tol);
    EXPECT_CLOSE(v, Tensor::from_vector<double>(expect_v, {3}), tol * 1e-2, tol);
  }
}

TEST(AdamWGolden, StridedParameterView) {
  // The same update on a transposed view as on a contiguous copy.
  Tensor base = test::randn({4, 3}, 16), g = test::randn({3, 4}, 17);
  Tensor pv = base.t(), pc = base.t().contiguous();
  Tensor m1 = Tensor::zeros({3, 4}, DType::f64), v1 = Tensor::zeros({3, 4}, DType::f64);
  Tensor m2 = Tensor::zeros({3, 4}, DType::f64), v2 = Tensor::zeros({3, 4}, DType::f64);
  for (int s = 1; s <= 2; ++s) {
    cpu::adamw_step(pv, g, m1, v1, 1e-2, 0.9, 0.95, 1e-6, 0.1, s);
    cpu::adamw_step(pc, g, m2, v2, 1e-2, 0.9, 0.95, 1e-6, 0.1, s);
  }
  EXPECT_CLOSE(pv, pc, 0, 0);
}

TEST(AdamWBadInput, StepMustBePositive) {
  Tensor p = Tensor::zeros({2}), g = Tensor::zeros({2}), m = Tensor::zeros({2}),
         v = Tensor::zeros({2});
  expect_error([&] { cpu::adamw_step(p, g, m, v, 0.1, 0.9, 0.999, 1e-8, 0.0, 0); }, {"step"});
}
