// Elementwise ops: f64 finite-difference gradient checks (broadcasting, scalars, non-contiguous
// inputs, odd sizes) and forward values against hand-computed cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/cpu/vec_math.h"
#include "core/ops.h"
#include "tests/test_util.h"

using namespace ld;
using test::gradcheck;
using test::randn;
using test::randu;
using Ts = std::vector<Tensor>;

namespace {

// Values in [lo, hi] with random signs when `signed_` (away from 0, where abs/relu have kinks).
Tensor away_from_zero(const Shape& s, uint64_t seed, double lo, double hi) {
  NoGradGuard ng;
  Tensor mag = randu(s, seed, lo, hi);
  Generator g(seed + 1000);
  Tensor sign = where(rand_bernoulli(s, 0.5, g), Tensor::full({}, 1.0, DType::f64),
                      Tensor::full({}, -1.0, DType::f64));
  return mul(mag, sign);
}

Tensor f64(std::vector<double> v, const Shape& s) { return Tensor::from_vector<double>(v, s); }

}  // namespace

TEST(ElementwiseGradCheck, UnaryOps) {
  struct U {
    const char* name;
    std::function<Tensor(const Tensor&)> f;
    double lo, hi;  // input magnitude range
    bool positive;  // domain needs x > 0
  };
  const std::vector<U> ops = {
      {"neg", [](const Tensor& x) { return neg(x); }, 0.1, 2, false},
      {"exp", [](const Tensor& x) { return exp(x); }, 0.1, 2, false},
      {"log", [](const Tensor& x) { return log(x); }, 0.3, 3, true},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, 0.3, 3, true},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, 0.3, 3, true},
      {"pow 3", [](const Tensor& x) { return pow(x, 3.0); }, 0.1, 2, false},
      {"pow 2", [](const Tensor& x) { return pow(x, 2.0); }, 0.1, 2, false},
      {"pow -1.5", [](const Tensor& x) { return pow(x, -1.5); }, 0.4, 3, true},
      {"pow 0.5", [](const Tensor& x) { return pow(x, 0.5); }, 0.4, 3, true},
      {"square", [](const Tensor& x) { return square(x); }, 0.1, 2, false},
      {"abs", [](const Tensor& x) { return abs(x); }, 0.05, 2, false},
      {"tanh", [](const Tensor& x) { return tanh(x); }, 0.05, 2.5, false},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, 0.05, 4, false},
      {"relu", [](const Tensor& x) { return relu(x); }, 0.05, 2, false},
      {"silu", [](const Tensor& x) { return silu(x); }, 0.05, 4, false},
      {"gelu erf", [](const Tensor& x) { return gelu(x, false); }, 0.05, 4, false},
      {"gelu tanh", [](const Tensor& x) { return gelu(x, true); }, 0.05, 4, false},
      {"add scalar", [](const Tensor& x) { return x + 2.5; }, 0.1, 2, false},
      {"sub scalar", [](const Tensor& x) { return x - 1.25; }, 0.1, 2, false},
      {"mul scalar", [](const Tensor& x) { return -3.0 * x; }, 0.1, 2, false},
      {"div scalar", [](const Tensor& x) { return x / 4.0; }, 0.1, 2, false},
      {"rsub", [](const Tensor& x) { return 1.5 - x; }, 0.1, 2, false},
      {"rdiv", [](const Tensor& x) { return 2.0 / x; }, 0.3, 2, false},
  };
  uint64_t seed = 1;
  for (const U& u : ops) {
    SCOPED_TRACE(u.name);
    Tensor c =
        u.positive ? randu({3, 7}, seed++, u.lo, u.hi) : away_from_zero({3, 7}, seed++, u.lo, u.hi);
    gradcheck([&](const Ts& in) { return u.f(in[0]); }, {c});
    // Non-contiguous input: a transposed view of a [5, 3] tensor.
    Tensor nc = (u.positive ? randu({5, 3}, seed++, u.lo, u.hi)
                            : away_from_zero({5, 3}, seed++, u.lo, u.hi))
                    .t();
    ASSERT_FALSE(nc.is_contiguous());
    gradcheck([&](const Ts& in) { return u.f(in[0]); }, {nc});
    // 0-d input.
    gradcheck(
        [&](const Ts& in) { return u.f(in[0]); },
        {u.positive ? randu({}, seed++, u.lo, u.hi) : away_from_zero({}, seed++, u.lo, u.hi)});
  }
}

