// Llama causal LM / sequence classification with a PEFT LoRA on q_proj/v_proj against Hugging Face
// dumps (logits, loss, gradients, 3 AdamW steps), generation ids (greedy and beam search, left
// padding), KV-cache consistency and activation checkpointing.
#include <gtest/gtest.h>

#include "lora/adapter.h"
#include "nn/config.h"
#include "nn/llama.h"
#include "nn/safetensors.h"
#include "tests/nn/golden_util.h"

namespace ld {
namespace {

using test::fixture;

template <class M>
std::shared_ptr<M> load_llama(const std::string& name, const std::string& head) {
  nn::ModelConfig c = nn::load_config(fixture(name, "config.json"));
  auto m = std::make_shared<M>(c);
  m->set_generator(std::make_shared<Generator>(0));
  nn::load_checkpoint(*m, fixture(name, "model.safetensors"));
  Generator g(42);
  lora::AdapterConfig cfg;  // the production LoRA (fused lora_linear op), PEFT names
  cfg.targets = {"q_proj", "v_proj"};
  cfg.r = 4;
  cfg.alpha = 8.0;
  lora::AdapterSet set(*m, cfg, g, {head + ".*"});
  nn::LoadOptions lo;
  lo.allow_missing = {"*"};
  auto rep = nn::load_checkpoint(*m, fixture(name, "adapter_model.safetensors"), lo);
  EXPECT_EQ(rep.loaded.size(), 4u * c.num_hidden_layers);
  return m;
}

// Logits at padded positions are excluded: HF's and ours differ there (fully masked rows).
Tensor real_rows(const Tensor& logits, const Tensor& mask) {
  std::vector<int64_t> keep;
  auto mv = mask.to_vector<int64_t>();
  for (size_t i = 0; i < mv.size(); ++i)
    if (mv[i]) keep.push_back(static_cast<int64_t>(i));
  return index_select(logits.reshape({-1, logits.size(-1)}), 0,
                      Tensor::from_vector(keep, {static_cast<int64_t>(keep.size())}));
}

const double kTol = 1e-5;  // f32 both sides; differences come from summation order only

TEST(LlamaGolden, CausalLMLoraMatchesHF) {
  auto m = load_llama<nn::LlamaForCausalLM>("llama_causal", "lm_head");
  nn::SafetensorsCheckpoint g(fixture("llama_causal", "golden.safetensors"));
  Tensor ids = g.get("input_ids"), mask = g.get("attention_mask"), labels = g.get("labels");
  {
    NoGradGuard ng;
    auto out = m->forward(ids, mask, labels);
    EXPECT_CLOSE(real_rows(out.logits, mask), real_rows(g.get("logits"), mask), kTol, kTol);
    EXPECT_CLOSE(out.loss.reshape({}), g.get("loss"), kTol, kTol);
  }
  test::check_grads_and_steps(
      *m, "llama_causal", [&] { return m->forward(ids, mask, labels).loss; }, kTol);
}

TEST(LlamaGolden, CausalLMActivationCheckpointingSameGradients) {
  auto m = load_llama<nn::LlamaForCausalLM>("llama_causal", "lm_head");
  m->model().set_activation_checkpointing(true);
  nn::SafetensorsCheckpoint g(fixture("llama_causal", "golden.safetensors"));
  Tensor ids = g.get("input_ids"), mask = g.get("attention_mask"), labels = g.get("labels");
  test::check_grads_and_steps(
      *m, "llama_causal", [&] { return m->forward(ids, mask, labels).loss; }, kTol);
}

TEST(LlamaGolden, SeqClsLoraMatchesHF) {
  auto m = load_llama<nn::LlamaForSequenceClassification>("llama_seqcls", "score");
  nn::SafetensorsCheckpoint g(fixture("llama_seqcls", "golden.safetensors"));
  Tensor ids = g.get("input_ids"), mask = g.get("attention_mask"), labels = g.get("labels");
  {
    NoGradGuard ng;
    auto out = m->forward(ids, mask, labels);
    EXPECT_CLOSE(out.logits, g.get("logits"), kTol, kTol);
    EXPECT_CLOSE(out.loss.reshape({}), g.get("loss"), kTol, kTol);
  }
  test::check_grads_and_steps(
      *m, "llama_seqcls", [&] { return m->forward(ids, mask, labels).loss; }, kTol);
}

TEST(LlamaGolden, PooledPositionRightmostNonPad) {
  Tensor ids =
      Tensor::from_vector<int64_t>({5, 6, 3, 3, 3, 3, 7, 8, 9, 9, 3, 9, 3, 3, 3, 3}, {4, 4});
  auto p = nn::LlamaForSequenceClassification::pooled_positions(ids, 3).to_vector<int64_t>();
  EXPECT_EQ(p, (std::vector<int64_t>{1, 3, 3, 0}));  // right pad, left pad, pad inside, all pad
}

std::vector<int64_t> gen_ids(const std::string& key, nn::GenerateOptions o) {
  auto m = load_llama<nn::LlamaForCausalLM>("llama_causal", "lm_head");
  nn::SafetensorsCheckpoint g(fixture("llama_causal", "golden.safetensors"));
  auto meta = test::golden_meta("llama_causal");
  o.eos_token_ids = {meta["gen"]["eos"].get<int64_t>()};
  o.pad_token_id = meta["gen"]["pad"].get<int64_t>();
  Tensor out = m->generate(g.get("gen_input_ids"), g.get("gen_attention_mask"), o);
  EXPECT_EQ(out.shape(), g.get(key).shape()) << key;
  return out.to_vector<int64_t>();
}

std::vector<int64_t> golden_ids(const std::string& key) {
  return nn::SafetensorsCheckpoint(fixture("llama_causal", "golden.safetensors"))
      .get(key)
      .to_vector<int64_t>();
}

TEST(LlamaGolden, GreedyLeftPaddedMatchesHF) {
  nn::GenerateOptions o;
  o.max_new_tokens = 8;
  EXPECT_EQ(gen_ids("greedy_ids", o), golden_ids("greedy_ids"));
}

TEST(LlamaGolden, BeamSearch3MatchesHF) {
  nn::GenerateOptions o;
  o.max_new_tokens = 6;
  o.num_beams = 3;
  EXPECT_EQ(gen_ids("beam3_ids", o), golden_ids("beam3_ids"));
}

TEST(LlamaGolden, BeamSearch4LengthPenaltyMatchesHF) {
  nn::GenerateOptions o;
  o.max_new_tokens = 6;
  o.num_beams = 4;
  o.length_penalty = 0.5;
  EXPECT_EQ(gen_ids("beam4_lp05_ids", o), golden_ids("beam4_lp05_ids"));
}

TEST(LlamaKVCache, IncrementalEqualsFullForward) {
  auto m = load_llama<nn::LlamaForCausalLM>("llama_causal", "lm_head");
  NoGradGuard ng;
  Tensor ids = Tensor::from_vector<int64_t>({1, 17, 9, 33, 41, 12, 1, 22, 5, 8, 60, 2}, {2, 6});
  Tensor full = m->forward(ids).logits;
  nn::KVCache cache;
  Tensor a =
      m->forward(ids.slice(1, 0, 4).contiguous(), Tensor(), Tensor(), Tensor(), &cache).logits;
  Tensor b =
      m->forward(ids.slice(1, 4, 6).contiguous(), Tensor(), Tensor(), Tensor(), &cache).logits;
  EXPECT_CLOSE(cat({a, b}, 1), full, 1e-5, 1e-5);
}

TEST(LlamaBadInput, MaskShapeMismatch) {
  auto m = load_llama<nn::LlamaForCausalLM>("llama_causal", "lm_head");
  Tensor ids = Tensor::from_vector<int64_t>({1, 2, 3}, {1, 3});
  EXPECT_THROW(m->forward(ids, Tensor::ones({1, 4}, DType::i64)), Error);
}

}  // namespace
}  // namespace ld
