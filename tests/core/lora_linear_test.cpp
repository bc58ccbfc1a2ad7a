// lora_linear on the CPU: the importance statistic against brute force ||s B A x||^2, gradients by
// central differences (f64), dropout through the op, the token mask, and bad input.
#include "core/ops/lora_linear.h"
#include "tests/test_util.h"

namespace ld {
namespace {

using test::randn;

struct LoraCase {
  Tensor x, W, b, A, B;
};

LoraCase make_case(int64_t batch, int64_t tokens, int64_t d_in, int64_t d_out, int64_t r,
                   uint64_t seed) {
  return {randn({batch, tokens, d_in}, seed), randn({d_out, d_in}, seed + 1, DType::f64, 0.3),
          randn({d_out}, seed + 2), randn({r, d_in}, seed + 3, DType::f64, 0.5),
          randn({d_out, r}, seed + 4, DType::f64, 0.5)};
}

// ||ΔW x_t||^2 per token with ΔW = s B A formed explicitly, summed per example over real tokens.
std::vector<double> brute_importance(const LoraCase& c, double s, const std::vector<bool>& mask) {
  const int64_t batch = c.x.size(0), tokens = c.x.size(1), d_in = c.x.size(2);
  const int64_t d_out = c.W.size(0), r = c.A.size(0);
  auto x = c.x.to_vector<double>(), A = c.A.to_vector<double>(), B = c.B.to_vector<double>();
  std::vector<double> dW(d_out * d_in, 0.0);
  for (int64_t o = 0; o < d_out; ++o)
    for (int64_t i = 0; i < d_in; ++i)
      for (int64_t k = 0; k < r; ++k) dW[o * d_in + i] += s * B[o * r + k] * A[k * d_in + i];
  std::vector<double> imp(batch, 0.0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < tokens; ++t) {
      if (!mask.empty() && !mask[b * tokens + t]) continue;
      for (int64_t o = 0; o < d_out; ++o) {
        double v = 0;
        for (int64_t i = 0; i < d_in; ++i) v += dW[o * d_in + i] * x[(b * tokens + t) * d_in + i];
        imp[b] += v * v;
      }
    }
  return imp;
}

TEST(LoraLinear, ForwardMatchesDenseDeltaW) {
  LoraCase c = make_case(2, 5, 7, 6, 3, 11);
  const double s = 2.0;
  Tensor y = lora_linear(c.x, c.W, c.b, c.A, c.B, s, 0.0, false, 1, 0);
  Tensor dense = add(c.W, mul(matmul(c.B, c.A), s));
  Tensor expect = linear(c.x, dense, c.b);
  EXPECT_CLOSE(y, expect, 1e-12, 1e-12);
}

TEST(LoraLinear, ImportanceMatchesBruteForce) {
  LoraCase c = make_case(3, 4, 9, 5, 2, 21);
  const double s = 0.75;
  Tensor imp;
  lora_linear(c.x, c.W, c.b, c.A, c.B, s, 0.0, false, 1, 0, &imp);
  ASSERT_TRUE(imp.defined());
  EXPECT_EQ(imp.dtype(), DType::f32);
  std::vector<double> want = brute_importance(c, s, {});
  EXPECT_CLOSE(imp, Tensor::from_vector(want, {3}).to(DType::f32), 1e-6, 1e-5);
  // A second call accumulates.
  lora_linear(c.x, c.W, c.b, c.A, c.B, s, 0.0, false, 1, 0, &imp);
  for (double& v : want) v *= 2;
  EXPECT_CLOSE(imp, Tensor::from_vector(want, {3}).to(DType::f32), 1e-6, 1e-5);
}

TEST(LoraLinear, ImportanceHonoursTokenMask) {
  LoraCase c = make_case(2, 6, 4, 3, 2, 31);
  std::vector<bool> mask = {true, true,  true, false, false, false,
                            true, false, true, false, true,  true};
  Tensor m = Tensor::from_vector(mask, {2, 6});
  Tensor imp;
  lora_linear(c.x, c.W, Tensor(), c.A, c.B, 1.5, 0.0, false, 1, 0, &imp, m);
  EXPECT_CLOSE(imp, Tensor::from_vector(brute_importance(c, 1.5, mask), {2}).to(DType::f32), 1e-6,
               1e-5);
}

TEST(LoraLinear, TwoDimensionalInputIsOneTokenPerExample) {
  LoraCase c = make_case(4, 1, 5, 3, 2, 41);
  Tensor x2 = c.x.reshape({4, 5});
  Tensor imp;
  lora_linear(x2, c.W, c.b, c.A, c.B, 1.0, 0.0, false, 1, 0, &imp);
  EXPECT_CLOSE(imp, Tensor::from_vector(brute_importance(c, 1.0, {}), {4}).to(DType::f32), 1e-6,
               1e-5);
}

TEST(LoraLinearGradCheck, XAB) {
  LoraCase c = make_case(2, 3, 4, 3, 2, 51);
  Tensor W = c.W, b = c.b;
  test::gradcheck(
      [&](const std::vector<Tensor>& in) {
        return lora_linear(in[0], W, b, in[1], in[2], 1.7, 0.0, false, 1, 0);
      },
      {c.x, c.A, c.B});
}

TEST(LoraLinearGradCheck, WithDropout) {
  LoraCase c = make_case(2, 3, 4, 3, 2, 61);
  Tensor W = c.W, b = c.b;
  test::gradcheck(
      [&](const std::vector<Tensor>& in) {
        return lora_linear(in[0], W, b, in[1], in[2], 0.5, 0.3, true, 7, 3);
      },
      {c.x, c.A, c.B});
}

TEST(LoraLinear, FrozenWeightGetsNoGradient) {
  LoraCase c = make_case(1, 2, 3, 2, 1, 71);
  c.W.set_requires_grad(true);
  c.A.set_requires_grad(true);
  Tensor y = lora_linear(c.x, c.W, c.b, c.A, c.B, 1.0, 0.0, false, 1, 0);
  sum(y).backward();
  EXPECT_FALSE(c.W.grad().defined());
  EXPECT_TRUE(c.A.grad().defined());
}

TEST(LoraLinear, DropoutUsesTheSameMaskAsDropoutOp) {
  LoraCase c = make_case(2, 3, 8, 4, 2, 81);
  const double p = 0.4, s = 1.25;
  Tensor y = lora_linear(c.x, c.W, c.b, c.A, c.B, s, p, true, 99, 5);
  Tensor xd = dropout(c.x, p, true, 99, 5);
  Tensor expect = add(linear(c.x, c.W, c.b), mul(linear(linear(xd, c.A), c.B), s));
  EXPECT_CLOSE(y, expect, 1e-12, 1e-12);
}

TEST(LoraLinearBadInput, ShapeMismatchNamesTensors) {
  LoraCase c = make_case(1, 2, 3, 2, 2, 91);
  Tensor badA = randn({2, 4}, 1);
  try {
    lora_linear(c.x, c.W, c.b, badA, c.B, 1.0, 0.0, false, 1, 0);
    FAIL() << "expected ld::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("A"), std::string::npos) << e.what();
  }
  EXPECT_THROW(lora_linear(c.x, c.W, c.b, c.A, c.B, 1.0, 1.5, true, 1, 0), Error);
  Tensor badmask = Tensor::from_vector(std::vector<bool>{true}, {1, 1});
  Tensor imp;
  EXPECT_THROW(lora_linear(c.x, c.W, c.b, c.A, c.B, 1.0, 0.0, false, 1, 0, &imp, badmask), Error);
  EXPECT_FALSE(imp.defined());
}

}  // namespace
}  // namespace ld
