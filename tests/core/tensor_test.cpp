// Tensor views, copies, printing, factories and bad input.
#include <gtest/gtest.h>

#include "core/ops.h"
#include "tests/test_util.h"

using namespace ld;

TEST(Tensor, FactoriesAndItem) {
  Tensor z = Tensor::zeros({2, 3});
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.dtype(), DType::f32);
  EXPECT_EQ(sum(z).item(), 0.0);
  EXPECT_EQ(sum(Tensor::ones({4, 5}, DType::f64)).item(), 20.0);
  EXPECT_EQ(Tensor::full({}, 2.5).item(), 2.5);
  Tensor v = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(v.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

TEST(Tensor, ViewsShareStorage) {
  Tensor a = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor t = a.t();
  EXPECT_TRUE(t.shares_storage(a));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.shape(), (Shape{3, 2}));
  EXPECT_EQ(t.contiguous().to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  Tensor n = a.narrow(1, 1, 2);
  EXPECT_TRUE(n.shares_storage(a));
  EXPECT_EQ(n.contiguous().to_vector<float>(), (std::vector<float>{1, 2, 4, 5}));
  n.fill_(9);
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{0, 9, 9, 3, 9, 9}));
  Tensor r = a.view({3, 2});
  EXPECT_TRUE(r.shares_storage(a));
  Tensor e = Tensor::from_vector<float>({1, 2}, {2, 1}).expand({2, 4});
  EXPECT_EQ(e.stride(1), 0);
  EXPECT_EQ(e.contiguous().to_vector<float>(), (std::vector<float>{1, 1, 1, 1, 2, 2, 2, 2}));
  Tensor u = a.unsqueeze(0).unsqueeze(3);
  EXPECT_EQ(u.shape(), (Shape{1, 2, 3, 1}));
  EXPECT_EQ(u.squeeze(3).squeeze(0).shape(), (Shape{2, 3}));
  Tensor s = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5, 6}, {7}).slice(0, 1, 7, 3);
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{1, 4}));
  EXPECT_EQ(a.select(0, 1).to_vector<float>(), (std::vector<float>{3, 9, 9}));
  // A transposed tensor cannot be viewed flat; reshape copies.
  EXPECT_THROW(t.view({6}), Error);
  EXPECT_FALSE(t.reshape({6}).shares_storage(a));
  EXPECT_EQ(a.reshape({-1}).shape(), (Shape{6}));
}

TEST(Tensor, DtypeConversion) {
  Tensor a = Tensor::from_vector<double>({1.5, -2.25, 3.0}, {3});
  EXPECT_EQ(a.to(DType::i64).to_vector<int64_t>(), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(a.to(DType::bf16).to(DType::f64).to_vector<double>(),
            (std::vector<double>{1.5, -2.25, 3.0}));
  EXPECT_EQ(a.to(DType::b8).to_vector<bool>(), (std::vector<bool>{true, true, true}));
}

TEST(Tensor, PrintingIsReadable) {
  Tensor a = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2});
  std::string s = a.str();
  EXPECT_NE(s.find("[[1, 2]"), std::string::npos) << s;
  EXPECT_NE(s.find("[2, 2] f32 cpu"), std::string::npos) << s;
}

TEST(TensorBadInput, MessagesNameShapes) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 5});
  try {
    add(a, b);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[4, 5]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(add(a, Tensor::zeros({2, 3}, DType::f64)), Error);
  EXPECT_THROW(matmul(a, b), Error);
  EXPECT_THROW(a.view({7}), Error);
  EXPECT_THROW(a.narrow(1, 2, 2), Error);
  EXPECT_THROW(a.permute({0, 0}), Error);
  EXPECT_THROW(a.expand({3, 3}), Error);
  EXPECT_THROW(a.select(0, 2), Error);
  EXPECT_THROW(Tensor::zeros({2}, DType::f32, cuda_device(0)), Error);
  try {
    Tensor::zeros({2}, DType::f32, cuda_device(0));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
  }
  Tensor idx = Tensor::from_vector<int64_t>({0, 5}, {2});
  EXPECT_THROW(index_select(a, 1, idx), Error);
}
