// Trainer: the loop, checkpoints (safetensors + JSON metadata) and logging.
#include "nn/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/nvtx.h"
#include "nn/safetensors.h"

namespace ld::nn {

namespace fs = std::filesystem;
using json = nlohmann::json;

const Tensor& Batch::operator[](const std::string& k) const {
  auto it = tensors.find(k);
  LD_CHECK(it != tensors.end(), "batch has no tensor '{}'", k);
  return it->second;
}

Trainer::Trainer(Module& model, DataSource data, std::function<Tensor(const Batch&)> loss_fn,
                 std::function<double()> eval_fn, TrainerOptions opt)
    : model_(model),
      data_(std::move(data)),
      loss_fn_(std::move(loss_fn)),
      eval_fn_(std::move(eval_fn)),
      o_(std::move(opt)),
      opt_(model.named_parameters(), o_.adamw) {
  LD_CHECK(!o_.out_dir.empty(), "Trainer: out_dir is required");
  LD_CHECK(o_.grad_accum >= 1, "Trainer: grad_accum must be >= 1");
  fs::create_directories(o_.out_dir);
}

std::string Trainer::last_checkpoint() const { return o_.out_dir + "/checkpoint_last.safetensors"; }
std::string Trainer::best_checkpoint() const { return o_.out_dir + "/checkpoint_best.safetensors"; }

void Trainer::save_checkpoint(const std::string& path) const {
  std::map<std::string, Tensor> t;
  for (auto& [n, p] : opt_.params()) t["param." + n] = p.detach();
  for (auto& [n, s] : opt_.state_tensors()) t["adamw." + n] = s;
  json meta = {{"step", step_}, {"epoch", epoch_}, {"index", index_}, {"adam_steps", opt_.steps()}};
  if (model_.generator()) meta["rng"] = {model_.generator()->seed(), model_.generator()->offset()};
  if (best_) meta["best"] = *best_;
  meta["best_step"] = best_step_;
  save_safetensors(path, t, {{"loradrop_trainer", meta.dump()}});
}

void Trainer::load_checkpoint(const std::string& path) {
  SafetensorsFile f(path);
  auto it = f.metadata().find("loradrop_trainer");
  LD_CHECK(it != f.metadata().end(), "{}: not a loradrop trainer checkpoint", path);
  json meta = json::parse(it->second);
  NoGradGuard ng;
  for (auto& [n, p] : opt_.params()) {
    LD_CHECK(f.contains("param." + n), "{}: checkpoint lacks parameter '{}'", path, n);
    Tensor src = f.get("param." + n);
    LD_CHECK(src.shape() == p.shape(), "{}: parameter '{}' has shape {}, the model expects {}",
             path, n, shape_str(src.shape()), shape_str(p.shape()));
    Tensor(p).copy_(src);
  }
  std::map<std::string, Tensor> st;
  for (auto& n : f.names())
    if (n.rfind("adamw.", 0) == 0) st[n.substr(6)] = f.get(n);
  opt_.load_state(st, meta["adam_steps"].get<std::map<std::string, int64_t>>());
  step_ = meta["step"];
  epoch_ = meta["epoch"];
  index_ = meta["index"];
  if (meta.contains("rng") && model_.generator())
    model_.generator()->set_state(meta["rng"][0], meta["rng"][1]);
  if (meta.contains("best")) best_ = meta["best"].get<double>();
  best_step_ = meta["best_step"];
}

void Trainer::log(const std::string& line) {
  std::ofstream f(o_.out_dir + "/log.jsonl", std::ios::app);
  f << line << "\n";
}

TrainResult Trainer::train() {
  if (fs::exists(last_checkpoint())) load_checkpoint(last_checkpoint());
  int64_t per_epoch = data_.batches_per_epoch(0);
  int64_t total = o_.max_steps > 0 ? o_.max_steps : o_.epochs * (per_epoch / o_.grad_accum);
  int64_t warmup = o_.warmup_steps >= 0 ? o_.warmup_steps
                                        : static_cast<int64_t>(std::ceil(o_.warmup_ratio * total));
  const bool tty = o_.progress && ::isatty(2);
  auto t0 = std::chrono::steady_clock::now();
  int64_t tokens = 0, start_step = step_;
  TrainResult res;
  auto evaluate_and_checkpoint = [&](bool do_eval) {
    if (do_eval && eval_fn_) {
      bool was = model_.is_training();
      model_.eval();
      double metric = eval_fn_();
      model_.train(was);
      bool better = !best_ || (o_.greater_is_better ? metric > *best_ : metric < *best_);
      log(json({{"step", step_}, {"eval_metric", metric}, {"best", better}}).dump());
      if (better) {
        best_ = metric;
        best_step_ = step_;
        save_checkpoint(best_checkpoint());
      }
    }
    save_checkpoint(last_checkpoint());
  };
  model_.train();
  while (step_ < total && epoch_ < o_.epochs + (o_.max_steps > 0 ? (1 << 30) : 0)) {
    per_epoch = data_.batches_per_epoch(epoch_);
    if (index_ + o_.grad_accum >
        per_epoch) {  // epoch done (a trailing partial accumulation is dropped)
      ++epoch_;
      index_ = 0;
      if (o_.eval_every == 0) evaluate_and_checkpoint(true);
      continue;
    }
    LD_NVTX_RANGE("train_step");
    opt_.zero_grad();
    opt_.set_lr(o_.adamw.lr * linear_warmup_factor(step_, warmup, total));
    double step_loss = 0;
    for (int64_t a = 0; a < o_.grad_accum; ++a) {
      Batch b = data_.get(epoch_, index_ + a);
      tokens += b.num_tokens;
      Tensor loss = loss_fn_(b);
      double l = loss.item();
      if (!std::isfinite(l)) {
        std::string last =
            fs::exists(last_checkpoint()) ? last_checkpoint() : std::string("(none yet)");
        log(json({{"step", step_}, {"error", "non-finite loss"}, {"loss", std::to_string(l)}})
                .dump());
        throw NonFiniteLossError(fmt::format(
            "training stopped: loss is {} at optimiser step {} (epoch {}, batch {}); the last good "
            "checkpoint is {}",
            l, step_, epoch_, index_ + a, last));
      }
      step_loss += l / o_.grad_accum;
      (o_.grad_accum == 1 ? loss : loss * (1.0 / o_.grad_accum)).backward();
    }
    double gnorm =
        o_.max_grad_norm > 0 ? clip_grad_norm_(opt_.parameters_for_clip(), o_.max_grad_norm) : 0.0;
    opt_.step();
    index_ += o_.grad_accum;
    ++step_;
    res.last_loss = step_loss;
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double tps = secs > 0 ? tokens / secs : 0;
    double eta = step_ > start_step ? secs / (step_ - start_step) * (total - step_) : 0;
    log(json({{"step", step_},
              {"epoch", epoch_},
              {"loss", step_loss},
              {"lr", opt_.lr()},
              {"grad_norm", gnorm},
              {"tokens_per_s", tps}})
            .dump());
    if (tty)
      std::fprintf(stderr, "\rstep %lld/%lld  loss %.4f  %.0f tok/s  ETA %.0fs   ",
                   static_cast<long long>(step_), static_cast<long long>(total), step_loss, tps,
                   eta);
    bool do_eval = o_.eval_every > 0 && step_ % o_.eval_every == 0;
    bool do_ckpt =
        do_eval || (o_.checkpoint_every > 0 && step_ % o_.checkpoint_every == 0) || step_ == total;
    if (do_ckpt) evaluate_and_checkpoint(do_eval || (step_ == total && o_.eval_every > 0));
    if (o_.stop_after_steps > 0 && step_ - start_step >= o_.stop_after_steps) break;
  }
  if (tty) std::fprintf(stderr, "\n");
  res.steps = step_;
  res.best_metric = best_;
  res.best_step = best_step_;
  return res;
}

}  // namespace ld::nn
