// Tests of softmax and log_softmax: hand-computed rows, additive (broadcast, -inf) masks, fully
// masked rows, dims other than the last, f64 finite-difference gradients, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/ops.h"
#include "tests/core/nn_test_util.h"
#include "tests/test_util.h"

using namespace ld;
using ld::test::expect_error;

namespace {
const double kInf = std::numeric_limits<double>::infinity();

// Reference softmax over `dim` of a contiguous f64 tensor, by explicit loops.
Tensor ref_softmax(const Tensor& x, int64_t dim, bool log) {
  Tensor xc = x.contiguous();
  std::vector<double> v = xc.to_vector<double>(), out(v.size());
  int64_t outer = 1, inner = 1, n = x.size(dim);
  for (int64_t d = 0; d < dim; ++d) outer *= x.size(d);
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double m = -kInf, s = 0;
      for (int64_t j = 0; j < n; ++j) m = std::max(m, v[(o * n + j) * inner + i]);
      for (int64_t j = 0; j < n; ++j) s += std::exp(v[(o * n + j) * inner + i] - m);
      for (int64_t j = 0; j < n; ++j) {
        double e = v[(o * n + j) * inner + i] - m;
        out[(o * n + j) * inner + i] = log ? e - std::log(s) : std::exp(e) / s;
      }
    }
  return Tensor::from_vector<double>(out, x.shape());
}
}  // namespace

TEST(SoftmaxGolden, KnownRow) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3}, {3});
  EXPECT_CLOSE(softmax(x),
               Tensor::from_vector<double>(
                   {0.09003057317038046, 0.24472847105479767, 0.6652409557748219}, {3}),
               1e-15, 1e-13);
  EXPECT_CLOSE(log_softmax(x),
               Tensor::from_vector<double>(
                   {-2.4076059644443806, -1.4076059644443806, -0.4076059644443806}, {3}),
               1e-15, 1e-13);
  // f32, and a large shift (max subtraction) changes nothing.
  EXPECT_CLOSE(softmax(add(x, 1000.0).to(DType::f32)), softmax(x), 1e-7, 1e-6);
}

TEST(SoftmaxGolden, AdditiveMaskWithMinusInf) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3}, {3});
  Tensor m = Tensor::from_vector<double>({0, -kInf, 0}, {3});
  const double e1 = std::exp(1.0), e3 = std::exp(3.0);
  EXPECT_CLOSE(softmax(x, -1, m),
               Tensor::from_vector<double>({e1 / (e1 + e3), 0, e3 / (e1 + e3)}, {3}), 1e-15, 1e-13);
  Tensor ls = log_softmax(x, -1, m);
  EXPECT_NEAR(test::at(ls, 0), 1 - std::log(e1 + e3), 1e-13);
  EXPECT_EQ(test::at(ls, 1), -kInf);
  // A finite mask just adds.
  Tensor mf = Tensor::from_vector<double>({0.5, -1, 2}, {3});
  EXPECT_CLOSE(softmax(x, -1, mf), softmax(add(x, mf)), 1e-15, 1e-13);
}

TEST(SoftmaxGolden, FullyMaskedRowIsZeroNotNan) {
  Tensor x = test::randn({2, 4}, 1).set_requires_grad(true);
  Tensor m = Tensor::from_vector<double>({0, 0, 0, 0, -kInf, -kInf, -kInf, -kInf}, {2, 4});
  Tensor y = softmax(x, -1, m);
  std::vector<double> yv = y.to_vector<double>();
  for (int j = 0; j < 4; ++j) EXPECT_EQ(yv[4 + j], 0.0);
  EXPECT_NEAR(yv[0] + yv[1] + yv[2] + yv[3], 1.0, 1e-15);
  sum(mul(y, test::randn({2, 4}, 2))).backward();
  std::vector<double> gv = x.grad().to_vector<double>();
  for (int j = 0; j < 4; ++j) EXPECT_EQ(gv[4 + j], 0.0);
  Tensor x2 = test::randn({2, 4}, 3).set_requires_grad(true);
  Tensor ly = log_softmax(x2, -1, m);
  EXPECT_EQ(test::at(ly, 5), -kInf);
  ly.backward(test::randn({2, 4}, 16));  // a non-zero upstream gradient on the masked row too
  std::vector<double> g2 = x2.grad().to_vector<double>();
  for (int j = 0; j < 4; ++j) EXPECT_EQ(g2[4 + j], 0.0);
}

