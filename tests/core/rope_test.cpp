// Tests of rope (Llama rotate-half): identity at position 0, hand-computed rotations, [T] vs [B, T]
// positions, norm preservation, f32 vs f64, f64 finite-difference gradients, and bad input.
#include <gtest/gtest.h>

#include <cmath>

#include "core/ops.h"
#include "tests/core/nn_test_util.h"
#include "tests/test_util.h"

using namespace ld;
using ld::test::expect_error;
using ld::test::ids_tensor;

TEST(RopeGolden, PositionZeroIsIdentity) {
  Tensor x = test::randn({2, 3, 4, 8}, 1);
  Tensor y = rope(x, ids_tensor({0, 0, 0, 0}, {4}));
  EXPECT_CLOSE(y, x, 0, 0);
}

TEST(RopeGolden, HandComputedRotations) {
  // D = 2: one frequency (1), a plain 2-D rotation by `pos` radians.
  Tensor x = Tensor::from_vector<double>({1, 2, 1, 2}, {1, 1, 2, 2});
  Tensor y = rope(x, ids_tensor({1, 5}, {2}));
  const double c1 = std::cos(1.0), s1 = std::sin(1.0), c5 = std::cos(5.0), s5 = std::sin(5.0);
  EXPECT_CLOSE(y,
               Tensor::from_vector<double>({c1 - 2 * s1, 2 * c1 + s1, c5 - 2 * s5, 2 * c5 + s5},
                                           {1, 1, 2, 2}),
               1e-15, 1e-14);
  // D = 4, theta = 100: inv_freq = [1, 100^(-1/2)] = [1, 0.1]; pairs (x0, x2) and (x1, x3).
  Tensor x4 = Tensor::from_vector<double>({1, 2, 3, 4}, {1, 1, 1, 4});
  Tensor y4 = rope(x4, ids_tensor({3}, {1, 1}), 100.0);
  const double a = 3.0, b = 0.3;
  EXPECT_CLOSE(y4,
               Tensor::from_vector<double>(
                   {1 * std::cos(a) - 3 * std::sin(a), 2 * std::cos(b) - 4 * std::sin(b),
                    3 * std::cos(a) + 1 * std::sin(a), 4 * std::cos(b) + 2 * std::sin(b)},
                   {1, 1, 1, 4}),
               1e-15, 1e-14);
}

TEST(RopeGolden, PositionsPerBatchAndNorm) {
  Tensor x = test::randn({2, 3, 5, 6}, 2);
  Tensor p1 = ids_tensor({0, 1, 2, 7, 100}, {5});
  Tensor pb = ids_tensor({0, 1, 2, 7, 100, 0, 1, 2, 7, 100}, {2, 5});
  EXPECT_CLOSE(rope(x, p1), rope(x, pb), 0, 0);
  // Different positions per batch row: batch 1 shifted by 3 equals rope with those positions.
  Tensor ps = ids_tensor({0, 1, 2, 3, 4, 3, 4, 5, 6, 7}, {2, 5});
  Tensor y = rope(x, ps);
  EXPECT_CLOSE(y.select(0, 1),
               rope(x.narrow(0, 1, 1), ids_tensor({3, 4, 5, 6, 7}, {5})).select(0, 0), 0, 0);
  // A rotation keeps each pair's norm, so each row's norm.
  EXPECT_CLOSE(sum(square(y), {-1}), sum(square(x), {-1}), 1e-12, 1e-12);
  // Inverse: rope at p then the backward rotation returns x (checked through the gradient of a
  // linear functional: grad = R^T g).
  Tensor xg = x.clone().detach().set_requires_grad(true);
  Tensor g = test::randn(x.shape(), 3);
  rope(xg, ps).backward(rope(g, ps));
  EXPECT_CLOSE(xg.grad(), g, 1e-13, 1e-12);
}

TEST(RopeGolden, Float32MatchesFloat64) {
  Tensor x = test::randn({1, 2, 3, 16}, 4);
  Tensor p = ids_tensor({0, 17, 511}, {3});
  // The angle is formed in f64 for f32 too, so only the final f32 rounding differs.
  EXPECT_CLOSE(rope(x.to(DType::f32), p), rope(x, p), 1e-6, 1e-6);
}

TEST(RopeGradCheck, NonContiguousOddSizes) {
  Tensor x = test::randn({2, 5, 3, 6}, 5).transpose(1, 2);  // [2, 3, 5, 6] view
  ASSERT_FALSE(x.is_contiguous());
  Tensor p = ids_tensor({4, 0, 9, 2, 1, 3, 3, 8, 0, 5}, {2, 5});
  test::gradcheck([&](const std::vector<Tensor>& in) { return rope(in[0], p, 500.0); }, {x});
  test::gradcheck(
      [&](const std::vector<Tensor>& in) {
        return rope(in[0], ids_tensor({2, 6, 1}, {3}));
      },
      {test::randn({1, 1, 3, 2}, 6)});
}

TEST(RopeBadInput, ShapesAndDtypes) {
  Tensor x = Tensor::zeros({2, 3, 5, 6});
  expect_error(
      [&] {
        rope(Tensor::zeros({2, 3, 5, 7}), ids_tensor({0, 1, 2, 3, 4}, {5}));
      },
      {"D even", "[2, 3, 5, 7]"});
  expect_error([&] { rope(x, ids_tensor({0, 1, 2, 3}, {4})); }, {"[4]", "[2, 3, 5, 6]"});
  expect_error(
      [&] {
        rope(x, ids_tensor({0, 1, 2, 3, 4, 0, 1, 2, 3, 4}, {5, 2}));
      },
      {"[5, 2]", "[2, 5]"});
  expect_error([&] { rope(x, Tensor::zeros({5})); }, {"i64", "[5] f32"});
  expect_error(
      [&] {
        rope(Tensor::zeros({3, 5, 6}), ids_tensor({0, 1, 2, 3, 4}, {5}));
      },
      {"[B, H, T, D]", "[3, 5, 6]"});
}
