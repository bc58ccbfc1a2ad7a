// Reductions (sum/mean/max) and matrix products (matmul/linear): f64 gradient checks over dims,
// keepdim, batch broadcasting, 1-D and transposed operands, plus hand-computed forward values.
#include <gtest/gtest.h>

#include "core/ops.h"
#include "tests/test_util.h"

using namespace ld;
using test::gradcheck;
using test::randn;
using Ts = std::vector<Tensor>;

namespace {
Tensor f64(std::vector<double> v, const Shape& s) { return Tensor::from_vector<double>(v, s); }

// Reference matmul for 2-D f64 operands.
Tensor ref_mm(const Tensor& a, const Tensor& b) {
  int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  std::vector<double> av = a.contiguous().to_vector<double>(),
                      bv = b.contiguous().to_vector<double>();
  std::vector<double> c(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p) c[i * n + j] += av[i * k + p] * bv[p * n + j];
  return f64(c, {m, n});
}
}  // namespace

TEST(ReduceGradCheck, SumAndMeanOverDims) {
  const std::vector<std::vector<int64_t>> dim_sets = {{0},    {1},    {2},       {-1},
                                                      {0, 2}, {2, 0}, {0, 1, 2}, {1, -1}};
  uint64_t seed = 1;
  for (bool keep : {false, true})
    for (const auto& dims : dim_sets) {
      SCOPED_TRACE(fmt::format("dims [{}] keepdim {}", fmt::join(dims, ","), keep));
      gradcheck([&](const Ts& in) { return sum(in[0], dims, keep); }, {randn({3, 4, 5}, seed++)});
      gradcheck([&](const Ts& in) { return mean(in[0], dims, keep); }, {randn({3, 4, 5}, seed++)});
      // Non-contiguous input.
      gradcheck([&](const Ts& in) { return sum(in[0], dims, keep); },
                {randn({5, 4, 3}, seed++).permute({2, 1, 0})});
    }
  gradcheck([](const Ts& in) { return sum(in[0]); }, {randn({3, 1, 7}, seed++)});
  gradcheck([](const Ts& in) { return mean(in[0]); }, {randn({7, 3}, seed++).t()});
  gradcheck([](const Ts& in) { return sum(in[0]); }, {randn({}, seed++)});
}

TEST(ReduceGradCheck, MaxOverDims) {
  uint64_t seed = 50;
  for (bool keep : {false, true})
    for (int64_t d : {0, 1, 2, -1}) {
      SCOPED_TRACE(fmt::format("dim {} keepdim {}", d, keep));
      gradcheck([&](const Ts& in) { return max(in[0], d, keep); }, {randn({3, 5, 4}, seed++)});
      gradcheck([&](const Ts& in) { return max(in[0], d, keep); },
                {randn({4, 5, 3}, seed++).transpose(0, 2)});
    }
  gradcheck([](const Ts& in) { return max(in[0]); }, {randn({4, 3}, seed++)});
}

