// Causal-LM LoRA and LoRA-drop (the paper's NLG experiments, Llama decoders): training on
// prompt/target pairs with the loss on the target tokens only, the importance pass over every
// real token, generation on held-out prompts and BLEU / ROUGE-L against grouped references.
// The optimisation loop, selection and rebuild are pipeline.h's (train_steps, select_and_rebuild).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/batching.h"
#include "lora/pipeline.h"
#include "nn/llama.h"

namespace ld::lora {

// Tokenised training pairs: prompt ids (with BOS) and target ids (with EOS when not truncated).
struct LmData {
  std::vector<data::LmPair> pairs;
  size_t size() const { return pairs.size(); }
  LmData subset(const std::vector<size_t>& idx) const;
};

// Held-out inputs for generation: one prompt per input and every reference of that input.
struct GenerationData {
  std::vector<std::vector<int64_t>> prompts;
  std::vector<std::vector<std::string>> references;
  size_t size() const { return prompts.size(); }
};

// Mean loss over the target tokens of a causal-LM batch (labels -100 elsewhere; shifted inside as
// Hugging Face), moved to the model's device. label_smoothing eps > 0 gives microsoft/LoRA's GPT-2
// NLG loss (and HF's LabelSmoother): (1 - eps) * NLL + eps * mean over the vocabulary of -log p.
Tensor lm_batch_loss(nn::LlamaForCausalLM& m, const data::Batch& b, double label_smoothing = 0.0);

// Trains set's trainable parameters (or, with set == nullptr, every trainable parameter of `m`:
// the self-pretraining of a small decoder) on `d`; returns the loss of every step. With
// `collect_last_epoch` the set's tracker collects ||ΔW x||² over the real tokens of the last epoch.
std::vector<double> train_lm(nn::LlamaForCausalLM& m, AdapterSet* set, const LmData& d,
                             const TrainOptions& opt, double label_smoothing = 0.0,
                             bool collect_last_epoch = false, const StepFn& on_step = {});

// Token-weighted mean NLL of the target tokens (no smoothing), in eval mode without grad.
double lm_eval_loss(nn::LlamaForCausalLM& m, const LmData& d, int64_t batch_size, int64_t pad_id);

// A no-grad pass over `d` in eval mode that adds ||ΔW x||² per example and site to the set's
// tracker, summed over every real (non-padding) token: prompt and target.
void lm_importance_pass(AdapterSet& set, nn::LlamaForCausalLM& m, const LmData& d,
                        int64_t batch_size, int64_t pad_id);

// Generates a continuation of every prompt in batches of `batch_size` (left-padded with pad_id),
// greedy or beam per `gen`. Each result holds the generated ids only: cut before the first EOS,
// without padding.
std::vector<std::vector<int64_t>> generate_continuations(
    nn::LlamaForCausalLM& m, const std::vector<std::vector<int64_t>>& prompts,
    const nn::GenerateOptions& gen, int64_t batch_size, int64_t pad_id);

// Corpus BLEU (sacrebleu defaults, 0..100) or ROUGE-L F (rouge-score, mean over inputs, 0..1) of
// hypotheses[i] against references[i]; metric is "bleu" or "rougeL" (data::metric_name names).
double score_generation(const std::string& metric, const std::vector<std::string>& hypotheses,
                        const std::vector<std::vector<std::string>>& references);

// One causal-LM run: plain adapters (method lora, vera, tied) or LoRA-drop.
struct LmPipelineConfig {
  AdapterConfig adapter = [] {  // LoRA on q_proj / v_proj (default_targets("llama"))
    AdapterConfig a;
    a.targets = default_targets("llama");
    return a;
  }();
  bool loradrop = false;      // LoRA-drop (adapter.method must be LoRA)
  double sample_ratio = 0.1;  // alpha: a seeded uniform random sample of the training pairs
                              // (generation data has no labels to stratify by)
  int64_t sample_epochs = 3;  // n: LoRA training on the sample
  int64_t epochs = 3;         // training on the full training set (after the rebuild)
  TrainOptions train;         // batch size, lr, schedule, pad id (epochs / seed are overridden)
  double label_smoothing = 0.0;
  SelectionConfig selection;  // T and the ablations
  SharedInit shared_init = SharedInit::Fresh;
  ImportanceOptions importance;
  uint64_t seed = 0;
  // Progress: phase ("sample", "train"), then as StepFn.
  std::function<void(const std::string& phase, int64_t step, int64_t total, double loss, double lr,
                     int64_t tokens)>
      progress;
};

struct LmPipelineResult {
  std::shared_ptr<AdapterSet> adapters;
  std::shared_ptr<ImportanceTracker> tracker;             // LoRA-drop: importance on the sample
  std::map<std::string, std::vector<double>> importance;  // g_i per target, by layer (LoRA-drop)
  std::map<std::string, std::vector<double>> normalised;  // y_i
  std::map<std::string, std::vector<bool>> selected;      // keeps its own adapter (LoRA-drop)
  std::vector<double> sample_loss, train_loss;            // per step
  int64_t sample_size = 0;
  int64_t lora_params = 0;       // adapters at every site (before any rebuild)
  int64_t trainable_params = 0;  // #Tr. Params of the final adapters
};

// Attaches adapters to `m` (its base frozen) and trains them in place; LoRA-drop: sample ->
// n epochs of LoRA -> importance over the sample's real tokens -> selection at T -> rebuild ->
// training on the full set. Evaluation is separate (lm_eval_loss, generate_continuations,
// score_generation) so that callers choose what to measure.
LmPipelineResult run_lm_pipeline(nn::LlamaForCausalLM& m, const LmData& train,
                                 const LmPipelineConfig& cfg);

}  // namespace ld::lora
