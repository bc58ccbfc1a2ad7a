// Training loop: epochs/steps, gradient accumulation, schedule + clipping + AdamW, evaluation every
// N steps with best-checkpoint selection, atomic checkpoints with exact resume, NaN/Inf detection,
// a terminal progress line and a JSON-lines log.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "core/tensor.h"
#include "nn/module.h"
#include "nn/optim.h"

namespace ld::nn {

// One batch: named tensors (input_ids, attention_mask, labels, ...) and its token count (for
// tokens/s). The trainer never looks inside; the loss callback does.
struct Batch {
  std::map<std::string, Tensor> tensors;
  int64_t num_tokens = 0;
  const Tensor& operator[](const std::string& k) const;
};

// Batches by (epoch, index): the data source owns shuffling (seeded by epoch), so a resumed run
// asks for exactly the batches the interrupted one would have seen.
struct DataSource {
  std::function<int64_t(int64_t epoch)> batches_per_epoch;
  std::function<Batch(int64_t epoch, int64_t index)> get;
};

struct TrainerOptions {
  int64_t epochs = 1;
  int64_t max_steps = -1;  // optimiser steps; -1: epochs * batches / grad_accum
  int64_t grad_accum = 1;  // micro-batches per optimiser step (losses averaged)
  AdamWOptions adamw;
  double warmup_ratio = 0.0;  // or warmup_steps
  int64_t warmup_steps = -1;
  double max_grad_norm = 1.0;  // <= 0: no clipping
  int64_t eval_every = 0;      // optimiser steps; 0: at the end of each epoch only
  bool greater_is_better = true;
  int64_t checkpoint_every = 0;   // optimiser steps; 0: only at evaluations
  std::string out_dir;            // checkpoints + log; required
  bool progress = true;           // progress line when stderr is a terminal
  int64_t stop_after_steps = -1;  // testing aid: return after this many steps (simulated kill)
};

// Thrown when a loss is NaN/Inf; the last good checkpoint (if any) is left untouched.
class NonFiniteLossError : public Error {
 public:
  using Error::Error;
};

struct TrainResult {
  int64_t steps = 0;
  double last_loss = 0;
  std::optional<double> best_metric;
  int64_t best_step = -1;
};

class Trainer {
 public:
  // loss_fn computes the (mean) loss of a batch with the model in train mode; eval_fn returns the
  // task metric (model is put in eval mode around it). The optimiser covers model's trainable
  // parameters at construction.
  Trainer(Module& model, DataSource data, std::function<Tensor(const Batch&)> loss_fn,
          std::function<double()> eval_fn, TrainerOptions opt);
  // Resumes from out_dir/checkpoint_last.safetensors when it exists.
  TrainResult train();
  AdamW& optimizer() { return opt_; }
  std::string last_checkpoint() const;
  std::string best_checkpoint() const;

 private:
  void save_checkpoint(const std::string& path) const;
  void load_checkpoint(const std::string& path);
  void log(const std::string& json_line);
  Module& model_;
  DataSource data_;
  std::function<Tensor(const Batch&)> loss_fn_;
  std::function<double()> eval_fn_;
  TrainerOptions o_;
  AdamW opt_;
  int64_t step_ = 0, epoch_ = 0, index_ = 0;  // next batch to read
  std::optional<double> best_;
  int64_t best_step_ = -1;
};

}  // namespace ld::nn
