// Preset loader: the three shipped presets parse and hold the paper's settings; unknown keys, wrong
// types and dangling references are errors naming the file, line and key.
#include "paper_repro/presets.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"

using namespace ld;
using namespace ld::repro;

namespace {

const std::string kDir = std::string(LD_SOURCE_DIR) + "/paper_repro/presets/";

const char* const kMinimal = R"(
[preset]
name = "t"
seeds = [0, 1]

[defaults]
lr = 1e-3
epochs = 2
batch_size = 8
max_length = 32

[model.m]
source = "${assets}/m"
family = "bert"

[model.m.task.rte]
lr = 5e-4

[experiment.b]
models = ["m"]
methods = ["lora"]
tasks = ["rte"]

[experiment.a]
models = ["m"]
methods = ["lora", "loradrop"]
tasks = ["rte", "cola"]
override = { epochs = 1 }
)";

// Parses `text` and returns the error message ("" when it parsed).
std::string error_of(const std::string& text) {
  try {
    parse_preset(text, "test.toml");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_error(const std::string& text, const std::vector<std::string>& parts) {
  std::string msg = error_of(text);
  ASSERT_FALSE(msg.empty()) << "parsed without error:\n" << text;
  for (const auto& p : parts)
    EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  size_t p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  return p == std::string::npos ? s : s.replace(p, from.size(), to);
}

}  // namespace

TEST(Presets, MinimalResolvesAndKeepsFileOrder) {
  Preset p = parse_preset(kMinimal, "test.toml");
  EXPECT_EQ(p.name, "t");
  EXPECT_EQ(p.seeds, (std::vector<int64_t>{0, 1}));
  ASSERT_EQ(p.experiments.size(), 2u);
  EXPECT_EQ(p.experiments[0].name, "b");  // file order, not key order
  EXPECT_EQ(p.models.at("m").targets, (std::vector<std::string>{"query", "value"}));
  Hyper h = p.resolve("m", "rte");
  EXPECT_EQ(h.lr, 5e-4);  // task wins over defaults
  EXPECT_EQ(h.epochs, 2);
  EXPECT_EQ(p.resolve("m", "cola").lr, 1e-3);
  EXPECT_EQ(p.resolve(p.experiment("a"), "m", "rte").epochs, 1);  // the experiment's override
  EXPECT_THROW(p.resolve("nope", "rte"), Error);
  EXPECT_THROW(p.experiment("nope"), Error);
  p.assets_dir = "/x";
  EXPECT_EQ(p.expand(p.models.at("m").source), "/x/m");
  auto j = nlohmann::json::parse(p.to_json());
  EXPECT_EQ(j["experiments"]["a"]["resolved"]["m"]["rte"]["epochs"], 1);
  EXPECT_EQ(j["experiments"]["a"]["resolved"]["m"]["rte"]["lr"], 5e-4);
  EXPECT_EQ(j["experiments"]["b"]["seeds"], nlohmann::json({0, 1}));
}

TEST(Presets, PaperPresetHoldsThePapersSettings) {
  Preset p = load_preset(kDir + "paper.toml");
  EXPECT_EQ(p.device, "cuda");
  EXPECT_EQ(p.seeds, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(p.loradrop.sample_proportion, 0.1);
  EXPECT_EQ(p.loradrop.sample_epochs, 3);
  EXPECT_EQ(p.loradrop.threshold, 0.9);
  EXPECT_EQ(p.baselines.sparse_adapter_sparsity, 0.5);
  EXPECT_EQ(p.baselines.vera_r, 512);
  EXPECT_EQ(p.baselines.tied_lora_r, 56);
  Hyper b = p.resolve("roberta-base", "mnli");
  EXPECT_EQ(b.lora_r, 8);
  EXPECT_EQ(b.lora_alpha, 16);
  EXPECT_EQ(b.weight_decay, 0.1);
  EXPECT_EQ(b.warmup_ratio, 0.06);
  EXPECT_EQ(b.grad_clip, 1.0);
  EXPECT_EQ(b.adam_eps, 1e-8);
  EXPECT_EQ(b.schedule, "linear");
  // RoBERTa-base: lr / epochs / batch, max length 512.
  struct B {
    const char* task;
    double lr;
    int64_t epochs, batch;
  };
  for (B t : {B{"mnli", 5e-4, 30, 16}, B{"sst-2", 5e-4, 60, 16}, B{"mrpc", 4e-4, 30, 16},
              B{"cola", 4e-4, 80, 32}, B{"qnli", 4e-4, 25, 32}, B{"qqp", 5e-4, 25, 16},
              B{"rte", 5e-4, 80, 32}, B{"sts-b", 4e-4, 40, 16}}) {
    Hyper h = p.resolve("roberta-base", t.task);
    EXPECT_EQ(h.lr, t.lr) << t.task;
    EXPECT_EQ(h.epochs, t.epochs) << t.task;
    EXPECT_EQ(h.batch_size, t.batch) << t.task;
    EXPECT_EQ(h.max_length, 512) << t.task;
    EXPECT_FALSE(h.init_from) << t.task;
  }
  // RoBERTa-large: lr / epochs / batch / max length; RTE, MRPC, STS-B start from MNLI.
  struct L {
    const char* task;
    double lr;
    int64_t epochs, batch, len;
    bool from_mnli;
  };
  for (L t : {L{"mnli", 3e-4, 10, 4, 128, false}, L{"sst-2", 4e-4, 10, 8, 512, false},
              L{"mrpc", 3e-4, 20, 4, 512, true}, L{"cola", 3e-4, 20, 4, 128, false},
              L{"qnli", 2e-4, 10, 4, 512, false}, L{"qqp", 3e-4, 20, 4, 512, false},
              L{"rte", 4e-4, 20, 8, 512, true}, L{"sts-b", 3e-4, 10, 4, 128, true}}) {
    Hyper h = p.resolve("roberta-large", t.task);
    EXPECT_EQ(h.lr, t.lr) << t.task;
    EXPECT_EQ(h.epochs, t.epochs) << t.task;
    EXPECT_EQ(h.batch_size, t.batch) << t.task;
    EXPECT_EQ(h.max_length, t.len) << t.task;
    EXPECT_EQ(h.init_from.has_value(), t.from_mnli) << t.task;
    if (t.from_mnli) {
      EXPECT_EQ(*h.init_from, "mnli");
    }
  }
  const auto& main = p.experiment("main_glue");
  EXPECT_EQ(main.methods,
            (std::vector<std::string>{"full", "lora", "sparse", "vera", "tied", "loradrop"}));
  EXPECT_EQ(main.tasks.size(), 8u);
  // NLG: Llama2-7b with the original LoRA paper's GPT-2 NLG setup (microsoft/LoRA examples/NLG),
  // the paper's own Llama2 settings not being available.
  const auto& nlg = p.experiment("nlg");
  EXPECT_TRUE(nlg.enabled);
  EXPECT_EQ(nlg.tasks, (std::vector<std::string>{"e2e", "dart", "dialogsum"}));
  EXPECT_EQ(p.models.at("llama2-7b").targets, (std::vector<std::string>{"q_proj", "v_proj"}));
  const Hyper e2e = p.resolve("llama2-7b", "e2e"), dart = p.resolve("llama2-7b", "dart");
  EXPECT_EQ(e2e.lr, 2e-4);
  EXPECT_EQ(e2e.weight_decay, 0.01);
  EXPECT_EQ(e2e.batch_size, 8);
  EXPECT_EQ(e2e.epochs, 5);
  EXPECT_EQ(e2e.warmup_steps, 500);
  EXPECT_EQ(e2e.label_smoothing, 0.1);
  EXPECT_EQ(e2e.num_beams, 10);
  EXPECT_EQ(e2e.no_repeat_ngram_size, 4);
  EXPECT_EQ(e2e.length_penalty, 0.9);
  EXPECT_EQ(dart.length_penalty, 0.8);
  EXPECT_EQ(e2e.lora_r, 8);  // the paper's r
  EXPECT_EQ(p.experiment("sample_proportion").sample_proportions.size(), 10u);
}

TEST(Presets, SmokeAndCpuRealParse) {
  for (const char* n : {"smoke", "cpu-real"}) {
    Preset p = load_preset(kDir + n + ".toml");
    EXPECT_EQ(p.name, n);
    EXPECT_EQ(p.device, "cpu");
    EXPECT_EQ(p.threads, 2);
    EXPECT_FALSE(p.expected_time.empty());
    for (const char* e : {"main_glue", "histograms", "ablation", "sample_proportion"})
      EXPECT_NO_THROW(p.experiment(e)) << n << " " << e;
    EXPECT_TRUE(p.experiment("histograms").histograms);
    const auto& nlg = p.experiment("nlg");  // causal-LM runs on a built-in Llama decoder
    EXPECT_EQ(nlg.tasks.front(), "e2e") << n;
    EXPECT_EQ(p.models.at(nlg.models.front()).family, "llama") << n;
    EXPECT_EQ(p.experiment("sample_proportion").sample_proportions.size(), 10u);
    EXPECT_NO_THROW(nlohmann::json::parse(p.to_json()));
  }
  Preset r = load_preset(kDir + "cpu-real.toml");
  for (const char* t : {"rte", "mrpc", "cola", "sts-b", "sst-2"}) {
    const auto& tasks = r.experiment("main_glue").tasks;
    EXPECT_NE(std::find(tasks.begin(), tasks.end(), t), tasks.end()) << t;
  }
  EXPECT_EQ(r.data_dir, "../shared/data");
}

TEST(Presets, NewExperimentsInEveryPreset) {
  for (const char* n : {"smoke", "cpu-real", "paper"}) {
    Preset p = load_preset(kDir + n + ".toml");
    const auto& ts = p.experiment("threshold_sweep");
    EXPECT_EQ(ts.thresholds, (std::vector<double>{0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0})) << n;
    EXPECT_EQ(ts.methods, (std::vector<std::string>{"lora"})) << n;
    EXPECT_FALSE(p.experiment("efficiency").methods.empty()) << n;
    EXPECT_EQ(p.experiment("hyperparameters").kind, "hyperparameters") << n;
    const auto& is = p.experiment("importance_source");
    EXPECT_EQ(is.importance_sources, (std::vector<std::string>{"pass", "during"})) << n;
    EXPECT_TRUE(is.importance_only) << n;
    EXPECT_FALSE(p.sources.empty()) << n;
    EXPECT_NO_THROW(nlohmann::json::parse(p.to_json())) << n;
  }
  // The paper's histograms keep fixed bins (comparable across tasks); smoke/cpu-real are auto.
  Preset paper = load_preset(kDir + "paper.toml");
  ASSERT_TRUE(paper.experiment("histograms").hist_range.has_value());
  EXPECT_EQ(paper.experiment("histograms").hist_range->first, 1e-10);
  EXPECT_FALSE(load_preset(kDir + "smoke.toml").experiment("histograms").hist_range.has_value());
}

TEST(Presets, DescribeSettingsSaysWhereEachValueIsSet) {
  Preset p = load_preset(kDir + "paper.toml");
  const auto& e = p.experiment("hyperparameters");
  auto find = [](const std::vector<SettingRow>& rows, const std::string& k) {
    for (const auto& r : rows)
      if (r.key == k) return r;
    return SettingRow{k, "(absent)", "", ""};
  };
  auto base_rte = describe_settings(p, e, "roberta-base", "rte");
  EXPECT_EQ(find(base_rte, "lr").value, "0.0005");
  EXPECT_EQ(find(base_rte, "lr").set_in, "[model.roberta-base.task.rte]");
  // A task section without its own [sources] entry inherits its model's.
  EXPECT_NE(find(base_rte, "lr").source.find("roberta_base"), std::string::npos);
  EXPECT_EQ(find(base_rte, "epochs").value, "80");
  EXPECT_EQ(find(base_rte, "max_length").set_in, "[model.roberta-base]");
  EXPECT_EQ(find(base_rte, "lora_r").value, "8");
  EXPECT_EQ(find(base_rte, "lora_r").source, "paper (r = 8)");  // section.key wins
  EXPECT_EQ(find(base_rte, "weight_decay").set_in, "[defaults]");
  EXPECT_EQ(find(base_rte, "threshold").value, "0.9");
  EXPECT_EQ(find(base_rte, "targets").value, "query, value");
  EXPECT_EQ(find(base_rte, "seeds").value, "0, 1, 2");
  EXPECT_EQ(find(describe_settings(p, e, "roberta-large", "mrpc"), "init_from").value, "mnli");
  EXPECT_EQ(find(describe_settings(p, e, "llama2-7b", "*"), "targets").value, "q_proj, v_proj");
  // A setting a run needs that nothing sets is said to be missing rather than left out.
  Preset m = parse_preset(replace(replace(kMinimal, "lr = 1e-3\n", ""),
                                  "tasks = [\"rte\", \"cola\"]", "tasks = [\"rte\"]") +
                              "\n[experiment.h]\nkind = \"hyperparameters\"\nmodels = [\"m\"]\n"
                              "tasks = [\"cola\"]\n",
                          "test.toml");
  auto none = describe_settings(m, m.experiment("h"), "m", "*");
  EXPECT_EQ(find(none, "lr").value, "not recorded");
  EXPECT_EQ(find(none, "lr").set_in, "-");
  EXPECT_EQ(find(none, "lr").source, "");
  EXPECT_EQ(find(none, "epochs").set_in, "[defaults]");
}

TEST(Presets, NewExperimentKeysBadInput) {
  expect_error(replace(kMinimal, "tasks = [\"rte\"]\n", "tasks = [\"rte\"]\nkind = \"eval\"\n"),
               {"kind must be \"train\" or \"hyperparameters\""});
  expect_error(
      replace(kMinimal, "tasks = [\"rte\"]\n", "tasks = [\"rte\"]\nthresholds = [0.5, 1.5]\n"),
      {"thresholds must be in (0, 1]"});
  expect_error(replace(kMinimal, "tasks = [\"rte\"]\n",
                       "tasks = [\"rte\"]\nimportance_sources = [\"after\"]\n"),
               {"'after' is not"});
  expect_error(
      replace(kMinimal, "tasks = [\"rte\"]\n", "tasks = [\"rte\"]\nhist_range = [1, 0.5]\n"),
      {"hist_range must be"});
  expect_error(std::string(kMinimal) + "\n[sources]\ndefaults = 3\n",
               {"'defaults' must be a string"});
}

TEST(Presets, UnknownKeyBadInput) {
  // Named with file, line and section, at every level.
  expect_error(replace(kMinimal, "name = \"t\"", "name = \"t\"\nnmae = 1"),
               {"test.toml:4:", "unknown key 'nmae' in [preset]"});
  expect_error(replace(kMinimal, "epochs = 2", "epochs = 2\nlearning_rate = 1"),
               {"test.toml:", "unknown key 'learning_rate' in [defaults]", "allowed: lr"});
  expect_error(replace(kMinimal, "family = \"bert\"", "family = \"bert\"\nlayers = 3"),
               {"unknown key 'layers' in [model.m]"});
  expect_error(replace(kMinimal, "lr = 5e-4", "lr = 5e-4\nepoch = 3"),
               {"test.toml:18:", "unknown key 'epoch' in [model.m.task.rte]"});
  expect_error(replace(kMinimal, "override = { epochs = 1 }", "override = { epoch = 1 }"),
               {"unknown key 'epoch' in [experiment.a.override]"});
  expect_error(replace(kMinimal, "tasks = [\"rte\"]\n", "tasks = [\"rte\"]\nseed = [1]\n"),
               {"unknown key 'seed' in [experiment.b]"});
  expect_error(std::string(kMinimal) + "\n[trainer]\nx = 1\n",
               {"unknown key 'trainer' in [top level]"});
}

TEST(Presets, TypesAndReferencesBadInput) {
  expect_error(replace(kMinimal, "epochs = 2", "epochs = 2.5"),
               {"test.toml:8:", "'epochs' must be an integer, found float"});
  expect_error(replace(kMinimal, "lr = 1e-3", "lr = \"fast\""),
               {"'lr' must be a number, found string"});
  expect_error(replace(kMinimal, "seeds = [0, 1]", "seeds = [0, \"1\"]"),
               {"'seeds' must be an integer"});
  expect_error(replace(kMinimal, "methods = [\"lora\"]", "methods = [\"lora\", \"dora\"]"),
               {"test.toml:21:", "unknown method 'dora'"});
  expect_error(replace(kMinimal, "models = [\"m\"]\nmethods = [\"lora\"]",
                       "models = [\"m\", \"x\"]\nmethods = [\"lora\"]"),
               {"test.toml:20:", "model 'x', which has no [model.x]"});
  expect_error(replace(kMinimal, "batch_size = 8\n", ""),
               {"model 'm' task 'rte' has no batch_size"});
  expect_error(replace(kMinimal, "lr = 5e-4", "lr = 5e-4\ninit_from = \"mnli\""),
               {"init_from 'mnli' is not a task of that model"});
  expect_error(replace(kMinimal, "[preset]", "[preset]\ndevice = \"tpu\""),
               {"device must be cpu or cuda"});
  expect_error(std::string(kMinimal) + "[loradrop]\nthreshold = 1.5\n",
               {"threshold must be in (0, 1]"});
  expect_error(std::string(kMinimal) +
                   "[experiment.c]\nmodels = [\"m\"]\nmethods = [\"lora\"]\n"
                   "tasks = [\"rte\"]\nenabled = false\n",
               {"disabled: say why"});
  expect_error(replace(kMinimal, "tasks = [\"rte\"]\n", "tasks = []\n"),
               {"[experiment.b] needs a non-empty 'tasks'"});
  expect_error("[preset\nname = 1", {"test.toml:1:", "TOML syntax error"});
  expect_error("[defaults]\nlr = 1.0\n", {"missing [preset]"});
  try {
    load_preset(kDir + "no-such.toml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such.toml"), std::string::npos);
  }
}
