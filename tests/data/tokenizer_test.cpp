// Unit tests of the tokenizer machinery (truncation, padding, Unicode helpers) and BadInput cases
// for the tokenizer-file loaders: every error is an ld::Error naming the file (and line).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "core/error.h"
#include "data/tokenizer.h"
#include "data/unicode.h"

namespace ld::data {
namespace {

namespace fs = std::filesystem;
const fs::path kTokenizers = fs::path(LD_SHARED_DATA) / "tokenizers";

class TempDir {
 public:
  TempDir() {
    static int n = 0;
    path_ = fs::temp_directory_path() /
            ("ld_tok_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path_ / name, std::ios::binary) << bytes;
    return path_ / name;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Expects an ld::Error whose message contains every one of `parts`.
template <class F>
void expect_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "expected ld::Error";
  } catch (const ld::Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "': " << msg;
  }
}

// A tiny BPE model: bytes a, b, c plus merges "a b" -> "ab", "ab c" -> "abc".
std::string tiny_vocab() {
  return R"({"<s>":0,"<pad>":1,"</s>":2,"<unk>":3,"a":4,"b":5,"c":6,"ab":7,"abc":8,"Ġ":9,"Ġa":10})";
}

TEST(TokenizerTruncation, LongestFirstMatchesHuggingFaceRule) {
  auto run = [](size_t na, size_t nb, size_t budget) {
    std::vector<int32_t> a(na, 1), b(nb, 2);
    truncate_longest_first(a, &b, budget);
    return std::pair{a.size(), b.size()};
  };
  // Values checked against tokenizers 0.23 (see tools/make_tokenizer_goldens.py truncation cases).
  EXPECT_EQ(run(10, 10, 11), std::pair(size_t{5}, size_t{6}));  // tie: second gets the odd one
  EXPECT_EQ(run(11, 10, 11), std::pair(size_t{6}, size_t{5}));  // the longer gets the odd one
  EXPECT_EQ(run(12, 3, 6), std::pair(size_t{3}, size_t{3}));    // shorter kept whole
  EXPECT_EQ(run(3, 12, 6), std::pair(size_t{3}, size_t{3}));
  EXPECT_EQ(run(30, 1, 6), std::pair(size_t{5}, size_t{1}));
  EXPECT_EQ(run(10, 10, 1), std::pair(size_t{0}, size_t{1}));
  EXPECT_EQ(run(20, 20, 0), std::pair(size_t{0}, size_t{0}));
  EXPECT_EQ(run(2, 3, 10), std::pair(size_t{2}, size_t{3}));  // fits: untouched
  std::vector<int32_t> s(9, 1);
  truncate_longest_first(s, nullptr, 4);
  EXPECT_EQ(s.size(), 4u);
}

TEST(TokenizerPadding, LeftAndRightWithMask) {
  TempDir d;
  auto tok = load_bpe(d.write("vocab.json", tiny_vocab()),
                      d.write("merges.txt", "#version: 0.2\na b\nab c\n"));
  std::vector<Encoding> batch = {tok->encode("abc"), tok->encode_pair("abc", "ab c")};
  EXPECT_EQ(batch[0].ids, (std::vector<int32_t>{0, 8, 2}));
  EXPECT_EQ(batch[1].ids, (std::vector<int32_t>{0, 8, 2, 2, 7, 9, 6, 2}));
  auto right = batch;
  tok->pad(right);
  EXPECT_EQ(right[0].ids, (std::vector<int32_t>{0, 8, 2, 1, 1, 1, 1, 1}));
  EXPECT_EQ(right[0].attention_mask, (std::vector<int32_t>{1, 1, 1, 0, 0, 0, 0, 0}));
  auto left = batch;
  PaddingOptions lo;
  lo.side = PaddingSide::kLeft;
  lo.multiple_of = 4;
  tok->pad(left, lo);
  EXPECT_EQ(left[0].ids, (std::vector<int32_t>{1, 1, 1, 1, 1, 0, 8, 2}));
  EXPECT_EQ(left[0].attention_mask, (std::vector<int32_t>{0, 0, 0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(left[1].ids, batch[1].ids);
  auto fixed = batch;
  tok->pad(fixed, {.length = 10, .pad_id = 7});
  EXPECT_EQ(fixed[1].ids.size(), 10u);
  EXPECT_EQ(fixed[1].ids.back(), 7);
  EXPECT_EQ(fixed[1].type_ids.back(), 0);
}

TEST(TokenizerPadding, BadInputNoPadToken) {
  const fs::path model = kTokenizers / "llama2" / "tokenizer.model";
  if (!fs::exists(model)) GTEST_SKIP() << model << " not found (../shared/data is absent)";
  auto tok = load_sentencepiece(model);
  std::vector<Encoding> batch = {tok->encode("a"), tok->encode("a b c")};
  expect_error([&] { tok->pad(batch); }, {"pad token"});
  tok->pad(batch, {.side = PaddingSide::kLeft, .pad_id = tok->special_ids().eos});
  EXPECT_EQ(batch[0].ids.front(), 2);
  EXPECT_EQ(batch[0].ids.back(), 263);  // "▁a"
}

TEST(TokenizerUnicode, TablesAndNormalisation) {
  using unicode::Category;
  EXPECT_STREQ(unicode::version(), "14.0.0");
  EXPECT_EQ(unicode::category(U'A'), Category::Lu);
  EXPECT_EQ(unicode::category(U'é'), Category::Ll);
  EXPECT_EQ(unicode::category(U'中'), Category::Lo);
  EXPECT_EQ(unicode::category(0x0301), Category::Mn);
  EXPECT_EQ(unicode::category(U'٣'), Category::Nd);
  EXPECT_EQ(unicode::category(0x200B), Category::Cf);
  EXPECT_EQ(unicode::category(0x10FFFF), Category::Cn);
  EXPECT_EQ(unicode::category(U'😀'), Category::So);
  EXPECT_TRUE(unicode::is_white_space(0x00A0));
  EXPECT_TRUE(unicode::is_white_space(0x3000));
  EXPECT_FALSE(unicode::is_white_space(0x200B));
  EXPECT_FALSE(unicode::is_white_space(0x1F));
  EXPECT_EQ(unicode::nfd(U"é"), U"e\u0301");
  EXPECT_EQ(unicode::nfd(U"한"), U"\u1112\u1161\u11AB");
  EXPECT_EQ(unicode::nfd(U"\u1E69"), U"s\u0323\u0307");         // ṩ
  EXPECT_EQ(unicode::nfd(U"q\u0307\u0323"), U"q\u0323\u0307");  // canonical reordering
  std::u32string low;
  unicode::append_lower(U'İ', low);
  EXPECT_EQ(low, U"i\u0307");
  EXPECT_EQ(unicode::utf8_lossy("a\xff"
                                "b\xe2\x82"),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
  EXPECT_EQ(unicode::to_utf8(unicode::to_utf32("ü😀")), "ü😀");
}

TEST(TokenizerBpe, BadInputMissingFile) {
  TempDir d;
  const fs::path merges = d.write("merges.txt", "#version: 0.2\n");
  expect_error([&] { load_bpe(d.path() / "nope.json", merges); }, {"nope.json", "not found"});
  expect_error([&] { load_tokenizer(d.path() / "empty_dir_that_is_missing"); },
               {"empty_dir_that_is_missing", "no tokenizer files"});
}

TEST(TokenizerBpe, BadInputMalformedVocabJson) {
  TempDir d;
  const fs::path merges = d.write("merges.txt", "#version: 0.2\n");
  const fs::path v1 = d.write("v1.json", "{\"a\": 1,\n \"b\": 2,\n \"c\" 3}\n");
  expect_error([&] { load_bpe(v1, merges); }, {"v1.json:3:", "invalid JSON"});
  const fs::path v2 = d.write("v2.json", "[1, 2, 3]");
  expect_error([&] { load_bpe(v2, merges); }, {"v2.json", "JSON object"});
  const fs::path v3 = d.write("v3.json", "{\"a\": \"x\"}");
  expect_error([&] { load_bpe(v3, merges); }, {"v3.json", "not an integer"});
  const fs::path v4 = d.write("v4.json", "");
  expect_error([&] { load_bpe(v4, merges); }, {"v4.json", "invalid JSON"});
  const fs::path v5 = d.write("v5.json", "{\"a\": 1}");  // no <s>/</s> for the RoBERTa template
  expect_error([&] { load_bpe(v5, merges); }, {"v5.json", "<s>"});
}

TEST(TokenizerBpe, BadInputMalformedMerges) {
  TempDir d;
  const fs::path vocab = d.write("vocab.json", tiny_vocab());
  expect_error([&] { load_bpe(vocab, d.write("m1.txt", "#version: 0.2\na b\nab\n")); },
               {"m1.txt:3:", "malformed merge"});
  expect_error([&] { load_bpe(vocab, d.write("m2.txt", "#version: 0.2\na b\nab c d\n")); },
               {"m2.txt:3:", "malformed merge"});
  expect_error([&] { load_bpe(vocab, d.write("m3.txt", "a b\nx y\n")); },
               {"m3.txt:2:", "\"x\"", "not in the vocabulary"});
  expect_error([&] { load_bpe(vocab, d.write("m4.txt", "a b\nb c\n")); }, {"m4.txt:2:", "\"bc\""});
  expect_error([&] { load_bpe(vocab, d.write("m5.txt", "a b\n\nab c\n")); }, {"m5.txt:2:"});
}

TEST(TokenizerBpe, BadInputTokenizerJson) {
  TempDir d;
  expect_error(
      [&] { load_bpe_tokenizer_json(d.write("t1.json", "{\"model\": {\"type\": \"Unigram\"}}")); },
      {"t1.json", "Unigram"});
  expect_error(
      [&] { load_bpe_tokenizer_json(d.write("t2.json", "{\"model\": {\"type\": \"BPE\"}}")); },
      {"t2.json"});
  expect_error([&] { load_bpe_tokenizer_json(d.write("t3.json", "{\"model\": \n{")); },
               {"t3.json:2:", "invalid JSON"});
}

TEST(TokenizerBpe, TinyModelMergesByRank) {
  TempDir d;
  auto tok =
      load_bpe(d.write("vocab.json", tiny_vocab()), d.write("merges.txt", "a b\nab c\n\u0120 a\n"));
  EXPECT_EQ(tok->encode_ids("abcab"), (std::vector<int32_t>{8, 7}));
  EXPECT_EQ(tok->encode_ids("cba"), (std::vector<int32_t>{6, 5, 4}));
  EXPECT_EQ(tok->encode_ids(" a"), (std::vector<int32_t>{10}));
  EXPECT_EQ(tok->encode_ids("<s>ab</s>"), (std::vector<int32_t>{0, 7, 2}));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{0, 8, 10, 2}), "abc a");
  EXPECT_EQ(tok->decode(std::vector<int32_t>{0, 8, 2}, false), "<s>abc</s>");
  expect_error([&] { tok->decode(std::vector<int32_t>{99}); }, {"99"});
}

TEST(TokenizerWordPiece, BadInputVocab) {
  TempDir d;
  expect_error([&] { load_wordpiece(d.path() / "vocab.txt"); }, {"vocab.txt", "not found"});
  expect_error([&] { load_wordpiece(d.write("empty.txt", "")); }, {"empty.txt", "empty"});
  expect_error([&] { load_wordpiece(d.write("nounk.txt", "[CLS]\n[SEP]\nhello\n")); },
               {"nounk.txt", "[UNK]"});
  expect_error([&] { load_wordpiece(d.write("bad.txt", "[UNK]\n[CLS]\n\xff\xfe\n[SEP]\n")); },
               {"bad.txt:3:", "UTF-8"});
}

TEST(TokenizerWordPiece, TinyVocabGreedyLongestMatch) {
  TempDir d;
  auto tok = load_wordpiece(d.write("vocab.txt",
                                    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\nhello\n"
                                    "!\n##a\n##ff\ncafe\n"));
  EXPECT_EQ(tok->encode_ids("unaffable"), (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(tok->encode_ids("HELLO!! Café"), (std::vector<int32_t>{8, 9, 9, 12}));
  EXPECT_EQ(tok->encode_ids("unknown"), (std::vector<int32_t>{1}));
  EXPECT_EQ(tok->encode_ids(std::string(101, 'a')), (std::vector<int32_t>{1}));
  Encoding e = tok->encode_pair("hello", "cafe");
  EXPECT_EQ(e.ids, (std::vector<int32_t>{2, 8, 3, 12, 3}));
  EXPECT_EQ(e.type_ids, (std::vector<int32_t>{0, 0, 0, 1, 1}));
  EXPECT_EQ(tok->decode(e.ids), "hello cafe");
  EXPECT_EQ(tok->decode(std::vector<int32_t>{5, 6, 7, 9}), "unaffable!");
}

TEST(TokenizerSentencePiece, BadInputCorruptModel) {
  TempDir d;
  expect_error([&] { load_sentencepiece(d.path() / "tokenizer.model"); },
               {"tokenizer.model", "not found"});
  expect_error([&] { load_sentencepiece(d.write("empty.model", "")); }, {"empty.model"});
  expect_error(
      [&] { load_sentencepiece(d.write("junk.model", "this is not a protobuf \xff\xff\xff")); },
      {"junk.model", "SentencePiece"});
  const fs::path model = kTokenizers / "llama2" / "tokenizer.model";
  if (!fs::exists(model)) GTEST_SKIP() << model << " not found (../shared/data is absent)";
  std::ifstream in(model, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  expect_error(
      [&] { load_sentencepiece(d.write("truncated.model", bytes.substr(0, bytes.size() / 2))); },
      {"truncated.model", "SentencePiece"});
}

}  // namespace
}  // namespace ld::data
