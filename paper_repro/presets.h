// paper_repro presets (paper_repro/presets/*.toml): models, per-task hyperparameters and the
// experiments (paper tables and figures) a preset runs. Strict parser: an unknown key, a wrong type
// or a dangling reference is an ld::Error naming the file, line and key.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ld::repro {

// Training hyperparameters. Every field is optional so that [defaults], [model.M] and
// [model.M.task.T] can each set some; resolve() merges them (the more specific wins).
struct Hyper {
  std::optional<double> lr, warmup_ratio, weight_decay, grad_clip, adam_beta1, adam_beta2, adam_eps,
      lora_alpha, dropout;
  std::optional<int64_t> epochs, batch_size, max_length, lora_r, max_train_examples,
      max_eval_examples, eval_every, max_steps;
  std::optional<std::string> schedule, optimizer, init_from;
  // Fields set in `over` replace ours.
  void merge(const Hyper& over);
};

struct LoraDropSettings {
  double sample_proportion = 0.1;  // alpha: stratified share of the training set
  int64_t sample_epochs = 3;       // n: epochs of LoRA training on the sample
  double threshold = 0.9;          // T: cumulative normalised importance to keep
};

struct BaselineSettings {
  double sparse_adapter_sparsity = 0.5;
  int64_t vera_r = 512;
  int64_t tied_lora_r = 56;
};

struct ModelPreset {
  std::string name;
  std::string source;                  // a model directory (may use ${assets}) or "builtin:<name>"
  std::string family;                  // roberta | bert | llama | builtin
  std::vector<std::string> targets;    // LoRA target types, e.g. query, value
  Hyper hyper;                         // model-level settings
  std::map<std::string, Hyper> tasks;  // per-task settings
};

struct ExperimentPreset {
  std::string name, description;
  std::vector<std::string> produces;  // paper items this experiment regenerates (documentation)
  std::vector<std::string> models, methods, tasks;
  std::vector<int64_t> seeds;              // empty = the preset's seeds
  std::vector<double> sample_proportions;  // sensitivity experiment: one LoRA-drop run each
  bool histograms = false;                 // store per-layer ||ΔW x||² histograms
  int64_t hist_bins = 50;
  Hyper override_;  // [experiment.X.override]: applied last, to every model and task
  // A disabled experiment is parsed and reference-checked but not required to be complete;
  // runners skip it and print the reason (e.g. settings the paper states that are not recorded).
  bool enabled = true;
  std::string disabled_reason;
};

struct Preset {
  std::string name, description, source_file;
  std::string device = "cpu";
  int64_t threads = 2;
  std::vector<int64_t> seeds = {0};
  std::string assets_dir, data_dir;
  std::string expected_time;  // stated cost of the whole preset
  Hyper defaults;
  LoraDropSettings loradrop;
  BaselineSettings baselines;
  std::map<std::string, ModelPreset> models;
  std::vector<ExperimentPreset> experiments;  // in file order

  const ExperimentPreset& experiment(const std::string& name) const;  // throws when absent
  // defaults <- model <- model.task (<- the experiment's override); throws when the model is
  // unknown.
  Hyper resolve(const std::string& model, const std::string& task) const;
  Hyper resolve(const ExperimentPreset& e, const std::string& model, const std::string& task) const;
  // Replaces ${assets} and ${data} by assets_dir and data_dir.
  std::string expand(const std::string& s) const;
  // The whole preset, every (experiment, model, task) resolved, as JSON text (the results file's
  // config_json).
  std::string to_json() const;
};

// Methods an experiment may list (see DESIGN.md "The paper, in brief").
const std::vector<std::string>& known_methods();

// Parses a preset; `source_name` names it in errors (usually its path).
Preset parse_preset(const std::string& toml_text, const std::string& source_name);
Preset load_preset(const std::string& path);

}  // namespace ld::repro
