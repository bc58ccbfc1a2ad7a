// Tests of scaled_dot_product_attention (CPU composition): against an explicit loop with causal
// and key-padding masks and grouped K/V heads, fully masked rows, f64 finite-difference
// gradients through q, k and v (non-contiguous q as models produce it), and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/ops.h"
#include "tests/core/nn_test_util.h"
#include "tests/test_util.h"

using namespace ld;
using ld::test::expect_error;

namespace {

// Explicit-loop attention in f64. kpm: [B * Tk] (true = real) or empty. A query row with no key
// to attend gives 0.
Tensor ref_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                     const std::vector<bool>& kpm, bool causal, double scale) {
  const int64_t B = q.size(0), Hq = q.size(1), Tq = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), Tk = k.size(2), Dv = v.size(3), G = Hq / Hkv;
  std::vector<double> qv = q.to(DType::f64).to_vector<double>();
  std::vector<double> kv = k.to(DType::f64).to_vector<double>();
  std::vector<double> vv = v.to(DType::f64).to_vector<double>();
  std::vector<double> out(B * Hq * Tq * Dv, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t i = 0; i < Tq; ++i) {
        const int64_t hk = h / G;
        std::vector<double> s(Tk, -std::numeric_limits<double>::infinity());
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < Tk; ++j) {
          if (!kpm.empty() && !kpm[b * Tk + j]) continue;
          if (causal && j > i + (Tk - Tq)) continue;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += qv[((b * Hq + h) * Tq + i) * D + d] * kv[((b * Hkv + hk) * Tk + j) * D + d];
          s[j] = dot * scale;
          m = std::max(m, s[j]);
        }
        if (m == -std::numeric_limits<double>::infinity()) continue;  // fully masked: 0
        double z = 0;
        for (int64_t j = 0; j < Tk; ++j) z += std::exp(s[j] - m);
        for (int64_t j = 0; j < Tk; ++j) {
          const double p = std::exp(s[j] - m) / z;
          for (int64_t d = 0; d < Dv; ++d)
            out[((b * Hq + h) * Tq + i) * Dv + d] += p * vv[((b * Hkv + hk) * Tk + j) * Dv + d];
        }
      }
  return Tensor::from_vector<double>(out, {B, Hq, Tq, Dv});
}

Tensor bool_tensor(const std::vector<bool>& v, const Shape& s) {
  return Tensor::from_vector<bool>(v, s);
}

}  // namespace

TEST(AttentionGolden, TinyHandComputed) {
  // One query q = 1, keys 0 and 1, values 1 and 3, scale 1: p = softmax([0, 1]).
  Tensor q = Tensor::from_vector<double>({1}, {1, 1, 1, 1});
  Tensor k = Tensor::from_vector<double>({0, 1}, {1, 1, 2, 1});
  Tensor v = Tensor::from_vector<double>({1, 3}, {1, 1, 2, 1});
  const double e = std::exp(1.0);
  EXPECT_NEAR(scaled_dot_product_attention(q, k, v, Tensor(), false, 1.0).item(),
              (1 + 3 * e) / (1 + e), 1e-14);
  // Padding out key 1 leaves value 1; causal with Tq = 1, Tk = 2 sees both keys.
  EXPECT_NEAR(
      scaled_dot_product_attention(q, k, v, bool_tensor({true, false}, {1, 2}), true, 1.0).item(),
      1.0, 1e-14);
  EXPECT_NEAR(scaled_dot_product_attention(q, k, v, Tensor(), true, 1.0).item(),
              (1 + 3 * e) / (1 + e), 1e-14);
}

TEST(AttentionGolden, CausalMatchesHandLoop) {
  Tensor q = test::randn({1, 2, 4, 3}, 1), k = test::randn({1, 2, 4, 3}, 2),
         v = test::randn({1, 2, 4, 3}, 3);
  const double sc = 1.0 / std::sqrt(3.0);
  EXPECT_CLOSE(scaled_dot_product_attention(q, k, v, Tensor(), true),
               ref_attention(q, k, v, {}, true, sc), 1e-14, 1e-12);
  EXPECT_CLOSE(scaled_dot_product_attention(q, k, v, Tensor(), false),
               ref_attention(q, k, v, {}, false, sc), 1e-14, 1e-12);
  // Causal row 0 attends only key 0: output = v[..., 0, :].
  Tensor out = scaled_dot_product_attention(q, k, v, Tensor(), true);
  EXPECT_CLOSE(out.narrow(2, 0, 1), v.narrow(2, 0, 1), 1e-15, 0);
}

TEST(AttentionGolden, GroupedHeadsPaddingCausalOffsetMatchesHandLoop) {
  const int64_t B = 2, Hq = 6, Hkv = 2, Tq = 3, Tk = 5, D = 4, Dv = 3;
  Tensor q = test::randn({B, Hq, Tq, D}, 4), k = test::randn({B, Hkv, Tk, D}, 5),
         v = test::randn({B, Hkv, Tk, Dv}, 6);
  std::vector<bool> kpm = {true, true, false, true, true, true, false, true, true, false};
  Tensor m = bool_tensor(kpm, {B, Tk});
  for (bool causal : {false, true}) {
    SCOPED_TRACE(causal ? "causal" : "not causal");
    EXPECT_CLOSE(scaled_dot_product_attention(q, k, v, m, causal, 0.7),
                 ref_attention(q, k, v, kpm, causal, 0.7), 1e-14, 1e-12);
  }
  // Default scale is 1/sqrt(D).
  EXPECT_CLOSE(scaled_dot_product_attention(q, k, v, m, true),
               ref_attention(q, k, v, kpm, true, 0.5), 1e-14, 1e-12);
  // f32 agrees with the f64 loop.
  EXPECT_CLOSE(
      scaled_dot_product_attention(q.to(DType::f32), k.to(DType::f32), v.to(DType::f32), m, true),
      ref_attention(q, k, v, kpm, true, 0.5), 1e-5, 1e-5);
}

