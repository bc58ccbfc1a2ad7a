// Golden tests: loradrop's tokenizers give ids identical to Hugging Face (fixtures written by
// tools/make_tokenizer_goldens.py) for real GLUE/E2E/DART/DialogSum text and Unicode edge cases.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "core/error.h"
#include "data/tokenizer.h"

namespace ld::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kFixtures = fs::path(LD_SOURCE_DIR) / "tests" / "fixtures" / "tokenizers";
const fs::path kTokenizers = fs::path(LD_SHARED_DATA) / "tokenizers";

json load_fixture(const std::string& name) {
  std::ifstream in(kFixtures / (name + ".json"));
  EXPECT_TRUE(in.good()) << "missing fixture " << (kFixtures / (name + ".json"));
  return json::parse(in);
}

// Files the tokenizer needs; empty string when all are present, else a skip message.
std::string missing(const fs::path& dir, std::initializer_list<const char*> files) {
  for (const char* f : files)
    if (!fs::exists(dir / f))
      return "tokenizer file " + (dir / f).string() + " not found (../shared/data is absent)";
  return "";
}

std::string show(const std::vector<int32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

// Runs every case of the fixture; reports the first mismatches in full and counts the rest.
void run_golden(const Tokenizer& tok, const json& fx) {
  const json& cases = fx.at("cases");
  ASSERT_GE(cases.size(), 500u) << "fixture too small";
  size_t n_fail = 0, n_pairs = 0, n_trunc = 0, n_decode = 0;
  for (size_t k = 0; k < cases.size(); ++k) {
    const json& c = cases[k];
    const std::string text = c.at("text").get<std::string>();
    EncodeOptions opt;
    if (c.contains("max_length")) opt.max_length = c["max_length"].get<size_t>(), ++n_trunc;
    Encoding e;
    const bool pair = c.contains("text_pair");
    if (pair) {
      ++n_pairs;
      e = tok.encode_pair(text, c["text_pair"].get<std::string>(), opt);
    } else {
      e = tok.encode(text, opt);
    }
    const auto want = c.at("ids").get<std::vector<int32_t>>();
    bool ok = e.ids == want;
    if (pair) ok = ok && e.type_ids == c.at("type_ids").get<std::vector<int32_t>>();
    // HF leaves the input whole when max_length is below the number of special tokens.
    if (opt.max_length >= tok.special_template().num_special(pair) && opt.max_length > 0)
      ok = ok && e.ids.size() <= opt.max_length;
    ok = ok && e.attention_mask == std::vector<int32_t>(e.ids.size(), 1);
    std::string decoded;
    if (c.contains("decoded")) {
      ++n_decode;
      decoded = tok.decode(e.ids);
      ok = ok && decoded == c["decoded"].get<std::string>();
    }
    if (!ok && ++n_fail <= 5) {
      ADD_FAILURE() << "case " << k << " (" << c.value("source", "")
                    << ") text=" << json(text).dump()
                    << (pair ? " pair=" + c["text_pair"].dump() : "")
                    << (opt.max_length ? " max_length=" + std::to_string(opt.max_length) : "")
                    << "\n  want ids " << show(want) << "\n  got  ids " << show(e.ids)
                    << (pair ? "\n  want types " + c["type_ids"].dump() + "\n  got  types " +
                                   show(e.type_ids)
                             : "")
                    << (c.contains("decoded") ? "\n  want decoded " + c["decoded"].dump() +
                                                    "\n  got  decoded " + json(decoded).dump()
                                              : "");
    }
  }
  EXPECT_EQ(n_fail, 0u) << n_fail << " of " << cases.size() << " cases differ from Hugging Face";
  EXPECT_GT(n_pairs, 200u);
  EXPECT_GT(n_trunc, 50u);
  EXPECT_GT(n_decode, 100u);
}

TEST(TokenizerGolden, RobertaBpeMatchesHuggingFace) {
  const fs::path dir = kTokenizers / "roberta-base";
  if (auto m = missing(dir, {"vocab.json", "merges.txt"}); !m.empty()) GTEST_SKIP() << m;
  auto tok = load_bpe(dir / "vocab.json", dir / "merges.txt");
  EXPECT_EQ(tok->vocab_size(), 50265);
  EXPECT_EQ(tok->special_ids().bos, 0);
  EXPECT_EQ(tok->special_ids().pad, 1);
  EXPECT_EQ(tok->special_ids().eos, 2);
  EXPECT_EQ(tok->special_ids().mask, 50264);
  run_golden(*tok, load_fixture("roberta-base"));
}

// The same model through tokenizer.json: one is written from vocab.json + merges.txt in the layout
// tokenizers' Tokenizer.to_str() uses for roberta-base (merges as [a, b] pairs).
TEST(TokenizerGolden, RobertaTokenizerJsonMatchesHuggingFace) {
  const fs::path dir = kTokenizers / "roberta-base";
  if (auto m = missing(dir, {"vocab.json", "merges.txt"}); !m.empty()) GTEST_SKIP() << m;
  json vocab = json::parse(std::ifstream(dir / "vocab.json"));
  json merges = json::array();
  std::ifstream mf(dir / "merges.txt");
  for (std::string line; std::getline(mf, line);) {
    if (line.rfind("#version", 0) == 0) continue;
    const size_t sp = line.find(' ');
    merges.push_back({line.substr(0, sp), line.substr(sp + 1)});
  }
  json added = json::array();
  for (const char* t : {"<s>", "<pad>", "</s>", "<unk>", "<mask>"})
    added.push_back({{"id", vocab[t]},
                     {"content", t},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  json tj = {{"version", "1.0"},
             {"truncation", nullptr},
             {"padding", nullptr},
             {"added_tokens", added},
             {"normalizer", nullptr},
             {"pre_tokenizer",
              {{"type", "ByteLevel"},
               {"add_prefix_space", false},
               {"trim_offsets", true},
               {"use_regex", true}}},
             {"post_processor",
              {{"type", "RobertaProcessing"},
               {"sep", {"</s>", 2}},
               {"cls", {"<s>", 0}},
               {"trim_offsets", true},
               {"add_prefix_space", false}}},
             {"decoder", {{"type", "ByteLevel"}}},
             {"model",
              {{"type", "BPE"},
               {"dropout", nullptr},
               {"unk_token", nullptr},
               {"fuse_unk", false},
               {"byte_fallback", false},
               {"vocab", vocab},
               {"merges", merges}}}};
  const fs::path tmp = fs::temp_directory_path() / ("ld_tokjson_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  std::ofstream(tmp / "tokenizer.json") << tj.dump();
  auto tok = load_tokenizer(tmp);
  fs::remove_all(tmp);
  EXPECT_EQ(tok->kind(), "bpe");
  run_golden(*tok, load_fixture("roberta-base"));
}

TEST(TokenizerGolden, BertWordPieceMatchesHuggingFace) {
  const fs::path dir = kTokenizers / "bert-base-uncased";
  if (auto m = missing(dir, {"vocab.txt"}); !m.empty()) GTEST_SKIP() << m;
  auto tok = load_wordpiece(dir / "vocab.txt");
  EXPECT_EQ(tok->vocab_size(), 30522);
  EXPECT_EQ(tok->special_ids().cls, 101);
  EXPECT_EQ(tok->special_ids().sep, 102);
  EXPECT_EQ(tok->special_ids().pad, 0);
  run_golden(*tok, load_fixture("bert-base-uncased"));
}

TEST(TokenizerGolden, LlamaSentencePieceMatchesHuggingFace) {
  const fs::path dir = kTokenizers / "llama2";
  if (auto m = missing(dir, {"tokenizer.model"}); !m.empty()) GTEST_SKIP() << m;
  auto tok = load_tokenizer(dir);
  EXPECT_EQ(tok->kind(), "sentencepiece");
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->special_ids().bos, 1);
  EXPECT_EQ(tok->special_ids().eos, 2);
  EXPECT_EQ(tok->special_ids().pad, -1);
  run_golden(*tok, load_fixture("llama2"));
}

}  // namespace
}  // namespace ld::data
