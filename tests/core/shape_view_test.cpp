// Shape ops (cat/split/chunk/stack/index_select/arange) and Tensor views: f64 gradient checks,
// storage sharing, hand-computed values, and bad input.
#include <gtest/gtest.h>

#include "core/ops.h"
#include "tests/test_util.h"

using namespace ld;
using test::gradcheck;
using test::randn;
using Ts = std::vector<Tensor>;

namespace {
Tensor f64(std::vector<double> v, const Shape& s) { return Tensor::from_vector<double>(v, s); }
Tensor i64(std::vector<int64_t> v) {
  Shape s{static_cast<int64_t>(v.size())};
  return Tensor::from_vector<int64_t>(v, s);
}
std::string what_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no throw>";
}
}  // namespace

TEST(ViewGradCheck, EveryView) {
  Tensor x = randn({3, 4, 5}, 1);
  gradcheck([](const Ts& in) { return in[0].view({4, 15}); }, {x});
  gradcheck([](const Ts& in) { return in[0].view({-1}); }, {x});
  gradcheck([](const Ts& in) { return in[0].reshape({5, 12}); }, {x});
  // reshape of a non-viewable (transposed) tensor copies; gradient still flows.
  gradcheck(
      [](const Ts& in) {
        return in[0].reshape({20, 3});
      },
      {randn({5, 4, 3}, 2).permute({2, 1, 0})});
  gradcheck([](const Ts& in) { return in[0].permute({2, 0, 1}); }, {x});
  gradcheck([](const Ts& in) { return in[0].transpose(0, 2); }, {x});
  gradcheck([](const Ts& in) { return in[0].t(); }, {randn({3, 7}, 3)});
  gradcheck([](const Ts& in) { return in[0].narrow(1, 1, 2); }, {x});
  gradcheck([](const Ts& in) { return in[0].slice(2, 1, 5, 2); }, {x});
  gradcheck([](const Ts& in) { return in[0].slice(0, -2, 3); }, {x});
  gradcheck([](const Ts& in) { return in[0].slice(1, 0, 4, 3).slice(2, 4, 5); }, {x});
  gradcheck([](const Ts& in) { return in[0].select(1, 2); }, {x});
  gradcheck([](const Ts& in) { return in[0].select(-1, -1); }, {x});
  gradcheck([](const Ts& in) { return in[0].expand({2, 3, 4, 5}); }, {randn({3, 1, 5}, 4)});
  gradcheck([](const Ts& in) { return in[0].expand({3, -1, 7}); }, {randn({4, 1}, 5)});
  gradcheck([](const Ts& in) { return in[0].squeeze(1); }, {randn({3, 1, 5}, 6)});
  gradcheck([](const Ts& in) { return in[0].unsqueeze(0).unsqueeze(-1); }, {randn({3, 5}, 7)});
  gradcheck([](const Ts& in) { return in[0].contiguous(); }, {randn({5, 3}, 8).t()});
  gradcheck([](const Ts& in) { return in[0].clone(); }, {x});
  gradcheck([](const Ts& in) { return in[0].flatten(1); }, {x});
  gradcheck([](const Ts& in) { return in[0].flatten(); }, {randn({4, 3}, 9).t()});
  // A chain of views over a non-contiguous input, then a non-linear op so the gradient differs
  // per element.
  gradcheck(
      [](const Ts& in) {
        return square(in[0].transpose(0, 1).slice(0, 1, 4, 2).unsqueeze(1).expand({2, 3, 3, 5}));
      },
      {randn({3, 4, 5}, 10)});
}

// to(dtype) is differentiable: the gradient comes back in the source dtype.
TEST(ViewGradCheck, ToDtype) {
  Tensor x = randn({3, 4}, 1);
  x.set_requires_grad(true);
  Tensor w = randn({3, 4}, 2, DType::f32);
  Tensor y = mul(x.to(DType::f32), w);
  EXPECT_EQ(y.dtype(), DType::f32);
  sum(y).backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().dtype(), DType::f64);
  EXPECT_CLOSE(x.grad(), w.to(DType::f64), 0, 0);
  // Round trip f64 -> f64 is the identity (no node), f64 -> f32 -> f64 a node pair.
  gradcheck([](const Ts& in) { return in[0].to(DType::f64) * 3.0; }, {randn({2, 3}, 3)});
  Tensor z = randn({2, 2}, 4);
  z.set_requires_grad(true);
  Tensor zz = z.to(DType::f32).to(DType::f64);
  EXPECT_NE(zz.grad_fn(), nullptr);
  sum(zz).backward();
  EXPECT_EQ(z.grad().to_vector<double>(), std::vector<double>(4, 1.0));
}

