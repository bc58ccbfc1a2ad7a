// HDF5 results: round trip, atomic commit, resume, table assembly, schema check and bad input.
#include "paper_repro/results.h"

#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"

using namespace ld;
using namespace ld::repro;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test, removed afterwards.
class ResultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           fmt::format("ld_results_{}_{}", ::getpid(),
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file(const std::string& n) const { return (dir_ / n).string(); }
  fs::path dir_;
};

RunMeta meta(const std::string& cfg = R"({"preset":"test"})") {
  RunMeta m;
  m.program_version = "0.1.0";
  m.git_commit = "abc123";
  m.config_json = cfg;
  m.device = "cpu (test)";
  return m;
}

RunRecord record(const RunKey& k, double metric = 0.75) {
  RunRecord r;
  r.key = k;
  r.metric_name = "accuracy";
  r.metric = metric;
  r.trainable_params = 12345;
  r.train_loss = {0.9, 0.7, 0.5};
  r.eval_history = {{10, 0.6}, {20, 0.7}};
  r.importance["query"] = {1.0, 3.0, 0.5};
  r.importance["value"] = {2.0, 0.25, 4.0};
  r.selected["query"] = {false, true, false};
  r.selected["value"] = {true, false, true};
  LayerHistograms h;
  h.bin_edges = {1e-3, 1e-2, 1e-1, 1.0};
  h.layers = 3;
  h.counts = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  h.underflow = {0, 1, 2};
  h.overflow = {3, 0, 0};
  r.hist["query"] = h;
  r.params["sample_proportion"] = 0.1;
  return r;
}

std::vector<std::string> files_in(const fs::path& d) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(d)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Overwrites (or creates) a dataset/attribute in an existing file to break the schema.
void h5_edit(const std::string& path, const std::function<void(hid_t)>& fn) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  fn(f);
  H5Fclose(f);
}

bool any_contains(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v)
    if (x.find(s) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_F(ResultsTest, RoundTripEveryField) {
  const std::string p = file("r.h5");
  RunKey k{"main", "roberta-base", "loradrop", "rte", 2};
  {
    auto f = ResultsFile::create(p, meta());
    f.write_run(record(k));
    RunRecord full = record({"main", "roberta-base", "full", "rte", 0}, 0.8);
    full.importance.clear(), full.selected.clear(), full.hist.clear(), full.params.clear();
    full.train_loss.clear();  // empty datasets are allowed
    f.write_run(full);
    EXPECT_TRUE(f.has_run(k));
    f.write_table(TableSpec{"t1", "Table", "main", "roberta-base", {"full", "loradrop"}, {"rte"}});
    f.commit();
  }
  validate_schema(p);
  ResultsReader rd(p);
  RunMeta m = rd.meta();
  EXPECT_EQ(m.program_version, "0.1.0");
  EXPECT_EQ(m.git_commit, "abc123");
  EXPECT_EQ(m.config_json, R"({"preset":"test"})");
  EXPECT_EQ(m.device, "cpu (test)");
  EXPECT_FALSE(m.start_time.empty());
  EXPECT_FALSE(m.end_time.empty());
  ASSERT_EQ(rd.runs().size(), 2u);
  EXPECT_EQ(rd.runs()[1], k);
  RunRecord a = rd.read_run(k), e = record(k);
  EXPECT_EQ(a.key, e.key);
  EXPECT_EQ(a.metric_name, e.metric_name);
  EXPECT_EQ(a.metric, e.metric);
  EXPECT_EQ(a.trainable_params, e.trainable_params);
  EXPECT_EQ(a.train_loss, e.train_loss);
  EXPECT_EQ(a.eval_history, e.eval_history);
  EXPECT_EQ(a.importance, e.importance);
  EXPECT_EQ(a.selected, e.selected);
  ASSERT_EQ(a.hist.count("query"), 1u);
  EXPECT_EQ(a.hist["query"].bin_edges, e.hist["query"].bin_edges);
  EXPECT_EQ(a.hist["query"].counts, e.hist["query"].counts);
  EXPECT_EQ(a.hist["query"].layers, 3);
  EXPECT_EQ(a.hist["query"].underflow, e.hist["query"].underflow);
  EXPECT_EQ(a.hist["query"].overflow, e.hist["query"].overflow);
  EXPECT_EQ(a.params, e.params);
  RunRecord b = rd.read_run({"main", "roberta-base", "full", "rte", 0});
  EXPECT_TRUE(b.train_loss.empty());
  EXPECT_TRUE(b.importance.empty());
  ASSERT_EQ(rd.table_names(), std::vector<std::string>{"t1"});
  Table t = rd.read_table("t1");
  EXPECT_EQ(t.title, "Table");
  EXPECT_EQ(t.experiment, "main");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].method, "full");
  EXPECT_EQ(t.rows[1].method, "loradrop");
  EXPECT_EQ(t.rows[1].metric_name, "accuracy");
  EXPECT_EQ(t.rows[1].n, 1);
  EXPECT_DOUBLE_EQ(t.rows[1].trainable_params, 12345);
  EXPECT_EQ(files_in(dir_), std::vector<std::string>{"r.h5"});  // no temp file left
}

