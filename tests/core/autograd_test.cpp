// Autograd engine: accumulation from several use sites (views, a shared matrix in two matmuls),
// NoGradGuard, graph freeing and retain_graph, detach, leaf rules, and deep graphs.
#include <gtest/gtest.h>
#include <pthread.h>

#include "core/ops.h"
#include "tests/test_util.h"

using namespace ld;
using test::randn;

namespace {
Tensor f64(std::vector<double> v, const Shape& s) { return Tensor::from_vector<double>(v, s); }
Tensor leaf(const Tensor& t) {
  Tensor x = t;
  x.set_requires_grad(true);
  return x;
}
}  // namespace

TEST(Autograd, HandComputedGradients) {
  Tensor x = leaf(f64({1, 2, 3}, {3}));
  // y = sum(x^2 + 3x) -> dy/dx = 2x + 3
  sum(x * x + x * 3.0).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5, 7, 9}));
  EXPECT_TRUE(x.is_leaf());
  EXPECT_EQ(x.grad_fn(), nullptr);
}

TEST(Autograd, ParameterUsedAtSeveralSitesAccumulates) {
  // W is used directly, through a transposed view, and through a slice; u is shared by two
  // matmuls (a shared LoRA factor, as VeRA / Tied-LoRA do).
  Tensor W = leaf(randn({4, 4}, 1));
  Tensor u = leaf(randn({4, 3}, 2));
  Tensor x1 = randn({5, 4}, 3), x2 = randn({2, 4}, 4);
  Tensor loss = sum(matmul(matmul(x1, W), u)) + sum(matmul(matmul(x2, W.t()), u)) +
                sum(W.narrow(0, 1, 2) * 2.0);
  loss.backward();
  // Reference: the same sum of three terms, each differentiated on its own.
  auto grads_of = [&](int which) {
    Tensor Wr = leaf(W.detach().clone()), ur = leaf(u.detach().clone());
    Tensor l = which == 0   ? sum(matmul(matmul(x1, Wr), ur))
               : which == 1 ? sum(matmul(matmul(x2, Wr.t()), ur))
                            : sum(Wr.narrow(0, 1, 2) * 2.0) + sum(ur) * 0.0;
    l.backward();
    return std::make_pair(Wr.grad(), ur.grad());
  };
  auto [w0, u0] = grads_of(0);
  auto [w1, u1] = grads_of(1);
  auto [w2, u2] = grads_of(2);
  EXPECT_CLOSE(W.grad(), w0 + w1 + w2, 1e-12, 1e-12);
  EXPECT_CLOSE(u.grad(), u0 + u1, 1e-12, 1e-12);
  // The slice term alone contributes 2 to rows 1..2 of W.
  std::vector<double> g2 = w2.to_vector<double>();
  EXPECT_EQ(g2[0], 0.0);
  EXPECT_EQ(g2[4], 2.0);
  EXPECT_EQ(g2[12], 0.0);
  // And the whole thing passes a finite-difference check.
  test::gradcheck(
      [&](const std::vector<Tensor>& in) {
        return sum(matmul(matmul(x1, in[0]), in[1])) + sum(matmul(matmul(x2, in[0].t()), in[1])) +
               sum(in[0].narrow(0, 1, 2) * 2.0);
      },
      {randn({4, 4}, 5), randn({4, 3}, 6)});
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCallsUntilZeroed) {
  Tensor x = leaf(f64({1, 2}, {2}));
  sum(x * 2.0).backward();
  sum(x * 3.0).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5, 5}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  sum(x).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 1}));
  // The first gradient is a private copy: later accumulation must not write into the seed.
  Tensor y = leaf(f64({1, 2}, {2}));
  Tensor seed = f64({1, 1}, {2});
  y.backward(seed);
  y.backward(seed);
  EXPECT_EQ(seed.to_vector<double>(), (std::vector<double>{1, 1}));
  EXPECT_EQ(y.grad().to_vector<double>(), (std::vector<double>{2, 2}));
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Tensor x = leaf(randn({3, 4}, 1));
  Tensor w = leaf(randn({5, 4}, 2));
  EXPECT_TRUE(grad_enabled());
  {
    NoGradGuard ng;
    EXPECT_FALSE(grad_enabled());
    std::vector<Tensor> outs = {exp(x),
                                x + w.narrow(0, 0, 3),
                                linear(x, w),
                                sum(x, {1}),
                                max(x, 0),
                                x.t(),
                                x.view({12}),
                                cat({x, x}, 0),
                                index_select(x, 0, arange(0, 2)),
                                x.to(DType::f32),
                                x.expand({2, 3, 4}),
                                x.clone()};
    for (const Tensor& o : outs) {
      EXPECT_EQ(o.grad_fn(), nullptr) << o.desc();
      EXPECT_FALSE(o.requires_grad()) << o.desc();
    }
    { NoGradGuard nested; }
    EXPECT_FALSE(grad_enabled());  // the nested guard restores "off", not "on"
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_NE(exp(x).grad_fn(), nullptr);
  // Inputs that do not require grad record nothing either.
  Tensor c = randn({3}, 3);
  EXPECT_EQ((c * 2.0).grad_fn(), nullptr);
  EXPECT_FALSE((c + c).requires_grad());
}

