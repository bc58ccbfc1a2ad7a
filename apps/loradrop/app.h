// The loradrop program's shared pieces: settings (TOML + --set + flags), models (HF directories or
// built-in), tasks (GLUE or synthetic), one training run of any method, logging and exit codes.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/ops.h"
#include "data/tokenizer.h"
#include "lora/adapter.h"
#include "lora/adapter_store.h"
#include "lora/importance.h"
#include "lora/pipeline.h"
#include "nn/config.h"
#include "nn/encoder.h"
#include "paper_repro/results.h"

namespace ld::app {

// Exit codes scripts can rely on (documented in --help and README.md).
enum ExitCode : int { kOk = 0, kRuntimeFailure = 1, kUsageError = 2, kBadInput = 3 };

// A bad command line or setting (exit 2).
class UsageError : public Error {
 public:
  using Error::Error;
};
// A missing or malformed input file: model, adapter, data, config or preset (exit 3).
class InputError : public Error {
 public:
  using Error::Error;
};

// Runs f; an ld::Error it throws becomes an InputError prefixed with `what` (e.g. "model dir X").
template <class F>
auto as_input(const std::string& what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(what + ": " + e.what());
  }
}

// Every setting of a run. Precedence: defaults < --config FILE (TOML) < --set key=value < flags.
struct Settings {
  std::string method =
      "loradrop";                  // frozen|full|lora|loradrop|vera|tied|sparse|loradrop_<ablation>
  std::string task = "synthetic";  // a GLUE task (rte, mrpc, cola, sts-b, sst-2, ...) or synthetic
  std::string model = "builtin:quickstart";  // HF model directory, or builtin:quickstart|tiny-bert
  std::string data = "../shared/data/glue";  // GLUE root (holding RTE/, ...) or one task folder
  std::string tokenizer;                     // tokenizer dir for builtin models on GLUE tasks
  std::string out = "loradrop_out";
  std::string device = "cpu";
  std::string adapter;               // adapter directory (eval, export, info)
  std::string format = "peft";       // export: peft | merged
  std::string importance;            // select: importance.json from `loradrop importance`
  std::string select = "threshold";  // threshold|topk|inverted|random|last
  std::string shared_init = "fresh";
  int64_t seed = 0, threads = 0;
  int64_t r = 8, epochs = 3, batch_size = 16, max_length = 128, eval_every = 0;
  int64_t max_train_examples = 0, max_eval_examples = 0, sample_epochs = 3, k = -1;
  int64_t vera_r = 512, tied_r = 56, hist_bins = 50, pretrain_steps = -1;
  double lora_alpha = 16, lr = 5e-4, weight_decay = 0.1, warmup_ratio = 0.06, grad_clip = 1.0;
  double sample_proportion = 0.1, threshold = 0.9, sparsity = 0.5, dropout = 0.0;
  double head_lr = -1;  // learning rate of the classifier head; <= 0: the same as lr
  bool share = true, histograms = false, progress = true;

  // Sets one key from its text (usage error on an unknown key or a bad value).
  void set(const std::string& key, const std::string& value);
  // Reads a TOML file (flat keys, or [section] tables whose keys are taken as they are).
  void load_toml(const std::string& path);
  static const std::vector<std::pair<std::string, std::string>>& keys();  // name, help
  std::string to_json() const;
};

// JSON-lines log plus a progress line on stderr when it is a terminal.
class Logger {
 public:
  Logger() = default;
  // fresh: start the file empty (a command that runs from scratch); else append (a resumed sweep
  // keeps the earlier runs' lines).
  Logger(const std::string& jsonl_path, bool progress, bool fresh = false);
  void event(const std::string& json_line);
  // One training step: progress line (step/total, loss, tokens/s, ETA) and a log line.
  void step(const std::string& phase, int64_t step, int64_t total, double loss, double lr,
            int64_t tokens);
  void end_phase();
  void say(const std::string& line);  // a plain line on stderr (clears the progress line first)

 private:
  std::string path_;
  bool tty_ = false;
  bool open_line_ = false;
  double t0_ = 0;       // when the phase's first step was reported
  int64_t tokens_ = 0;  // tokens of the phase's steps after the first
  int64_t steps_ = 0;   // steps after the first
  std::string phase_;
};

// A task ready to train on: tokenised train and eval sets.
struct TaskData {
  std::string name;         // registry name ("rte") or "synthetic"
  std::string metric_name;  // the paper's metric: accuracy, matthews, pearson
  bool regression = false;
  int64_t num_labels = 2;
  int64_t pad_id = 0;
  lora::ClassificationData train, eval;
};