TEST(ResultsTable, MeanAndSampleStdOverSeeds) {
  std::vector<RunRecord> runs;
  for (int s = 0; s < 3; ++s) {
    RunRecord r = record({"e", "m", "lora", "rte", s}, 0.70 + 0.01 * s);  // 0.70, 0.71, 0.72
    r.trainable_params = 100 + 10 * s;
    runs.push_back(r);
  }
  runs.push_back(record({"e", "m", "lora", "mrpc", 0}, 0.9));
  runs.push_back(record({"other", "m", "lora", "rte", 0}, 0.1));  // another experiment: ignored
  Table t = assemble_table(runs, {"t", "T", "e", "m", {"full", "lora"}, {"rte", "mrpc", "cola"}});
  ASSERT_EQ(t.rows.size(), 2u);  // no runs for full or cola: no cells
  EXPECT_EQ(t.rows[0].task, "rte");
  EXPECT_NEAR(t.rows[0].mean, 0.71, 1e-12);
  EXPECT_NEAR(t.rows[0].std, 0.01, 1e-12);  // sample std (n-1)
  EXPECT_EQ(t.rows[0].n, 3);
  EXPECT_DOUBLE_EQ(t.rows[0].trainable_params, 110);
  EXPECT_EQ(t.rows[1].task, "mrpc");
  EXPECT_EQ(t.rows[1].std, 0.0);
  runs[1].metric_name = "f1";
  EXPECT_THROW(assemble_table(runs, {"t", "T", "e", "m", {"lora"}, {"rte"}}), Error);
}

TEST_F(ResultsTest, UncommittedWriterLeavesOldFileIntact) {
  const std::string p = file("r.h5");
  {
    auto f = ResultsFile::create(p, meta());
    f.write_run(record({"main", "m", "lora", "rte", 0}, 0.5));
    f.commit();
  }
  const auto before = fs::file_size(p);
  std::ifstream in(p, std::ios::binary);
  std::string old_bytes((std::istreambuf_iterator<char>(in)), {});
  // A second writer that fails (an exception from a bad record) and never commits.
  try {
    auto f = ResultsFile::create(p, meta());
    f.write_run(record({"main", "m", "lora", "rte", 1}, 0.9));
    EXPECT_TRUE(fs::exists(f.temp_path()));
    RunRecord bad = record({"main", "m", "lora", "rte", 2});
    bad.selected["query"].push_back(true);  // 4 layers vs 3
    f.write_run(bad);
    FAIL() << "write_run accepted an inconsistent record";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("selected/query"), std::string::npos) << e.what();
  }
  EXPECT_EQ(files_in(dir_), std::vector<std::string>{"r.h5"});  // temp file removed
  EXPECT_EQ(fs::file_size(p), before);
  std::ifstream in2(p, std::ios::binary);
  std::string new_bytes((std::istreambuf_iterator<char>(in2)), {});
  EXPECT_TRUE(old_bytes == new_bytes);
  ResultsReader rd(p);
  ASSERT_EQ(rd.runs().size(), 1u);
  EXPECT_EQ(rd.read_run({"main", "m", "lora", "rte", 0}).metric, 0.5);
}

