// PEFT export/import: key names, shapes and config; round trip with shared and dropped adapters;
// and PEFT's own logits for our export of a tiny HF RoBERTa (fixture made by
// tools/check_peft_export.py).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lora/peft_io.h"
#include "nn/safetensors.h"
#include "tests/lora/lora_test_util.h"
#include "tests/test_util.h"

namespace ld {
namespace {

namespace fs = std::filesystem;
using lora::AdapterConfig;
using lora::AdapterSet;

std::string tmp_dir(const std::string& tag) { return test::fresh_temp_dir("ld_peft", tag); }

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

void randomise_adapters(AdapterSet& set, uint64_t seed) {
  NoGradGuard ng;
  for (const auto& a : set.adapters())
    a->B.copy_(test::randn(a->B.shape(), seed++, DType::f32, 0.5));
}

TEST(PeftExport, RoundTripWithSharedAndDroppedAdapters) {
  auto m = test::tiny_model(3);
  Generator g(1);
  AdapterSet set(*m, AdapterConfig{.r = 4, .alpha = 16, .dropout = 0.1}, g);
  set.rebuild({{"query", {true, false, true, false}}}, true, lora::SharedInit::Fresh, g);
  set.rebuild({{"value", {true, true, false, false}}}, false, lora::SharedInit::Fresh, g);
  randomise_adapters(set, 5);
  std::string dir = tmp_dir("rt");
  lora::export_peft(set, dir, {.base_model_name_or_path = "tiny"});
  // keys and shapes as PEFT writes them
  nn::SafetensorsFile f(dir + "/adapter_model.safetensors");
  EXPECT_EQ(f.names().size(), 2u * 6 + 4);  // 6 adapted sites, head dense/out_proj
  const std::string p = "base_model.model.roberta.encoder.layer.";
  EXPECT_EQ(f.shape(p + "0.attention.self.query.lora_A.weight"), (Shape{4, 32}));
  EXPECT_EQ(f.shape(p + "0.attention.self.query.lora_B.weight"), (Shape{32, 4}));
  EXPECT_TRUE(f.contains(p + "3.attention.self.query.lora_A.weight"));   // shared: written per site
  EXPECT_FALSE(f.contains(p + "3.attention.self.value.lora_A.weight"));  // dropped
  EXPECT_EQ(f.shape("base_model.model.classifier.dense.weight"), (Shape{32, 32}));
  EXPECT_EQ(f.shape("base_model.model.classifier.out_proj.bias"), (Shape{2}));
  EXPECT_CLOSE(f.get(p + "1.attention.self.query.lora_B.weight"),
               f.get(p + "3.attention.self.query.lora_B.weight"), 0, 0);
  auto c = read_json(dir + "/adapter_config.json");
  EXPECT_EQ(c["peft_type"], "LORA");
  EXPECT_EQ(c["task_type"], "SEQ_CLS");
  EXPECT_EQ(c["r"], 4);
  EXPECT_EQ(c["lora_alpha"], 16.0);
  EXPECT_EQ(c["lora_dropout"], 0.1);
  EXPECT_EQ(c["modules_to_save"], nlohmann::json({"classifier"}));
  // value sites were dropped, so the targets are the exact adapted paths
  ASSERT_TRUE(c["target_modules"].is_array());
  EXPECT_EQ(c["target_modules"].size(), 6u);

  lora::Batch b = test::random_batch(3, 3, 7, 8);
  Tensor want;
  {
    NoGradGuard ng;
    m->eval();
    want = m->forward(b.ids, b.mask).logits;
  }
  auto m2 = test::tiny_model(3);  // same base weights, other head
  {
    NoGradGuard ng;
    m2->find_module("classifier")->named_parameters()[0].second.fill_(0.0);
  }
  Generator g2(99);
  AdapterSet back = lora::import_peft(*m2, dir, g2);
  EXPECT_EQ(back.sites().size(), 6u);
  EXPECT_EQ(back.num_adapter_parameters(), set.num_adapter_parameters());
  EXPECT_EQ(back.site(p.substr(17) + "1.attention.self.query").module->adapter().get(),
            back.site(p.substr(17) + "3.attention.self.query").module->adapter().get());
  EXPECT_EQ(back.config().alpha, 16.0);
  NoGradGuard ng;
  m2->eval();
  EXPECT_CLOSE(m2->forward(b.ids, b.mask).logits, want, 0, 0);
  fs::remove_all(dir);
}

TEST(PeftExportBadInput, ClearErrors) {
  auto m = test::tiny_model(3);
  Generator g(1);
  AdapterSet set(*m, AdapterConfig{.r = 2}, g);
  std::string dir = tmp_dir("bad");
  set.merge();
  EXPECT_THROW(lora::export_peft(set, dir), Error);  // merged
  set.unmerge();
  lora::export_peft(set, dir);
  auto m2 = test::tiny_model(3);
  EXPECT_THROW(lora::import_peft(*m2, dir + "/missing", g), Error);
  auto c = read_json(dir + "/adapter_config.json");
  c["use_dora"] = true;
  std::ofstream(dir + "/adapter_config.json") << c.dump();
  EXPECT_THROW(lora::import_peft(*m2, dir, g), Error);
  c["use_dora"] = false;
  c["r"] = 3;  // does not match the tensors
  std::ofstream(dir + "/adapter_config.json") << c.dump();
  auto m3 = test::tiny_model(3);
  EXPECT_THROW(lora::import_peft(*m3, dir, g), Error);
  AdapterConfig vc;
  vc.method = lora::Method::VeRA;
  auto m4 = test::tiny_model(3);
  AdapterSet vera(*m4, vc, g);
  EXPECT_THROW(lora::export_peft(vera, dir), Error);
  fs::remove_all(dir);
}

// ---- against PEFT itself ----

const std::string kBase = std::string(LD_SOURCE_DIR) + "/tests/fixtures/models/roberta_seqcls";
const std::string kFixture = std::string(LD_SOURCE_DIR) + "/tests/fixtures/lora/peft_export";

std::shared_ptr<nn::EncoderForSequenceClassification> fixture_base() {
  auto m = std::make_shared<nn::EncoderForSequenceClassification>(
      nn::load_config(kBase + "/config.json"));
  nn::load_checkpoint(*m, kBase + "/model.safetensors");
  m->eval();
  return m;
}

// The deterministic LoRA-drop adapter of the fixture: r 4, alpha 8 on query/value of the 2-layer
// HF RoBERTa; both query sites share one adapter; B's and the head random.
std::unique_ptr<AdapterSet> fixture_adapter(nn::Module& m) {
  Generator g(7);
  auto set = std::make_unique<AdapterSet>(m, AdapterConfig{.r = 4, .alpha = 8}, g);
  set->rebuild({{"query", {false, false}}}, true, lora::SharedInit::Fresh, g);
  randomise_adapters(*set, 30);
  NoGradGuard ng;
  uint64_t seed = 50;
  for (auto& [n, t] : m.find_module("classifier")->named_parameters())
    Tensor(t).copy_(test::randn(t.shape(), seed++, DType::f32, 0.3));
  return set;
}

lora::Batch fixture_inputs() {
  lora::ClassificationData d;
  d.ids = {{0, 5, 9, 17, 33, 2}, {0, 44, 12, 2}, {0, 7, 7, 8, 21, 30, 41, 2}};
  d.labels = {0, 1, 2};
  return lora::make_batch(d, {0, 1, 2}, 1);
}

TEST(PeftGolden, PeftLogitsOfOurExportMatch) {
  auto m = fixture_base();
  auto set = fixture_adapter(*m);
  lora::Batch b = fixture_inputs();
  Tensor logits;
  {
    NoGradGuard ng;
    logits = m->forward(b.ids, b.mask).logits;
  }
  if (const char* out = std::getenv("LD_WRITE_LORA_FIXTURE")) {
    // Generator mode for tools/check_peft_export.py: write the export, inputs and our logits.
    lora::export_peft(*set, out,
                      {.base_model_name_or_path = "tests/fixtures/models/roberta_seqcls"});
    nn::save_safetensors(std::string(out) + "/inputs.safetensors",
                         {{"input_ids", b.ids}, {"attention_mask", b.mask}});
    nn::save_safetensors(std::string(out) + "/cpp_logits.safetensors", {{"logits", logits}});
    GTEST_SKIP() << "fixture written to " << out << "; now run tools/check_peft_export.py " << out;
  }
  ASSERT_TRUE(fs::exists(kFixture + "/peft_logits.safetensors"))
      << "missing fixture; see tools/check_peft_export.py";
  // 1. our export today is the export PEFT was run on (key names, shapes, values, config)
  std::string dir = tmp_dir("golden");
  lora::export_peft(*set, dir, {.base_model_name_or_path = "tests/fixtures/models/roberta_seqcls"});
  nn::SafetensorsFile mine(dir + "/adapter_model.safetensors");
  nn::SafetensorsFile ref(kFixture + "/adapter_model.safetensors");
  EXPECT_EQ(mine.names(), ref.names());
  for (const auto& n : ref.names()) {
    SCOPED_TRACE(n);
    if (mine.contains(n)) EXPECT_CLOSE(mine.get(n), ref.get(n), 0, 0);
  }
  EXPECT_EQ(read_json(dir + "/adapter_config.json"), read_json(kFixture + "/adapter_config.json"));
  fs::remove_all(dir);
  // 2. our logits equal PEFT's for that export; f32 on both sides, same op order up to BLAS
  // summation order, so 1e-5 as the nn goldens
  Tensor peft = nn::load_safetensors(kFixture + "/peft_logits.safetensors").at("logits");
  EXPECT_CLOSE(logits, peft, 1e-5, 1e-5);
  // 3. importing the committed export reproduces PEFT's logits
  auto m2 = fixture_base();
  Generator g(0);
  AdapterSet back = lora::import_peft(*m2, kFixture, g);
  NoGradGuard ng;
  EXPECT_CLOSE(m2->forward(b.ids, b.mask).logits, peft, 1e-5, 1e-5);
  EXPECT_EQ(back.num_adapter_parameters(), set->num_adapter_parameters());
}

}  // namespace
}  // namespace ld