// A model source: builds fresh sequence-classification models (base weights loaded, head freshly
// initialised from the seed) as often as runs need them.
struct ModelSource {
  std::string name;  // "builtin:quickstart", or the directory
  nn::ModelConfig config;
  std::shared_ptr<data::Tokenizer> tokenizer;   // null for the synthetic vocabulary
  std::map<std::string, Tensor> builtin_state;  // builtin models: base weights in memory
  std::string checkpoint_dir;                   // HF models
  // A new model for a task with `num_labels` labels (1 = regression), on `device`.
  std::shared_ptr<nn::EncoderForSequenceClassification> make(int64_t num_labels, uint64_t seed,
                                                             Device device) const;
};

// Loads an HF model directory (config.json + model.safetensors(.index.json) + tokenizer files).
ModelSource load_model_dir(const std::string& dir);
// The config of the built-in encoders: "quickstart" (RoBERTa-shaped, synthetic vocabulary) or
// "tiny-bert" (BERT-shaped, vocabulary of `vocab_size`).
nn::ModelConfig builtin_config(const std::string& name, int64_t vocab_size);
// HF-style initialisation: N(0, 0.02) weights, zero biases, LayerNorm 1/0.
void init_weights(nn::Module& m, uint64_t seed, const std::string& pattern = "*");

// Reads and tokenises a GLUE task (train + dev) from `data` (GLUE root or task folder); the
// training set is capped by a stratified subset, the dev set by a fixed shuffled prefix.
TaskData load_glue_task(const std::string& task, const std::string& data,
                        const data::Tokenizer& tok, int64_t max_length, int64_t max_train,
                        int64_t max_eval, uint64_t seed);

// Task metric (accuracy / matthews / pearson, as the task registry says) and eval loss.
struct EvalResult {
  double metric = 0, eval_loss = 0;
  std::map<std::string, double> all;  // every metric of the task
};
EvalResult evaluate_task(nn::Module& model, const lora::ForwardFn& fwd, const TaskData& task,
                         int64_t batch_size);

// Forward of an encoder with the batch moved to `device`.
lora::ForwardFn device_forward(nn::EncoderForSequenceClassification& m, Device device);

// One run of one method.
struct RunOptions {
  std::string method = "lora";
  int64_t r = 8, epochs = 3, batch_size = 16, eval_every = 0, sample_epochs = 3, k = -1;
  int64_t vera_r = 512, tied_r = 56, hist_bins = 50;
  double lora_alpha = 16, lr = 5e-4, head_lr = -1, weight_decay = 0.1, warmup_ratio = 0.06,
         grad_clip = 1.0, dropout = 0.0;
  double sample_proportion = 0.1, threshold = 0.9, sparsity = 0.5;
  std::string shared_init = "fresh";
  std::vector<std::string> targets;  // empty: the model family's defaults
  bool histograms = false;           // per-layer ||ΔW x||² histograms after fine-tuning
  bool importance_only = false;      // loradrop: stop after the importance pass and selection
  // loradrop: collect ||ΔW x||² during the last epoch of the sample training instead of in a
  // separate no-grad pass afterwards.
  bool importance_during_training = false;
  // Histogram range: nullopt = automatic (per target, from the observed values); else fixed
  // [lo, hi] with log bins.
  std::optional<std::pair<double, double>> hist_range;
  uint64_t seed = 0;
  // Start from a saved adapter (paper_repro `init_from`; adapter methods only): its tensors are
  // copied into the adapters right after they are attached (before SNIP pruning, before
  // LoRA-drop's sample training); LoRA-drop's shared adapters also start, after the rebuild,
  // from its shared adapter of the same target (init_shared_from). The head stays freshly
  // initialised. Null: fresh initialisation.
  std::shared_ptr<const lora::StoredAdapter> init_from;
};
RunOptions run_options(const Settings& s);

struct RunOutput {
  std::string method;
  EvalResult eval;
  int64_t trainable_params = 0;  // adapter parameters (#Tr. Params; head not counted)
  int64_t lora_params = 0;       // loradrop: LoRA at every site, before the rebuild
  int64_t sample_size = 0;
  std::vector<double> train_loss, sample_loss;
  std::vector<std::array<double, 2>> eval_history;
  std::map<std::string, std::vector<double>> importance;  // g_i (loradrop: on the sample)
  std::map<std::string, std::vector<bool>> selected;
  std::map<std::string, repro::LayerHistograms> hist;
  std::shared_ptr<lora::AdapterSet> adapters;  // null for frozen / full
  double seconds = 0;
  // Efficiency: the main training phase (the fine-tune for LoRA-drop) and LoRA-drop's overhead.
  double finetune_seconds = 0, sample_seconds = 0, importance_seconds = 0;
  int64_t finetune_steps = 0;
  double peak_memory_bytes = 0;  // peak tensor storage during the main training phase
  // With RunOptions::init_from: what was loaded (digest of the adapter tensors the run started
  // from, as the model held them), how many adapter tensors kept their fresh init, and the
  // targets whose LoRA-drop shared adapter started from the saved run's.
  lora::InitReport init;
  std::vector<std::string> init_shared;
};
bool is_known_method(const std::string& m);
RunOutput run_method(nn::EncoderForSequenceClassification& model, Device device,
                     const TaskData& task, const RunOptions& o, Logger& log);