TEST_F(ResultsTest, CommitFailureLeavesTargetUntouched) {
  // The target is a non-empty directory: rename fails, the directory and its content survive.
  const std::string p = file("out");
  fs::create_directories(p + "/keep");
  EXPECT_THROW(ResultsFile::create(p, meta()), Error);  // rejected up front
  // A directory appearing between create() and commit(): commit throws, nothing is replaced.
  const std::string q = file("late.h5");
  auto f = ResultsFile::create(q, meta());
  f.write_run(record({"main", "m", "lora", "rte", 0}));
  fs::create_directories(q + "/keep");
  EXPECT_THROW(f.commit(), Error);
  EXPECT_TRUE(fs::is_directory(q + "/keep"));
}

TEST_F(ResultsTest, ResumeKeepsFinishedRuns) {
  const std::string p = file("r.h5");
  RunKey k0{"main", "m", "lora", "rte", 0}, k1{"main", "m", "lora", "rte", 1};
  std::string start;
  {
    auto f = ResultsFile::open_or_create(p, meta());  // no file yet: create
    f.write_run(record(k0, 0.5));
    f.commit();
    start = ResultsReader(p).meta().start_time;
  }
  {
    auto f = ResultsFile::open_or_create(p, meta());
    EXPECT_TRUE(f.has_run(k0));
    EXPECT_FALSE(f.has_run(k1));
    EXPECT_THROW(f.write_run(record(k0)), Error);  // exists already
    f.write_run(record(k1, 0.6));
    // Killed before commit: the destructor discards the temp copy.
  }
  {
    ResultsReader rd(p);
    EXPECT_EQ(rd.runs(), std::vector<RunKey>{k0});
  }
  {
    RunMeta m2 = meta();
    m2.git_commit = "def456";
    auto f = ResultsFile::open_or_create(p, m2);
    f.write_run(record(k1, 0.6));
    f.write_run(record(k0, 0.55), /*replace=*/true);
    f.commit();
  }
  ResultsReader rd(p);
  EXPECT_EQ(rd.runs(), (std::vector<RunKey>{k0, k1}));
  EXPECT_EQ(rd.read_run(k0).metric, 0.55);
  EXPECT_EQ(rd.meta().start_time, start);  // the sweep's start is kept
  EXPECT_EQ(rd.meta().git_commit, "def456 (resumed; earlier runs: abc123)");
  validate_schema(p);
}

TEST(ResumedProvenance, ListsEachEarlierVersionOnceWithoutNesting) {
  EXPECT_EQ(resumed_provenance("a", "a"), "a");
  EXPECT_EQ(resumed_provenance("b", "a"), "b (resumed; earlier runs: a)");
  EXPECT_EQ(resumed_provenance("b", "b (resumed; earlier runs: a)"),
            "b (resumed; earlier runs: a)");
  EXPECT_EQ(resumed_provenance("c", "b (resumed; earlier runs: a)"),
            "c (resumed; earlier runs: a, b)");
  EXPECT_EQ(resumed_provenance("a", "c (resumed; earlier runs: a, b)"),
            "a (resumed; earlier runs: b, c)");
  // Files from before the fix nest the form inside itself: flattened.
  EXPECT_EQ(
      resumed_provenance("d",
                         "b (resumed; earlier runs: b (resumed; earlier runs: b (resumed; earlier "
                         "runs: a)), c (resumed; earlier runs: a))"),
      "d (resumed; earlier runs: a, b, c)");
}

