// LoRA-drop pipeline and its training / evaluation / importance loops.
//
// Why not nn::Trainer: it builds its AdamW from model.named_parameters(), which lists a shared
// adapter tensor once per site, so a shared A/B would be stepped once per site; it also requires
// an out_dir for checkpoints. This loop uses AdapterSet::trainable_parameters() (each tensor once).
#include "lora/pipeline.h"

#include <algorithm>
#include <cmath>

#include "core/hash.h"
#include "data/sampling.h"
#include "nn/optim.h"

namespace ld::lora {

ClassificationData ClassificationData::subset(const std::vector<size_t>& idx) const {
  ClassificationData out;
  for (size_t i : idx) {
    LD_CHECK(i < ids.size(), "subset: index {} out of range ({} examples)", i, ids.size());
    out.ids.push_back(ids[i]);
    if (!type_ids.empty()) out.type_ids.push_back(type_ids[i]);
    if (!labels.empty()) out.labels.push_back(labels[i]);
    if (!targets.empty()) out.targets.push_back(targets[i]);
  }
  return out;
}

Batch make_batch(const ClassificationData& d, const std::vector<size_t>& idx, int64_t pad_id) {
  LD_CHECK(!idx.empty(), "make_batch: empty batch");
  LD_CHECK(d.labels.size() == d.ids.size() || d.targets.size() == d.ids.size(),
           "make_batch: {} examples but {} labels / {} targets", d.ids.size(), d.labels.size(),
           d.targets.size());
  const bool typed = !d.type_ids.empty();
  LD_CHECK(!typed || d.type_ids.size() == d.ids.size(),
           "make_batch: {} examples but {} type_id lists", d.ids.size(), d.type_ids.size());
  size_t T = 0;
  for (size_t i : idx) {
    LD_CHECK(i < d.ids.size(), "make_batch: index {} out of range ({} examples)", i, d.ids.size());
    LD_CHECK(!d.ids[i].empty(), "make_batch: example {} has no tokens", i);
    LD_CHECK(!typed || d.type_ids[i].size() == d.ids[i].size(),
             "make_batch: example {} has {} tokens but {} type ids", i, d.ids[i].size(),
             d.type_ids[i].size());
    T = std::max(T, d.ids[i].size());
  }
  const int64_t B = static_cast<int64_t>(idx.size());
  std::vector<int64_t> ids(B * T, pad_id), mask(B * T, 0), types(typed ? B * T : 0, 0), labels;
  std::vector<float> targets;
  for (int64_t b = 0; b < B; ++b) {
    const auto& e = d.ids[idx[b]];
    for (size_t t = 0; t < e.size(); ++t) {
      ids[b * T + t] = e[t];
      mask[b * T + t] = 1;
      if (typed) types[b * T + t] = d.type_ids[idx[b]][t];
    }
    if (!d.regression())
      labels.push_back(d.labels[idx[b]]);
    else
      targets.push_back(static_cast<float>(d.targets[idx[b]]));
  }
  Batch out;
  const int64_t Ti = static_cast<int64_t>(T);
  out.ids = Tensor::from_vector(ids, {B, Ti});
  out.mask = Tensor::from_vector(mask, {B, Ti});
  if (typed) out.type_ids = Tensor::from_vector(types, {B, Ti});
  out.labels =
      d.regression() ? Tensor::from_vector(targets, {B}) : Tensor::from_vector(labels, {B});
  return out;
}

ForwardFn encoder_forward(nn::EncoderForSequenceClassification& m) {
  return [&m](const Batch& b) { return m.forward(b.ids, b.mask, b.type_ids, b.labels); };
}

std::vector<std::vector<size_t>> batches_of(size_t n, int64_t bs,
                                            const std::vector<size_t>& order) {
  LD_CHECK(bs > 0, "batch size must be positive, got {}", bs);
  std::vector<std::vector<size_t>> out;
  for (size_t i = 0; i < n; i += static_cast<size_t>(bs))
    out.emplace_back(order.begin() + i, order.begin() + std::min(n, i + static_cast<size_t>(bs)));
  return out;
}

namespace {

std::vector<size_t> iota_n(size_t n) {
  std::vector<size_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

}  // namespace

std::vector<double> train_steps(nn::Module& model,
                                const std::vector<std::pair<std::string, Tensor>>& named,
                                AdapterSet* set, size_t n, const TrainOptions& opt,
                                const BatchLossFn& batch_loss, bool collect_last_epoch,
                                const StepFn& on_step) {
  LD_CHECK(n > 0, "train: no training examples");
  LD_CHECK(!collect_last_epoch || set, "train: importance collection needs an adapter set");
  nn::AdamWOptions ao;
  ao.lr = opt.lr;
  ao.weight_decay = opt.weight_decay;
  nn::AdamW adam(named, ao);
  std::vector<Tensor> params;
  for (auto& [nm, t] : adam.params()) params.push_back(t);
  const int64_t per_epoch = (static_cast<int64_t>(n) + opt.batch_size - 1) / opt.batch_size;
  const int64_t total = per_epoch * opt.epochs;
  const int64_t warmup =
      opt.warmup_steps >= 0
          ? opt.warmup_steps
          : static_cast<int64_t>(std::ceil(opt.warmup_ratio * static_cast<double>(total)));
  std::vector<double> losses;
  model.train();
  int64_t step = 0;
  for (int64_t ep = 0; ep < opt.epochs; ++ep) {
    const bool collect = collect_last_epoch && ep == opt.epochs - 1;
    if (collect) set->set_collecting(true);
    auto order = data::shuffled_indices(n, opt.seed * 1000003ULL + static_cast<uint64_t>(ep));
    for (const auto& idx : batches_of(n, opt.batch_size, order)) {
      const double lr = opt.lr * nn::linear_warmup_factor(step, warmup, total);
      adam.set_lr(lr);
      StepLoss sl = batch_loss(idx, collect);
      LD_CHECK(sl.loss.defined(), "train: the forward function returned no loss");
      const double lv = sl.loss.item();
      LD_CHECK(std::isfinite(lv), "train: non-finite loss {} at step {}; lower the learning rate",
               lv, step);
      losses.push_back(lv);
      sl.loss.backward();
      if (collect) set->collector().flush();
      if (opt.max_grad_norm > 0) nn::clip_grad_norm_(params, opt.max_grad_norm);
      adam.step();
      adam.zero_grad();
      if (set && set->config().method == Method::Sparse) set->apply_masks_();
      ++step;
      if (on_step) on_step(step, total, lv, lr, sl.tokens);
    }
    if (collect) set->set_collecting(false);
  }
  return losses;
}

std::vector<double> train(AdapterSet& set, const ForwardFn& fwd, const ClassificationData& d,
                          const TrainOptions& opt, bool collect_last_epoch) {
  LD_CHECK(d.size() > 0, "train: no training examples");
  return train_steps(
      set.root(), set.trainable_parameters(), &set, d.size(), opt,
      [&](const std::vector<size_t>& idx, bool collect) {
        Batch b = make_batch(d, idx, opt.pad_id);
        if (collect) set.collector().set_token_mask(b.mask);
        int64_t tokens = 0;
        for (size_t i : idx) tokens += static_cast<int64_t>(d.ids[i].size());
        return StepLoss{fwd(b).loss, tokens};
      },
      collect_last_epoch);
}

std::map<std::string, double> evaluate(nn::Module& model, const ForwardFn& fwd,
                                       const ClassificationData& d, int64_t batch_size,
                                       int64_t pad_id) {
  LD_CHECK(d.size() > 0, "evaluate: no examples");
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard ng;
  double loss_sum = 0, correct = 0, sq = 0;
  for (const auto& idx : batches_of(d.size(), batch_size, iota_n(d.size()))) {
    Batch b = make_batch(d, idx, pad_id);
    nn::SeqClsOutput out = fwd(b);
    loss_sum += out.loss.item() * static_cast<double>(idx.size());
    if (!d.regression()) {
      auto pred = argmax(out.logits, 1).to_vector<int64_t>();
      for (size_t i = 0; i < idx.size(); ++i) correct += pred[i] == d.labels[idx[i]] ? 1 : 0;
    } else {
      auto p = out.logits.reshape({-1}).to(kCPU, DType::f64).to_vector<double>();
      for (size_t i = 0; i < idx.size(); ++i) sq += std::pow(p[i] - d.targets[idx[i]], 2);
    }
  }
  model.train(was_training);
  const double n = static_cast<double>(d.size());
  std::map<std::string, double> m{{"eval_loss", loss_sum / n}};
  if (d.regression())
    m["mse"] = sq / n;
  else
    m["accuracy"] = correct / n;
  return m;
}

void importance_pass(AdapterSet& set, const ForwardFn& fwd, const ClassificationData& d,
                     int64_t batch_size, int64_t pad_id) {
  nn::Module& model = set.root();
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard ng;
  set.set_collecting(true);
  for (const auto& idx : batches_of(d.size(), batch_size, iota_n(d.size()))) {
    Batch b = make_batch(d, idx, pad_id);
    set.collector().set_token_mask(b.mask);
    fwd(b);
    set.collector().flush();
  }
  set.set_collecting(false);
  model.train(was_training);
}

std::vector<bool> select_target_layers(const std::vector<double>& g, const SelectionConfig& cfg,
                                       const std::string& target) {
  // The random ablation draws each target's layers independently (one seed for all gave query
  // and value the same layers).
  SelectionConfig c = cfg;
  c.seed = target_seed(cfg.seed, target);
  return select_layers(g, c);
}

std::map<std::string, std::vector<bool>> select_per_target(const ImportanceTracker& tracker,
                                                           const SelectionConfig& cfg) {
  std::map<std::string, std::vector<bool>> keep;
  for (const std::string& t : tracker.targets())
    keep[t] = select_target_layers(tracker.means(t), cfg, t);
  return keep;
}

uint64_t target_seed(uint64_t seed, const std::string& target) {
  return seed ^ fnv1a(target.data(), target.size());
}

SelectionOutcome select_and_rebuild(AdapterSet& set, const ImportanceTracker& tracker,
                                    const SelectionConfig& cfg, SharedInit init, Generator& gen) {
  SelectionOutcome out;
  for (const std::string& t : tracker.targets()) {
    out.importance[t] = tracker.means(t);
    out.normalised[t] = tracker.normalised(t);
  }
  out.selected = select_per_target(tracker, cfg);
  out.params_before = set.num_adapter_parameters();
  set.rebuild(out.selected, cfg.share_rest, init, gen);
  out.params_after = set.num_adapter_parameters();
  return out;
}

PipelineResult run_loradrop(nn::Module& model, const ForwardFn& fwd,
                            const ClassificationData& train_data,
                            const ClassificationData& eval_data, const PipelineConfig& cfg) {
  LD_CHECK(cfg.adapter.method == Method::LoRA, "LoRA-drop runs on LoRA adapters, not {}",
           method_name(cfg.adapter.method));
  LD_CHECK(cfg.sample_ratio > 0 && cfg.sample_ratio <= 1,
           "sample ratio alpha must be in (0, 1], got {}", cfg.sample_ratio);
  LD_CHECK(train_data.size() > 0, "LoRA-drop: empty training set");
  if (!model.generator()) model.set_generator(std::make_shared<Generator>(cfg.seed));
  PipelineResult res;
  res.tracker = std::make_shared<ImportanceTracker>(cfg.importance);
  Generator gen(cfg.seed);
  res.adapters = std::make_shared<AdapterSet>(model, cfg.adapter, gen);
  AdapterSet& set = *res.adapters;
  res.lora_params = set.num_adapter_parameters();
  set.attach_tracker(*res.tracker);

  // 1. stratified sample of ratio alpha
  std::vector<size_t> idx =
      train_data.regression()
          ? data::stratified_sample_regression(train_data.targets, cfg.sample_ratio, cfg.seed)
          : data::stratified_sample(train_data.labels, cfg.sample_ratio, cfg.seed);
  ClassificationData sample = train_data.subset(idx);
  res.sample_size = static_cast<int64_t>(sample.size());

  // 2. short LoRA training (n epochs), 3. importance
  TrainOptions to = cfg.train;
  to.epochs = cfg.sample_epochs;
  to.seed = cfg.seed;
  const bool during = cfg.importance_source == ImportanceSource::DuringTraining;
  LD_CHECK(!during || !cfg.importance_on_full_train,
           "importance collected during training uses the sample; a full-train-set importance "
           "needs the separate pass");
  res.sample_loss = train(set, fwd, sample, to, during);
  if (!during)
    importance_pass(set, fwd, cfg.importance_on_full_train ? train_data : sample, to.batch_size,
                    to.pad_id);

  // 4. selection per target, 5. rebuild
  SelectionOutcome sel = select_and_rebuild(set, *res.tracker, cfg.selection, cfg.shared_init, gen);
  res.importance = sel.importance;
  res.normalised = sel.normalised;
  res.selected = sel.selected;
  res.loradrop_params = sel.params_after;

  // 6. fine-tune on the full training set, 7. evaluate
  to.epochs = cfg.epochs;
  to.seed = cfg.seed + 1;
  res.train_loss = train(set, fwd, train_data, to, false);
  res.metrics = evaluate(model, fwd, eval_data, to.batch_size, to.pad_id);
  return res;
}

}  // namespace ld::lora