TEST(AttentionGolden, FullyMaskedRowsAreZeroNotNan) {
  // Batch 1 has no real key; with causal and Tq > Tk the first Tq - Tk rows see no key.
  const int64_t B = 2, H = 2, Tq = 4, Tk = 3, D = 5;
  Tensor q = test::randn({B, H, Tq, D}, 7).set_requires_grad(true);
  Tensor k = test::randn({B, H, Tk, D}, 8).set_requires_grad(true);
  Tensor v = test::randn({B, H, Tk, D}, 9).set_requires_grad(true);
  std::vector<bool> kpm = {true, true, true, false, false, false};
  Tensor out = scaled_dot_product_attention(q, k, v, bool_tensor(kpm, {B, Tk}), true);
  EXPECT_CLOSE(out,
               ref_attention(q.detach(), k.detach(), v.detach(), kpm, true, 1 / std::sqrt(5.0)),
               1e-14, 1e-12);
  EXPECT_EQ(sum(abs(out.select(0, 1))).item(), 0.0);
  EXPECT_EQ(sum(abs(out.select(0, 0).narrow(1, 0, 1))).item(), 0.0);
  EXPECT_GT(sum(abs(out.select(0, 0).narrow(1, 1, 3))).item(), 0.0);
  sum(mul(out, test::randn(out.shape(), 10))).backward();
  for (const Tensor* t : {&q, &k, &v}) EXPECT_TRUE(std::isfinite(sum(t->grad()).item()));
  EXPECT_EQ(sum(abs(q.grad().select(0, 1))).item(), 0.0);
  EXPECT_EQ(sum(abs(k.grad().select(0, 1))).item(), 0.0);
  EXPECT_EQ(sum(abs(v.grad().select(0, 1))).item(), 0.0);
}

TEST(AttentionGradCheck, GroupedHeadsMasksNonContiguousQ) {
  const int64_t B = 2, Hq = 4, Hkv = 2, Tq = 3, Tk = 5, D = 3, Dv = 2;
  // q as a model produces it: [B, Tq, Hq, D] transposed to [B, Hq, Tq, D].
  // A fresh q per check: gradcheck accumulates into the input's .grad.
  auto q = [&] { return test::randn({B, Tq, Hq, D}, 11).transpose(1, 2); };
  ASSERT_FALSE(q().is_contiguous());
  Tensor m = bool_tensor({true, false, true, true, true, true, true, true, false, true}, {B, Tk});
  for (bool causal : {false, true}) {
    test::gradcheck(
        [&](const std::vector<Tensor>& in) {
          return scaled_dot_product_attention(in[0], in[1], in[2], m, causal);
        },
        {q(), test::randn({B, Hkv, Tk, D}, 12), test::randn({B, Hkv, Tk, Dv}, 13)});
  }
}

TEST(AttentionGradCheck, MultiHeadNoMaskExplicitScale) {
  test::gradcheck(
      [](const std::vector<Tensor>& in) {
        return scaled_dot_product_attention(in[0], in[1], in[2], Tensor(), false, 0.3);
      },
      {test::randn({1, 3, 2, 5}, 14), test::randn({1, 3, 7, 5}, 15),
       test::randn({1, 3, 7, 5}, 16).transpose(2, 3).contiguous().transpose(2, 3)});
  // Single key/value head shared by three query heads (multi-query), causal.
  test::gradcheck(
      [](const std::vector<Tensor>& in) {
        return scaled_dot_product_attention(in[0], in[1], in[2], Tensor(), true);
      },
      {test::randn({2, 3, 4, 2}, 17), test::randn({2, 1, 4, 2}, 18),
       test::randn({2, 1, 4, 3}, 19)});
}

TEST(AttentionBadInput, ShapesHeadsAndMask) {
  Tensor q = Tensor::zeros({2, 3, 4, 8}), k = Tensor::zeros({2, 2, 5, 8}),
         v = Tensor::zeros({2, 2, 5, 8});
  expect_error([&] { scaled_dot_product_attention(q, k, v); },
               {"query heads 3", "key/value heads 2", "[2, 3, 4, 8]", "[2, 2, 5, 8]"});
  Tensor q4 = Tensor::zeros({2, 4, 4, 8});
  expect_error(
      [&] {
        scaled_dot_product_attention(q4, Tensor::zeros({2, 2, 5, 6}), v);
      },
      {"[2, 4, 4, 8]", "[2, 2, 5, 6]"});
  expect_error(
      [&] {
        scaled_dot_product_attention(q4, k, Tensor::zeros({2, 2, 6, 8}));
      },
      {"[2, 2, 6, 8]"});
  expect_error(
      [&] {
        scaled_dot_product_attention(q4, k, v, Tensor::ones({2, 5}));
      },
      {"key_padding_mask", "[2, 5] f32"});
  expect_error(
      [&] {
        scaled_dot_product_attention(q4, k, v, Tensor::ones({2, 4}, DType::b8));
      },
      {"key_padding_mask", "[2, 4] bool"});
  expect_error([&] { scaled_dot_product_attention(q4, k.to(DType::f64), v); },
               {"dtype", "[2, 2, 5, 8] f64"});
  expect_error(
      [&] {
        scaled_dot_product_attention(Tensor::zeros({4, 4, 8}), k, v);
      },
      {"[B, H, T, D]", "[4, 4, 8]"});
}
