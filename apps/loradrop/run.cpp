// One training run of any method (frozen head, full fine-tuning, LoRA, VeRA, Tied-LoRA, Sparse
// Adapter, LoRA-drop and its ablations) with a progress line, a JSON-lines log and eval history.
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "apps/loradrop/app.h"
#include "core/storage.h"
#include "data/sampling.h"
#include "lora/selection.h"
#include "lora/snip.h"
#include "nn/optim.h"

namespace fs = std::filesystem;

namespace ld::app {
namespace {

struct LoopOptions {
  std::string phase;
  int64_t epochs = 1, batch_size = 16, eval_every = 0;
  double lr = 5e-4, head_lr = -1, weight_decay = 0.1, warmup_ratio = 0.06, grad_clip = 1.0;
  uint64_t seed = 0;
};

using NamedParams = std::vector<std::pair<std::string, Tensor>>;

NamedParams trainable_of(const nn::Module& m) {
  NamedParams out;
  for (auto& [n, p] : m.named_parameters())
    if (p.requires_grad()) out.emplace_back(n, p);
  return out;
}

// AdamW over `params` (the head, "classifier.*", optionally at its own learning rate), linear
// warmup and decay, clipping, Sparse masks re-applied after each step. Returns the step losses.
// With `collect_set`, ||ΔW x||² is collected into its tracker during the last epoch.
std::vector<double> train_loop(nn::Module& model, const NamedParams& params,
                               lora::AdapterSet* sparse_set, const lora::ForwardFn& fwd,
                               const lora::ClassificationData& d, int64_t pad_id,
                               const LoopOptions& o, const std::function<double()>& eval_fn,
                               std::vector<std::array<double, 2>>* history, Logger& log,
                               lora::AdapterSet* collect_set = nullptr) {
  LD_CHECK(d.size() > 0, "{}: no training examples", o.phase);
  NamedParams body, head;
  for (const auto& np : params)
    (o.head_lr > 0 && nn::name_matches("classifier.*", np.first) ? head : body).push_back(np);
  nn::AdamWOptions ao;
  ao.lr = o.lr;
  ao.weight_decay = o.weight_decay;
  nn::AdamW opt_body(body, ao);
  ao.lr = o.head_lr;
  std::optional<nn::AdamW> opt_head;
  if (!head.empty()) opt_head.emplace(head, ao);
  std::vector<Tensor> all;
  for (const auto& np : params) all.push_back(np.second);
  const int64_t per_epoch = (static_cast<int64_t>(d.size()) + o.batch_size - 1) / o.batch_size;
  const int64_t total = per_epoch * o.epochs;
  const auto warmup = static_cast<int64_t>(std::ceil(o.warmup_ratio * static_cast<double>(total)));
  std::vector<double> losses;
  model.train();
  int64_t step = 0;
  for (int64_t ep = 0; ep < o.epochs; ++ep) {
    const bool collect = collect_set && ep == o.epochs - 1;
    if (collect) collect_set->set_collecting(true);
    auto order = data::shuffled_indices(d.size(), o.seed * 1000003ULL + static_cast<uint64_t>(ep));
    for (size_t i = 0; i < d.size(); i += static_cast<size_t>(o.batch_size)) {
      std::vector<size_t> idx(
          order.begin() + i,
          order.begin() + std::min(d.size(), i + static_cast<size_t>(o.batch_size)));
      lora::Batch b = lora::make_batch(d, idx, pad_id);
      if (collect) collect_set->collector().set_token_mask(b.mask);
      const double f = nn::linear_warmup_factor(step, warmup, total);
      opt_body.set_lr(o.lr * f);
      if (opt_head) opt_head->set_lr(o.head_lr * f);
      Tensor loss = fwd(b).loss;
      const double lv = loss.item();
      if (!std::isfinite(lv))
        throw Error(
            fmt::format("{}: loss is {} at step {}; lower the learning rate", o.phase, lv, step));
      losses.push_back(lv);
      loss.backward();
      if (collect) collect_set->collector().flush();
      if (o.grad_clip > 0) nn::clip_grad_norm_(all, o.grad_clip);
      opt_body.step();
      opt_body.zero_grad();
      if (opt_head) {
        opt_head->step();
        opt_head->zero_grad();
      }
      if (sparse_set) sparse_set->apply_masks_();
      ++step;
      int64_t tokens = 0;
      for (size_t j : idx) tokens += static_cast<int64_t>(d.ids[j].size());
      log.step(o.phase, step, total, lv, opt_body.lr(), tokens);
      if (eval_fn && o.eval_every > 0 && step % o.eval_every == 0 && step < total) {
        const double m = eval_fn();
        if (history) history->push_back({static_cast<double>(step), m});
        log.event(nlohmann::json({{"phase", o.phase}, {"step", step}, {"eval_metric", m}}).dump());
      }
    }
    if (collect) collect_set->set_collecting(false);
  }
  if (eval_fn) {
    const double m = eval_fn();
    if (history) history->push_back({static_cast<double>(step), m});
    log.event(nlohmann::json({{"phase", o.phase}, {"step", step}, {"eval_metric", m}}).dump());
  }
  log.end_phase();
  return losses;
}

std::map<std::string, repro::LayerHistograms> histograms_of(lora::ImportanceTracker& t) {
  t.finalize_histograms();  // auto range: edges from the observed values
  std::map<std::string, repro::LayerHistograms> out;
  for (const std::string& target : t.targets()) {
    repro::LayerHistograms h;
    auto sites = t.sites_of(target);
    h.layers = static_cast<int64_t>(sites.size());
    h.bin_edges = sites.front()->hist.edges;
    for (const lora::SiteStats* s : sites) {
      h.counts.insert(h.counts.end(), s->hist.counts.begin(), s->hist.counts.end());
      h.underflow.push_back(s->hist.underflow);
      h.overflow.push_back(s->hist.overflow);
    }
    out[target] = std::move(h);
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

lora::ImportanceOptions importance_options(const RunOptions& o) {
  lora::ImportanceOptions io;
  io.bins = o.hist_bins;
  io.auto_range = !o.hist_range;
  if (o.hist_range) {
    io.hist_lo = o.hist_range->first;
    io.hist_hi = o.hist_range->second;
  }
  return io;
}

// Times the main training phase and records its peak tensor memory.
template <class F>
std::vector<double> timed_main_phase(RunOutput& r, Device device, F&& train) {
  reset_storage_peak();
  const auto t = std::chrono::steady_clock::now();
  std::vector<double> losses = train();
  r.finetune_seconds = seconds_since(t);
  r.finetune_steps = static_cast<int64_t>(losses.size());
  r.peak_memory_bytes = static_cast<double>(storage_memory(!device.is_cpu()).peak_bytes);
  return losses;
}

}  // namespace

bool is_known_method(const std::string& m) {
  static const std::set<std::string> k = {"frozen",
                                          "full",
                                          "lora",
                                          "loradrop",
                                          "vera",
                                          "tied",
                                          "sparse",
                                          "loradrop_noshare",
                                          "loradrop_inverted",
                                          "loradrop_random",
                                          "loradrop_lastk",
                                          "loradrop_topk"};
  return k.count(m) > 0 || m.rfind("loradrop_p", 0) == 0;
}

RunOutput run_method(nn::EncoderForSequenceClassification& model, Device device,
                     const TaskData& task, const RunOptions& o, Logger& log) {
  if (!is_known_method(o.method)) throw UsageError(fmt::format("unknown method '{}'", o.method));
  const auto t0 = std::chrono::steady_clock::now();
  RunOutput r;
  r.method = o.method;
  lora::ForwardFn fwd = device_forward(model, device);
  auto eval_fn = [&] { return evaluate_task(model, fwd, task, o.batch_size).metric; };
  LoopOptions lo;
  lo.epochs = o.epochs;
  lo.batch_size = o.batch_size;
  lo.eval_every = o.eval_every;
  lo.lr = o.lr;
  lo.head_lr = o.head_lr;
  lo.weight_decay = o.weight_decay;
  lo.warmup_ratio = o.warmup_ratio;
  lo.grad_clip = o.grad_clip;
  lo.seed = o.seed;
  lo.phase = o.method + " " + task.name;

  const bool is_loradrop = o.method.rfind("loradrop", 0) == 0;
  lora::AdapterConfig ac;
  ac.targets = o.targets.empty() ? lora::default_targets(model.config().model_type) : o.targets;
  ac.r = o.r;
  ac.alpha = o.lora_alpha;
  ac.dropout = o.dropout;
  ac.vera_prng_key = o.seed;
  Generator gen(o.seed * 31 + 7);

  if (o.method == "frozen" || o.method == "full") {
    if (o.init_from)
      throw UsageError(
          fmt::format("method {} has no adapter to start from '{}'", o.method, o.init_from->dir));
    if (o.method == "frozen") {
      model.freeze_all();
      model.unfreeze("classifier.*");
    }
    r.trainable_params = lora::count_trainable(model);
    r.train_loss = timed_main_phase(r, device, [&] {
      return train_loop(model, trainable_of(model), nullptr, fwd, task.train, task.pad_id, lo,
                        eval_fn, &r.eval_history, log);
    });
  } else if (!is_loradrop) {
    ac.method = lora::parse_method(o.method);
    if (ac.method == lora::Method::VeRA) ac.r = o.vera_r;
    if (ac.method == lora::Method::TiedLoRA) ac.r = o.tied_r;
    r.adapters = std::make_shared<lora::AdapterSet>(model, ac, gen);
    // A saved adapter replaces the fresh one before SNIP, which then scores it.
    if (o.init_from) r.init = lora::init_adapters_from(*r.adapters, *o.init_from);
    if (ac.method == lora::Method::Sparse) {
      lora::SnipOptions so;
      so.sparsity = o.sparsity;
      so.probe_seed = o.seed + 1234;
      const int64_t nb = std::min<int64_t>(
          4, (static_cast<int64_t>(task.train.size()) + o.batch_size - 1) / o.batch_size);
      auto order = data::shuffled_indices(task.train.size(), o.seed + 99);
      lora::snip_prune(
          *r.adapters,
          [&](int64_t i) {
            std::vector<size_t> idx;
            for (size_t j = i * o.batch_size;
                 j < std::min(task.train.size(), static_cast<size_t>((i + 1) * o.batch_size)); ++j)
              idx.push_back(order[j]);
            return fwd(lora::make_batch(task.train, idx, task.pad_id)).loss;
          },
          nb, so);
    }
    r.trainable_params = r.adapters->num_adapter_parameters();
    r.train_loss = timed_main_phase(r, device, [&] {
      return train_loop(model, r.adapters->trainable_parameters(),
                        ac.method == lora::Method::Sparse ? r.adapters.get() : nullptr, fwd,
                        task.train, task.pad_id, lo, eval_fn, &r.eval_history, log);
    });
  } else {
    // LoRA-drop: sample -> short LoRA training -> importance -> selection -> rebuild -> fine-tune.
    ac.method = lora::Method::LoRA;
    r.adapters = std::make_shared<lora::AdapterSet>(model, ac, gen);
    // init_from: every site starts from the saved run's adapter at that site (a site that run
    // shared gets a copy of its shared adapter; a site it dropped keeps the fresh init).
    if (o.init_from) r.init = lora::init_adapters_from(*r.adapters, *o.init_from);
    r.lora_params = r.adapters->num_adapter_parameters();
    auto tracker = std::make_shared<lora::ImportanceTracker>(importance_options(o));
    r.adapters->attach_tracker(*tracker);
    const std::vector<size_t> idx =
        task.regression
            ? data::stratified_sample_regression(task.train.targets, o.sample_proportion, o.seed)
            : data::stratified_sample(task.train.labels, o.sample_proportion, o.seed);
    lora::ClassificationData sample = task.train.subset(idx);
    r.sample_size = static_cast<int64_t>(sample.size());
    LoopOptions so = lo;
    so.epochs = o.sample_epochs;
    so.eval_every = 0;
    so.phase = o.method + " " + task.name + " (sample)";
    const auto ts = std::chrono::steady_clock::now();
    r.sample_loss = train_loop(model, r.adapters->trainable_parameters(), nullptr, fwd, sample,
                               task.pad_id, so, nullptr, nullptr, log,
                               o.importance_during_training ? r.adapters.get() : nullptr);
    r.sample_seconds = seconds_since(ts);
    if (!o.importance_during_training) {
      const auto ti = std::chrono::steady_clock::now();
      lora::importance_pass(*r.adapters, fwd, sample, o.batch_size, task.pad_id);
      r.importance_seconds = seconds_since(ti);
    }
    lora::SelectionConfig sc;
    sc.threshold = o.threshold;
    sc.k = o.k;
    sc.seed = o.seed;
    if (o.method == "loradrop_noshare")
      sc.share_rest = false;
    else if (o.method == "loradrop_inverted")
      sc.mode = lora::SelectMode::Inverted;
    else if (o.method == "loradrop_random")
      sc.mode = lora::SelectMode::RandomK;
    else if (o.method == "loradrop_lastk")
      sc.mode = lora::SelectMode::LastK;
    else if (o.method == "loradrop_topk")
      sc.mode = lora::SelectMode::TopK;
    for (const std::string& t : tracker->targets()) r.importance[t] = tracker->means(t);
    r.selected = lora::select_per_target(*tracker, sc);
    if (o.importance_only) {
      // No fine-tune: there is no metric to report.
      r.eval.metric = std::numeric_limits<double>::quiet_NaN();
      r.eval.eval_loss = std::numeric_limits<double>::quiet_NaN();
      r.seconds = seconds_since(t0);
      return r;
    }
    r.adapters->rebuild(r.selected, sc.share_rest, lora::parse_shared_init(o.shared_init), gen);
    // Retained sites keep their own adapter (started from the saved run's, then trained on the
    // sample); a shared adapter starts from the saved run's shared adapter of the same target
    // when that run shared too, else as shared_init says.
    if (o.init_from) r.init_shared = lora::init_shared_from(*r.adapters, *o.init_from);
    r.trainable_params = r.adapters->num_adapter_parameters();
    lo.seed = o.seed + 1;
    lo.phase = o.method + " " + task.name + " (fine-tune)";
    r.train_loss = timed_main_phase(r, device, [&] {
      return train_loop(model, r.adapters->trainable_parameters(), nullptr, fwd, task.train,
                        task.pad_id, lo, eval_fn, &r.eval_history, log);
    });
  }
  r.eval = evaluate_task(model, fwd, task, o.batch_size);
  // ||ΔW x||² after fine-tuning on the eval set: the importance of methods without a selection
  // step, and the histograms.
  if (r.adapters && (o.histograms || !is_loradrop)) {
    lora::ImportanceTracker after(importance_options(o));
    r.adapters->attach_tracker(after);
    lora::importance_pass(*r.adapters, fwd, task.eval, o.batch_size, task.pad_id);
    if (!is_loradrop)
      for (const std::string& t : after.targets()) r.importance[t] = after.means(t);
    if (o.histograms) r.hist = histograms_of(after);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  log.event(nlohmann::json({{"event", "run_done"},
                            {"method", o.method},
                            {"task", task.name},
                            {"seed", o.seed},
                            {"metric", task.metric_name},
                            {"value", r.eval.metric},
                            {"trainable_params", r.trainable_params},
                            {"seconds", r.seconds}})
                .dump());
  return r;
}

repro::RunRecord to_record(const RunOutput& r, const repro::RunKey& key, const TaskData& task) {
  repro::RunRecord rec;
  rec.key = key;
  rec.metric_name = task.metric_name;
  rec.metric = r.eval.metric;
  rec.trainable_params = r.trainable_params;
  rec.train_loss = r.train_loss;
  rec.eval_history = r.eval_history;
  rec.importance = r.importance;
  rec.selected = r.selected;
  rec.hist = r.hist;
  rec.params["seconds"] = r.seconds;
  rec.params["eval_loss"] = r.eval.eval_loss;
  if (r.finetune_steps > 0) {
    rec.params["finetune_seconds"] = r.finetune_seconds;
    rec.params["finetune_steps"] = static_cast<double>(r.finetune_steps);
    rec.params["seconds_per_step"] = r.finetune_seconds / static_cast<double>(r.finetune_steps);
    rec.params["peak_memory_bytes"] = r.peak_memory_bytes;
  }
  if (r.sample_seconds > 0) rec.params["sample_seconds"] = r.sample_seconds;
  if (r.importance_seconds > 0) rec.params["importance_seconds"] = r.importance_seconds;
  if (r.lora_params > 0) {
    rec.params["lora_params"] = static_cast<double>(r.lora_params);
    rec.params["sample_size"] = static_cast<double>(r.sample_size);
  }
  return rec;
}

void print_table(const std::string& title, const std::vector<RunOutput>& runs,
                 const TaskData& task) {
  std::printf("\n%s\n", title.c_str());
  std::printf("%-20s %10s %12s %14s  %s\n", "method", task.metric_name.c_str(), "eval loss",
              "#Tr. params", "layers with own adapter (by target)");
  for (const RunOutput& r : runs) {
    std::string kept;
    for (const auto& [t, sel] : r.selected) {
      int64_t n = 0;
      for (bool b : sel) n += b;
      kept += fmt::format("{}{}: {}/{} ", kept.empty() ? "" : " ", t, n, sel.size());
      std::string which;
      for (size_t i = 0; i < sel.size(); ++i)
        if (sel[i]) which += fmt::format("{}{}", which.empty() ? "" : ",", i);
      kept += "[" + which + "]";
    }
    if (kept.empty()) kept = r.adapters ? "all" : (r.method == "full" ? "(all weights)" : "-");
    std::printf("%-20s %10.4f %12.4f %14lld  %s\n", r.method.c_str(), r.eval.metric,
                r.eval.eval_loss, static_cast<long long>(r.trainable_params), kept.c_str());
  }
  std::fflush(stdout);
}

std::string source_dir() {
  if (const char* e = std::getenv("LD_SOURCE_DIR")) return e;
#ifdef LD_SOURCE_DIR
  return LD_SOURCE_DIR;
#else
  return ".";
#endif
}

int run_plot(const std::string& results, const std::string& out_dir) {
  const std::string script = source_dir() + "/tools/plot.py";
  const std::string how = fmt::format("python3 {} {} --out {}", script, results, out_dir);
  if (!fs::exists(script)) {
    std::fprintf(stderr,
                 "loradrop: tools/plot.py not found (set LD_SOURCE_DIR); plot with:\n  %s\n",
                 how.c_str());
    return 77;
  }
  if (std::system("python3 -c 'import h5py, matplotlib' >/dev/null 2>&1") != 0) {
    std::fprintf(stderr,
                 "loradrop: figures skipped: python3 with h5py and matplotlib is needed "
                 "(scripts/setup installs them); then run:\n  %s\n",
                 how.c_str());
    return 77;
  }
  const int st = std::system((how + " >/dev/null").c_str());
  const int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
  if (rc != 0) std::fprintf(stderr, "loradrop: plot tool failed (exit %d): %s\n", rc, how.c_str());
  return rc;
}

}  // namespace ld::app