TEST(Autograd, GraphFreedAfterBackwardAndRetainGraph) {
  Tensor x = leaf(randn({3}, 1));
  Tensor y = exp(x) * x;
  Tensor loss = sum(y);
  long uses_before = x.storage().use_count();
  loss.backward();
  // The nodes dropped their closures and inputs: saved tensors no longer pin x's storage.
  EXPECT_LT(x.storage().use_count(), uses_before);
  EXPECT_TRUE(y.grad_fn()->inputs.empty());
  EXPECT_THROW(loss.backward(), Error);  // second backward without retain_graph
  try {
    loss.backward();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("retain_graph"), std::string::npos) << e.what();
  }
  // With retain_graph the graph survives and a second backward doubles .grad.
  Tensor a = leaf(randn({4}, 2));
  Tensor l2 = sum(tanh(a) * a);
  l2.backward(Tensor(), /*retain_graph=*/true);
  std::vector<double> g1 = a.grad().to_vector<double>();
  l2.backward(Tensor(), /*retain_graph=*/true);
  std::vector<double> g2 = a.grad().to_vector<double>();
  for (size_t i = 0; i < g1.size(); ++i) EXPECT_DOUBLE_EQ(g2[i], 2 * g1[i]);
  l2.backward();  // the last one may free it
  EXPECT_THROW(l2.backward(), Error);
}

TEST(Autograd, DetachSharesStorageAndStopsGradient) {
  Tensor x = leaf(f64({1, 2, 3}, {3}));
  Tensor d = x.detach();
  EXPECT_TRUE(d.shares_storage(x));
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.grad_fn(), nullptr);
  sum(x * d).backward();  // d is a constant: gradient is d, not 2x
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 2, 3}));
  Tensor y = exp(x);
  Tensor yd = y.detach();
  EXPECT_TRUE(yd.is_leaf());
  yd.set_requires_grad(true);  // a detached result is a new leaf
  sum(yd).backward();
  EXPECT_EQ(yd.grad().to_vector<double>(), (std::vector<double>{1, 1, 1}));
}

TEST(Autograd, PartialGraphsAndNonScalarOutputs) {
  Tensor a = leaf(f64({1, 2}, {2})), b = f64({3, 4}, {2});
  Tensor y = a * b;  // b needs no grad
  y.backward(f64({1, 10}, {2}));
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{3, 40}));
  EXPECT_FALSE(b.grad().defined());
  // Only one branch of the graph reaches the output.
  Tensor c = leaf(f64({2}, {1}));
  Tensor unused = exp(c);
  sum(c * 5.0).backward();
  EXPECT_EQ(c.grad().item(), 5.0);
  (void)unused;
}

TEST(Autograd, DeepChainsDoNotOverflowTheStack) {
  Tensor x = leaf(f64({0.5}, {1}));
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = y * 1.0 + 0.0;
  sum(y).backward();
  EXPECT_EQ(x.grad().item(), 1.0);
  // A long graph dropped without backward is destroyed without recursion too: build and drop
  // it on a thread with a 256 KiB stack, which a recursive teardown of 100000 levels overflows.
  struct Arg {
    Tensor x;
    bool done = false;
  } arg{x};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t th;
  auto body = [](void* p) -> void* {
    Arg* a = static_cast<Arg*>(p);
    {
      Tensor z = a->x;
      for (int i = 0; i < 100000; ++i) z = z + 1.0;
    }
    a->done = true;
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&th, &attr, body, &arg), 0);
  pthread_join(th, nullptr);
  pthread_attr_destroy(&attr);
  EXPECT_TRUE(arg.done);
}

TEST(AutogradBadInput, ClearErrors) {
  Tensor x = leaf(randn({2, 3}, 1));
  Tensor y = x * 2.0;
  EXPECT_THROW(y.set_requires_grad(false), Error);  // not a leaf
  EXPECT_THROW(y.backward(), Error);                // non-scalar without a gradient
  std::string w;
  try {
    y.backward(Tensor::ones({3, 2}, DType::f64));
  } catch (const Error& e) {
    w = e.what();
  }
  EXPECT_NE(w.find("[3, 2]"), std::string::npos) << w;
  EXPECT_NE(w.find("[2, 3]"), std::string::npos) << w;
  Tensor i = Tensor::zeros({2}, DType::i64);
  EXPECT_THROW(i.set_requires_grad(true), Error);
  EXPECT_THROW(randn({2}, 2).backward(), Error);  // does not require grad
  EXPECT_THROW(Tensor().backward(), Error);
}