// A preset config: resuming one experiment's file ignores free text and the other experiments,
// but not this experiment's settings or the sections every run uses.
TEST_F(ResultsTest, ResumeComparesWhatTheRunsDependOn) {
  auto cfg = [](double lr_main, double lr_other, const char* desc, double T) {
    nlohmann::json j;
    j["preset"] = {{"name", "p"}, {"description", desc}, {"device", "cpu"}, {"threads", 2}};
    j["loradrop"] = {{"threshold", T}};
    j["models"]["m"] = {{"family", "bert"}};
    j["models"]["unused"] = {{"family", "llama"}};
    j["experiments"]["main"] = {{"description", desc}, {"models", {"m"}}, {"lr", lr_main}};
    j["experiments"]["other"] = {{"models", {"unused"}}, {"lr", lr_other}};
    return j.dump();
  };
  const std::string p = file("r.h5");
  RunKey k0{"main", "m", "lora", "rte", 0};
  {
    auto f = ResultsFile::open_or_create(p, meta(cfg(1e-3, 1e-3, "a", 0.9)));
    f.write_run(record(k0, 0.5));
    f.commit();
  }
  EXPECT_NO_THROW(ResultsFile::open_or_create(p, meta(cfg(1e-3, 5e-4, "b", 0.9))));
  EXPECT_THROW(ResultsFile::open_or_create(p, meta(cfg(2e-3, 1e-3, "a", 0.9))), Error);
  EXPECT_THROW(ResultsFile::open_or_create(p, meta(cfg(1e-3, 1e-3, "a", 0.8))), Error);
  {  // a setting that a newer program adds to the experiment section does not block resuming
    auto j = nlohmann::json::parse(cfg(1e-3, 1e-3, "a", 0.9));
    j["experiments"]["main"]["new_setting"] = true;
    EXPECT_NO_THROW(ResultsFile::open_or_create(p, meta(j.dump())));
  }
  {  // tasks reordered, one added: runs are keyed by task; the shared task's settings still count
    auto j = nlohmann::json::parse(cfg(1e-3, 1e-3, "a", 0.9));
    j["experiments"]["main"]["resolved"]["m"]["rte"] = {{"lr", 1e-3}};
    j["experiments"]["main"]["tasks"] = {"rte"};
    auto f = ResultsFile::open_or_create(p, meta(j.dump()), false);
    f.commit();  // the file's config now has a resolved rte entry
    ResultsFile::open_or_create(p, meta(j.dump())).commit();
    j["experiments"]["main"]["resolved"]["m"]["cola"] = {{"lr", 2e-3}};
    j["experiments"]["main"]["tasks"] = {"cola", "rte"};
    EXPECT_NO_THROW(ResultsFile::open_or_create(p, meta(j.dump())));
    j["experiments"]["main"]["resolved"]["m"]["rte"]["lr"] = 5e-4;
    EXPECT_THROW(ResultsFile::open_or_create(p, meta(j.dump())), Error);
  }
  auto fp = resume_fingerprint(cfg(1e-3, 1e-3, "a", 0.9), {"main"});
  EXPECT_FALSE(fp["models"].contains("unused"));
  EXPECT_FALSE(fp["experiments"].contains("other"));
  EXPECT_FALSE(fp["preset"].contains("threads"));
}

TEST_F(ResultsTest, ResumeBadInput) {
  const std::string p = file("r.h5");
  {
    auto f = ResultsFile::create(p, meta());
    f.commit();
  }
  // Another config: refused (results of two configs would be mixed), unless allowed.
  try {
    ResultsFile::open_or_create(p, meta(R"({"preset":"other"})"));
    FAIL() << "resumed under another config";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config differs"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(ResultsFile::open_or_create(p, meta(R"({"preset":"other"})"), false));
  // Not an HDF5 file: refused with the file named; the file is left as it was.
  const std::string junk = file("junk.h5");
  std::ofstream(junk) << "not hdf5";
  try {
    ResultsFile::open_or_create(junk, meta());
    FAIL() << "resumed from a text file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(junk), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not an HDF5 file"), std::string::npos) << e.what();
  }
  std::ifstream in(junk);
  std::string s;
  std::getline(in, s);
  EXPECT_EQ(s, "not hdf5");
}