TEST(ElementwiseGradCheck, BinaryOpsBroadcast) {
  struct B {
    const char* name;
    std::function<Tensor(const Tensor&, const Tensor&)> f;
  };
  const std::vector<B> ops = {
      {"add", [](const Tensor& a, const Tensor& b) { return a + b; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }},
      {"div", [](const Tensor& a, const Tensor& b) { return a / b; }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); }},
  };
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 5}, {3, 5}}, {{3, 1, 5}, {4, 1}}, {{5}, {2, 3, 5}},       {{}, {3, 4}},
      {{2, 3}, {}},     {{1, 7}, {3, 1}},    {{4, 1, 3}, {1, 5, 1}},
  };
  uint64_t seed = 100;
  for (const B& op : ops)
    for (const auto& [sa, sb] : shapes) {
      SCOPED_TRACE(fmt::format("{} {} {}", op.name, shape_str(sa), shape_str(sb)));
      Tensor a = away_from_zero(sa, seed++, 0.5, 2), b = away_from_zero(sb, seed++, 0.5, 2);
      gradcheck([&](const Ts& in) { return op.f(in[0], in[1]); }, {a, b});
    }
  // Non-contiguous operands (transposed and sliced with a step).
  for (const B& op : ops) {
    SCOPED_TRACE(op.name);
    Tensor a = away_from_zero({5, 4}, seed++, 0.5, 2).t();
    Tensor b = away_from_zero({4, 10}, seed++, 0.5, 2).slice(1, 1, 10, 2);
    ASSERT_EQ(b.shape(), (Shape{4, 5}));
    gradcheck([&](const Ts& in) { return op.f(in[0], in[1]); }, {a, b});
  }
  // Same tensor on both sides.
  Tensor x = away_from_zero({3, 3}, seed++, 0.5, 2);
  gradcheck([](const Ts& in) { return in[0] * in[0] + in[0] / (in[0] + 5.0); }, {x});
}

TEST(ElementwiseGradCheck, WhereAndMaskedFill) {
  Generator g(77);
  Tensor cond = rand_bernoulli({3, 1, 5}, 0.5, g);
  gradcheck([&](const Ts& in) { return where(cond, in[0], in[1]); },
            {randn({4, 5}, 1), randn({3, 4, 1}, 2)});
  gradcheck([&](const Ts& in) { return where(cond, in[0], in[1]); }, {randn({}, 3), randn({5}, 4)});
  Tensor mask = rand_bernoulli({4, 1}, 0.5, g);
  gradcheck([&](const Ts& in) { return masked_fill(in[0], mask, -7.0); }, {randn({4, 6}, 5)});
  gradcheck([&](const Ts& in) { return masked_fill(in[0], mask, 100.0) * 2.0; },
            {randn({6, 4}, 6).t()});
}

