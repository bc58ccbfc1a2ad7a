// The LoRA-drop pipeline as one call: stratified sample -> short LoRA training -> importance pass
// -> selection -> rebuild -> fine-tune -> evaluation; plus the small training/evaluation/importance
// loops it is made of (nn has no trainer yet, so these use nn::AdamW directly).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lora/adapter.h"
#include "lora/importance.h"
#include "lora/selection.h"
#include "nn/encoder.h"

namespace ld::lora {

// Tokenised sequence-classification data, independent of any task reader.
struct ClassificationData {
  std::vector<std::vector<int64_t>> ids;  // one token list per example (unpadded)
  // segment ids (token_type_ids) per example, same lengths as ids; empty = all 0 (RoBERTa, and
  // BERT single sentences). BERT-family pairs need them: segment B has its own embedding row.
  std::vector<std::vector<int64_t>> type_ids;
  std::vector<int64_t> labels;  // classification labels, or
  std::vector<double> targets;  // regression targets (when labels is empty)
  size_t size() const { return ids.size(); }
  bool regression() const { return labels.empty(); }
  ClassificationData subset(const std::vector<size_t>& idx) const;
};

// ids i64 [B, T] right-padded with pad_id to the longest example, mask i64 [B, T] (1 = real),
// type_ids i64 [B, T] (0 on padding) or undefined when the data has none, labels i64 [B] or f32
// [B].
struct Batch {
  Tensor ids, mask, type_ids, labels;
};
Batch make_batch(const ClassificationData& d, const std::vector<size_t>& idx, int64_t pad_id);

// Runs the model on a batch: logits [B, C] and, given labels, the loss.
using ForwardFn = std::function<nn::SeqClsOutput(const Batch&)>;
ForwardFn encoder_forward(nn::EncoderForSequenceClassification& m);

struct TrainOptions {
  int64_t epochs = 1;
  int64_t batch_size = 16;
  double lr = 5e-4;
  double weight_decay = 0.0;
  double warmup_ratio = 0.06;  // linear warmup then linear decay (transformers' schedule)
  int64_t warmup_steps = -1;   // >= 0: warmup length in steps, replacing warmup_ratio
  double max_grad_norm = 1.0;  // <= 0: no clipping
  uint64_t seed = 0;           // data order
  int64_t pad_id = 1;
};

// ---- the optimisation loop shared by the classification and causal-LM pipelines ----

// The loss of one batch and its number of real tokens (for progress reports).
struct StepLoss {
  Tensor loss;
  int64_t tokens = 0;
};
// Runs the forward of examples `idx` and returns the scalar loss. When `collecting`, it must set
// the importance collector's token mask for the batch before the forward.
using BatchLossFn = std::function<StepLoss(const std::vector<size_t>& idx, bool collecting)>;
// Called after every optimiser step: step (1-based), total steps, loss, learning rate, tokens.
using StepFn =
    std::function<void(int64_t step, int64_t total, double loss, double lr, int64_t tokens)>;

// AdamW over `params` for opt.epochs epochs of n examples in seeded shuffled batches; linear warmup
// and decay, gradient clipping. `set` (may be null: full-parameter training) gets its Sparse masks
// re-applied after every step and, with `collect_last_epoch`, collects importance (it must have a
// tracker) during the last epoch. Returns the loss of every step.
std::vector<double> train_steps(nn::Module& model,
                                const std::vector<std::pair<std::string, Tensor>>& params,
                                AdapterSet* set, size_t n, const TrainOptions& opt,
                                const BatchLossFn& batch_loss, bool collect_last_epoch = false,
                                const StepFn& on_step = {});

// Batches of `bs` consecutive entries of `order` (the last may be smaller).
std::vector<std::vector<size_t>> batches_of(size_t n, int64_t bs, const std::vector<size_t>& order);

// Trains set's trainable parameters (the adapters and the head) with AdamW on `d`; returns the
// loss of every step. Sparse sets get their masks re-applied after every step. With
// `collect_last_epoch`, importance is collected (set must have a tracker) during the last epoch.
std::vector<double> train(AdapterSet& set, const ForwardFn& fwd, const ClassificationData& d,
                          const TrainOptions& opt, bool collect_last_epoch = false);

// Accuracy (classification) or MSE (regression) and the mean loss, in eval mode without grad:
// {"accuracy" | "mse", "eval_loss"}.
std::map<std::string, double> evaluate(nn::Module& model, const ForwardFn& fwd,
                                       const ClassificationData& d, int64_t batch_size,
                                       int64_t pad_id);

// A no-grad pass over `d` in eval mode that adds ||ΔW x||² per example and site to the set's
// tracker (attach_tracker first).
void importance_pass(AdapterSet& set, const ForwardFn& fwd, const ClassificationData& d,
                     int64_t batch_size, int64_t pad_id);

// select_layers() for every target of the tracker: keep[target][i] for its sites by layer. The
// RandomK ablation draws each target with its own seed (cfg.seed mixed with the target's name).
std::map<std::string, std::vector<bool>> select_per_target(const ImportanceTracker& tracker,
                                                           const SelectionConfig& cfg);
// select_layers() for one target's importance `g`, RandomK with that target's own seed.
std::vector<bool> select_target_layers(const std::vector<double>& g, const SelectionConfig& cfg,
                                       const std::string& target);
// The seed a target draws with: seed XOR the FNV-1a hash of its name.
uint64_t target_seed(uint64_t seed, const std::string& target);

// LoRA-drop steps 4-5, shared by every pipeline: g_i and y_i per target from the tracker, the
// selection, and the rebuild of `set` (retained sites keep their adapters, the rest share one).
struct SelectionOutcome {
  std::map<std::string, std::vector<double>> importance;  // g_i per target, by layer
  std::map<std::string, std::vector<double>> normalised;  // y_i per target
  std::map<std::string, std::vector<bool>> selected;      // keeps its own adapter, by layer
  int64_t params_before = 0, params_after = 0;            // #Tr. Params around the rebuild
};
SelectionOutcome select_and_rebuild(AdapterSet& set, const ImportanceTracker& tracker,
                                    const SelectionConfig& cfg, SharedInit init, Generator& gen);

enum class ImportanceSource { SeparatePass, DuringTraining };

struct PipelineConfig {
  AdapterConfig adapter;      // LoRA at the targets (method must be LoRA)
  double sample_ratio = 0.1;  // alpha: stratified sample of the training set
  int64_t sample_epochs = 3;  // n: short LoRA training on the sample
  int64_t epochs = 3;         // full fine-tune after the rebuild
  TrainOptions train;         // batch size, lr, ... (epochs / seed are overridden)
  SelectionConfig selection;  // T and the ablations
  SharedInit shared_init = SharedInit::Fresh;
  bool importance_on_full_train = false;  // importance data: the sample (default) or the full set
  ImportanceSource importance_source = ImportanceSource::SeparatePass;
  ImportanceOptions importance;
  uint64_t seed = 0;
};

struct PipelineResult {
  std::shared_ptr<AdapterSet> adapters;  // the trained, rebuilt adapters
  // g_i, counts, histograms per site (shared: the adapters' collector points at it)
  std::shared_ptr<ImportanceTracker> tracker;
  std::map<std::string, std::vector<double>> importance;  // g_i per target, by layer
  std::map<std::string, std::vector<double>> normalised;  // y_i per target
  std::map<std::string, std::vector<bool>> selected;      // keeps its own adapter, by layer
  std::map<std::string, double> metrics;                  // evaluate() after the fine-tune
  std::vector<double> sample_loss, train_loss;            // per step
  int64_t sample_size = 0;
  int64_t lora_params = 0;      // #Tr. Params of LoRA at every site
  int64_t loradrop_params = 0;  // after the rebuild
};

// Runs LoRA-drop on `model` (a pretrained model without adapters; its base stays frozen) in place:
// attaches LoRA, trains on the stratified sample, measures importance, selects, rebuilds (retained
// sites keep their trained adapters, the rest share one fresh or mean-initialised adapter per
// target, or lose theirs under w/o share), fine-tunes on the full training set and evaluates.
PipelineResult run_loradrop(nn::Module& model, const ForwardFn& fwd,
                            const ClassificationData& train_data,
                            const ClassificationData& eval_data, const PipelineConfig& cfg);

}  // namespace ld::lora