TEST(SoftmaxGolden, EveryDimMatchesLoopReference) {
  Tensor x = test::randn({3, 4, 5}, 4);
  for (int64_t d = 0; d < 3; ++d) {
    SCOPED_TRACE(fmt::format("dim {}", d));
    EXPECT_CLOSE(softmax(x, d), ref_softmax(x, d, false), 1e-15, 1e-12);
    EXPECT_CLOSE(log_softmax(x, d), ref_softmax(x, d, true), 1e-13, 1e-12);
  }
  EXPECT_CLOSE(softmax(x, -3), ref_softmax(x, 0, false), 1e-15, 1e-12);
  // Non-contiguous input.
  Tensor xt = x.transpose(0, 2);
  EXPECT_CLOSE(softmax(xt, 1), ref_softmax(xt.contiguous(), 1, false), 1e-15, 1e-12);
}

TEST(SoftmaxGolden, BroadcastMaskOnInnerDim) {
  // Mask [4, 1] broadcast over x [3, 4, 5]; softmax over dim 1 (not last) with it.
  Tensor x = test::randn({3, 4, 5}, 5), m = test::randn({4, 1}, 6);
  EXPECT_CLOSE(softmax(x, 1, m), ref_softmax(add(x, m), 1, false), 1e-15, 1e-12);
  EXPECT_CLOSE(log_softmax(x, 0, m), ref_softmax(add(x, m), 0, true), 1e-13, 1e-12);
}

TEST(SoftmaxGradCheck, AllDimsNonContiguous) {
  // A fresh input per check: gradcheck accumulates into the input's .grad.
  auto xt = [] { return test::randn({5, 4, 3}, 7).permute({2, 1, 0}); };  // [3, 4, 5] view
  ASSERT_FALSE(xt().is_contiguous());
  for (int64_t d : {0, 1, 2, -1}) {
    test::gradcheck([d](const std::vector<Tensor>& in) { return softmax(in[0], d); }, {xt()});
    test::gradcheck([d](const std::vector<Tensor>& in) { return log_softmax(in[0], d); }, {xt()});
  }
  test::gradcheck([](const std::vector<Tensor>& in) { return softmax(in[0], 0); },
                  {test::randn({7}, 8)});
  test::gradcheck([](const std::vector<Tensor>& in) { return log_softmax(in[0], -1); },
                  {test::randn({2, 1}, 9)});
}

TEST(SoftmaxGradCheck, BroadcastMaskGetsGradient) {
  for (int64_t d : {1, 2}) {
    test::gradcheck([d](const std::vector<Tensor>& in) { return softmax(in[0], d, in[1]); },
                    {test::randn({3, 4, 5}, 10), test::randn({4, 1}, 11)});
    test::gradcheck([d](const std::vector<Tensor>& in) { return log_softmax(in[0], d, in[1]); },
                    {test::randn({3, 4, 5}, 12), test::randn({1, 1, 5}, 13)});
  }
}

TEST(SoftmaxGradCheck, MinusInfMaskedEntries) {
  Tensor m = Tensor::from_vector<double>({0, -kInf, 0, 0, 0, -kInf, 0}, {7});
  test::gradcheck([&](const std::vector<Tensor>& in) { return softmax(in[0], -1, m); },
                  {test::randn({3, 7}, 14)});
  // log_softmax at a -inf entry is -inf; weight only the finite outputs.
  Tensor keep = eq(m, 0.0);
  test::gradcheck(
      [&](const std::vector<Tensor>& in) {
        return where(keep, log_softmax(in[0], -1, m), Tensor::zeros({}, DType::f64));
      },
      {test::randn({3, 7}, 15)});
}

TEST(SoftmaxBadInput, MaskShapeDtypeAndDim) {
  Tensor x = Tensor::zeros({2, 4});
  expect_error([&] { softmax(x, -1, Tensor::zeros({3})); }, {"mask", "[3]", "[2, 4]"});
  expect_error([&] { softmax(x, -1, Tensor::zeros({1, 2, 4})); }, {"[1, 2, 4]", "[2, 4]"});
  expect_error(
      [&] {
        log_softmax(x, -1, Tensor::zeros({2, 4}, DType::f64));
      },
      {"dtype", "[2, 4] f64", "[2, 4] f32"});
  expect_error([&] { softmax(x, -1, Tensor::zeros({2, 4}, DType::b8)); }, {"dtype"});
  EXPECT_THROW(softmax(x, 2), Error);
  EXPECT_THROW(softmax(Tensor::zeros({3}, DType::i64)), Error);
}
