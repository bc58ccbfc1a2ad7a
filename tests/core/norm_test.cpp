// Tests of layer_norm and rms_norm: hand-computed rows, f64 finite-difference gradients (with and
// without affine parameters, odd and non-contiguous shapes), f32 vs f64, the saved statistics'
// dtype (f32 for bf16/f16 rows), bf16 gradients against an f32 reference, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/kernels.h"
#include "core/ops.h"
#include "tests/core/nn_test_util.h"
#include "tests/test_util.h"

using namespace ld;
using ld::test::expect_error;

TEST(LayerNormGolden, KnownRow) {
  // x = [1, 2, 3, 4]: mean 2.5, biased variance 1.25.
  Tensor x = Tensor::from_vector<double>({1, 2, 3, 4}, {1, 4});
  const double r = 1.0 / std::sqrt(1.25 + 1e-5);
  Tensor y = layer_norm(x, Tensor(), Tensor(), 1e-5);
  EXPECT_CLOSE(y, Tensor::from_vector<double>({-1.5 * r, -0.5 * r, 0.5 * r, 1.5 * r}, {1, 4}),
               1e-12, 1e-12);
  EXPECT_NEAR(1.5 / std::sqrt(1.25), 1.3416407864998738, 1e-15);
  Tensor w = Tensor::from_vector<double>({1, 2, 0.5, -1}, {4});
  Tensor b = Tensor::from_vector<double>({0, 1, 0, 2}, {4});
  Tensor yw = layer_norm(x, w, b, 0.0);
  const double s = 1.0 / std::sqrt(1.25);
  EXPECT_CLOSE(
      yw, Tensor::from_vector<double>({-1.5 * s, -1.0 * s + 1, 0.25 * s, -1.5 * s + 2}, {1, 4}),
      1e-12, 1e-12);
  // f32 with a large mean (two-pass variance, f64 accumulation) agrees with f64.
  Tensor big = add(test::randn({3, 257}, 1), 1000.0);
  EXPECT_CLOSE(layer_norm(big.to(DType::f32), Tensor(), Tensor(), 1e-5),
               layer_norm(big, Tensor(), Tensor(), 1e-5), 2e-3, 1e-3);
}

TEST(LayerNormGradCheck, AffineOddShapes) {
  for (const Shape& s : {Shape{3, 5, 7}, Shape{1, 1}, Shape{4, 1}, Shape{11}}) {
    const int64_t n = s.back();
    test::gradcheck(
        [](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2], 1e-5); },
        {test::randn(s, 2), test::randn({n}, 3), test::randn({n}, 4)});
  }
}

TEST(LayerNormGradCheck, NonContiguousAndMissingAffine) {
  Tensor xt = test::randn({3, 7, 5}, 5).transpose(1, 2);  // [3, 5, 7] view
  ASSERT_FALSE(xt.is_contiguous());
  test::gradcheck(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2], 1e-5); },
      {xt, test::randn({7}, 6), test::randn({7}, 7)});
  test::gradcheck(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], Tensor(), Tensor(), 1e-5); },
      {test::randn({6, 9}, 8)});
  test::gradcheck(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], Tensor(), 1e-5); },
      {test::randn({2, 3, 4}, 9), test::randn({4}, 10)});
  test::gradcheck(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], Tensor(), in[1], 1e-5); },
      {test::randn({5, 3}, 11), test::randn({3}, 12)});
}

TEST(LayerNormGradCheck, OnlyParametersRequireGrad) {
  Tensor x = test::randn({4, 6}, 13);  // constant input
  test::gradcheck([&](const std::vector<Tensor>& in) { return layer_norm(x, in[0], in[1], 1e-5); },
                  {test::randn({6}, 14), test::randn({6}, 15)});
}

TEST(LayerNormBadInput, ParameterShapeAndDtype) {
  Tensor x = Tensor::zeros({2, 5});
  expect_error([&] { layer_norm(x, Tensor::ones({6}), Tensor(), 1e-5); },
               {"weight", "[5]", "[2, 5]", "[6]"});
  expect_error([&] { layer_norm(x, Tensor(), Tensor::ones({5, 1}), 1e-5); }, {"bias", "[5, 1]"});
  expect_error([&] { layer_norm(x, Tensor::ones({5}, DType::f64), Tensor(), 1e-5); },
               {"dtype", "[5] f64", "[2, 5] f32"});
  expect_error([&] { layer_norm(Tensor::zeros({2}, DType::i64), Tensor(), Tensor(), 1e-5); },
               {"floating"});
}