TEST_F(ResultsTest, ReaderBadInput) {
  try {
    ResultsReader rd(file("missing.h5"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.h5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  std::ofstream(file("text.h5")) << "hello";
  EXPECT_THROW(ResultsReader rd(file("text.h5")), Error);
  EXPECT_THROW(validate_schema(file("text.h5")), Error);
  const std::string p = file("r.h5");
  {
    auto f = ResultsFile::create(p, meta());
    f.write_run(record({"main", "m", "lora", "rte", 0}));
    f.commit();
  }
  ResultsReader rd(p);
  try {
    rd.read_run({"main", "m", "lora", "rte", 7});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/main/m/lora/rte/seed_7"), std::string::npos) << e.what();
  }
  EXPECT_THROW(rd.read_table("nope"), Error);
}

TEST_F(ResultsTest, WriterBadInput) {
  const std::string p = file("r.h5");
  RunMeta bad = meta("not json");
  EXPECT_THROW(ResultsFile::create(p, bad), Error);
  bad = meta("[1, 2]");  // JSON, but not an object
  EXPECT_THROW(ResultsFile::create(p, bad), Error);
  bad = meta();
  bad.start_time = "yesterday";
  EXPECT_THROW(ResultsFile::create(p, bad), Error);
  EXPECT_THROW(ResultsFile::create(file("no/such/dir/r.h5"), meta()), Error);
  EXPECT_FALSE(fs::exists(p));

  auto f = ResultsFile::create(p, meta());
  auto expect_bad = [&](RunRecord r, const std::string& what) {
    try {
      f.write_run(r);
      ADD_FAILURE() << "accepted a record with " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  RunKey k{"main", "m", "lora", "rte", 0};
  RunRecord r = record(k);
  r.key.method = "lo/ra";
  expect_bad(r, "invalid method name 'lo/ra'");
  r = record(k);
  r.key.experiment = "tables";
  expect_bad(r, "reserved");
  r = record(k);
  r.key.seed = -1;
  expect_bad(r, "seed -1");
  r = record(k);
  r.metric_name.clear();
  expect_bad(r, "metric_name is empty");
  r = record(k);
  r.hist["query"].counts.pop_back();
  expect_bad(r, "hist/query has 8 counts");
  r = record(k);
  r.hist["query"].bin_edges = {1, 0.5, 2, 3};
  expect_bad(r, "not increasing");
  r = record(k);
  r.hist["query"].layers = 2;
  r.hist["query"].counts.resize(6);
  r.hist["query"].underflow.resize(2);
  r.hist["query"].overflow.resize(2);
  expect_bad(r, "hist/query has 2 layers, importance/query has 3");
  r = record(k);
  r.importance["key"] = {};
  expect_bad(r, "importance/key is empty");
  EXPECT_TRUE(f.runs().empty());  // nothing half-written
  f.commit();
  EXPECT_THROW(f.write_run(record(k)), Error);  // closed after commit
  EXPECT_THROW(f.commit(), Error);
  validate_schema(p);
}

// init_from: a run started from another task's adapter records it in string attributes; only
// the names of kRunTextAttrs may be strings, every other run attribute is an f64 scalar.
TEST_F(ResultsTest, InitFromAttributesRoundTripAndSchema) {
  const std::string p = file("r.h5");
  const RunKey k{"main", "roberta-large", "lora", "rte", 0};
  {
    auto f = ResultsFile::create(p, meta());
    RunRecord r = record(k);
    r.text["init_from"] = "mnli";
    r.text["init_from_adapter"] = "paper/main_adapters/roberta-large/lora/mnli/seed0";
    r.text["init_from_digest"] = "0123456789abcdef";
    r.params["init_from_loaded"] = 48;
    f.write_run(r);
    RunRecord bad = record({"main", "roberta-large", "lora", "mrpc", 0});
    bad.text["comment"] = "x";
    EXPECT_THROW(f.write_run(bad), Error);
    f.commit();
  }
  validate_schema(p);
  RunRecord a = ResultsReader(p).read_run(k);
  EXPECT_EQ(a.text["init_from"], "mnli");
  EXPECT_EQ(a.text["init_from_digest"], "0123456789abcdef");
  EXPECT_EQ(a.params["init_from_loaded"], 48.0);
  const std::string run = "/main/roberta-large/lora/rte/seed_0";
  h5_edit(p, [&](hid_t f) {  // an unknown string attribute, and init_from as a number
    hid_t g = H5Gopen2(f, run.c_str(), H5P_DEFAULT);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 4);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t at = H5Acreate2(g, "comment", st, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(at, st, "abc");
    H5Aclose(at);
    H5Adelete(g, "init_from");
    double one = 1;
    at = H5Acreate2(g, "init_from", H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(at, H5T_NATIVE_DOUBLE, &one);
    H5Aclose(at);
    H5Sclose(sp);
    H5Tclose(st);
    H5Gclose(g);
  });
  auto probs = schema_problems(p);
  EXPECT_TRUE(any_contains(probs, "attribute 'comment' must be an f64 scalar"))
      << fmt::format("{}", fmt::join(probs, "\n"));
  EXPECT_TRUE(any_contains(probs, "attribute 'init_from' must be a scalar string"))
      << fmt::format("{}", fmt::join(probs, "\n"));
}

TEST_F(ResultsTest, SchemaCheckFindsViolations) {
  const std::string p = file("r.h5");
  auto fresh = [&] {
    fs::remove(p);
    auto f = ResultsFile::create(p, meta());
    f.write_run(record({"main", "m", "lora", "rte", 0}));
    f.write_table(TableSpec{"t", "T", "main", "m", {"lora"}, {"rte"}});
    f.commit();
    EXPECT_TRUE(schema_problems(p).empty())
        << fmt::format("{}", fmt::join(schema_problems(p), "\n"));
  };
  auto expect_problem = [&](const std::string& what) {
    auto probs = schema_problems(p);
    EXPECT_TRUE(any_contains(probs, what))
        << "expected a problem containing '" << what << "', got:\n"
        << fmt::format("{}", fmt::join(probs, "\n"));
    try {
      validate_schema(p);
      ADD_FAILURE() << "validate_schema passed";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  };
  const std::string run = "/main/m/lora/rte/seed_0";

  fresh();
  h5_edit(p, [&](hid_t f) { H5Ldelete(f, (run + "/metric").c_str(), H5P_DEFAULT); });
  expect_problem(run + "/metric: missing dataset");

  fresh();
  h5_edit(p, [&](hid_t f) { H5Adelete(f, "config_json"); });
  expect_problem("missing string attribute 'config_json'");

  fresh();
  h5_edit(p, [&](hid_t f) {
    H5Ldelete(f, (run + "/importance/query").c_str(), H5P_DEFAULT);
    hsize_t d[1] = {3};
    hid_t sp = H5Screate_simple(1, d, nullptr);
    hid_t ds = H5Dcreate2(f, (run + "/importance/query").c_str(), H5T_NATIVE_FLOAT, sp, H5P_DEFAULT,
                          H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds), H5Sclose(sp);
  });
  expect_problem(run + "/importance/query: expected f64 [L], found float32");

  fresh();
  h5_edit(p, [&](hid_t f) {
    H5Ldelete(f, (run + "/selected/query").c_str(), H5P_DEFAULT);
    hsize_t d[1] = {5};
    hid_t sp = H5Screate_simple(1, d, nullptr);
    hid_t ds = H5Dcreate2(f, (run + "/selected/query").c_str(), H5T_NATIVE_UINT8, sp, H5P_DEFAULT,
                          H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds), H5Sclose(sp);
  });
  expect_problem("5 layers, but another dataset of target 'query' has 3");

  fresh();
  h5_edit(p, [&](hid_t f) {
    hid_t d = H5Dopen2(f, (run + "/hist/query").c_str(), H5P_DEFAULT);
    H5Adelete(d, "bin_edges");
    H5Dclose(d);
  });
  expect_problem("attribute bin_edges must be f64");

  fresh();
  h5_edit(p, [&](hid_t f) {
    hid_t g = H5Gcreate2(f, "/main/m/lora/rte/oops", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(f, (run + "/extra").c_str(), H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT,
                          H5P_DEFAULT);
    H5Dclose(ds), H5Sclose(sp);
  });
  expect_problem("/main/m/lora/rte/oops: expected a group named seed_<k>");
  expect_problem(run + "/extra: unknown object");

  fresh();
  h5_edit(p, [&](hid_t f) {
    hid_t d = H5Dopen2(f, "/tables/t", H5P_DEFAULT);
    H5Adelete(d, "title");
    H5Dclose(d);
  });
  expect_problem("/tables/t: missing string attribute 'title'");

  fresh();
  h5_edit(p, [&](hid_t f) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(f, "/tables/plain", H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT,
                          H5P_DEFAULT);
    H5Dclose(ds), H5Sclose(sp);
    hid_t g = H5Gcreate2(f, "/tables/sub", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(double));
    H5Tinsert(t, "method", 0, H5T_NATIVE_DOUBLE);
    hsize_t n = 1;
    hid_t sp1 = H5Screate_simple(1, &n, nullptr);
    hid_t d = H5Dcreate2(f, "/tables/few", t, sp1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d), H5Sclose(sp1), H5Tclose(t);
  });
  expect_problem("/tables/plain: a table must be a compound dataset");
  expect_problem("/tables/sub: a table must be a dataset");
  expect_problem("/tables/few: missing field 'metric_name'");

  EXPECT_TRUE(any_contains(schema_problems(file("none.h5")), "no such file"));
}

TEST_F(ResultsTest, SampleResultsAreSchemaComplete) {
  const std::string p = file("sample.h5");
  write_sample_results(p, 3);
  validate_schema(p);
  ResultsReader rd(p);
  auto runs = rd.runs();
  EXPECT_EQ(runs.size(), 2u * 3u * 3u + 10u + 8u + 6u + 4u);
  auto r = rd.read_run({"main", "tiny", "loradrop", "rte", 0});
  ASSERT_EQ(r.importance.size(), 2u);
  ASSERT_EQ(r.selected.size(), 2u);
  ASSERT_EQ(r.hist.size(), 2u);
  // The selection stored follows the paper's rule on the stored importance: kept layers are the
  // most important ones and their normalised importance reaches 0.9.
  for (const auto& [t, g] : r.importance) {
    double tot = 0, kept = 0, min_kept = 1e300, max_dropped = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      tot += g[i];
      if (r.selected[t][i])
        kept += g[i], min_kept = std::min(min_kept, g[i]);
      else
        max_dropped = std::max(max_dropped, g[i]);
    }
    EXPECT_GE(kept / tot, 0.9) << t;
    EXPECT_GT(min_kept, max_dropped) << t;
  }
  EXPECT_EQ(rd.read_run({"sample_proportion", "tiny", "loradrop_p0.30", "rte", 0})
                .params.at("sample_proportion"),
            0.3);
  EXPECT_EQ(rd.table_names(), (std::vector<std::string>{"efficiency", "main", "sample_proportion",
                                                        "threshold_sweep"}));
  EXPECT_EQ(rd.text_table_names(), (std::vector<std::string>{"hyperparameters_tiny"}));
  // The new experiments' data: thresholds, timings, importance sources (metric NaN).
  auto t = rd.read_run({"threshold_sweep", "tiny", "loradrop_t0.50", "rte", 0});
  EXPECT_EQ(t.params.at("threshold"), 0.5);
  EXPECT_LT(t.trainable_params, t.params.at("lora_params"));
  auto e = rd.read_run({"efficiency", "tiny", "loradrop", "rte", 0});
  for (const char* k : {"seconds_per_step", "peak_memory_bytes", "sample_seconds",
                        "importance_seconds", "finetune_seconds"})
    EXPECT_GT(e.params.at(k), 0) << k;
  auto d = rd.read_run({"importance_source", "tiny", "loradrop_during", "sts-b", 0});
  EXPECT_TRUE(std::isnan(d.metric));
  EXPECT_EQ(d.params.at("importance_during"), 1.0);
  EXPECT_EQ(d.importance.size(), 2u);
}

TEST_F(ResultsTest, TextTableRoundTripAndSchema) {
  const std::string p = file("tt.h5");
  {
    auto f = ResultsFile::create(p, meta());
    TextTable tb{"hyperparameters_m",
                 "Hyperparameters, m",
                 "hyperparameters",
                 "m",
                 {"model", "task", "key", "value", "set_in", "source"},
                 {{"m", "rte", "lr", "5e-4", "[model.m.task.rte]", "LoRA scripts"},
                  {"m", "rte", "max_steps", "not recorded", "-", ""}}};
    f.write_text_table(tb);
    tb.rows.push_back({"too", "short"});
    EXPECT_THROW(f.write_text_table(tb), Error);  // row length != columns
    TextTable bad{"x", "", "", "", {"a", "a"}, {}};
    EXPECT_THROW(f.write_text_table(bad), Error);  // duplicate column
    // An experiment may not be named like the reserved groups.
    EXPECT_THROW(RunKey({"text_tables", "m", "lora", "rte", 0}).path(), Error);
    f.commit();
  }
  validate_schema(p);
  TextTable back;
  {
    ResultsReader rd(p);
    EXPECT_TRUE(rd.runs().empty());  // text tables are not runs
    back = rd.read_text_table("hyperparameters_m");
  }
  EXPECT_EQ(back.title, "Hyperparameters, m");
  EXPECT_EQ(back.experiment, "hyperparameters");
  EXPECT_EQ(back.columns,
            (std::vector<std::string>{"model", "task", "key", "value", "set_in", "source"}));
  ASSERT_EQ(back.rows.size(), 2u);
  EXPECT_EQ(back.rows[0][3], "5e-4");
  EXPECT_EQ(back.rows[1][5], "");
  // A non-string field is a schema violation.
  h5_edit(p, [](hid_t f) {
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(double));
    H5Tinsert(t, "value", 0, H5T_NATIVE_DOUBLE);
    hsize_t n = 1;
    hid_t sp = H5Screate_simple(1, &n, nullptr);
    hid_t d = H5Dcreate2(f, "/text_tables/numbers", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    double v = 1;
    H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v);
    H5Dclose(d), H5Sclose(sp), H5Tclose(t);
  });
  auto probs = schema_problems(p);
  EXPECT_TRUE(any_contains(probs, "/text_tables/numbers: field 'value' is not a string"))
      << fmt::format("{}", fmt::join(probs, "\n"));
  EXPECT_TRUE(any_contains(probs, "/text_tables/numbers: missing string attribute 'title'"));
}

TEST_F(ResultsTest, StaleTemporariesOfGoneProcessesAreRemoved) {
  const std::string p = file("stale.h5");
  // A process that has exited: its pid is free (ESRCH) until reused.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ::waitpid(child, nullptr, 0);
  const std::string gone = fmt::format("{}.tmp-{}", p, child);
  const std::string alive = fmt::format("{}.tmp-{}", p, ::getppid());
  const std::string other = p + ".tmp-notapid";
  for (const auto& f : {gone, alive, other}) std::ofstream(f) << "x";
  auto w = ResultsFile::create(p, meta());
  EXPECT_FALSE(fs::exists(gone));
  EXPECT_TRUE(fs::exists(alive));
  EXPECT_TRUE(fs::exists(other));
  w.commit();
  EXPECT_TRUE(remove_stale_temporaries(p).empty());
  fs::remove(alive);
  fs::remove(other);
}

TEST(ResultsBuildInfo, VersionCommitAndTime) {
  EXPECT_FALSE(program_version().empty());
  const std::string c = build_git_commit();
  EXPECT_TRUE(c == "unknown" || c.size() >= 40) << c;  // sha[-dirty] or "unknown"
  const std::string t = iso8601_now();
  EXPECT_EQ(t.size(), 20u) << t;
  EXPECT_EQ(t.back(), 'Z');
}
