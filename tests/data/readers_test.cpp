// Dataset readers: row counts and contents on the real files in ../shared/data (skipped when
// absent), official layouts for tasks whose files are not shared (MNLI, QQP), and malformed inputs
// (BadInput) whose errors must name the file and the line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>

#include "core/error.h"
#include "data/glue.h"
#include "data/nlg.h"
#include "data/tasks.h"
#include "data/text_io.h"

using namespace ld::data;
namespace fs = std::filesystem;

namespace {

const std::string kData = LD_SHARED_DATA;

#define REQUIRE_DATA(sub)                                                                  \
  do {                                                                                     \
    if (!fs::exists(kData + "/" + (sub)))                                                  \
      GTEST_SKIP() << "shared data folder " << kData << "/" << (sub)                       \
                   << " is absent (see ../shared/data/README.md); real-file test skipped"; \
  } while (0)

// A fresh temp dir per test; files written there are removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / (std::string("ld_data_") + info->test_suite_name() + "_" +
                                         info->name() + "_" + std::to_string(::getpid()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string write(const std::string& name, const std::string& content) const {
    const std::string p = (path_ / name).string();
    fs::create_directories(fs::path(p).parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  std::string path(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Runs f, expects ld::Error, and checks that the message contains every piece in `parts`.
template <class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected ld::Error containing " << parts.at(0);
  } catch (const ld::Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

std::map<int64_t, int64_t> label_counts(const GlueDataset& d) {
  std::map<int64_t, int64_t> m;
  for (const auto& e : d.examples) ++m[e.label];
  return m;
}

}  // namespace

// ------------------------------------------------------------------ registry

TEST(Tasks, RegistryAndPaperMetric) {
  EXPECT_EQ(all_tasks().size(), 11u);
  EXPECT_EQ(task_info("CoLA").paper_metric, Metric::kMatthews);
  EXPECT_EQ(task_info("sts-b").paper_metric, Metric::kPearson);
  EXPECT_TRUE(task_info("stsb").is_regression());
  EXPECT_EQ(task_info("mrpc").paper_metric, Metric::kAccuracy);
  EXPECT_EQ(task_info("qqp").paper_metric, Metric::kAccuracy);
  EXPECT_EQ(task_info("MNLI").num_labels(), 3);
  EXPECT_EQ(task_info("mnli").label_id("contradiction"), 2);
  EXPECT_EQ(task_info("rte").label_id("neutral"), -1);
  EXPECT_EQ(task_info("dialogsum").paper_metric, Metric::kRougeL);
  EXPECT_EQ(task_info("e2e").paper_metric, Metric::kBleu);
  EXPECT_EQ(glue_file_name("mnli", GlueSplit::kDevMismatched), "dev_mismatched.tsv");
  EXPECT_THROW(glue_file_name("rte", GlueSplit::kDevMismatched), ld::Error);
  EXPECT_THROW(task_info("squad"), ld::Error);
}

// ------------------------------------------------------------------ GLUE on the real files

struct GlueCount {
  const char* task;
  GlueSplit split;
  size_t rows;
};

TEST(GlueReal, RowCountsEveryFile) {
  REQUIRE_DATA("glue");
  // Rows from each folder's PROVENANCE.md.
  const GlueCount counts[] = {
      {"cola", GlueSplit::kTrain, 8551},  {"cola", GlueSplit::kDev, 1043},
      {"cola", GlueSplit::kTest, 1063},   {"sst-2", GlueSplit::kTrain, 67349},
      {"sst-2", GlueSplit::kDev, 872},    {"sst-2", GlueSplit::kTest, 1821},
      {"mrpc", GlueSplit::kTrain, 3668},  {"mrpc", GlueSplit::kDev, 408},
      {"mrpc", GlueSplit::kTest, 1725},   {"qnli", GlueSplit::kDev, 5463},
      {"qnli", GlueSplit::kTest, 5463},   {"rte", GlueSplit::kTrain, 2490},
      {"rte", GlueSplit::kDev, 277},      {"rte", GlueSplit::kTest, 3000},
      {"sts-b", GlueSplit::kTrain, 5749}, {"sts-b", GlueSplit::kDev, 1500},
      {"sts-b", GlueSplit::kTest, 1379}};
  for (const auto& c : counts) {
    const std::string dir = kData + "/glue/" + task_info(c.task).display;
    if (!fs::exists(dir)) continue;
    GlueDataset d = read_glue_split(c.task, kData + "/glue", c.split);
    EXPECT_EQ(d.examples.size(), c.rows) << d.path;
    const bool test = c.split == GlueSplit::kTest;
    for (const auto& e : d.examples) {
      ASSERT_FALSE(e.text_a.empty()) << d.path << ":" << e.line;
      if (task_info(c.task).text_fields.size() == 2) {
        ASSERT_FALSE(e.text_b.empty()) << d.path << ":" << e.line;
      }
      if (test) {
        ASSERT_EQ(e.label, -1);
        ASSERT_TRUE(std::isnan(e.score));
      } else if (task_info(c.task).is_regression()) {
        ASSERT_TRUE(e.score >= 0 && e.score <= 5) << d.path << ":" << e.line;
      } else {
        ASSERT_GE(e.label, 0);
      }
    }
  }
}

TEST(GlueReal, LabelDistributionsAndContents) {
  REQUIRE_DATA("glue");
  const std::string g = kData + "/glue";
  if (fs::exists(g + "/SST-2")) {
    auto d = read_glue_split("sst-2", g, GlueSplit::kTrain);
    EXPECT_EQ(label_counts(d), (std::map<int64_t, int64_t>{{0, 29780}, {1, 37569}}));
    // The official format keeps the trailing space before the tab.
    EXPECT_EQ(d.examples[0].text_a, "hide new secretions from the parental units ");
  }
  if (fs::exists(g + "/MRPC")) {
    auto d = read_glue_split("mrpc", g, GlueSplit::kTrain);
    EXPECT_EQ(label_counts(d), (std::map<int64_t, int64_t>{{0, 1194}, {1, 2474}}));
    auto dev = read_glue_split("mrpc", g, GlueSplit::kDev);  // BOM header; quotes kept verbatim
    EXPECT_EQ(dev.examples[0].label, 1);
    EXPECT_EQ(dev.examples[0].text_b.substr(0, 16), "\"The foodservice");
    EXPECT_EQ(dev.examples[0].line, 2);
    auto test = read_glue_split("mrpc", g, GlueSplit::kTest);
    EXPECT_EQ(test.examples[0].guid, "0");
  }
  if (fs::exists(g + "/CoLA")) {
    auto dev = read_glue_split("cola", g, GlueSplit::kDev);  // no header, no final newline
    EXPECT_EQ(dev.examples[0].text_a, "The sailors rode the breeze clear of the rocks.");
    EXPECT_EQ(dev.examples[0].line, 1);
    EXPECT_EQ(label_counts(dev)[1], 721);
    EXPECT_EQ(dev.examples.back().line, 1043);
  }
  if (fs::exists(g + "/QNLI")) {
    auto d = read_glue_split("qnli", g, GlueSplit::kDev);
    EXPECT_EQ(label_counts(d), (std::map<int64_t, int64_t>{{0, 2702}, {1, 2761}}));
  }
  if (fs::exists(g + "/RTE")) {
    auto d = read_glue_split("rte", g, GlueSplit::kTrain);
    EXPECT_EQ(label_counts(d), (std::map<int64_t, int64_t>{{0, 1249}, {1, 1241}}));
  }
  if (fs::exists(g + "/STS-B")) {
    auto d = read_glue_split("sts-b", g, GlueSplit::kDev);
    auto s = d.scores();
    EXPECT_NEAR(std::accumulate(s.begin(), s.end(), 0.0), 3545.8613333333324, 1e-9);
    EXPECT_EQ(d.examples[0].text_a, "A man with a hard hat is dancing.");
    EXPECT_EQ(d.examples[0].score, 5.0);
  }
}

// MNLI and QQP are not in ../shared/data: check their official column layouts on written files.
TEST(GlueLayout, MnliAllSplits) {
  TempDir t;
  const std::string dev_hdr =
      "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
      "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\t"
      "label5\tgold_label\n";
  auto row = [](int i, const std::string& s1, const std::string& s2, const std::string& tail) {
    return std::to_string(i) + "\t1\t1e\tfiction\t( x )\t( y )\t(ROOT x)\t(ROOT y)\t" + s1 + "\t" +
           s2 + "\t" + tail + "\n";
  };
  const std::string lab5 = "neutral\tneutral\tentailment\tneutral\tneutral\tneutral";
  t.write("MNLI/dev_matched.tsv", dev_hdr + row(0, "A \"quoted", "b", lab5) +
                                      row(1, "c", "d", "contradiction\tx\tx\tx\tx\tcontradiction"));
  t.write("MNLI/dev_mismatched.tsv",
          dev_hdr + row(0, "e", "f", "entailment\ta\tb\tc\td\tentailment"));
  t.write("MNLI/train.tsv",
          "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
          "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n" +
              row(0, "g", "h", "neutral\tneutral"));
  t.write("MNLI/test_matched.tsv",
          "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
          "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\n" +
              std::string("0\t1\t1e\tfiction\t( x )\t( y )\t(ROOT x)\t(ROOT y)\ti\tj\n"));
  const std::string root = t.path("");
  auto dev = read_glue_split("mnli", root, GlueSplit::kDev);
  ASSERT_EQ(dev.examples.size(), 2u);
  EXPECT_EQ(dev.examples[0].text_a, "A \"quoted");
  EXPECT_EQ(dev.examples[0].label, 1);
  EXPECT_EQ(dev.examples[1].label, 2);
  EXPECT_EQ(read_glue_split("mnli", root, GlueSplit::kDevMismatched).examples[0].label, 0);
  EXPECT_EQ(read_glue_split("mnli", root, GlueSplit::kTrain).examples[0].text_b, "h");
  auto test = read_glue_split("mnli", root, GlueSplit::kTest);
  EXPECT_EQ(test.examples[0].text_a, "i");
  EXPECT_EQ(test.examples[0].label, -1);
}

TEST(GlueLayout, QqpTrainAndTest) {
  TempDir t;
  auto tr = read_glue("qqp",
                      t.write("MNLI/train.tsv",
                              "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                              "7\t15\t16\tHow do I read?\tHow can I read?\t1\n"
                              "8\t17\t18\tWhy?\tWhen?\t0\n"),
                      true);
  ASSERT_EQ(tr.examples.size(), 2u);
  EXPECT_EQ(tr.examples[0].guid, "7");
  EXPECT_EQ(tr.examples[0].text_b, "How can I read?");
  EXPECT_EQ(tr.labels(), (std::vector<int64_t>{1, 0}));
  auto te = read_glue("qqp", t.write("test.tsv", "id\tquestion1\tquestion2\n0\tA?\tB?\n"), false);
  EXPECT_EQ(te.examples[0].text_a, "A?");
}

TEST(GlueLayout, CrlfLineEndings) {
  TempDir t;
  auto d = read_glue(
      "rte", t.write("dev.tsv", "index\tsentence1\tsentence2\tlabel\r\n0\ta\tb\tentailment\r\n"),
      true);
  EXPECT_EQ(d.examples[0].label, 0);
}

// ------------------------------------------------------------------ NLG on the real files

TEST(NlgReal, E2eDevAndTest) {
  REQUIRE_DATA("e2e_nlg");
  auto d = read_e2e(kData + "/e2e_nlg/devset.csv");
  EXPECT_EQ(d.examples.size(), 547u);    // distinct MRs (PROVENANCE.md)
  EXPECT_EQ(d.num_references(), 4672u);  // CSV records
  EXPECT_EQ(d.pairs().size(), 4672u);
  EXPECT_EQ(d.examples[0].raw, "name[Alimentum], area[city centre], familyFriendly[no]");
  EXPECT_EQ(d.examples[0].source, "name : Alimentum | area : city centre | familyFriendly : no");
  EXPECT_EQ(d.examples[0].references[0],
            "There is a place in the city centre, Alimentum, that is not family-friendly.");
  EXPECT_EQ(d.examples[0].line, 2);
  auto t = read_e2e(kData + "/e2e_nlg/testset.csv");
  EXPECT_EQ(t.examples.size(), 630u);
  EXPECT_EQ(t.num_references(), 0u);
}

TEST(NlgReal, DartDev) {
  REQUIRE_DATA("dart");
  auto d = read_dart(kData + "/dart/dart-v1.1.1-full-dev.json");
  EXPECT_EQ(d.examples.size(), 2768u);
  EXPECT_EQ(d.num_references(), 6980u);
  EXPECT_EQ(d.examples[0].source,
            "Mars Hill College : JOINED : 1973 | Mars Hill College : LOCATION : Mars Hill, North "
            "Carolina");
  EXPECT_EQ(d.examples[0].references,
            (std::vector<std::string>{"A school from Mars Hill, North Carolina, joined in 1973."}));
  EXPECT_GE(d.examples[1].line, d.examples[0].line);
}

TEST(NlgReal, DialogSumDev) {
  REQUIRE_DATA("dialogsum");
  auto d = read_dialogsum(kData + "/dialogsum/dialogsum.dev.jsonl");
  EXPECT_EQ(d.examples.size(), 500u);
  EXPECT_EQ(d.num_references(), 500u);
  EXPECT_EQ(d.examples[0].id, "dev_0");
  EXPECT_EQ(d.examples[0].source.substr(0, 42), "#Person1#: Hello, how are you doing today?");
  EXPECT_EQ(d.examples[499].line, 500);
}

TEST(NlgLayout, DialogSumTestHasThreeSummaries) {
  TempDir t;
  auto d = read_dialogsum(t.write(
      "test.jsonl",
      R"({"fname": "test_0", "dialogue": "#Person1#: hi", "summary1": "a", "summary2": "b", "summary3": "c", "topic1": "x"})"
      "\n\n"
      R"({"fname": "test_1", "dialogue": "#Person1#: yo", "summary1": "d", "summary2": "e", "summary3": "f"})"
      "\n"));
  ASSERT_EQ(d.examples.size(), 2u);
  EXPECT_EQ(d.examples[0].references, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(d.examples[1].line, 3);
  EXPECT_EQ(d.pairs().size(), 6u);
}

TEST(NlgLayout, E2eQuotedMultilineRecordsAndGrouping) {
  TempDir t;
  auto d = read_e2e(t.write("dev.csv",
                            "mr,ref\r\n"
                            "\"name[A], food[Thai]\",\"Line one,\nline \"\"two\"\".\"\r\n"
                            "\"name[B], near[X, Y]\",plain ref\r\n"
                            "\"name[A], food[Thai]\",second ref\r\n"));
  ASSERT_EQ(d.examples.size(), 2u);
  EXPECT_EQ(d.examples[0].references,
            (std::vector<std::string>{"Line one,\nline \"two\".", "second ref"}));
  EXPECT_EQ(d.examples[1].line, 4);  // the quoted newline counts as a line
  EXPECT_EQ(d.examples[1].source, "name : B | near : X, Y");
}

// ------------------------------------------------------------------ malformed input

TEST(ReaderBadInput, MissingAndEmptyFiles) {
  TempDir t;
  expect_error([&] { read_glue("rte", t.path("nope.tsv"), true); },
               {t.path("nope.tsv"), "no such file"});
  expect_error([&] { read_e2e(t.path("nope.csv")); }, {"nope.csv", "no such file"});
  expect_error([&] { read_glue("rte", t.path(""), true); }, {"not a regular file"});
  const std::string empty = t.write("empty.tsv", "");
  expect_error([&] { read_glue("sst-2", empty, true); }, {empty + ":1:", "empty file"});
  expect_error([&] { read_dart(t.write("e.json", "")); }, {"e.json:1:", "empty file"});
  expect_error([&] { read_dialogsum(t.write("e.jsonl", "")); }, {"e.jsonl:1:", "empty file"});
  expect_error([&] { read_e2e(t.write("e.csv", "")); }, {"e.csv:1:", "empty file"});
  expect_error(
      [&] { read_glue("rte", t.write("h.tsv", "index\tsentence1\tsentence2\tlabel\n"), true); },
      {"h.tsv:1:", "no data rows"});
}

TEST(ReaderBadInput, GlueWrongColumnsLabelsScoresUtf8) {
  TempDir t;
  const std::string hdr = "index\tsentence1\tsentence2\tlabel\n";
  auto p = t.write("cols.tsv", hdr + "0\ta\tb\tentailment\n1\ta\tb\n");
  expect_error([&] { read_glue("rte", p, true); }, {p + ":3:", "expected 4", "found 3"});
  p = t.write("label.tsv", hdr + "0\ta\tb\tentailment\n\n1\ta\tb\tneutral\n");
  expect_error([&] { read_glue("rte", p, true); }, {p + ":4:", "unknown RTE label 'neutral'"});
  p = t.write("utf8.tsv", hdr + "0\ta\tb\tentailment\n1\ta\xC3\x28\tb\tentailment\n");
  expect_error([&] { read_glue("rte", p, true); }, {p + ":3:", "invalid UTF-8"});
  p = t.write("surrogate.tsv", hdr + "0\t\xED\xA0\x80\tb\tentailment\n");
  expect_error([&] { read_glue("rte", p, true); }, {p + ":2:", "invalid UTF-8"});
  p = t.write("hdr.tsv", "index\tsentence1\tlabel\n0\ta\tentailment\n");
  expect_error([&] { read_glue("rte", p, true); }, {p + ":1:", "no column 'sentence2'"});
  p = t.write(
      "score.tsv",
      "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
      "0\tg\tf\ty\t0\tn\tn\ta\tb\t4.5x\n");
  expect_error([&] { read_glue("sts-b", p, true); }, {p + ":2:", "'4.5x' is not a finite number"});
  p = t.write("cola.tsv", "gj04\t1\t\tok.\ngj04\t2\t\tbad label.\n");
  expect_error([&] { read_glue("cola", p, true); }, {p + ":2:", "unknown CoLA label '2'"});
  p = t.write("cola3.tsv", "gj04\t1\t\tok.\ngj04\t1\tbad row\n");
  expect_error([&] { read_glue("cola", p, true); }, {p + ":2:", "expected 4"});
}

TEST(ReaderBadInput, CsvAndE2e) {
  TempDir t;
  auto p = t.write("unterminated.csv", "mr,ref\n\"name[A]\",ok\n\"name[B]\",\"never closed\n");
  expect_error([&] { read_e2e(p); }, {p + ":3:", "unterminated quoted CSV field"});
  p = t.write("after.csv", "mr,ref\n\"name[A]\"x,ok\n");
  expect_error([&] { read_e2e(p); }, {p + ":2:", "after a closing quote"});
  p = t.write("count.csv", "mr,ref\n\"name[A]\",ok\n\"name[A]\",ok,extra\n");
  expect_error([&] { read_e2e(p); }, {p + ":3:", "expected 2 CSV fields, found 3"});
  p = t.write("mr.csv", "mr,ref\n\"name[A], food\",ok\n");
  expect_error([&] { read_e2e(p); }, {p + ":2:", "malformed E2E MR"});
  p = t.write("nohdr.csv", "meaning,ref\nx,y\n");
  expect_error([&] { read_e2e(p); }, {p + ":1:", "no 'mr' column"});
  p = t.write("utf8.csv", "mr,ref\nname[A],ok\nname[B],\xFF\n");
  expect_error([&] { read_e2e(p); }, {p + ":3:", "invalid UTF-8"});
}

TEST(ReaderBadInput, DartJson) {
  TempDir t;
  auto p = t.write("syntax.json",
                   "[\n  {\"tripleset\": [[\"a\",\"b\",\"c\"]],\n  \"annotations\": [}\n]\n");
  expect_error([&] { read_dart(p); }, {p + ":3:", "invalid JSON"});
  p = t.write("entry.json",
              "[\n {\"tripleset\": [[\"a\",\"b\",\"c\"]], \"annotations\": [{\"text\": \"t\"}]},\n"
              " {\"annotations\": []}\n]\n");
  expect_error([&] { read_dart(p); }, {p + ":3:", "entry 1", "tripleset"});
  p = t.write("triple.json", "[{\"tripleset\": [[\"a\",\"b\"]], \"annotations\": []}]");
  expect_error([&] { read_dart(p); }, {p + ":1:", "3 strings"});
  p = t.write("obj.json", "{\"tripleset\": []}");
  expect_error([&] { read_dart(p); }, {p + ":1:", "JSON array"});
}

TEST(ReaderBadInput, DialogSumJsonl) {
  TempDir t;
  auto p = t.write("syntax.jsonl",
                   "{\"fname\":\"a\",\"dialogue\":\"x\",\"summary\":\"s\"}\n{\"fname\": \n");
  expect_error([&] { read_dialogsum(p); }, {p + ":2:", "invalid JSON"});
  p = t.write("key.jsonl", "{\"fname\":\"a\",\"dialogue\":\"x\"}\n\n{\"fname\":\"b\"}\n");
  expect_error([&] { read_dialogsum(p); }, {p + ":3:", "missing key 'dialogue'"});
  p = t.write("type.jsonl", "{\"fname\":\"a\",\"dialogue\":\"x\",\"summary\":3}\n");
  expect_error([&] { read_dialogsum(p); }, {p + ":1:", "'summary' must be a string"});
  p = t.write("arr.jsonl", "[1,2]\n");
  expect_error([&] { read_dialogsum(p); }, {p + ":1:", "expected a JSON object"});
}

TEST(ReaderBadInput, FuzzRegressionJsonNumberOverflow) {
  TempDir t;
  // Fuzz regression (fuzz_dart_json crash): a number too large for a double made nlohmann-json
  // throw out_of_range, which escaped as a non-ld::Error exception.
  auto p = t.write("overflow.json", "[\n 7777777555554.777750301E30141\n]");
  expect_error([&] { read_dart(p); }, {p + ":2:", "invalid JSON", "number overflow"});
  p = t.write("overflow.jsonl", "{\"dialogue\":\"x\"}\n{\"dialogue\": 1e999}\n");
  expect_error([&] { read_dialogsum(p); }, {p + ":2:", "number overflow"});
}

TEST(TextIo, Utf8AndCsvPrimitives) {
  EXPECT_EQ(find_invalid_utf8("ascii \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("ab\xC0\x80"), 2u);         // overlong NUL
  EXPECT_EQ(find_invalid_utf8("\xE0\x80\xAF"), 0u);       // overlong '/'
  EXPECT_EQ(find_invalid_utf8("x\xF4\x90\x80\x80"), 1u);  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("xy\xE2\x82"), 2u);         // truncated
  EXPECT_EQ(strip_bom("\xEF\xBB\xBFhi"), "hi");
  auto recs = parse_csv("a,\"b,c\",\n\"\",x", "mem");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].fields, (std::vector<std::string>{"a", "b,c", ""}));
  EXPECT_EQ(recs[1].fields, (std::vector<std::string>{"", "x"}));
  EXPECT_EQ(recs[1].line, 2);
  EXPECT_EQ(top_level_array_offsets(R"([ {"a": "]"}, [1,2] ,3])"),
            (std::vector<size_t>{2, 14, 21}));
}