TEST(ShapeGradCheck, CatSplitChunkStack) {
  gradcheck(
      [](const Ts& in) {
        return cat({in[0], in[1], in[2]}, 0);
      },
      {randn({2, 3}, 1), randn({1, 3}, 2), randn({4, 3}, 3)});
  gradcheck(
      [](const Ts& in) {
        return cat({in[0], in[1]}, -1);
      },
      {randn({2, 3, 1}, 4), randn({4, 3, 2}, 5).permute({2, 1, 0})});
  gradcheck([](const Ts& in) { return cat({in[0], in[0] * 2.0}, 1); }, {randn({3, 2}, 6)});
  gradcheck(
      [](const Ts& in) {
        auto p = split(in[0], {1, 3, 1}, 1);
        return cat({p[2] * 3.0, square(p[0]), p[1]}, 1);
      },
      {randn({2, 5}, 7)});
  gradcheck(
      [](const Ts& in) {
        auto p = chunk(in[0], 3, 0);  // 7 rows -> 3, 3, 1
        EXPECT_EQ(p.size(), 3u);
        return p[0] * p[1] + sum(p[2]);
      },
      {randn({7, 2}, 8)});
  // Only some pieces used: the others get zero gradient.
  gradcheck([](const Ts& in) { return split(in[0], {2, 2}, 0)[1]; }, {randn({4, 3}, 9)});
  gradcheck(
      [](const Ts& in) {
        return stack({in[0], in[1], in[0]}, 1);
      },
      {randn({3, 4}, 10), randn({4, 3}, 11).t()});
  gradcheck(
      [](const Ts& in) {
        return stack({in[0], in[1]}, -1);
      },
      {randn({3}, 12), randn({3}, 13)});
}

TEST(ShapeGradCheck, IndexSelect) {
  // Repeated indices accumulate their gradients.
  Tensor idx = i64({2, 0, 2, 4, 2});
  gradcheck([&](const Ts& in) { return index_select(in[0], 0, idx); }, {randn({5, 3}, 1)});
  gradcheck([&](const Ts& in) { return index_select(in[0], 1, idx); }, {randn({2, 5, 3}, 2)});
  gradcheck([&](const Ts& in) { return index_select(in[0], -1, idx); }, {randn({5, 3}, 3).t()});
  gradcheck([&](const Ts& in) { return index_select(in[0], 0, i64({1})); }, {randn({4}, 4)});
}