TEST(Elementwise, ForwardHandComputed) {
  Tensor a = f64({1, -2, 3, 0.5}, {2, 2});
  Tensor b = f64({10, 20}, {2});
  EXPECT_EQ((a + b).to_vector<double>(), (std::vector<double>{11, 18, 13, 20.5}));
  EXPECT_EQ((a - b).to_vector<double>(), (std::vector<double>{-9, -22, -7, -19.5}));
  EXPECT_EQ((a * b).to_vector<double>(), (std::vector<double>{10, -40, 30, 10}));
  EXPECT_EQ((b / a).to_vector<double>(), (std::vector<double>{10, -10, 10.0 / 3, 40}));
  EXPECT_EQ(maximum(a, f64({0}, {1})).to_vector<double>(), (std::vector<double>{1, 0, 3, 0.5}));
  EXPECT_EQ((2.0 - a).to_vector<double>(), (std::vector<double>{1, 4, -1, 1.5}));
  EXPECT_EQ((2.0 / a).to_vector<double>(), (std::vector<double>{2, -1, 2.0 / 3, 4}));
  EXPECT_EQ((a / 2.0).to_vector<double>(), (std::vector<double>{0.5, -1, 1.5, 0.25}));
  EXPECT_EQ((-a).to_vector<double>(), (std::vector<double>{-1, 2, -3, -0.5}));
  EXPECT_EQ(abs(a).to_vector<double>(), (std::vector<double>{1, 2, 3, 0.5}));
  EXPECT_EQ(relu(a).to_vector<double>(), (std::vector<double>{1, 0, 3, 0.5}));
  EXPECT_EQ(square(a).to_vector<double>(), (std::vector<double>{1, 4, 9, 0.25}));
  EXPECT_EQ(pow(f64({4, 9}, {2}), 0.5).to_vector<double>(), (std::vector<double>{2, 3}));
  EXPECT_EQ(pow(f64({2, -3}, {2}), 3.0).to_vector<double>(), (std::vector<double>{8, -27}));
  EXPECT_EQ(sqrt(f64({4, 9}, {2})).to_vector<double>(), (std::vector<double>{2, 3}));
  EXPECT_EQ(rsqrt(f64({4, 0.25}, {2})).to_vector<double>(), (std::vector<double>{0.5, 2}));
  EXPECT_DOUBLE_EQ(exp(f64({1}, {1})).item(), std::exp(1.0));
  EXPECT_DOUBLE_EQ(log(f64({std::exp(2.0)}, {1})).item(), 2.0);
  EXPECT_DOUBLE_EQ(sigmoid(f64({0}, {1})).item(), 0.5);
  EXPECT_DOUBLE_EQ(tanh(f64({0.5}, {1})).item(), std::tanh(0.5));
  // silu(x) = x * sigmoid(x); gelu(1) exact = 0.5 * (1 + erf(1/sqrt 2)) = 0.8413447460685429.
  EXPECT_DOUBLE_EQ(silu(f64({2}, {1})).item(), 2.0 / (1.0 + std::exp(-2.0)));
  EXPECT_NEAR(gelu(f64({1}, {1}), false).item(), 0.8413447460685429, 1e-15);
  EXPECT_NEAR(gelu(f64({-1}, {1}), false).item(), -0.15865525393145707, 1e-15);
  // tanh form: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))) at x = 1 = 0.8411919906082768.
  EXPECT_NEAR(gelu(f64({1}, {1}), true).item(), 0.8411919906082768, 1e-15);
  // f32 follows the same formulas.
  Tensor af = a.to(DType::f32);
  EXPECT_EQ((af * 2.0).to_vector<float>(), (std::vector<float>{2, -4, 6, 1}));
  EXPECT_NEAR(gelu(Tensor::full({1}, 1.0), false).item(), 0.8413447460685429, 1e-7);
}