TEST(RmsNormGolden, KnownRow) {
  // x = [3, 4]: mean square 12.5.
  Tensor x = Tensor::from_vector<double>({3, 4}, {1, 2});
  const double r = 1.0 / std::sqrt(12.5);
  EXPECT_CLOSE(rms_norm(x, Tensor(), 0.0), Tensor::from_vector<double>({3 * r, 4 * r}, {1, 2}),
               1e-12, 1e-12);
  EXPECT_NEAR(3 * r, 0.8485281374238571, 1e-15);
  Tensor w = Tensor::from_vector<double>({2, -0.5}, {2});
  const double re = 1.0 / std::sqrt(12.5 + 1e-6);
  EXPECT_CLOSE(rms_norm(x, w, 1e-6), Tensor::from_vector<double>({6 * re, -2 * re}, {1, 2}), 1e-12,
               1e-12);
  Tensor big = test::randn({5, 129}, 16);
  EXPECT_CLOSE(rms_norm(big.to(DType::f32), Tensor(), 1e-6), rms_norm(big, Tensor(), 1e-6), 1e-6,
               1e-5);
}

TEST(RmsNormGradCheck, WithAndWithoutWeight) {
  for (const Shape& s : {Shape{3, 5, 7}, Shape{2, 1}, Shape{13}}) {
    test::gradcheck([](const std::vector<Tensor>& in) { return rms_norm(in[0], in[1], 1e-6); },
                    {test::randn(s, 17), test::randn({s.back()}, 18)});
    test::gradcheck([](const std::vector<Tensor>& in) { return rms_norm(in[0], Tensor(), 1e-6); },
                    {test::randn(s, 19)});
  }
  Tensor xt = test::randn({4, 9, 3}, 20).permute({2, 0, 1});  // [3, 4, 9] view
  ASSERT_FALSE(xt.is_contiguous());
  test::gradcheck([](const std::vector<Tensor>& in) { return rms_norm(in[0], in[1], 1e-6); },
                  {xt, test::randn({9}, 21)});
}

TEST(RmsNormBadInput, WeightShape) {
  expect_error(
      [&] {
        rms_norm(Tensor::zeros({4, 8}), Tensor::ones({4}), 1e-6);
      },
      {"weight", "[8]", "[4, 8]", "[4]"});
  expect_error([&] { rms_norm(Tensor::zeros({4, 8}), Tensor::ones({8}), -1.0); }, {"eps"});
}

// ---------------- saved statistics: f32 for f32/bf16/f16 rows, f64 for f64 ----------------

// Rows with a large mean: bf16 has 8 mantissa bits, so a mean near 37 saved in bf16 would be off by
// up to 0.125 (half its spacing of 0.25 there), a shift of 0.125 * rstd in every recomputed xhat.
Tensor large_mean_rows(const Shape& s, uint64_t seed) {
  return add(test::randn(s, seed), 37.0).to(DType::bf16);
}

TEST(NormStatsGolden, Bf16RowsSaveUnroundedF32Statistics) {
  EXPECT_EQ(stat_dtype(DType::bf16), DType::f32);
  EXPECT_EQ(stat_dtype(DType::f16), DType::f32);
  EXPECT_EQ(stat_dtype(DType::f32), DType::f32);
  EXPECT_EQ(stat_dtype(DType::f64), DType::f64);
  const int64_t rows = 4, n = 33;
  Tensor x = large_mean_rows({rows, n}, 21);
  Tensor y = Tensor::empty({rows, n}, DType::bf16);
  Tensor mean = Tensor::empty({rows}, DType::f32), rstd = Tensor::empty({rows}, DType::f32);
  cpu::layer_norm_fwd(y, mean, rstd, x, Tensor(), Tensor(), 1e-5);
  Tensor rrms = Tensor::empty({rows}, DType::f32);
  cpu::rms_norm_fwd(y, rrms, x, Tensor(), 1e-5);
  // f64 statistics of the same bf16 values; the saved ones are these rounded to f32 (2^-24).
  const std::vector<double> xv = x.to(DType::f64).to_vector<double>();
  const std::vector<float> mv = mean.to_vector<float>(), rv = rstd.to_vector<float>(),
                           qv = rrms.to_vector<float>();
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0, ss = 0, sq = 0;
    for (int64_t j = 0; j < n; ++j) s += xv[r * n + j];
    const double mu = s / n;
    for (int64_t j = 0; j < n; ++j) {
      ss += (xv[r * n + j] - mu) * (xv[r * n + j] - mu);
      sq += xv[r * n + j] * xv[r * n + j];
    }
    EXPECT_NEAR(mv[r], mu, 1e-7 * std::abs(mu)) << "row " << r;
    EXPECT_NEAR(rv[r], 1.0 / std::sqrt(ss / n + 1e-5), 1e-6) << "row " << r;
    EXPECT_NEAR(qv[r], 1.0 / std::sqrt(sq / n + 1e-5), 1e-8) << "row " << r;
    // The bf16 rounding of the mean is what the f32 statistics avoid.
    EXPECT_GT(std::abs(static_cast<float>(bf16(static_cast<float>(mu))) - mu), 1e-4)
        << "row " << r << ": pick rows whose mean bf16 cannot hold";
  }
  // f64 rows keep f64 statistics.
  Tensor xd = x.to(DType::f64), yd = Tensor::empty({rows, n}, DType::f64);
  Tensor md = Tensor::empty({rows}, DType::f64), rd = Tensor::empty({rows}, DType::f64);
  cpu::layer_norm_fwd(yd, md, rd, xd, Tensor(), Tensor(), 1e-5);
  EXPECT_CLOSE(md, mean.to(DType::f64), 1e-5, 1e-7);
}