// The RunRecord of a finished run (schema of paper_repro/results.h).
repro::RunRecord to_record(const RunOutput& r, const repro::RunKey& key, const TaskData& task);

// Prints a results table (method, metric, #Tr. params, ...) to stdout.
void print_table(const std::string& title, const std::vector<RunOutput>& runs,
                 const TaskData& task);

// tools/plot.py on a results file: 0 ok, 77 when python3/h5py/matplotlib are missing, other codes
// on failure. Prints how to run it by hand when it cannot.
int run_plot(const std::string& results, const std::string& out_dir);
std::string source_dir();  // the repository (compiled in; LD_SOURCE_DIR env var overrides)
// Writes `text` to path via path.tmp and a rename (parent directories created); throws ld::Error.
void write_file_atomically(const std::string& path, const std::string& text);

// The synthetic language and tasks of `loradrop quickstart` (synthetic.cpp).
namespace synth {
inline constexpr int64_t kCls = 0, kPad = 1, kSep = 2, kMask = 3, kFirstWord = 4;
inline constexpr int64_t kWords = 48, kVocab = kFirstWord + kWords, kCategories = 4;
int64_t category(int64_t token);  // 0..3 for words, -1 for specials
// A sentence of the Markov language, `len` words, wrapped as <s> ... </s>.
std::vector<int64_t> sentence(std::mt19937_64& rng, int64_t len);
// The classification task: label 1 when the sentence holds more category-0 than category-1 words
// (balanced classes, ties excluded). n_train / n_eval examples.
TaskData classification_task(int64_t n_train, int64_t n_eval, uint64_t seed);
// Masked-token pretraining of `model`'s encoder (15% masking, BERT's 80/10/10) for `steps` steps
// of batch 32 on fresh Markov sentences; returns the masked-token accuracy on held-out sentences
// before and after.
std::pair<double, double> pretrain(nn::EncoderForSequenceClassification& model, int64_t steps,
                                   uint64_t seed, Logger& log);
}  // namespace synth

}  // namespace ld::app

namespace ld::repro {
struct Preset;
struct ExperimentPreset;
}  // namespace ld::repro

namespace ld::app {
// Subcommands (commands.cpp, repro.cpp); each returns the process exit code.
struct QuickstartOptions {
  bool fast = false;  // the CI setting: fewer examples and steps
  bool real = false;  // --model given: real assets instead of the synthetic default
  bool plots = true;
};
int cmd_train(const Settings& s);
int cmd_importance(const Settings& s);
int cmd_select(const Settings& s);
int cmd_eval(const Settings& s);
int cmd_export(const Settings& s);
int cmd_info(const Settings& s);
int cmd_quickstart(Settings s, const QuickstartOptions& q);
// The quickstart's defaults (applied before --config / --set / flags).
void quickstart_defaults(Settings& s, bool fast);
struct ReproOptions {
  std::string item;              // experiment, tableN / figureN, or "all"
  std::string preset = "smoke";  // name (paper_repro/presets/<name>.toml) or a .toml path
  std::string out = "paper_repro_out";
  std::string data_dir, assets_dir;  // override the preset's
  std::string device;                // override the preset's
  bool list = false, plots = true;
};
int cmd_repro(const ReproOptions& o);
// The NLG experiment of `loradrop repro` (nlg.cpp): causal-LM LoRA / LoRA-drop with a Llama
// decoder on E2E, DART (BLEU) and DialogSum (ROUGE-L). An experiment is one when any of its tasks
// is a generation task (then all must be).
bool is_generation_experiment(const repro::ExperimentPreset& e);
int run_nlg_experiment(const repro::Preset& pr, const repro::ExperimentPreset& e,
                       const ReproOptions& ro);

// The end of a repro experiment: validates the results file `h5` (or says there were no runs),
// prints the count of runs done / already present and, unless --no-plots, draws its figures into
// <dir>/<experiment>_figures. Returns the exit code.
int finish_experiment(const repro::Preset& pr, const repro::ExperimentPreset& e,
                      const ReproOptions& ro, const std::string& h5, const std::string& dir,
                      int64_t done, int64_t skipped);
// The built-in decoders: "tiny-llama" (CI) and "small-llama" (self-pretrained in cpu-real), with
// the tokenizer's vocabulary.
nn::ModelConfig builtin_llama_config(const std::string& name, int64_t vocab_size);
// Applies --threads / OMP settings.
void setup_threads(const Settings& s);
}  // namespace ld::app
