// `loradrop repro` with init_from (RoBERTa-large RTE/MRPC/STS-B from MNLI, in miniature): task
// sts-b starts from rte's saved adapter. Runs the program on generated presets (tiny built-in
// BERT, small RTE/STS-B subsets of ../shared/data) and checks the saved adapters, the run order,
// the HDF5 attributes, that B's initial adapter is A's saved final adapter bit for bit (digest of
// the model's adapter tensors after loading vs the digest of A's file), resuming, and the errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "lora/adapter_store.h"
#include "paper_repro/results.h"

namespace ld {
namespace {

namespace fs = std::filesystem;

struct Ran {
  int code = -1;
  std::string out;
};

Ran run(const std::string& args) {
  Ran r;
  const std::string cmd = std::string(LD_BIN) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = ::pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// A preset named "initfrom" (all variants share the name, so they share OUT/initfrom/): tasks
// as given; sts-b starts from rte when `init` is set.
std::string write_preset(const fs::path& dir, const std::string& file, const std::string& tasks,
                         const std::string& methods, bool init) {
  fs::create_directories(dir);
  const fs::path p = dir / file;
  std::ofstream f(p);
  f << "[preset]\nname = \"initfrom\"\ndescription = \"init_from test\"\ndevice = \"cpu\"\n"
    << "threads = 1\nseeds = [0]\ndata_dir = \"" << LD_SHARED_DATA << "\"\n"
    << "expected_time = \"seconds\"\n\n[defaults]\nlora_r = 4\nlora_alpha = 8\nlr = 1e-3\n"
    << "epochs = 1\nbatch_size = 16\nmax_length = 24\nmax_train_examples = 48\n"
    << "max_eval_examples = 16\n\n[loradrop]\nsample_proportion = 0.5\nsample_epochs = 1\n"
    << "threshold = 0.5\n\n[baselines]\nsparse_adapter_sparsity = 0.5\nvera_r = 8\n"
    << "tied_lora_r = 4\n\n[model.tiny]\nsource = \"builtin:tiny-bert\"\nfamily = \"builtin\"\n"
    << "targets = [\"query\", \"value\"]\n\n[model.tiny.task]\nrte = { epochs = 1 }\n"
    << "sts-b = { epochs = 1" << (init ? ", init_from = \"rte\"" : "") << " }\n\n"
    << "[experiment.main_glue]\ndescription = \"test\"\nmodels = [\"tiny\"]\nmethods = [" << methods
    << "]\ntasks = [" << tasks << "]\n";
  return p.string();
}

class LoradropInitFrom : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(std::string(LD_SHARED_DATA) + "/glue/RTE/train.tsv") ||
        !fs::exists(std::string(LD_SHARED_DATA) + "/glue/STS-B/train.tsv"))
      GTEST_SKIP() << "needs ../shared/data (GLUE RTE and STS-B)";
    root_ = fs::temp_directory_path() /
            ("ld_initfrom_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  void TearDown() override {
    if (!root_.empty()) fs::remove_all(root_);
  }
  std::string repro(const std::string& preset) {
    return "repro main_glue --no-plots --preset " + preset + " --out " + (root_ / "out").string();
  }
  fs::path adapters(const std::string& method, const std::string& task) const {
    return root_ / "out/initfrom/main_glue_adapters/tiny" / method / task / "seed0";
  }
  fs::path root_;
};

// A finishes in one invocation; the next (tasks listed B first) skips A, orders B after it and
// starts B from A's saved adapter; a third resumes with nothing to do.
TEST_F(LoradropInitFrom, ResumedSweepStartsFromSavedAdapterBitExact) {
  const std::string methods = "\"lora\", \"loradrop\", \"vera\"";
  Ran a = run(repro(write_preset(root_, "a.toml", "\"rte\"", methods, false)));
  ASSERT_EQ(a.code, 0) << a.out;
  EXPECT_NE(a.out.find("3 runs done, 0 already present"), std::string::npos) << a.out;
  for (const char* m : {"lora", "loradrop", "vera"})
    ASSERT_TRUE(lora::has_saved_adapter(adapters(m, "rte").string())) << m;
  EXPECT_TRUE(fs::exists(adapters("lora", "rte") / "adapter_model.safetensors"));  // PEFT
  EXPECT_TRUE(fs::exists(adapters("vera", "rte") / "adapter_tensors.safetensors"));

  Ran b = run(repro(write_preset(root_, "b.toml", "\"sts-b\", \"rte\"", methods, true)));
  ASSERT_EQ(b.code, 0) << b.out;
  EXPECT_NE(b.out.find("3 runs done, 3 already present"), std::string::npos) << b.out;
  repro::ResultsReader rd((root_ / "out/initfrom/main_glue.h5").string());
  for (const char* m : {"lora", "loradrop", "vera"}) {
    SCOPED_TRACE(m);
    repro::RunRecord rec = rd.read_run({"main_glue", "tiny", m, "sts-b", 0});
    EXPECT_EQ(rec.text["init_from"], "rte");
    EXPECT_EQ(rec.text["init_from_adapter"],
              fs::path(adapters(m, "rte")).lexically_relative(root_ / "out").string());
    // B's adapter tensors right after loading == A's saved final adapter, bit for bit.
    const lora::StoredAdapter src = lora::load_adapter(adapters(m, "rte").string());
    EXPECT_EQ(rec.text["init_from_digest"], lora::adapter_digest(src.tensors));
    EXPECT_EQ(rec.params["init_from_kept"], 0.0);
    EXPECT_EQ(rec.params["init_from_loaded"], static_cast<double>(src.tensors.size()));
    // A itself started fresh.
    EXPECT_EQ(rd.read_run({"main_glue", "tiny", m, "rte", 0}).text.count("init_from"), 0u);
    EXPECT_TRUE(lora::has_saved_adapter(adapters(m, "sts-b").string()));
  }
  // LoRA-drop: A's run (T = 0.5 on 4 layers) shared the rest of each target, so B's shared
  // adapters started from A's.
  EXPECT_EQ(rd.read_run({"main_glue", "tiny", "loradrop", "sts-b", 0}).params["init_from_shared"],
            2.0);

  Ran c = run(repro(write_preset(root_, "b.toml", "\"sts-b\", \"rte\"", methods, true)));
  ASSERT_EQ(c.code, 0) << c.out;
  EXPECT_NE(c.out.find("0 runs done, 6 already present"), std::string::npos) << c.out;
}

TEST_F(LoradropInitFrom, BadInputMissingSourceRunOrAdapter) {
  // The task it starts from is not in the experiment: refused before anything runs.
  Ran a = run(repro(write_preset(root_, "only_b.toml", "\"sts-b\"", "\"lora\"", true)));
  EXPECT_EQ(a.code, 2) << a.out;
  EXPECT_NE(a.out.find("task sts-b: init_from = \"rte\", but rte is not a task of experiment "
                       "main_glue"),
            std::string::npos)
      << a.out;
  EXPECT_FALSE(fs::exists(root_ / "out/initfrom/main_glue.h5"));
  // A's run is recorded but its adapter is gone: B fails naming A and the directory.
  ASSERT_EQ(run(repro(write_preset(root_, "a.toml", "\"rte\"", "\"lora\"", false))).code, 0);
  fs::remove_all(adapters("lora", "rte"));
  Ran b = run(repro(write_preset(root_, "b.toml", "\"rte\", \"sts-b\"", "\"lora\"", true)));
  EXPECT_EQ(b.code, 3) << b.out;
  EXPECT_NE(b.out.find("starts from the adapter of task rte (init_from), but '" +
                       adapters("lora", "rte").string() + "' holds none"),
            std::string::npos)
      << b.out;
  EXPECT_NE(b.out.find("rte's run is recorded in"), std::string::npos) << b.out;
}

}  // namespace
}  // namespace ld
