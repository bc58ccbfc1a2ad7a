// safetensors round trip (all dtypes, sharded index), bad inputs, and Module naming/freezing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "nn/encoder.h"
#include "nn/safetensors.h"
#include "tests/nn/golden_util.h"

namespace ld {
namespace {

namespace fs = std::filesystem;

std::string tmp(const std::string& n) {
  return (fs::temp_directory_path() / ("ld_st_" + std::to_string(::getpid()) + "_" + n)).string();
}

std::string expect_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ld::Error";
  return "";
}

TEST(Safetensors, RoundTripAllDtypesAndSharded) {
  std::map<std::string, Tensor> t;
  t["f32"] = test::randn({2, 3}, 1, DType::f32);
  t["f64"] = test::randn({4}, 2, DType::f64);
  t["bf16"] = test::randn({3, 1}, 3, DType::f32).to(DType::bf16);
  t["f16"] = test::randn({5}, 4, DType::f32).to(DType::f16);
  t["i64"] = Tensor::from_vector<int64_t>({1, -2, 3}, {3});
  t["i32"] = Tensor::from_vector<int32_t>({7, 8}, {2});
  t["bool"] = Tensor::from_vector<bool>({true, false, true}, {3});
  std::string p = tmp("a.safetensors");
  nn::save_safetensors(p, t, {{"k", "v"}});
  nn::SafetensorsFile f(p);
  EXPECT_EQ(f.metadata().at("k"), "v");
  for (auto& [n, x] : t) {
    Tensor y = f.get(n);
    EXPECT_EQ(y.dtype(), x.dtype()) << n;
    EXPECT_EQ(y.shape(), x.shape()) << n;
    EXPECT_EQ(0, std::memcmp(y.contiguous().raw_data(), x.contiguous().raw_data(),
                             x.numel() * dtype_size(x.dtype())))
        << n;
  }
  // Sharded: two files and an index.
  std::string dir = tmp("shard");
  fs::create_directories(dir);
  nn::save_safetensors(dir + "/s1.safetensors", {{"f32", t["f32"]}});
  nn::save_safetensors(dir + "/s2.safetensors", {{"i64", t["i64"]}});
  std::ofstream(dir + "/model.safetensors.index.json")
      << R"({"metadata":{},"weight_map":{"f32":"s1.safetensors","i64":"s2.safetensors"}})";
  auto all = nn::load_safetensors(dir);
  EXPECT_EQ(all.size(), 2u);
  EXPECT_EQ(all["i64"].to_vector<int64_t>(), t["i64"].to_vector<int64_t>());
  fs::remove_all(dir);
  fs::remove(p);
}

TEST(SafetensorsBadInput, TruncatedBadJsonOffsets) {
  std::string p = tmp("b.safetensors");
  nn::save_safetensors(p, {{"w", Tensor::ones({4, 4})}});
  std::string bytes;
  {
    std::ifstream in(p, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& s) { std::ofstream(p, std::ios::binary) << s; };
  write(bytes.substr(0, bytes.size() - 10));
  std::string e = expect_error([&] { nn::SafetensorsFile f(p); });
  EXPECT_NE(e.find("out of range"), std::string::npos) << e;
  EXPECT_NE(e.find("'w'"), std::string::npos) << e;
  write(bytes.substr(0, 5));
  EXPECT_NE(expect_error([&] { nn::SafetensorsFile f(p); }).find("truncated"), std::string::npos);
  std::string bad = bytes;
  bad[9] = '#';  // corrupt the JSON
  write(bad);
  EXPECT_NE(expect_error([&] { nn::SafetensorsFile f(p); }).find("bad safetensors header JSON"),
            std::string::npos);
  std::string big = bytes;
  big[0] = '\xff', big[1] = '\xff';  // header length beyond the file
  write(big);
  EXPECT_NE(expect_error([&] { nn::SafetensorsFile f(p); }).find("truncated"), std::string::npos);
  fs::remove(p);
}

TEST(SafetensorsBadInput, MissingAndExtraTensorsNamed) {
  nn::ModelConfig c = nn::load_config(test::fixture("roberta_seqcls", "config.json"));
  nn::EncoderForSequenceClassification m(c);
  auto sd = nn::load_safetensors(test::fixture("roberta_seqcls", "model.safetensors"));
  sd.erase("classifier.out_proj.bias");
  sd["extra.weight"] = Tensor::ones({1});
  std::string p = tmp("c.safetensors");
  nn::save_safetensors(p, sd);
  std::string e = expect_error([&] { nn::load_checkpoint(m, p); });
  EXPECT_NE(e.find("classifier.out_proj.bias"), std::string::npos) << e;
  nn::LoadOptions lo;
  lo.allow_missing = {"classifier.*"};
  e = expect_error([&] { nn::load_checkpoint(m, p, lo); });
  EXPECT_NE(e.find("extra.weight"), std::string::npos) << e;
  fs::remove(p);
}

TEST(Module, NamesFreezeCountsStateDict) {
  nn::ModelConfig c = nn::load_config(test::fixture("roberta_seqcls", "config.json"));
  nn::EncoderForSequenceClassification m(c);
  auto names = m.named_parameters();
  EXPECT_EQ(names[0].first, "roberta.embeddings.word_embeddings.weight");
  EXPECT_NO_THROW(m.parameter("roberta.encoder.layer.1.attention.self.query.weight"));
  EXPECT_EQ(m.find_modules("*.attention.self.value").size(), 2u);
  EXPECT_EQ(m.find_modules("re:.*layer\\.1\\..*(query|key)$").size(), 2u);
  int64_t total = m.num_parameters();
  EXPECT_EQ(m.num_parameters(true), total);
  m.freeze_all();
  EXPECT_EQ(m.num_parameters(true), 0);
  EXPECT_EQ(m.unfreeze("classifier.*"), 4);
  EXPECT_EQ(m.num_parameters(true), 16 * 16 + 16 + 16 * 3 + 3);
  EXPECT_EQ(m.find_module("roberta.encoder.layer.0.attention.self.query")->path(),
            "roberta.encoder.layer.0.attention.self.query");
  nn::load_checkpoint(m, test::fixture("roberta_seqcls", "model.safetensors"));
  nn::EncoderForSequenceClassification m2(c);
  m2.load_state_dict(m.state_dict());
  EXPECT_EQ(m2.parameter("classifier.dense.weight").to_vector<float>(),
            m.parameter("classifier.dense.weight").to_vector<float>());
  auto sd = m.state_dict();
  sd.erase("classifier.dense.bias");
  EXPECT_THROW(m2.load_state_dict(sd), Error);
}

}  // namespace
}  // namespace ld
