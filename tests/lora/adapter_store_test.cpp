// Saved run adapters (lora/adapter_store): save / load round trips (PEFT for LoRA-drop, our file
// for Tied-LoRA), bit-exact initialisation of a new run from them, LoRA-drop's shared adapter
// started from the saved run's, the head left alone, and clear errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "lora/adapter_store.h"
#include "tests/lora/lora_test_util.h"
#include "tests/test_util.h"

namespace ld {
namespace {

namespace fs = std::filesystem;
using lora::AdapterConfig;
using lora::AdapterSet;

std::string tmp_dir(const std::string& tag) { return test::fresh_temp_dir("ld_store", tag); }

void randomise_all(AdapterSet& set, uint64_t seed) {
  NoGradGuard ng;
  for (auto& [n, t] : set.trainable_parameters())
    Tensor(t).copy_(test::randn(t.shape(), seed++, DType::f32, 0.5));
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  auto x = a.detach().to(kCPU, DType::f32).contiguous().to_vector<float>();
  auto y = b.detach().to(kCPU, DType::f32).contiguous().to_vector<float>();
  return std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

const std::string kQ = "roberta.encoder.layer.";

TEST(AdapterStore, LoraDropSavedThenStartsAnotherRunBitExact) {
  // The "MNLI" run: LoRA-drop kept query layers 0 and 2, shared the rest; value all kept.
  auto m = test::tiny_model(3);
  Generator g(1);
  AdapterSet set(*m, AdapterConfig{.r = 4, .alpha = 8}, g);
  set.rebuild({{"query", {true, false, true, false}}}, true, lora::SharedInit::Fresh, g);
  randomise_all(set, 11);  // adapters and head
  const std::string dir = tmp_dir("ld") + "/seed0";
  lora::save_adapter(set, dir, "tiny");
  ASSERT_TRUE(lora::has_saved_adapter(dir));
  EXPECT_FALSE(fs::exists(dir + ".tmp." + std::to_string(::getpid())));
  lora::StoredAdapter st = lora::load_adapter(dir);
  EXPECT_EQ(st.r, 4);
  for (const auto& [n, t] : st.tensors) EXPECT_EQ(n.rfind("classifier", 0), std::string::npos);
  EXPECT_FALSE(st.shared_of("query").first.empty());
  EXPECT_TRUE(st.shared_of("value").first.empty());

  // The "RTE" run: a new model with another head (3 labels), LoRA at every site.
  auto m2 = std::make_shared<nn::EncoderForSequenceClassification>(test::tiny_config(4, 32, 3));
  test::randomise(*m2, 3);  // same base weights
  Generator g2(2);
  AdapterSet set2(*m2, AdapterConfig{.r = 4, .alpha = 8}, g2);
  const Tensor head_before = m2->parameter("classifier.out_proj.weight").detach().clone();
  lora::InitReport rep = lora::init_adapters_from(set2, st);
  EXPECT_TRUE(rep.kept.empty());
  EXPECT_EQ(rep.loaded.size(), 16u);  // 8 sites x (A, B)
  for (const lora::Site& s : set.sites()) {
    const lora::Site& s2 = set2.site(s.name);
    EXPECT_TRUE(bit_equal(s2.module->adapter()->A, s.module->adapter()->A)) << s.name;
    EXPECT_TRUE(bit_equal(s2.module->adapter()->B, s.module->adapter()->B)) << s.name;
  }
  EXPECT_TRUE(bit_equal(m2->parameter("classifier.out_proj.weight"), head_before));
  EXPECT_EQ(rep.digest, lora::adapter_digest(st.tensors));
  // After its own selection, its shared query adapter starts from the saved run's; value (which
  // the saved run did not share) keeps its fresh init.
  set2.rebuild({{"query", {false, true, false, false}}, {"value", {true, true, true, false}}}, true,
               lora::SharedInit::Fresh, g2);
  auto shared = lora::init_shared_from(set2, st);
  EXPECT_EQ(shared, std::vector<std::string>{"query"});
  const auto src_shared = set.site(kQ + "1.attention.self.query").module->adapter();
  const auto q0 = set2.site(kQ + "0.attention.self.query").module->adapter();
  EXPECT_EQ(q0->id, "query.shared");
  EXPECT_TRUE(bit_equal(q0->A, src_shared->A));
  EXPECT_TRUE(bit_equal(q0->B, src_shared->B));
  const auto v3 = set2.site(kQ + "3.attention.self.value").module->adapter();
  EXPECT_EQ(max(abs(v3->B)).item(), 0.0);  // fresh: B = 0
  // Retained query layer 1 kept its own (loaded) adapter, which was the saved run's shared one.
  EXPECT_TRUE(
      bit_equal(set2.site(kQ + "1.attention.self.query").module->adapter()->B, src_shared->B));
  fs::remove_all(fs::path(dir).parent_path());
}

TEST(AdapterStore, TiedLoraOwnFormatRoundTrip) {
  auto m = test::tiny_model(3);
  Generator g(1);
  AdapterConfig tc{.method = lora::Method::TiedLoRA, .r = 4, .alpha = 8};
  AdapterSet set(*m, tc, g);
  randomise_all(set, 21);
  const std::string dir = tmp_dir("tied");
  lora::save_adapter(set, dir);
  EXPECT_TRUE(fs::exists(dir + "/adapter_tensors.safetensors"));
  lora::StoredAdapter st = lora::load_adapter(dir);
  EXPECT_EQ(st.method, lora::Method::TiedLoRA);
  auto m2 = test::tiny_model(3);
  Generator g2(5);
  AdapterSet set2(*m2, tc, g2);
  lora::InitReport rep = lora::init_adapters_from(set2, st);
  EXPECT_TRUE(rep.kept.empty());
  auto p1 = set.trainable_parameters(), p2 = set2.trainable_parameters();
  ASSERT_EQ(p1.size(), p2.size());
  for (size_t i = 0; i < p1.size(); ++i) {
    ASSERT_EQ(p1[i].first, p2[i].first);
    if (p1[i].first.rfind("classifier", 0) == 0) continue;
    EXPECT_TRUE(bit_equal(p1[i].second, p2[i].second)) << p1[i].first;
  }
  // A LoRA run cannot start from a Tied-LoRA adapter.
  auto m3 = test::tiny_model(3);
  AdapterSet set3(*m3, AdapterConfig{.r = 4, .alpha = 8}, g2);
  EXPECT_THROW(lora::init_adapters_from(set3, st), Error);
  fs::remove_all(dir);
}

TEST(AdapterStoreBadInput, MissingDirectoryAndRankMismatch) {
  const std::string dir = tmp_dir("missing");
  EXPECT_FALSE(lora::has_saved_adapter(dir));
  try {
    lora::load_adapter(dir);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir), std::string::npos) << e.what();
  }
  auto m = test::tiny_model(3);
  Generator g(1);
  AdapterSet set(*m, AdapterConfig{.r = 4, .alpha = 8}, g);
  lora::save_adapter(set, dir);
  auto m2 = test::tiny_model(3);
  AdapterSet set2(*m2, AdapterConfig{.r = 2, .alpha = 8}, g);
  EXPECT_THROW(lora::init_adapters_from(set2, lora::load_adapter(dir)), Error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ld