TEST(NormStatsBadInput, StatisticsInTheInputDtypeAreRefused) {
  Tensor x = large_mean_rows({2, 8}, 22), y = Tensor::empty({2, 8}, DType::bf16);
  Tensor m16 = Tensor::empty({2}, DType::bf16), m32 = Tensor::empty({2}, DType::f32);
  expect_error([&] { cpu::layer_norm_fwd(y, m16, m32, x, Tensor(), Tensor(), 1e-5); },
               {"layer_norm_fwd", "statistics", "[2] bf16", "must be f32"});
  expect_error([&] { cpu::rms_norm_fwd(y, m16, x, Tensor(), 1e-5); }, {"rms_norm_fwd", "f32"});
  Tensor xd = x.to(DType::f64), yd = Tensor::empty({2, 8}, DType::f64);
  expect_error([&] { cpu::rms_norm_fwd(yd, m32, xd, Tensor(), 1e-5); }, {"must be f64"});
}

// Runs f forward and backward (upstream gradient dy) in dtype dt on the same bf16 inputs; returns
// the output and every input's gradient, in f32.
std::vector<Tensor> fwd_bwd(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                            const std::vector<Tensor>& in_bf16, const Tensor& dy_bf16, DType dt) {
  std::vector<Tensor> in;
  for (const Tensor& t : in_bf16) in.push_back(t.to(dt).clone().detach().set_requires_grad(true));
  Tensor y = f(in);
  y.backward(dy_bf16.to(dt));
  std::vector<Tensor> out = {y.detach().to(DType::f32)};
  for (const Tensor& t : in) out.push_back(t.grad().to(DType::f32));
  return out;
}

// bf16 rows through the op layer (f32 statistics, f64 accumulation, one rounding of each result)
// match the f32 op on the same bf16 values within bf16 output rounding (2^-9 relative) plus a
// little; a bf16 mean would put xhat off by up to 0.125 * rstd and dw by far more than that.
TEST(NormStatsGolden, Bf16GradientsMatchF32Reference) {
  for (int64_t n : {7, 64, 300}) {
    SCOPED_TRACE("n = " + std::to_string(n));
    Tensor x = large_mean_rows({5, n}, 23), xr = test::randn({5, n}, 27).to(DType::bf16);
    Tensor w = test::randn({n}, 24).to(DType::bf16), b = test::randn({n}, 25).to(DType::bf16);
    Tensor dy = test::randn({5, n}, 26).to(DType::bf16);
    auto ln = [](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2], 1e-5); };
    auto rms = [](const std::vector<Tensor>& in) { return rms_norm(in[0], in[1], 1e-6); };
    const char* what[] = {"y", "dx", "dw", "db"};
    std::vector<Tensor> ref = fwd_bwd(ln, {x, w, b}, dy, DType::f32);
    std::vector<Tensor> got = fwd_bwd(ln, {x, w, b}, dy, DType::bf16);
    for (size_t i = 0; i < ref.size(); ++i) {
      SCOPED_TRACE(std::string("layer_norm ") + what[i]);
      EXPECT_CLOSE(got[i], ref[i], 1e-3, 8e-3);
    }
    ref = fwd_bwd(rms, {xr, w}, dy, DType::f32);
    got = fwd_bwd(rms, {xr, w}, dy, DType::bf16);
    for (size_t i = 0; i < ref.size(); ++i) {
      SCOPED_TRACE(std::string("rms_norm ") + what[i]);
      EXPECT_CLOSE(got[i], ref[i], 1e-3, 8e-3);
    }
  }
}
