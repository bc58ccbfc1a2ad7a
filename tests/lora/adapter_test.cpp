// LoRA / VeRA / Tied-LoRA / SNIP adapters: attachment, importance vs brute force, shared-adapter
// gradients, gradient checks, parameter counts, merge/unmerge.
#include <gtest/gtest.h>

#include <cmath>

#include "lora/adapter.h"
#include "lora/snip.h"
#include "tests/lora/lora_test_util.h"
#include "tests/test_util.h"

namespace ld {
namespace {

using lora::AdapterConfig;
using lora::AdapterSet;
using lora::Method;

// root.layer.{0,1,2}.{query [6 -> 4], value [5 -> 7]}: two target types of different shapes.
std::shared_ptr<nn::Module> toy(DType dt = DType::f64, int64_t layers = 3) {
  auto root = std::make_shared<nn::Module>("Toy");
  auto list = root->register_module("layer", std::make_shared<nn::ModuleList>());
  Generator g(3);
  for (int64_t i = 0; i < layers; ++i) {
    auto blk = std::make_shared<nn::Module>("Block");
    auto q = blk->register_module("query", std::make_shared<nn::Linear>(6, 4, true, dt));
    auto v = blk->register_module("value", std::make_shared<nn::Linear>(5, 7, true, dt));
    q->reset_parameters(g);
    v->reset_parameters(g);
    list->append(blk);
  }
  return root;
}

lora::AdaptedLinear& site(const AdapterSet& s, const std::string& name) {
  return *s.site(name).module;
}

void fill_random(Tensor t, uint64_t seed) {
  NoGradGuard ng;
  t.copy_(test::randn(t.shape(), seed, t.dtype()));
}

bool all_equal(const Tensor& t, double v) { return max(abs(t - v)).item() == 0.0; }

// Brute-force ΔW x of one site: s · b ⊙ (B (d ⊙ (A x))) with the site's effective A / B.
Tensor brute_delta(const lora::AdaptedLinear& m, const Tensor& x) {
  NoGradGuard ng;
  return linear(x, m.delta_weight());
}

TEST(LoraAttach, DefaultTargetsAndNames) {
  EXPECT_EQ(lora::default_targets("roberta"), (std::vector<std::string>{"query", "value"}));
  EXPECT_EQ(lora::default_targets("llama"), (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_THROW(lora::default_targets("gpt2"), Error);
  auto m = test::tiny_model(1);
  Generator g(0);
  AdapterSet set(*m, AdapterConfig{}, g);
  ASSERT_EQ(set.sites().size(), 8u);
  EXPECT_EQ(set.sites()[0].name, "roberta.encoder.layer.0.attention.self.query");
  EXPECT_EQ(set.sites()[0].target, "query");
  EXPECT_EQ(set.sites()[0].layer, 0);
  EXPECT_EQ(set.sites()[7].layer, 3);
  // PEFT names; base weight keeps its HF name; only adapters and the head train.
  auto sd = m->state_dict(true);
  EXPECT_TRUE(sd.count("roberta.encoder.layer.2.attention.self.value.lora_A.weight"));
  EXPECT_TRUE(sd.count("roberta.encoder.layer.2.attention.self.value.lora_B.weight"));
  EXPECT_TRUE(sd.count("classifier.out_proj.weight"));
  EXPECT_FALSE(sd.count("roberta.encoder.layer.2.attention.self.value.weight"));
  EXPECT_TRUE(m->state_dict().count("roberta.encoder.layer.2.attention.self.value.weight"));
  // A Kaiming-uniform(a = sqrt(5)): bound 1/sqrt(in); B zero.
  Tensor A = set.sites()[0].module->adapter()->A, B = set.sites()[0].module->adapter()->B;
  EXPECT_EQ(A.shape(), (Shape{8, 32}));
  EXPECT_EQ(B.shape(), (Shape{32, 8}));
  EXPECT_LE(max(abs(A)).item(), 1.0 / std::sqrt(32.0));
  EXPECT_GT(max(abs(A)).item(), 0.5 / std::sqrt(32.0));
  EXPECT_EQ(max(abs(B)).item(), 0.0);
  // A fresh LoRA does not change the function.
  auto ref = test::tiny_model(1);
  lora::Batch b = test::random_batch(3, 3, 6, 5);
  NoGradGuard ng;
  EXPECT_CLOSE(m->forward(b.ids, b.mask).logits, ref->forward(b.ids, b.mask).logits, 0, 0);
}

TEST(LoraAttach, PatternsAndBadInput) {
  auto m = test::tiny_model(1);
  Generator g(0);
  AdapterConfig c;
  c.targets = {"re:.*layer\\.(1|3)\\..*\\.query"};
  AdapterSet set(*m, c, g);
  ASSERT_EQ(set.sites().size(), 2u);
  EXPECT_EQ(set.sites()[1].layer, 3);
  auto m2 = test::tiny_model(1);
  c.targets = {"nonexistent"};
  EXPECT_THROW(AdapterSet(*m2, c, g), Error);
  c.targets = {"query"};
  c.r = 0;
  EXPECT_THROW(AdapterSet(*m2, c, g), Error);
}

// #Tr. Params at RoBERTa-base shapes (12 layers, hidden 768). The FFN width does not enter the
// count, so it is kept small to keep the test fast and light.
TEST(LoraCount, RobertaBaseQueryValueR8Is294912) {
  nn::ModelConfig c = test::tiny_config(12, 768);
  c.num_attention_heads = 12;
  c.intermediate_size = 16;
  c.vocab_size = 8;
  {
    nn::EncoderForSequenceClassification m(c);
    Generator g(0);
    AdapterSet set(m, AdapterConfig{}, g);
    EXPECT_EQ(set.num_adapter_parameters(), 294912);
    EXPECT_EQ(lora::count_trainable(m), 294912);  // head excluded
  }
  {
    nn::EncoderForSequenceClassification m(c);
    Generator g(0);
    AdapterConfig vc;
    vc.method = Method::VeRA;
    vc.r = 256;
    AdapterSet set(m, vc, g);
    EXPECT_EQ(set.num_adapter_parameters(), 24 * (256 + 768));  // λ_d + λ_b per site
    EXPECT_EQ(lora::count_trainable(m), 24 * (256 + 768));
  }
  {
    nn::EncoderForSequenceClassification m(c);
    Generator g(0);
    AdapterConfig tc;
    tc.method = Method::TiedLoRA;
    tc.r = 8;
    AdapterSet set(m, tc, g);
    // one A [8, 768] and B [768, 8] per target type, u [8] and v [768] per site
    EXPECT_EQ(set.num_adapter_parameters(), 2 * (8 * 768 * 2) + 24 * (8 + 768));
    EXPECT_EQ(lora::count_trainable(m), 2 * (8 * 768 * 2) + 24 * (8 + 768));
  }
}

// ||ΔW x||² per example over real tokens (Gram form) equals the brute-force sum of squares.
void check_importance_brute(Method method) {
  auto root = toy();
  Generator g(1);
  AdapterConfig c;
  c.method = method;
  c.r = 3;
  c.alpha = 6;
  AdapterSet set(*root, c, g);
  uint64_t seed = 10;
  for (const auto& a : set.adapters()) fill_random(a->B, seed++);
  for (const auto& s : set.sites())
    if (s.module->vec_d().defined()) {
      fill_random(s.module->vec_d(), seed++);
      fill_random(s.module->vec_b(), seed++);
    }
  lora::ImportanceTracker tr({.keep_raw = true});
  set.attach_tracker(tr);
  set.set_collecting(true);
  Tensor mask = Tensor::from_vector<int64_t>({1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0}, {3, 5});
  for (const std::string name : {"layer.1.query", "layer.2.value"}) {
    auto& m = site(set, name);
    Tensor x = test::randn({3, 5, m.in_features()}, 77);
    set.collector().set_token_mask(mask);
    m.forward(x);
    set.collector().flush();
    Tensor d = brute_delta(m, x);
    Tensor per_tok = sum(d * d, {2}) * mask.to(DType::f64);
    std::vector<double> want = sum(per_tok, {1}).to_vector<double>();
    const auto& st = tr.stats(name);
    ASSERT_EQ(st.raw.size(), 3u);
    EXPECT_EQ(st.count, 3);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(st.raw[i], want[i], 1e-6 * (1 + want[i])) << name;
    EXPECT_GT(want[0], 0.0);
    EXPECT_EQ(st.raw[2], 0.0);  // no real token
  }
  // (LoRA runs the fused op, whose statistic is f32: relative 1e-6.)
  // 2-D input: one token per example.
  auto& m = site(set, "layer.0.query");
  set.collector().set_token_mask(Tensor());
  Tensor x = test::randn({4, 6}, 5);
  m.forward(x);
  set.collector().flush();
  Tensor d = brute_delta(m, x);
  std::vector<double> want = sum(d * d, {1}).to_vector<double>();
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(tr.stats("layer.0.query").raw[i], want[i], 1e-6 * (1 + want[i]));
}

TEST(LoraImportance, LoraMatchesBruteForce) { check_importance_brute(Method::LoRA); }
TEST(LoraImportance, VeraMatchesBruteForce) { check_importance_brute(Method::VeRA); }
TEST(LoraImportance, TiedMatchesBruteForce) { check_importance_brute(Method::TiedLoRA); }

TEST(LoraImportance, NotCollectedWhenDisabledAndMaskMismatchThrows) {
  auto root = toy();
  Generator g(1);
  AdapterSet set(*root, AdapterConfig{.r = 2}, g);
  lora::ImportanceTracker tr;
  set.attach_tracker(tr);
  auto& m = site(set, "layer.0.query");
  m.forward(test::randn({2, 3, 6}, 1));
  set.collector().flush();
  EXPECT_EQ(tr.stats("layer.0.query").count, 0);
  set.set_collecting(true);
  set.collector().set_token_mask(Tensor::ones({2, 4}, DType::i64));
  EXPECT_THROW(m.forward(test::randn({2, 3, 6}, 1)), Error);
}

// A shared adapter's gradient is the sum of the gradients its sites would get from separate
// copies of it.
TEST(LoraShared, GradientIsSumOverSites) {
  lora::Batch b = test::random_batch(4, 3, 7, 9);
  Tensor sa = test::randn({4, 32}, 21, DType::f64, 0.2),
         sb = test::randn({32, 4}, 22, DType::f64, 0.2);
  const std::vector<std::string> shared_sites = {"roberta.encoder.layer.0.attention.self.query",
                                                 "roberta.encoder.layer.1.attention.self.query",
                                                 "roberta.encoder.layer.3.attention.self.query"};
  auto run = [&](bool share, std::vector<Tensor>& gA, std::vector<Tensor>& gB, int64_t& ntr) {
    auto m = test::tiny_model(4, DType::f64);
    Generator g(2);
    AdapterSet set(*m, AdapterConfig{.r = 4}, g);
    lora::AdapterPtr shared = set.new_lora("query.shared", 32, 32, g);
    shared->A.copy_(sa);
    shared->B.copy_(sb);
    for (const auto& n : shared_sites) {
      if (share) {
        set.set_adapter(n, shared);
      } else {
        auto own = set.new_lora(n, 32, 32, g);
        own->A.copy_(sa);
        own->B.copy_(sb);
        set.set_adapter(n, own);
      }
    }
    ntr = set.num_adapter_parameters();
    Tensor loss = m->forward(b.ids, b.mask, Tensor(), b.labels).loss;
    loss.backward();
    for (const auto& n : shared_sites) {
      gA.push_back(set.site(n).module->adapter()->A.grad());
      gB.push_back(set.site(n).module->adapter()->B.grad());
    }
    // the optimiser sees the shared tensors once
    int64_t count = 0;
    for (auto& [n, t] : set.trainable_parameters())
      if (t.impl() == shared->A.impl()) ++count;
    EXPECT_EQ(count, share ? 1 : 0);
  };
  std::vector<Tensor> sA, sB, pA, pB;
  int64_t n_shared = 0, n_sep = 0;
  run(true, sA, sB, n_shared);
  run(false, pA, pB, n_sep);
  EXPECT_EQ(n_sep - n_shared, 2 * (4 * 32 + 32 * 4));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pA[i].defined() && pB[i].defined());
    EXPECT_GT(max(abs(pA[i])).item(), 0.0) << "site " << i << " gets no gradient";
    EXPECT_TRUE(sA[i].impl() == sA[0].impl() || sA[i].shares_storage(sA[0]));
  }
  EXPECT_CLOSE(sA[0], pA[0] + pA[1] + pA[2], 1e-12, 1e-9);
  EXPECT_CLOSE(sB[0], pB[0] + pB[1] + pB[2], 1e-12, 1e-9);
}

TEST(VeraGradCheck, LambdasAndInputAgainstFiniteDifferences) {
  auto root = toy();
  Generator g(1);
  AdapterConfig c;
  c.method = Method::VeRA;
  c.r = 3;
  AdapterSet set(*root, c, g);
  auto& m = site(set, "layer.1.value");
  fill_random(m.vec_b(), 4);  // λ_b = 0 would leave λ_d without gradient
  test::gradcheck([&](const std::vector<Tensor>& in) { return m.forward(in[0]); },
                  {test::randn({2, 3, 5}, 8), m.vec_d(), m.vec_b()});
  // the shared projections are frozen
  EXPECT_FALSE(m.adapter()->A.requires_grad());
  EXPECT_FALSE(m.adapter()->A.grad().defined());
}

TEST(VeraInit, AsPeft) {
  auto root = toy();
  Generator g(1);
  AdapterConfig c;
  c.method = Method::VeRA;
  c.r = 3;
  AdapterSet set(*root, c, g);
  const auto& q = site(set, "layer.0.query");
  const auto& v = site(set, "layer.2.value");
  // one pair of projections at the largest shapes (in 6, out 7), shared by every site
  EXPECT_EQ(q.adapter().get(), v.adapter().get());
  EXPECT_EQ(q.adapter()->A.shape(), (Shape{3, 6}));
  EXPECT_EQ(q.adapter()->B.shape(), (Shape{7, 3}));
  // kaiming_uniform a = 0: bound sqrt(6 / fan_in)
  EXPECT_LE(max(abs(q.adapter()->A)).item(), std::sqrt(6.0 / 6));
  EXPECT_LE(max(abs(q.adapter()->B)).item(), std::sqrt(6.0 / 3));
  EXPECT_TRUE(all_equal(q.vec_d(), 0.1));
  EXPECT_EQ(max(abs(v.vec_b())).item(), 0.0);
  EXPECT_EQ(q.scale(), 1.0);
  // forward = W0 x + b0 + λ_b ⊙ B[:7] (λ_d ⊙ A[:, :5] x), by hand
  auto& vv = site(set, "layer.2.value");
  fill_random(vv.vec_b(), 3);
  fill_random(vv.vec_d(), 4);
  Tensor x = test::randn({2, 5}, 6);
  NoGradGuard ng;
  Tensor A = vv.adapter()->A.slice(1, 0, 5), B = vv.adapter()->B.slice(0, 0, 7);
  Tensor want =
      linear(x, vv.weight(), vv.bias()) + linear(linear(x, A) * vv.vec_d(), B) * vv.vec_b();
  EXPECT_CLOSE(vv.forward(x), want, 1e-12, 1e-12);
  // another prng key gives other projections
  auto root2 = toy();
  c.vera_prng_key = 1;
  AdapterSet set2(*root2, c, g);
  EXPECT_GT(max(abs(site(set2, "layer.0.query").adapter()->A - q.adapter()->A)).item(), 0.0);
}

TEST(TiedLoraGradCheck, AllTrainablesAgainstFiniteDifferences) {
  auto root = toy();
  Generator g(1);
  AdapterConfig c;
  c.method = Method::TiedLoRA;
  c.r = 2;
  c.alpha = 4;
  AdapterSet set(*root, c, g);
  auto& m = site(set, "layer.2.query");
  // tied across layers of one target, not across targets
  EXPECT_EQ(m.adapter().get(), site(set, "layer.0.query").adapter().get());
  EXPECT_NE(m.adapter().get(), site(set, "layer.0.value").adapter().get());
  // init: u = 1, v = 0 (ΔW = 0), A and B non-zero
  EXPECT_TRUE(all_equal(m.vec_d(), 1.0));
  EXPECT_EQ(max(abs(m.vec_b())).item(), 0.0);
  EXPECT_GT(max(abs(m.adapter()->B)).item(), 0.0);
  fill_random(m.vec_b(), 5);
  test::gradcheck(
      [&](const std::vector<Tensor>& in) { return m.forward(in[0]); },
      {test::randn({2, 3, 6}, 8), m.adapter()->A, m.adapter()->B, m.vec_d(), m.vec_b()});
  // hand formula: s · v ⊙ B(u ⊙ A x)
  NoGradGuard ng;
  Tensor x = test::randn({3, 6}, 9);
  Tensor want = linear(x, m.weight(), m.bias()) +
                linear(linear(x, m.adapter()->A) * m.vec_d(), m.adapter()->B) * m.vec_b() * 2.0;
  EXPECT_CLOSE(m.forward(x), want, 1e-12, 1e-12);
}

TEST(TiedLoraInit, VGetsGradientAtStep1) {
  auto root = toy();
  Generator g(1);
  AdapterSet set(*root, AdapterConfig{.method = Method::TiedLoRA, .r = 2}, g);
  auto& m = site(set, "layer.0.query");
  sum(m.forward(test::randn({2, 6}, 3))).backward();
  EXPECT_GT(max(abs(m.vec_b().grad())).item(), 0.0);
}

TEST(SnipGradCheck, MaskedAdapterGradients) {
  auto root = toy();
  Generator g(1);
  AdapterSet set(*root, AdapterConfig{.method = Method::Sparse, .r = 2}, g);
  auto& m = site(set, "layer.0.value");
  auto a = m.adapter();
  fill_random(a->B, 3);
  a->mask_A = Tensor::from_vector<double>({1, 0, 1, 1, 0, 0, 1, 0, 1, 1}, {2, 5});
  a->mask_B = Tensor::from_vector<double>({1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1}, {7, 2});
  test::gradcheck([&](const std::vector<Tensor>& in) { return m.forward(in[0]); },
                  {test::randn({2, 5}, 8), a->A, a->B});
  // pruned entries get exactly zero gradient
  EXPECT_EQ(max(abs(a->A.grad() * (1.0 - a->mask_A))).item(), 0.0);
  EXPECT_EQ(max(abs(a->B.grad() * (1.0 - a->mask_B))).item(), 0.0);
}

TEST(Snip, GlobalTopK) {
  double thr = 0;
  auto m = lora::global_topk_masks({{0.5, 3.0, 1.0}, {2.0, 0.1}, {1.0}}, 3, &thr);
  EXPECT_EQ(m[0], (std::vector<uint8_t>{0, 1, 1}));  // ties at 1.0: the earlier tensor wins
  EXPECT_EQ(m[1], (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(m[2], (std::vector<uint8_t>{0}));
  EXPECT_EQ(thr, 1.0);
  EXPECT_THROW(lora::global_topk_masks({{1.0}}, 2), Error);
}

// SNIP on a model: saliency |g ⊙ θ| summed over batches at the probe point, one global threshold,
// exactly k kept; masks hold through training. The expected masks are recomputed by hand here.
TEST(Snip, PrunesToSparsityWithGlobalThreshold) {
  auto m = test::tiny_model(5, DType::f64, 2, 16);
  Generator g(3);
  AdapterSet set(*m, AdapterConfig{.method = Method::Sparse, .r = 4}, g);
  std::vector<lora::Batch> batches = {test::random_batch(4, 3, 6, 1),
                                      test::random_batch(4, 3, 6, 2)};
  auto loss = [&](int64_t i) {
    return m->forward(batches[i].ids, batches[i].mask, Tensor(), batches[i].labels).loss;
  };
  // hand computation of the saliency
  auto ads = set.adapters();
  std::vector<Tensor> A0, B0;
  {
    NoGradGuard ng;
    Generator pg(1234);
    for (auto& a : ads) {
      A0.push_back(a->A.clone());
      Tensor b = Tensor::empty(a->B.shape(), DType::f64);
      kaiming_uniform_(b, std::sqrt(5.0), pg);
      B0.push_back(b);
    }
  }
  std::vector<std::vector<double>> sal(2 * ads.size());
  {
    NoGradGuard ng;
    for (size_t j = 0; j < ads.size(); ++j) ads[j]->B.copy_(B0[j]);
  }
  for (int64_t bi = 0; bi < 2; ++bi) {
    loss(bi).backward();
    for (size_t j = 0; j < ads.size(); ++j) {
      auto ga = ads[j]->A.grad().to_vector<double>(), gb = ads[j]->B.grad().to_vector<double>();
      auto a = A0[j].to_vector<double>(), b = B0[j].to_vector<double>();
      sal[2 * j].resize(a.size());
      sal[2 * j + 1].resize(b.size());
      for (size_t k = 0; k < a.size(); ++k) sal[2 * j][k] += std::fabs(ga[k] * a[k]);
      for (size_t k = 0; k < b.size(); ++k) sal[2 * j + 1][k] += std::fabs(gb[k] * b[k]);
    }
    for (auto& [n, t] : set.trainable_parameters()) Tensor(t).zero_grad();
  }
  int64_t total = 0;
  for (auto& s : sal) total += static_cast<int64_t>(s.size());
  auto want = lora::global_topk_masks(sal, total / 2);
  {
    NoGradGuard ng;
    for (size_t j = 0; j < ads.size(); ++j) ads[j]->B.zero_();
  }
  lora::snip_prune(set, loss, 2, {.sparsity = 0.5});
  EXPECT_EQ(set.num_adapter_parameters(), total / 2);
  for (size_t j = 0; j < ads.size(); ++j) {
    auto ma = ads[j]->mask_A.to_vector<double>(), mb = ads[j]->mask_B.to_vector<double>();
    for (size_t k = 0; k < ma.size(); ++k) ASSERT_EQ(ma[k], want[2 * j][k]) << j << " A " << k;
    for (size_t k = 0; k < mb.size(); ++k) ASSERT_EQ(mb[k], want[2 * j + 1][k]) << j << " B " << k;
    EXPECT_EQ(max(abs(ads[j]->B)).item(), 0.0);  // training starts at ΔW = 0
    EXPECT_EQ(max(abs(ads[j]->A * (1.0 - ads[j]->mask_A))).item(), 0.0);
  }
  // the masks hold through training
  lora::ClassificationData d = test::synthetic_task(16, 3);
  lora::train(set, lora::encoder_forward(*m), d, {.epochs = 2, .batch_size = 8, .lr = 1e-2});
  for (auto& a : ads) {
    EXPECT_EQ(max(abs(a->A * (1.0 - a->mask_A))).item(), 0.0);
    EXPECT_EQ(max(abs(a->B * (1.0 - a->mask_B))).item(), 0.0);
    EXPECT_GT(max(abs(a->B)).item(), 0.0);  // kept entries did train
  }
  EXPECT_EQ(set.num_adapter_parameters(), total / 2);
}

TEST(LoraMerge, MergedLogitsEqualUnmerged) {
  for (Method meth : {Method::LoRA, Method::VeRA, Method::TiedLoRA}) {
    auto m = test::tiny_model(6);
    Generator g(1);
    AdapterConfig c;
    c.method = meth;
    c.alpha = 16;
    AdapterSet set(*m, c, g);
    uint64_t seed = 40;
    for (const auto& a : set.adapters()) {
      NoGradGuard ng;
      a->B.copy_(test::randn(a->B.shape(), seed++, DType::f32, 0.3));
    }
    for (const auto& s : set.sites())
      if (s.module->vec_d().defined()) {
        NoGradGuard ng;
        Tensor(s.module->vec_b()).copy_(test::randn(s.module->vec_b().shape(), seed++, DType::f32));
      }
    Tensor w0 = set.sites()[3].module->weight().clone();
    lora::Batch b = test::random_batch(3, 3, 8, 2);
    NoGradGuard ng;
    Tensor y0 = m->forward(b.ids, b.mask).logits;
    Tensor base = test::tiny_model(6)->forward(b.ids, b.mask).logits;
    EXPECT_GT(max(abs(y0 - base)).item(), 1e-3) << "the adapters should change the logits";
    set.merge();
    EXPECT_TRUE(set.sites()[0].module->merged());
    EXPECT_THROW(set.merge(), Error);
    EXPECT_CLOSE(m->forward(b.ids, b.mask).logits, y0, 1e-5, 1e-5);
    set.unmerge();
    EXPECT_CLOSE(m->forward(b.ids, b.mask).logits, y0, 1e-5, 1e-5);
    EXPECT_CLOSE(set.sites()[3].module->weight(), w0, 1e-6, 0);
  }
}

TEST(LoraFullFT, EverythingTrainable) {
  auto m = test::tiny_model(1);
  m->freeze_all();
  Generator g(0);
  AdapterSet set(*m, AdapterConfig{.method = Method::FullFT}, g);
  EXPECT_TRUE(set.sites().empty());
  EXPECT_EQ(m->num_parameters(true), m->num_parameters());
  EXPECT_EQ(set.num_adapter_parameters(),
            m->num_parameters() - m->find_module("classifier")->num_parameters());
}

TEST(LoraModuleTo, UnsharingIsDetected) {
  auto root = toy(DType::f32);
  Generator g(0);
  AdapterSet set(*root, AdapterConfig{.r = 2}, g);
  root->to(kCPU, DType::f32);  // new leaves per module
  EXPECT_THROW(site(set, "layer.0.query").forward(test::randn({2, 6}, 1, DType::f32)), Error);
}

}  // namespace
}  // namespace ld