TEST(Elementwise, CompareWhereMaskedFill) {
  Tensor a = f64({1, 5, 3}, {3});
  Tensor b = f64({2, 5, 1}, {3});
  EXPECT_EQ(compare(CompareOp::Lt, a, b).to_vector<bool>(),
            (std::vector<bool>{true, false, false}));
  EXPECT_EQ(compare(CompareOp::Ge, a, b).to_vector<bool>(), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(eq(a, 5.0).to_vector<bool>(), (std::vector<bool>{false, true, false}));
  EXPECT_EQ(ne(a, 5.0).to_vector<bool>(), (std::vector<bool>{true, false, true}));
  Tensor c = Tensor::from_vector<bool>({true, false, true}, {3});
  EXPECT_EQ(where(c, a, b).to_vector<double>(), (std::vector<double>{1, 5, 3}));
  Tensor m = Tensor::from_vector<bool>({false, true}, {2, 1});
  EXPECT_EQ(masked_fill(Tensor::ones({2, 2}, DType::f64), m, -1.0).to_vector<double>(),
            (std::vector<double>{1, 1, -1, -1}));
  // i64 comparisons (used by max's backward).
  Tensor i = Tensor::from_vector<int64_t>({0, 1, 2}, {3});
  EXPECT_EQ(eq(i, 1.0).to_vector<bool>(), (std::vector<bool>{false, true, false}));
}

TEST(Elementwise, InPlaceOps) {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor col = a.narrow(1, 1, 1);  // strided view
  add_(col, f64({10}, {1}), 2.0);
  EXPECT_EQ(a.to_vector<double>(), (std::vector<double>{1, 22, 3, 4, 25, 6}));
  Tensor t = a.t();
  mul_(t, -1.0);
  EXPECT_EQ(a.to_vector<double>(), (std::vector<double>{-1, -22, -3, -4, -25, -6}));
  Tensor small = Tensor::zeros({3}, DType::f64);
  EXPECT_THROW(add_(small, a), Error);  // [2, 3] does not broadcast into [3]
}

TEST(Elementwise, LargeStridedInputsUseTheParallelPath) {
  // Above the parallel grain with a broadcast, a transposed operand and odd sizes.
  Tensor a = randn({301, 257}, 1);
  Tensor b = randn({257}, 2);
  Tensor c = randn({257, 301}, 3).t();
  Tensor r = a * b + c;
  std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>(),
                      cv = c.contiguous().to_vector<double>(), rv = r.to_vector<double>();
  for (int64_t i = 0; i < 301; ++i)
    for (int64_t j = 0; j < 257; ++j)
      ASSERT_EQ(rv[i * 257 + j], av[i * 257 + j] * bv[j] + cv[i * 257 + j]) << i << "," << j;
  Tensor s = sum(c, {0});
  std::vector<double> sv = s.to_vector<double>();
  for (int64_t j = 0; j < 257; j += 17) {
    double acc = 0;
    for (int64_t i = 0; i < 301; ++i) acc += cv[i * 257 + j];
    EXPECT_NEAR(sv[j], acc, 1e-9);
  }
}

TEST(ElementwiseBadInput, MismatchesNameShapesAndDtypes) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({3, 2});
  for (auto f : {+[](const Tensor&x, const Tensor&y) { return x + y; },
                 +[](const Tensor&x, const Tensor&y) { return x * y; },
                 +[](const Tensor&x, const Tensor&y) { return maximum(x, y); }}) {
    try {
      f(a, b);
      ADD_FAILURE() << "no throw";
    } catch (const Error& e) {
      std::string w = e.what();
      EXPECT_NE(w.find("[2, 3]"), std::string::npos) << w;
      EXPECT_NE(w.find("[3, 2]"), std::string::npos) << w;
    }
  }
  try {
    sub(a, Tensor::zeros({2, 3}, DType::f64));
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f64"), std::string::npos) << e.what();
  }
  EXPECT_THROW(where(Tensor::zeros({2, 3}), a, a), Error);  // condition must be bool
  EXPECT_THROW(where(Tensor::from_vector<bool>({true, false}, {2}), a, a), Error);
  EXPECT_THROW(exp(Tensor::zeros({2}, DType::i64)), Error);
  EXPECT_THROW(add(a, Tensor()), Error);
  Tensor i = Tensor::zeros({2, 3}, DType::i32);
  EXPECT_THROW(i + i, Error);  // integer arithmetic is not supported: a clear error, no crash
}