TEST(Reduce, ForwardHandComputed) {
  Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(sum(x).item(), 21);
  EXPECT_EQ(sum(x, {0}).to_vector<double>(), (std::vector<double>{5, 7, 9}));
  EXPECT_EQ(sum(x, {1}).to_vector<double>(), (std::vector<double>{6, 15}));
  EXPECT_EQ(sum(x, {1}, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(sum(x, {0, 1}, true).shape(), (Shape{1, 1}));
  EXPECT_EQ(sum(x, {0, 1}).shape(), (Shape{}));
  EXPECT_EQ(mean(x, {0}).to_vector<double>(), (std::vector<double>{2.5, 3.5, 4.5}));
  EXPECT_EQ(mean(x).item(), 3.5);
  EXPECT_EQ(sum(x.t(), {1}).to_vector<double>(), (std::vector<double>{5, 7, 9}));
  Tensor y = f64({3, 9, 2, 9, 1, 0}, {2, 3});
  EXPECT_EQ(max(y, 1).to_vector<double>(), (std::vector<double>{9, 9}));
  EXPECT_EQ(argmax(y, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));  // first maximum
  EXPECT_EQ(argmax(y, 0, true).shape(), (Shape{1, 3}));
  EXPECT_EQ(max(y).item(), 9);
  // The gradient of max goes to the first maximal element only.
  Tensor z = f64({2, 7, 7}, {3});
  z.set_requires_grad(true);
  max(z, 0).backward();
  EXPECT_EQ(z.grad().to_vector<double>(), (std::vector<double>{0, 1, 0}));
  // Scalars reduce to themselves; an empty dim sums to 0.
  EXPECT_EQ(sum(Tensor::full({}, 4.0, DType::f64)).item(), 4.0);
  EXPECT_EQ(max(Tensor::full({}, 4.0, DType::f64)).item(), 4.0);
  EXPECT_EQ(sum(Tensor::zeros({3, 0}, DType::f64), {1}).to_vector<double>(),
            (std::vector<double>{0, 0, 0}));
  // f32 sums accumulate in f64: 1e8 + 1000 ones is 100001000 (exact in f32); an f32 accumulator
  // would drop every +1 and return 1e8.
  std::vector<float> v(1001, 1.0f);
  v[0] = 1e8f;
  EXPECT_EQ(sum(Tensor::from_vector<float>(v, {1001})).item(), 100001000.0);
}

TEST(ReduceBadInput, BadDims) {
  Tensor x = Tensor::zeros({2, 3});
  EXPECT_THROW(sum(x, {2}), Error);
  EXPECT_THROW(sum(x, {0, 0}), Error);
  EXPECT_THROW(max(x, -3), Error);
  EXPECT_THROW(max(Tensor::zeros({2, 0}), 1), Error);
  try {
    mean(x, {5});
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("5"), std::string::npos) << e.what();
  }
}

TEST(LinalgGradCheck, Matmul2D) {
  gradcheck([](const Ts& in) { return matmul(in[0], in[1]); },
            {randn({3, 5}, 1), randn({5, 4}, 2)});
  gradcheck([](const Ts& in) { return matmul(in[0], in[1]); },
            {randn({1, 7}, 3), randn({7, 1}, 4)});
  // Transposed (BLAS trans flags) and non-BLAS-able (stepped) operands.
  gradcheck([](const Ts& in) { return matmul(in[0], in[1]); },
            {randn({5, 3}, 5).t(), randn({4, 5}, 6).t()});
  gradcheck([](const Ts& in) { return matmul(in[0], in[1]); },
            {randn({3, 10}, 7).slice(1, 0, 10, 2), randn({5, 8}, 8).slice(1, 1, 8, 3)});
  // A matrix multiplied by itself (shared input).
  gradcheck([](const Ts& in) { return matmul(in[0], in[0]); }, {randn({4, 4}, 9)});
}

TEST(LinalgGradCheck, MatmulBatchedAndBroadcast) {
  gradcheck([](const Ts& in) { return matmul(in[0], in[1]); },
            {randn({2, 3, 5}, 1), randn({2, 5, 4}, 2)});
  // Broadcast batch: [2, 1, 3, 5] @ [3, 5, 4] -> [2, 3, 3, 4]; [3, 5] @ [2, 5, 4].
  gradcheck([](const Ts& in) { return matmul(in[0], in[1]); },
            {randn({2, 1, 3, 5}, 3), randn({3, 5, 4}, 4)});
  gradcheck([](const Ts& in) { return matmul(in[0], in[1]); },
            {randn({3, 5}, 5), randn({2, 5, 4}, 6)});
  gradcheck([](const Ts& in) { return matmul(in[0], in[1]); },
            {randn({2, 3, 5}, 7), randn({5, 4}, 8)});
  // Attention-style operands: q @ k^T with k transposed through a permuted view.
  gradcheck([](const Ts& in) { return matmul(in[0], in[1].transpose(-2, -1)); },
            {randn({2, 3, 5, 4}, 9), randn({2, 5, 3, 4}, 10).permute({0, 2, 1, 3})});
  // Non-contiguous batch layout.
  gradcheck([](const Ts& in) { return matmul(in[0], in[1]); },
            {randn({3, 2, 5}, 11).transpose(0, 1), randn({4, 5, 2}, 12).permute({2, 1, 0})});
}

TEST(LinalgGradCheck, Matmul1DOperands) {
  gradcheck([](const Ts& in) { return matmul(in[0], in[1]); }, {randn({5}, 1), randn({5}, 2)});
  gradcheck([](const Ts& in) { return matmul(in[0], in[1]); }, {randn({5}, 3), randn({5, 3}, 4)});
  gradcheck([](const Ts& in) { return matmul(in[0], in[1]); }, {randn({4, 5}, 5), randn({5}, 6)});
  gradcheck([](const Ts& in) { return matmul(in[0], in[1]); },
            {randn({5}, 7), randn({2, 5, 3}, 8)});
  gradcheck([](const Ts& in) { return matmul(in[0], in[1]); },
            {randn({2, 4, 5}, 9), randn({5}, 10)});
}

TEST(LinalgGradCheck, Linear) {
  gradcheck([](const Ts& in) { return linear(in[0], in[1], in[2]); },
            {randn({2, 3, 5}, 1), randn({4, 5}, 2), randn({4}, 3)});
  gradcheck([](const Ts& in) { return linear(in[0], in[1]); },
            {randn({7, 5}, 4), randn({3, 5}, 5)});
  gradcheck([](const Ts& in) { return linear(in[0], in[1], in[2]); },
            {randn({5}, 6), randn({3, 5}, 7), randn({3}, 8)});
  // Non-contiguous input and weight.
  gradcheck([](const Ts& in) { return linear(in[0], in[1], in[2]); },
            {randn({5, 3, 2}, 9).permute({2, 1, 0}), randn({5, 4}, 10).t(), randn({4}, 11)});
}

TEST(Linalg, ForwardHandComputed) {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = f64({7, 8, 9, 10, 11, 12}, {3, 2});
  EXPECT_EQ(matmul(a, b).to_vector<double>(), (std::vector<double>{58, 64, 139, 154}));
  EXPECT_EQ(matmul(b.t(), a.t()).to_vector<double>(), (std::vector<double>{58, 139, 64, 154}));
  EXPECT_EQ(matmul(f64({1, 1, 1}, {3}), b).to_vector<double>(), (std::vector<double>{27, 30}));
  EXPECT_EQ(matmul(a, f64({1, 0, -1}, {3})).to_vector<double>(), (std::vector<double>{-2, -2}));
  EXPECT_EQ(matmul(f64({1, 2, 3}, {3}), f64({4, 5, 6}, {3})).item(), 32);
  EXPECT_EQ(matmul(f64({1, 2, 3}, {3}), f64({4, 5, 6}, {3})).dim(), 0);
  // linear: x W^T + b.
  Tensor w = f64({1, 0, 0, 0, 1, 1}, {2, 3});
  EXPECT_EQ(linear(a, w, f64({10, 20}, {2})).to_vector<double>(),
            (std::vector<double>{11, 25, 14, 31}));
  // f32 through sgemm.
  EXPECT_EQ(matmul(a.to(DType::f32), b.to(DType::f32)).to_vector<float>(),
            (std::vector<float>{58, 64, 139, 154}));
  // Batched with a broadcast operand, odd sizes, vs a scalar reference.
  Tensor x = randn({3, 7, 5}, 1), y = randn({5, 9}, 2);
  Tensor r = matmul(x, y);
  ASSERT_EQ(r.shape(), (Shape{3, 7, 9}));
  for (int64_t i = 0; i < 3; ++i)
    EXPECT_CLOSE(r.select(0, i), ref_mm(x.select(0, i), y), 1e-12, 1e-12);
  // Empty inner dimension gives zeros; empty outer dims give empty results.
  EXPECT_EQ(matmul(Tensor::ones({2, 0}, DType::f64), Tensor::ones({0, 3}, DType::f64))
                .to_vector<double>(),
            std::vector<double>(6, 0.0));
  EXPECT_EQ(matmul(Tensor::ones({0, 4}), Tensor::ones({4, 3})).shape(), (Shape{0, 3}));
  EXPECT_EQ(matmul(Tensor::ones({2, 4}), Tensor::ones({4, 0})).shape(), (Shape{2, 0}));
}

TEST(Linalg, LargeBatchedMatchesReference) {
  // Attention-like shapes (many small matrices) in f32 against an f64 reference.
  Tensor q = randn({2, 12, 33, 16}, 1, DType::f32), k = randn({2, 12, 33, 16}, 2, DType::f32);
  Tensor s = matmul(q, k.transpose(-2, -1));
  ASSERT_EQ(s.shape(), (Shape{2, 12, 33, 33}));
  for (int64_t bi : {0, 1})
    for (int64_t h : {0, 5, 11}) {
      Tensor qq = q.select(0, bi).select(0, h).to(DType::f64),
             kk = k.select(0, bi).select(0, h).to(DType::f64);
      EXPECT_CLOSE(s.select(0, bi).select(0, h), ref_mm(qq, kk.t()), 1e-4, 1e-4);
    }
}

TEST(LinalgBadInput, ShapesDtypesDevices) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 5});
  try {
    matmul(a, b);
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    std::string w = e.what();
    EXPECT_NE(w.find("[2, 3]"), std::string::npos) << w;
    EXPECT_NE(w.find("[4, 5]"), std::string::npos) << w;
  }
  EXPECT_THROW(matmul(a, Tensor::zeros({3, 2}, DType::f64)), Error);
  EXPECT_THROW(matmul(Tensor::zeros({}), a), Error);
  EXPECT_THROW(matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 4})), Error);  // batch 2 vs 3
  EXPECT_THROW(matmul(Tensor::zeros({2, 3}, DType::i64), Tensor::zeros({3, 2}, DType::i64)), Error);
  try {
    linear(Tensor::zeros({4, 6}), Tensor::zeros({5, 7}));
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    std::string w = e.what();
    EXPECT_NE(w.find("[4, 6]"), std::string::npos) << w;
    EXPECT_NE(w.find("[5, 7]"), std::string::npos) << w;
  }
  EXPECT_THROW(linear(Tensor::zeros({4, 7}), Tensor::zeros({5, 7}), Tensor::zeros({4})), Error);
  EXPECT_THROW(linear(Tensor::zeros({4, 7}), Tensor::zeros({7})), Error);
}
