// Tests of layer_norm and rms_norm: hand-computed rows, f64 finite-difference gradients (with and
// without affine parameters, odd and non-contiguous shapes), f32 vs f64, and bad input.
#include <gtest/gtest.h>

#include <cmath>

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