// The f32 CPU GELU runs on SLEEF's SSE2 erff/expf (core/cpu/vec_math.h). Its error against an f64
// reference stays within the bound the scalar libm path meets (the formula's own float rounding,
// which includes the cancellation in 1 + erf for x < 0), it matches libm's result closely, specials
// behave as the scalar formula, and an element's bits do not depend on its position or layout.
namespace {
double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x * 0.7071067811865476)); }
double gelu_grad_ref(double x) {
  return 0.5 * (1.0 + std::erf(x * 0.7071067811865476)) +
         x * 0.3989422804014327 * std::exp(-0.5 * x * x);
}
// |got - ref| <= a few float ulps of the result plus the float rounding of 1 + erf (2^-24 per
// unit of the factor in front of it).
bool within(double got, double ref, double factor) {
  const double ulp = std::ldexp(1.0, std::ilogb(std::max(std::fabs(ref), 1e-30)) - 23);
  return std::fabs(got - ref) <= 4 * ulp + 1.2e-7 * std::fabs(factor) + 1e-37;
}
}  // namespace

TEST(GeluF32Vectorised, AccurateLikeLibmAndLayoutIndependent) {
  std::vector<float> x;
  for (int i = -240000; i <= 240000; ++i) x.push_back(static_cast<float>(i) * 5e-5f);  // [-12, 12]
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-40f, 30.0f, -30.0f, 1e30f, -1e30f})
    x.push_back(v);
  const auto n = static_cast<int64_t>(x.size());
  std::vector<float> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) g[i] = 1.0f - 0.25f * static_cast<float>(i % 7);
  const std::vector<cpu::VecIsa> isas = cpu::supported_vec_isas();
  if (!cpu::vec_isa_supported(cpu::VecIsa::AVX2))
    std::printf("GeluF32Vectorised: no AVX2/FMA on this CPU, its path is not tested\n");
  double worst_libm = 0;
  for (cpu::VecIsa isa : isas) {
    SCOPED_TRACE(cpu::vec_isa_name(isa));
    std::vector<float> y(x.size()), dx(x.size());
    cpu::gelu_erf_f32(x.data(), y.data(), n, isa);
    cpu::gelu_erf_grad_f32(x.data(), g.data(), dx.data(), n, isa);
    double worst = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const float xi = x[i];
      const double ref = gelu_ref(xi), dref = g[i] * gelu_grad_ref(xi);
      ASSERT_TRUE(within(y[i], ref, 0.5 * xi))
          << "gelu(" << xi << ") = " << y[i] << ", ref " << ref;
      ASSERT_TRUE(within(dx[i], dref, 2.0 * g[i])) << "gelu'(" << xi << ") = " << dx[i];
      worst = std::max(worst, std::fabs(y[i] - ref));
      if (isa == cpu::VecIsa::Scalar) worst_libm = worst;
    }
    // As close to the f64 reference as libm's scalar path (the first isa).
    EXPECT_LE(worst, 2 * worst_libm + 1e-12) << "libm " << worst_libm << ", this " << worst;
    // Specials as the scalar formula: +inf -> inf, NaN -> NaN.
    float sp[3] = {INFINITY, NAN, -2.0f}, sy[3];
    cpu::gelu_erf_f32(sp, sy, 3, isa);
    EXPECT_EQ(sy[0], INFINITY);
    EXPECT_TRUE(std::isnan(sy[1]));
    // Position independence: every offset and length (the tail is padded).
    for (int64_t off = 0; off < 8; ++off)
      for (int64_t len : {1, 2, 3, 5, 7, 9, 13, 17}) {
        std::vector<float> part(static_cast<size_t>(len));
        cpu::gelu_erf_f32(x.data() + 1000 + off, part.data(), len, isa);
        for (int64_t j = 0; j < len; ++j) ASSERT_EQ(part[j], y[1000 + off + j]);
        cpu::gelu_erf_grad_f32(x.data() + 1000 + off, g.data() + 1000 + off, part.data(), len, isa);
        for (int64_t j = 0; j < len; ++j) ASSERT_EQ(part[j], dx[1000 + off + j]);
      }
  }
}

