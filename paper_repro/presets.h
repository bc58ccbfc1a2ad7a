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
  // Causal-LM (NLG) runs only: loss label smoothing, warmup in steps (replaces warmup_ratio),
  // generation (num_beams 1 = greedy, length_penalty, no_repeat_ngram_size, max_new_tokens), and
  // the causal-LM self-pretraining of a built-in decoder (steps, learning rate).
  std::optional<double> label_smoothing, length_penalty, pretrain_lr;
  std::optional<int64_t> warmup_steps, num_beams, no_repeat_ngram_size, max_new_tokens,
      pretrain_steps;
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
  // "train": runs models x methods x tasks x seeds (default). "hyperparameters": runs nothing;
  // tabulates the resolved settings of each (model, task) with where they were set and their
  // source (see Preset::sources); methods may be empty and settings may be missing.
  std::string kind = "train";
  std::vector<std::string> produces;  // paper items this experiment regenerates (documentation)
  std::vector<std::string> models, methods, tasks;
  std::vector<int64_t> seeds;              // empty = the preset's seeds
  std::vector<double> sample_proportions;  // sensitivity experiment: one LoRA-drop run each
  std::vector<double> thresholds;          // threshold sweep: one LoRA-drop run per T (besides
                                           // the runs of `methods`)
  // "pass" (a separate no-grad pass after the sample training, the paper's way) and/or
  // "during" (collected in the last epoch of the sample training): one LoRA-drop run each.
  std::vector<std::string> importance_sources;
  bool importance_only = false;  // LoRA-drop runs stop after importance and selection (no
                                 // fine-tune; metric is NaN, no table)
  // Histogram range: nullopt = "auto" (per target, from the observed values); else fixed [lo, hi]
  // with log bins.
  std::optional<std::pair<double, double>> hist_range;
  bool histograms = false;  // store per-layer ||ΔW x||² histograms
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
  // [sources]: where settings come from, keyed by section ("defaults", "loradrop", "baselines",
  // "model.M", "model.M.task.T") or by section.key ("defaults.lr"); the more specific wins. Read
  // by the hyperparameters experiment.
  std::map<std::string, std::string> sources;
  // The source text of `key` set in `section` ("" when none is recorded).
  std::string source_of(const std::string& section, const std::string& key) const;

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

// One row of a hyperparameter table: a setting of (model, task) as a run would use it.
struct SettingRow {
  std::string key, value;  // value "not recorded" when nothing sets it
  std::string set_in;      // the section that set it: "[defaults]", "[model.M]",
                           // "[model.M.task.T]", "[experiment.E.override]", "[loradrop]", ...
  std::string source;      // Preset::source_of(section, key); "" when none is recorded
};
// Every setting of `model` on `task` ("*" = the model-level settings, no task table) under
// experiment `e`: the training hyperparameters in a fixed order (lr, epochs, batch_size,
// max_length, lora_r, lora_alpha, ...; the four a run needs always appear), then the LoRA targets,
// the LoRA-drop settings (alpha, n, T), the baselines' settings and the seeds.
std::vector<SettingRow> describe_settings(const Preset& p, const ExperimentPreset& e,
                                          const std::string& model, const std::string& task);

// Methods an experiment may list (see DESIGN.md "The paper, in brief").
const std::vector<std::string>& known_methods();

// Parses a preset; `source_name` names it in errors (usually its path).
Preset parse_preset(const std::string& toml_text, const std::string& source_name);
Preset load_preset(const std::string& path);

}  // namespace ld::repro
