// AdamW over shared tensors: a tensor listed under several names (a shared adapter) steps once.
#include <gtest/gtest.h>

#include "core/ops.h"
#include "nn/optim.h"

using namespace ld;

TEST(AdamWShared, SharedTensorIsSteppedOnce) {
  Tensor w = Tensor::from_vector<double>({1.0, -2.0}, {2});
  w.set_requires_grad(true);
  Tensor u = Tensor::from_vector<double>({1.0, -2.0}, {2});
  u.set_requires_grad(true);
  nn::AdamWOptions opt;
  opt.lr = 0.1;
  opt.weight_decay = 0.0;
  // the same tensor at two sites, as named_parameters() lists a shared adapter
  nn::AdamW shared({{"layer.0.lora_A", w}, {"layer.1.lora_A", w}}, opt);
  nn::AdamW single({{"layer.0.lora_A", u}}, opt);
  EXPECT_EQ(shared.params().size(), 1u);
  for (Tensor* t : {&w, &u}) {
    Tensor g = Tensor::from_vector<double>({0.5, 0.25}, {2});
    t->set_grad(g);
  }
  shared.step();
  single.step();
  EXPECT_EQ(w.to_vector<double>(), u.to_vector<double>());
  // one Adam step moves each element by lr * |m_hat| / (sqrt(v_hat) + eps) = lr * (1 - 2e-8)
  EXPECT_NEAR(w.to_vector<double>()[0], 0.9, 1e-7);
}