TEST(GeluF32Vectorised, OpsUseItForContiguousAndStridedInputs) {
  // Large enough that libm's erff differs in the last bit somewhere (~0.7% of values), so a
  // dispatch back to the scalar path would show.
  Tensor x = mul(randn({97, 131}, 5), Tensor::full({}, 2.0, DType::f64)).to(DType::f32);
  Tensor xt = x.t();  // strided view
  for (const Tensor& in : {x, xt}) {
    std::vector<float> xs = in.contiguous().to_vector<float>(), want(xs.size());
    cpu::gelu_erf_f32(xs.data(), want.data(), static_cast<int64_t>(xs.size()));
    EXPECT_EQ(gelu(in, false).contiguous().to_vector<float>(), want);
    if (cpu::vec_isa() != cpu::VecIsa::Scalar) {
      int64_t differ = 0;
      for (size_t i = 0; i < xs.size(); ++i)
        differ += want[i] != 0.5f * xs[i] * (1.0f + std::erf(xs[i] * 0.70710677f));
      EXPECT_GT(differ, 0) << "the test cannot tell the vectorised path from libm's";
    }
  }
  // The backward: dx = g * gelu'(x), bit-identical to the kernel.
  Tensor leaf = x.clone().set_requires_grad();
  Tensor g = randn({97, 131}, 6).to(DType::f32);
  gelu(leaf, false).backward(g);
  std::vector<float> xs = x.to_vector<float>(), gs = g.to_vector<float>(), want(xs.size());
  cpu::gelu_erf_grad_f32(xs.data(), gs.data(), want.data(), static_cast<int64_t>(xs.size()));
  EXPECT_EQ(leaf.grad().to_vector<float>(), want);
}

// The softmax's f64 exp (core/cpu/vec_math.h): within 2 ulp of libm's exp on every path,
// exp(-inf) = 0 for masked logits, NaN stays NaN, and the sum is taken in index order.
TEST(ExpShiftedF64, MatchesLibmOnEveryPath) {
  std::vector<double> base;
  for (int i = 0; i < 1001; ++i) base.push_back(-700.0 + 0.7 * i + 1e-3 * (i % 13));
  base.push_back(-INFINITY);
  base.push_back(NAN);
  const double m = 3.25;
  const std::vector<cpu::VecIsa> isas = cpu::supported_vec_isas();
  for (cpu::VecIsa isa : isas) {
    SCOPED_TRACE(cpu::vec_isa_name(isa));
    for (int64_t len : {int64_t(1), int64_t(3), int64_t(5), static_cast<int64_t>(base.size())}) {
      std::vector<double> v(base.end() - len, base.end());
      if (len < static_cast<int64_t>(base.size()))
        v.assign(base.begin() + 500, base.begin() + 500 + len);
      std::vector<double> in = v;
      const double s = cpu::exp_shifted_sum_f64(v.data(), len, m, isa);
      double want_sum = 0;
      for (int64_t j = 0; j < len; ++j) {
        const double want = std::exp(in[j] - m);
        if (std::isnan(want)) {
          EXPECT_TRUE(std::isnan(v[j]));
        } else {
          EXPECT_NEAR(v[j], want, 4.5e-16 * want) << in[j];
        }
        want_sum += v[j];
      }
      if (!std::isnan(want_sum)) {
        EXPECT_EQ(s, want_sum);  // index order
      }
    }
  }
  double z[1] = {-INFINITY};
  EXPECT_EQ(cpu::exp_shifted_sum_f64(z, 1, 0.0), 0.0);
  EXPECT_EQ(z[0], 0.0);
}
