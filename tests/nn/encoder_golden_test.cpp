// RoBERTa/BERT sequence classification with a PEFT LoRA against Hugging Face dumps: logits, loss,
// LoRA/head gradients, and parameters after 3 AdamW steps.
#include <gtest/gtest.h>

#include "lora/adapter.h"
#include "nn/config.h"
#include "nn/encoder.h"
#include "nn/safetensors.h"
#include "tests/nn/golden_util.h"

namespace ld {
namespace {

using test::fixture;

// Builds the fixture's model: base weights, LoRA on query/value, the PEFT adapter, trainable head.
std::shared_ptr<nn::EncoderForSequenceClassification> load_encoder(const std::string& name) {
  nn::ModelConfig c = nn::load_config(fixture(name, "config.json"));
  auto m = std::make_shared<nn::EncoderForSequenceClassification>(c);
  m->set_generator(std::make_shared<Generator>(0));
  nn::load_checkpoint(*m, fixture(name, "model.safetensors"));
  Generator g(42);
  lora::AdapterConfig cfg;  // the production LoRA (fused lora_linear op), PEFT names
  cfg.targets = {"query", "value"};
  cfg.r = 4;
  cfg.alpha = 8.0;
  lora::AdapterSet set(*m, cfg, g, {"classifier.*"});
  EXPECT_EQ(set.sites().size(), 2u * c.num_hidden_layers);
  nn::LoadOptions lo;
  lo.allow_missing = {"*"};  // the adapter file holds only the LoRA tensors
  auto rep = nn::load_checkpoint(*m, fixture(name, "adapter_model.safetensors"), lo);
  EXPECT_EQ(rep.loaded.size(), 4u * c.num_hidden_layers);
  EXPECT_TRUE(rep.unexpected.empty());
  return m;
}

void run_encoder_golden(const std::string& name) {
  auto m = load_encoder(name);
  nn::SafetensorsCheckpoint g(fixture(name, "golden.safetensors"));
  Tensor ids = g.get("input_ids"), mask = g.get("attention_mask"), labels = g.get("labels");
  Tensor tt = g.contains("token_type_ids") ? g.get("token_type_ids") : Tensor();
  // 1e-5 absolute+relative: f32 on both sides, same op order up to BLAS summation order.
  const double tol = 1e-5;
  {
    NoGradGuard ng;
    auto out = m->forward(ids, mask, tt, labels);
    EXPECT_CLOSE(out.logits, g.get("logits"), tol, tol);
    EXPECT_CLOSE(out.loss.reshape({}), g.get("loss"), tol, tol);
  }
  test::check_grads_and_steps(
      *m, name, [&] { return m->forward(ids, mask, tt, labels).loss; }, tol);
}

TEST(EncoderGolden, RobertaSeqClsLoraMatchesHF) { run_encoder_golden("roberta_seqcls"); }
TEST(EncoderGolden, BertRegressionLoraMatchesHF) { run_encoder_golden("bert_seqcls"); }

TEST(EncoderGolden, RobertaPositionIdsAsHF) {
  // create_position_ids_from_input_ids with padding_idx 1: real tokens count from 2, pads stay 1.
  Tensor ids = Tensor::from_vector<int64_t>({0, 5, 6, 2, 1, 1, 0, 7, 1, 2, 1, 1}, {2, 6});
  Tensor pos = nn::EncoderEmbeddings::roberta_position_ids(ids, 1);
  EXPECT_EQ(pos.to_vector<int64_t>(), (std::vector<int64_t>{2, 3, 4, 5, 1, 1, 2, 3, 1, 4, 1, 1}));
}

TEST(EncoderBadInput, ShapeMismatchNamesTensorAndFile) {
  nn::ModelConfig c = nn::load_config(fixture("roberta_seqcls", "config.json"));
  c.hidden_size = 8;
  c.num_attention_heads = 2;
  nn::EncoderForSequenceClassification m(c);
  try {
    nn::load_checkpoint(m, fixture("roberta_seqcls", "model.safetensors"));
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string w = e.what();
    EXPECT_NE(w.find("shape mismatch"), std::string::npos) << w;
    EXPECT_NE(w.find("model.safetensors"), std::string::npos) << w;
    EXPECT_NE(w.find("has [16]"), std::string::npos) << w;
    EXPECT_NE(w.find("expects [8]"), std::string::npos) << w;
  }
}

}  // namespace
}  // namespace ld
