// Trainer: a resumed run equals an uninterrupted one bit for bit (CPU), NaN loss stops with a clear
// error and keeps the last good checkpoint, best-checkpoint selection by the eval metric.
#include <gtest/gtest.h>

#include <filesystem>

#include "lora/adapter.h"
#include "nn/encoder.h"
#include "nn/safetensors.h"
#include "nn/trainer.h"
#include "tests/nn/golden_util.h"

namespace ld {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<nn::EncoderForSequenceClassification> make_model() {
  nn::ModelConfig c = nn::load_config(test::fixture("roberta_seqcls", "config.json"));
  c.hidden_dropout_prob = 0.1;  // exercise the dropout stream across resume
  c.attention_probs_dropout_prob = 0.1;
  auto m = std::make_shared<nn::EncoderForSequenceClassification>(c);
  m->set_generator(std::make_shared<Generator>(1234));
  nn::load_checkpoint(*m, test::fixture("roberta_seqcls", "model.safetensors"));
  Generator g(42);
  lora::AdapterConfig cfg;
  cfg.targets = {"query", "value"};
  cfg.r = 4;
  cfg.alpha = 8.0;
  cfg.dropout = 0.1;
  lora::AdapterSet set(*m, cfg, g, {"classifier.*"});
  return m;
}

nn::DataSource data() {
  nn::DataSource d;
  d.batches_per_epoch = [](int64_t) { return int64_t{4}; };
  d.get = [](int64_t epoch, int64_t i) {
    Generator g(static_cast<uint64_t>(epoch * 100 + i));
    nn::Batch b;
    b.tensors["input_ids"] = rand_uniform({2, 6}, 3, 49, g).to(DType::i64);
    b.tensors["labels"] = rand_uniform({2}, 0, 2.99, g).to(DType::i64);
    b.num_tokens = 12;
    return b;
  };
  return d;
}

std::string tmpdir(const std::string& name) { return test::fresh_temp_dir("ld_trainer", name); }

nn::TrainerOptions opts(const std::string& dir) {
  nn::TrainerOptions o;
  o.epochs = 2;
  o.grad_accum = 2;
  o.adamw.lr = 1e-2;
  o.warmup_steps = 1;
  o.max_grad_norm = 0.5;
  o.checkpoint_every = 1;
  o.out_dir = dir;
  o.progress = false;
  return o;
}

auto loss_of(nn::EncoderForSequenceClassification& m) {
  return [&m](const nn::Batch& b) {
    return m.forward(b["input_ids"], Tensor(), Tensor(), b["labels"]).loss;
  };
}

TEST(TrainerResume, ResumedRunEqualsUninterruptedBitForBit) {
  std::string da = tmpdir("a"), db = tmpdir("b");
  auto ma = make_model();
  nn::Trainer ta(*ma, data(), loss_of(*ma), nullptr, opts(da));
  auto ra = ta.train();
  EXPECT_EQ(ra.steps, 4);

  {
    auto mb = make_model();
    auto o = opts(db);
    o.stop_after_steps = 3;  // "killed" after 3 of 4 steps, mid-epoch 2
    nn::Trainer tb(*mb, data(), loss_of(*mb), nullptr, o);
    EXPECT_EQ(tb.train().steps, 3);
  }
  auto mc = make_model();  // a fresh process: same init, state comes from the checkpoint
  nn::Trainer tc(*mc, data(), loss_of(*mc), nullptr, opts(db));
  auto rc = tc.train();
  EXPECT_EQ(rc.steps, 4);
  EXPECT_EQ(ra.last_loss, rc.last_loss);
  auto pa = ma->named_parameters();
  auto pc = mc->named_parameters();
  ASSERT_EQ(pa.size(), pc.size());
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_EQ(pa[i].second.to_vector<float>(), pc[i].second.to_vector<float>()) << pa[i].first;
  EXPECT_EQ(ma->generator()->offset(), mc->generator()->offset());
  fs::remove_all(da);
  fs::remove_all(db);
}

TEST(TrainerBadInput, NaNLossStopsAndKeepsLastGoodCheckpoint) {
  std::string d = tmpdir("nan");
  auto m = make_model();
  int calls = 0;
  auto lf = [&](const nn::Batch& b) {
    Tensor l = m->forward(b["input_ids"], Tensor(), Tensor(), b["labels"]).loss;
    return ++calls > 4 ? l * std::numeric_limits<double>::quiet_NaN() : l;  // step 3 goes bad
  };
  nn::Trainer t(*m, data(), lf, nullptr, opts(d));
  try {
    t.train();
    FAIL() << "no error";
  } catch (const nn::NonFiniteLossError& e) {
    std::string w = e.what();
    EXPECT_NE(w.find("loss is nan at optimiser step 2"), std::string::npos) << w;
    EXPECT_NE(w.find("checkpoint_last.safetensors"), std::string::npos) << w;
  }
  nn::SafetensorsFile f(t.last_checkpoint());
  EXPECT_NE(f.metadata().at("loradrop_trainer").find("\"step\":2"), std::string::npos);
  fs::remove_all(d);
}

TEST(TrainerBest, BestCheckpointFollowsMetric) {
  std::string d = tmpdir("best");
  auto m = make_model();
  std::vector<double> metrics{0.5, 0.7, 0.6, 0.65};
  int k = 0;
  auto o = opts(d);
  o.eval_every = 1;
  nn::Trainer t(
      *m, data(), loss_of(*m), [&] { return metrics[k++]; }, o);
  auto r = t.train();
  EXPECT_EQ(r.best_step, 2);
  EXPECT_EQ(*r.best_metric, 0.7);
  EXPECT_TRUE(fs::exists(t.best_checkpoint()));
  fs::remove_all(d);
}

}  // namespace
}  // namespace ld