TEST(Shape, ForwardHandComputed) {
  Tensor a = f64({1, 2, 3, 4}, {2, 2}), b = f64({5, 6}, {1, 2});
  EXPECT_EQ(cat({a, b}, 0).to_vector<double>(), (std::vector<double>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(cat({a, b.t()}, 1).to_vector<double>(), (std::vector<double>{1, 2, 5, 3, 4, 6}));
  EXPECT_EQ(stack({a, a}, 0).shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(stack({a, a * 2.0}, 2).to_vector<double>(),
            (std::vector<double>{1, 2, 2, 4, 3, 6, 4, 8}));
  auto p = split(f64({0, 1, 2, 3, 4}, {5}), {2, 3}, 0);
  EXPECT_EQ(p[0].to_vector<double>(), (std::vector<double>{0, 1}));
  EXPECT_EQ(p[1].to_vector<double>(), (std::vector<double>{2, 3, 4}));
  EXPECT_TRUE(p[1].shares_storage(p[0]));
  auto c = chunk(f64({0, 1, 2, 3, 4}, {5}), 2, 0);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[1].to_vector<double>(), (std::vector<double>{3, 4}));
  Tensor x = f64({0, 1, 2, 3, 4, 5}, {3, 2});
  EXPECT_EQ(index_select(x, 0, i64({2, 0, 2})).to_vector<double>(),
            (std::vector<double>{4, 5, 0, 1, 4, 5}));
  EXPECT_EQ(index_select(x, 1, i64({1})).to_vector<double>(), (std::vector<double>{1, 3, 5}));
  EXPECT_EQ(index_select(x.t(), 1, i64({1})).to_vector<double>(), (std::vector<double>{2, 3}));
  EXPECT_EQ(arange(0, 5).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(1, 2, 0.25, DType::f64).to_vector<double>(),
            (std::vector<double>{1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(arange(5, 0, -2).to_vector<int64_t>(), (std::vector<int64_t>{5, 3, 1}));
  EXPECT_EQ(arange(3, 3).numel(), 0);
}

TEST(View, SharesStorageAndWritesThrough) {
  Tensor a = f64({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 4});
  std::vector<Tensor> views = {a.view({4, 3}),
                               a.reshape({2, 6}),
                               a.t(),
                               a.permute({1, 0}),
                               a.narrow(0, 1, 2),
                               a.slice(1, 0, 4, 2),
                               a.select(1, 3),
                               a.unsqueeze(1),
                               a.expand({2, 3, 4}),
                               a.flatten(),
                               a.contiguous(),
                               a.detach(),
                               a.view({1, 3, 4}).squeeze(0).unsqueeze(2).squeeze(2)};
  for (const Tensor& v : views) EXPECT_TRUE(v.shares_storage(a)) << v.desc();
  EXPECT_FALSE(a.clone().shares_storage(a));
  EXPECT_FALSE(a.t().contiguous().shares_storage(a));
  // Values of strided views.
  EXPECT_EQ(a.slice(1, 0, 4, 2).contiguous().to_vector<double>(),
            (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(a.slice(1, 1, 100, 2).contiguous().to_vector<double>(),
            (std::vector<double>{1, 3, 5, 7, 9, 11}));
  EXPECT_EQ(a.slice(0, -1, 3).contiguous().to_vector<double>(),
            (std::vector<double>{8, 9, 10, 11}));
  EXPECT_EQ(a.select(1, 3).to_vector<double>(), (std::vector<double>{3, 7, 11}));
  EXPECT_EQ(a.t().select(0, 1).to_vector<double>(), (std::vector<double>{1, 5, 9}));
  // Views of views: transpose then narrow then view along a compatible dim.
  Tensor tv = a.t().narrow(0, 1, 2);  // [2, 3], strides [1, 4]
  EXPECT_EQ(tv.contiguous().to_vector<double>(), (std::vector<double>{1, 5, 9, 2, 6, 10}));
  EXPECT_EQ(tv.unsqueeze(2).view({2, 3}).shape(), (Shape{2, 3}));
  EXPECT_EQ(a.view({3, 2, 2}).permute({0, 2, 1}).stride(1), 1);
  // Writes through a view land in the base.
  a.slice(1, 1, 4, 2).fill_(-1);
  EXPECT_EQ(a.to_vector<double>(),
            (std::vector<double>{0, -1, 2, -1, 4, -1, 6, -1, 8, -1, 10, -1}));
  a.t().select(0, 0).copy_(f64({7, 8, 9}, {3}));
  EXPECT_EQ(a.select(1, 0).to_vector<double>(), (std::vector<double>{7, 8, 9}));
  // 0-d and 1-element views.
  Tensor s = Tensor::full({}, 3.0, DType::f64);
  EXPECT_EQ(s.view({1, 1}).shape(), (Shape{1, 1}));
  EXPECT_EQ(s.reshape({1}).item(), 3.0);
  EXPECT_EQ(s.unsqueeze(0).shape(), (Shape{1}));
  EXPECT_EQ(s.flatten().shape(), (Shape{1}));
  EXPECT_EQ(s.expand({2, 3}).contiguous().to_vector<double>(), std::vector<double>(6, 3.0));
  EXPECT_EQ(f64({5}, {1}).view({}).dim(), 0);
}

TEST(ViewBadInput, MessagesNameShapes) {
  Tensor a = Tensor::zeros({2, 3});
  std::string w = what_of([&] { a.view({4, 2}); });
  EXPECT_NE(w.find("[4, 2]"), std::string::npos) << w;
  w = what_of([&] { a.t().view({6}); });
  EXPECT_NE(w.find("[3, 2]"), std::string::npos) << w;
  w = what_of([&] { a.expand({3, 3}); });
  EXPECT_NE(w.find("[2, 3]"), std::string::npos) << w;
  EXPECT_NE(w.find("[3, 3]"), std::string::npos) << w;
  w = what_of([&] { a.narrow(1, 2, 2); });
  EXPECT_NE(w.find("[2, 3]"), std::string::npos) << w;
  EXPECT_THROW(a.view({-1, -1}), Error);
  EXPECT_THROW(a.reshape({5, -1}), Error);
  EXPECT_THROW(a.permute({0}), Error);
  EXPECT_THROW(a.permute({0, 2}), Error);
  EXPECT_THROW(a.transpose(0, 2), Error);
  EXPECT_THROW(a.squeeze(1), Error);
  EXPECT_THROW(a.unsqueeze(4), Error);
  EXPECT_THROW(a.select(1, 3), Error);
  EXPECT_THROW(a.select(1, -4), Error);
  EXPECT_THROW(a.slice(0, 0, 2, 0), Error);
  EXPECT_THROW(a.narrow(0, -1, 1), Error);
  EXPECT_THROW(a.expand({3}), Error);
  EXPECT_THROW(a.size(2), Error);
  EXPECT_THROW(Tensor::full({}, 1.0).size(0), Error);
  EXPECT_THROW(Tensor::zeros({2, -1}), Error);
  EXPECT_THROW(Tensor().shape(), Error);
  EXPECT_THROW(Tensor::from_vector<float>({1, 2, 3}, {2, 2}), Error);
  EXPECT_THROW(a.copy_(Tensor::zeros({3, 2})), Error);
  EXPECT_THROW(a.set_grad(Tensor::zeros({3})), Error);
  EXPECT_THROW(a.item(), Error);
  EXPECT_THROW(a.data<double>(), Error);
}

TEST(ShapeBadInput, MessagesNameShapes) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({2, 4});
  std::string w = what_of([&] { cat({a, b}, 0); });
  EXPECT_NE(w.find("[2, 3]"), std::string::npos) << w;
  EXPECT_NE(w.find("[2, 4]"), std::string::npos) << w;
  EXPECT_EQ(cat({a, b}, 1).shape(), (Shape{2, 7}));
  EXPECT_THROW(cat({}, 0), Error);
  EXPECT_THROW(cat({a, Tensor::zeros({2, 3}, DType::f64)}, 0), Error);
  EXPECT_THROW(cat({a, Tensor::zeros({2, 3, 1})}, 0), Error);
  EXPECT_THROW(cat({a, a}, 2), Error);
  EXPECT_THROW(stack({a, b}, 0), Error);
  w = what_of([&] { split(a, {1, 1}, 1); });
  EXPECT_NE(w.find("[2, 3]"), std::string::npos) << w;
  EXPECT_THROW(split(a, {4, -1}, 1), Error);
  EXPECT_THROW(chunk(a, 0, 0), Error);
  Tensor idx = Tensor::from_vector<int64_t>({0, 3}, {2});
  w = what_of([&] { index_select(a, 1, idx); });
  EXPECT_NE(w.find("[2, 3]"), std::string::npos) << w;
  EXPECT_NE(w.find("3"), std::string::npos) << w;
  EXPECT_THROW(index_select(a, 1, Tensor::from_vector<int64_t>({-1}, {1})), Error);
  EXPECT_THROW(index_select(a, 1, Tensor::from_vector<int32_t>({0}, {1})), Error);
  EXPECT_THROW(index_select(a, 1, Tensor::from_vector<int64_t>({0, 1}, {1, 2})), Error);
  EXPECT_THROW(index_select(a, 2, Tensor::from_vector<int64_t>({0}, {1})), Error);
  EXPECT_THROW(arange(0, 1, 0), Error);
  // A failed op leaves its inputs untouched.
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_THROW(index_select(x, 1, idx), Error);
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
}
