// `loradrop repro`: runs the experiments of a paper_repro preset (smoke / cpu-real / paper) into
// one HDF5 results file per experiment, resuming what an interrupted run left, then plots it.
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "apps/loradrop/app.h"
#include "core/threads.h"
#include "data/tasks.h"
#include "paper_repro/presets.h"

namespace fs = std::filesystem;

namespace ld::app {
namespace {

// The paper's tables and figures and the experiment that regenerates each. The paper's own
// numbering could not be checked against its text here (see tools/paper_numbers.json), so the
// mapping is by content and marked as assumed. Tables 5-7 and Figures 9-11 are mapped to the
// analyses papers of this kind hold (threshold, efficiency, appendix hyperparameters, importance
// source); both their numbers and their content are assumptions.
struct PaperItem {
  const char* item;
  const char* experiment;  // "" = not mapped
  const char* what;
};
const std::vector<PaperItem>& paper_items() {
  static const std::vector<PaperItem> v = {
      {"table1", "main_glue", "GLUE results of every method (assumed numbering)"},
      {"table2", "nlg", "NLG results, Llama2-7b (assumed numbering)"},
      {"table3", "ablation", "LoRA-drop ablations (assumed numbering)"},
      {"table4", "sample_proportion", "metric per sample proportion (assumed numbering)"},
      {"table5", "threshold_sweep",
       "metric and retained-parameter share per threshold T (assumed numbering and content)"},
      {"table6", "efficiency",
       "training time per step, peak memory, #Tr. params per method (assumed numbering and "
       "content)"},
      {"table7", "hyperparameters",
       "hyperparameters of the appendix, from the preset itself (assumed numbering and content)"},
      {"figure2", "histograms", "per-layer ||dW x||^2 distribution (assumed numbering)"},
      {"figure4", "histograms", "per-layer histograms, query (assumed)"},
      {"figure5", "histograms", "per-layer histograms, value (assumed)"},
      {"figure6", "histograms", "LoRA vs LoRA-drop overlays (assumed)"},
      {"figure7", "main_glue", "importance per layer per dataset (assumed)"},
      {"figure8", "sample_proportion", "importance under ten sample proportions (assumed)"},
      {"figure9", "threshold_sweep",
       "metric and retained share vs threshold T (assumed numbering and content)"},
      {"figure10", "efficiency",
       "time per step, peak memory and #Tr. params bars (assumed numbering and content)"},
      {"figure11", "importance_source",
       "importance during training vs a separate pass, per layer (assumed numbering and "
       "content)"},
  };
  return v;
}

std::string preset_path(const std::string& p) {
  if (p.ends_with(".toml")) return p;
  return source_dir() + "/paper_repro/presets/" + p + ".toml";
}

// Settings for one run from the preset's resolved hyperparameters.
RunOptions options_of(const repro::Preset& pr, const repro::ExperimentPreset& e,
                      const repro::ModelPreset& mp, const repro::Hyper& h,
                      const std::string& method, uint64_t seed) {
  RunOptions o;
  o.method = method;
  o.seed = seed;
  o.targets = mp.targets;
  if (h.lr) o.lr = *h.lr;
  if (h.warmup_ratio) o.warmup_ratio = *h.warmup_ratio;
  if (h.weight_decay) o.weight_decay = *h.weight_decay;
  if (h.grad_clip) o.grad_clip = *h.grad_clip;
  if (h.lora_alpha) o.lora_alpha = *h.lora_alpha;
  if (h.dropout) o.dropout = *h.dropout;
  if (h.epochs) o.epochs = *h.epochs;
  if (h.batch_size) o.batch_size = *h.batch_size;
  if (h.lora_r) o.r = *h.lora_r;
  if (h.eval_every) o.eval_every = *h.eval_every;
  if (h.schedule && *h.schedule != "linear")
    throw UsageError(fmt::format("preset {}: schedule '{}' is not implemented (linear only)",
                                 pr.name, *h.schedule));
  if (h.optimizer && *h.optimizer != "adamw")
    throw UsageError(fmt::format("preset {}: optimizer '{}' is not implemented (adamw only)",
                                 pr.name, *h.optimizer));
  if ((h.adam_beta1 && *h.adam_beta1 != 0.9) || (h.adam_beta2 && *h.adam_beta2 != 0.999) ||
      (h.adam_eps && *h.adam_eps != 1e-8))
    throw UsageError(fmt::format("preset {}: only AdamW(0.9, 0.999, 1e-8) is wired here", pr.name));
  if (h.max_steps)
    throw UsageError(fmt::format("preset {}: max_steps is not implemented", pr.name));
  o.sample_proportion = pr.loradrop.sample_proportion;
  o.sample_epochs = pr.loradrop.sample_epochs;
  o.threshold = pr.loradrop.threshold;
  o.sparsity = pr.baselines.sparse_adapter_sparsity;
  o.vera_r = pr.baselines.vera_r;
  o.tied_r = pr.baselines.tied_lora_r;
  o.histograms = e.histograms;
  o.hist_bins = e.hist_bins;
  o.hist_range = e.hist_range;
  return o;
}

repro::RunMeta run_meta(const repro::Preset& pr, const std::string& device) {
  repro::RunMeta meta;
  meta.program_version = repro::program_version();
  meta.git_commit = repro::build_git_commit();
  meta.config_json = pr.to_json();
  meta.device =
      device == "cpu" ? "cpu (" + std::to_string(ld::num_threads()) + " threads)" : device;
  return meta;
}

// The hyperparameters experiment: no training; one text table per model with every setting a
// run of each task would use, where it was set and its source ([sources] of the preset).
int run_hyperparameters(const repro::Preset& pr, const repro::ExperimentPreset& e,
                        const ReproOptions& ro) {
  const std::string dir = ro.out + "/" + pr.name;
  fs::create_directories(dir);
  const std::string h5 = dir + "/" + e.name + ".h5";
  repro::RunMeta meta = run_meta(pr, ro.device.empty() ? pr.device : ro.device);
  meta.device = "none (no model is run)";
  auto f = repro::ResultsFile::create(h5, meta);
  for (const std::string& model : e.models) {
    const repro::ModelPreset& mp = pr.models.at(model);
    // Columns: the experiment's tasks of the model's kind (generation tasks for a decoder,
    // classification tasks for an encoder); a model with no per-task settings gets one column "*"
    // (its model-level settings, the same for every task).
    const bool decoder = mp.family == "llama";
    std::vector<std::string> tasks;
    if (!mp.tasks.empty())
      for (const std::string& t : e.tasks) {
        const bool gen = t != "synthetic" && data::task_info(t).kind == data::TaskKind::kGeneration;
        if (gen == decoder) tasks.push_back(t);
      }
    if (tasks.empty()) tasks.push_back("*");
    repro::TextTable tb;
    tb.name = e.name + "_" + model;
    tb.title = fmt::format("Hyperparameters, {} (preset {})", model, pr.name);
    tb.experiment = e.name;
    tb.model = model;
    tb.columns = {"model", "task", "key", "value", "set_in", "source"};
    for (const std::string& t : tasks)
      for (const repro::SettingRow& r : repro::describe_settings(pr, e, model, t))
        tb.rows.push_back({model, t, r.key, r.value, r.set_in, r.source});
    f.write_text_table(tb);
  }
  f.commit();
  repro::validate_schema(h5);
  std::printf("%s/%s: %zu hyperparameter tables; %s (schema ok)\n", pr.name.c_str(), e.name.c_str(),
              e.models.size(), h5.c_str());
  if (ro.plots) {
    const int rc = run_plot(h5, dir + "/" + e.name + "_figures");
    if (rc != 0 && rc != 77) return kRuntimeFailure;
  }
  return kOk;
}

// Where the repro saves a finished run's adapter (lora::save_adapter), for runs that start from
// it (init_from): OUT/<preset>/<experiment>_adapters/<model>/<method>/<task>/seed<k>.
std::string adapter_dir(const ReproOptions& ro, const repro::Preset& pr,
                        const repro::ExperimentPreset& e, const repro::RunKey& k) {
  return fmt::format("{}/{}/{}_adapters/{}/{}/{}/seed{}", ro.out, pr.name, e.name, k.model,
                     k.method, k.task, k.seed);
}

// The experiment's tasks for `model` in the preset's order, except that a task with init_from = T
// comes after T, so that T's adapters are saved before it starts. Throws when T is not a task of
// the experiment, when init_from references loop, or in an importance-only experiment (its runs
// stop before the fine-tune and save no adapter).
std::vector<std::string> ordered_tasks(const repro::Preset& pr, const repro::ExperimentPreset& e,
                                       const std::string& model) {
  std::map<std::string, std::string> from;
  for (const std::string& t : e.tasks) {
    const repro::Hyper h = pr.resolve(e, model, t);
    if (!h.init_from) continue;
    const std::string where =
        fmt::format("preset {}, experiment {}, model {}, task {}", pr.name, e.name, model, t);
    if (e.importance_only)
      throw UsageError(
          fmt::format("{}: init_from = \"{}\" in an importance-only experiment, "
                      "whose runs save no adapter",
                      where, *h.init_from));
    if (*h.init_from == t)
      throw UsageError(fmt::format("{}: init_from names the task itself", where));
    if (std::find(e.tasks.begin(), e.tasks.end(), *h.init_from) == e.tasks.end())
      throw UsageError(fmt::format(
          "{}: init_from = \"{}\", but {} is not a task of experiment {} (tasks: {}); add it, "
          "its runs go first and save the adapters this task starts from",
          where, *h.init_from, *h.init_from, e.name, fmt::join(e.tasks, ", ")));
    from[t] = *h.init_from;
  }
  std::vector<std::string> out;
  std::set<std::string> placed;
  while (out.size() < e.tasks.size()) {
    const size_t before = out.size();
    for (const std::string& t : e.tasks) {
      if (placed.count(t)) continue;
      auto it = from.find(t);
      if (it != from.end() && !placed.count(it->second)) continue;
      placed.insert(t);
      out.push_back(t);
    }
    if (out.size() == before) {
      std::vector<std::string> loop;
      for (const std::string& t : e.tasks)
        if (!placed.count(t)) loop.push_back(t + " <- " + from.at(t));
      throw UsageError(
          fmt::format("preset {}, experiment {}, model {}: init_from references form "
                      "a loop ({})",
                      pr.name, e.name, model, fmt::join(loop, ", ")));
    }
  }
  return out;
}

int run_experiment(const repro::Preset& pr, const repro::ExperimentPreset& e,
                   const ReproOptions& ro) {
  if (!e.enabled) {
    std::printf("%s/%s: skipped (disabled in the preset: %s)\n", pr.name.c_str(), e.name.c_str(),
                e.disabled_reason.c_str());
    return kOk;
  }
  if (e.kind == "hyperparameters") return run_hyperparameters(pr, e, ro);
  if (is_generation_experiment(e)) return run_nlg_experiment(pr, e, ro);
  const std::string dir = ro.out + "/" + pr.name;
  fs::create_directories(dir);
  const std::string h5 = dir + "/" + e.name + ".h5";
  const std::string device = ro.device.empty() ? pr.device : ro.device;
  const Device dev = parse_device(device);
  const repro::RunMeta meta = run_meta(pr, device);
  Logger log(dir + "/" + e.name + ".log.jsonl", true);
  const std::vector<int64_t> seeds = e.seeds.empty() ? pr.seeds : e.seeds;
  int64_t done = 0, skipped = 0;
  for (const std::string& model : e.models) {
    const repro::ModelPreset& mp = pr.models.at(model);
    // Methods (the sensitivity experiment runs LoRA-drop once per sample proportion, the
    // importance-source experiment once per source; the threshold sweep adds one LoRA-drop run
    // per T to the listed methods).
    struct M {
      std::string name, method;
      double proportion = -1, threshold = -1;
      int during = -1;  // importance collected during training (1) or in a separate pass (0)
    };
    std::vector<M> methods;
    if (!e.sample_proportions.empty()) {
      for (double p : e.sample_proportions)
        methods.push_back({fmt::format("loradrop_p{:.2f}", p), "loradrop", p});
    } else if (!e.importance_sources.empty()) {
      for (const std::string& src : e.importance_sources)
        methods.push_back({"loradrop_" + src, "loradrop", -1, -1, src == "during" ? 1 : 0});
    } else {
      for (const std::string& m : e.methods) methods.push_back({m, m});
      for (double t : e.thresholds)
        methods.push_back({fmt::format("loradrop_t{:.2f}", t), "loradrop", -1, t});
    }
    for (const std::string& task : ordered_tasks(pr, e, model)) {
      if (task != "synthetic" && data::task_info(task).kind == data::TaskKind::kGeneration) {
        log.say(
            fmt::format("{}/{}: {} is a generation task; causal-LM runs are not wired into "
                        "`loradrop repro` yet: skipped",
                        pr.name, e.name, task));
        continue;
      }
      const repro::Hyper h = pr.resolve(e, model, task);
      bool need = false;
      {
        repro::RunMeta probe = meta;
        if (fs::exists(h5)) {
          repro::ResultsReader rd(h5);
          for (const M& m : methods)
            for (int64_t sd : seeds) need = need || !rd.has_run({e.name, model, m.name, task, sd});
        } else {
          need = true;
        }
      }
      if (!need) {
        skipped += static_cast<int64_t>(methods.size() * seeds.size());
        continue;
      }
      // Model and data for this (model, task).
      Settings s;
      s.task = task;
      s.max_length = h.max_length.value_or(128);
      s.max_train_examples = h.max_train_examples.value_or(0);
      s.max_eval_examples = h.max_eval_examples.value_or(0);
      std::string source = pr.expand(mp.source);
      ModelSource src;
      TaskData td;
      if (source.rfind("builtin:", 0) == 0) {
        const std::string name = source.substr(8);
        if (task == "synthetic") {
          src.config = builtin_config(name, synth::kVocab);
          src.config.pad_token_id = synth::kPad;
        } else {
          const std::string tdir = pr.data_dir + "/tokenizers/bert-base-uncased";
          src.tokenizer = as_input(
              "tokenizer '" + tdir + "'",
              [&]() -> std::shared_ptr<data::Tokenizer> { return data::load_tokenizer(tdir); });
          src.config = builtin_config(name, src.tokenizer->vocab_size());
        }
        src.name = source;
      } else {
        src = load_model_dir(source);
      }
      if (task == "synthetic") {
        td = synth::classification_task(s.max_train_examples > 0 ? s.max_train_examples : 2000,
                                        s.max_eval_examples > 0 ? s.max_eval_examples : 1000, 0);
      } else {
        if (!src.tokenizer) throw InputError(fmt::format("model '{}' has no tokenizer", source));
        td = load_glue_task(task, pr.data_dir + "/glue", *src.tokenizer, s.max_length,
                            s.max_train_examples, s.max_eval_examples, 0);
      }
      for (const M& m : methods)
        for (int64_t sd : seeds) {
          repro::RunKey key{e.name, model, m.name, task, sd};
          auto f = repro::ResultsFile::open_or_create(h5, meta);
          if (f.has_run(key)) {
            ++skipped;
            continue;
          }
          RunOptions o = options_of(pr, e, mp, h, m.method, static_cast<uint64_t>(sd));
          if (m.proportion > 0) o.sample_proportion = m.proportion;
          if (m.threshold > 0) o.threshold = m.threshold;
          if (m.during >= 0) o.importance_during_training = m.during == 1;
          o.importance_only = e.importance_only;
          // init_from = T (RoBERTa-large RTE/MRPC/STS-B from MNLI, as the LoRA GLUE recipe): the
          // adapters start from those saved by this experiment's run of T with the same model,
          // method and seed. Only the adapters: the classifier head is task-specific (MNLI has
          // 3 labels, STS-B 1) and starts freshly initialised from the seed, as in
          // microsoft/LoRA examples/NLU, where run_glue.py builds the model for the task's labels
          // and loads the MNLI LoRA state dict over it with strict=False. Full fine-tuning and
          // the frozen baseline have no adapter: they start from the pretrained model (logged).
          std::string init_dir;
          if (h.init_from && (m.method == "full" || m.method == "frozen")) {
            log.say(
                fmt::format("{}/{}: {} {} {} seed {}: init_from {} does not apply to {} (no "
                            "adapter): it starts from the pretrained model",
                            pr.name, e.name, model, m.name, task, sd, *h.init_from, m.method));
          } else if (h.init_from) {
            const repro::RunKey src_key{e.name, model, m.name, *h.init_from, sd};
            init_dir = adapter_dir(ro, pr, e, src_key);
            if (!lora::has_saved_adapter(init_dir)) {
              const bool recorded = f.has_run(src_key);
              throw InputError(fmt::format(
                  "{}/{}: {} {} {} seed {} starts from the adapter of task {} (init_from), but "
                  "'{}' holds none: {}",
                  pr.name, e.name, model, m.name, task, sd, *h.init_from, init_dir,
                  recorded ? fmt::format("{}'s run is recorded in {} without its saved adapter "
                                         "(deleted, or made before adapters were saved); remove "
                                         "that results file (or that run) to redo it",
                                         *h.init_from, h5)
                           : fmt::format("{}'s run ({} seed {}) has not finished", *h.init_from,
                                         m.name, sd)));
            }
            o.init_from = std::make_shared<lora::StoredAdapter>(as_input(
                "adapter of task " + *h.init_from, [&] { return lora::load_adapter(init_dir); }));
          }
          auto net = src.make(td.regression ? 1 : td.num_labels, static_cast<uint64_t>(sd), dev);
          RunOutput r = run_method(*net, dev, td, o, log);
          // Saved before the run is recorded: a recorded run always has its adapter (a crash in
          // between redoes the run, which replaces the directory).
          if (r.adapters && !e.importance_only)
            lora::save_adapter(*r.adapters, adapter_dir(ro, pr, e, key), source);
          repro::RunRecord rec = to_record(r, key, td);
          if (o.init_from) {
            rec.text["init_from"] = *h.init_from;
            rec.text["init_from_adapter"] =
                fs::path(init_dir).lexically_relative(fs::path(ro.out)).string();
            rec.text["init_from_digest"] = r.init.digest;
            rec.params["init_from_loaded"] = static_cast<double>(r.init.loaded.size());
            rec.params["init_from_kept"] = static_cast<double>(r.init.kept.size());
            if (m.method == "loradrop" || m.method.rfind("loradrop_", 0) == 0)
              rec.params["init_from_shared"] = static_cast<double>(r.init_shared.size());
            log.say(
                fmt::format("{}/{}: {} {} {} seed {}: adapters started from {} ({} tensors "
                            "loaded, {} fresh, digest {})",
                            pr.name, e.name, model, m.name, task, sd, init_dir,
                            r.init.loaded.size(), r.init.kept.size(), r.init.digest));
          }
          if (m.proportion > 0) rec.params["sample_proportion"] = m.proportion;
          if (m.threshold > 0) rec.params["threshold"] = m.threshold;
          if (m.during >= 0) rec.params["importance_during"] = m.during;
          f.write_run(rec);
          std::vector<std::string> names;
          for (const M& mm : methods) names.push_back(mm.name);
          // Importance-only runs have no metric: no table.
          if (!e.importance_only)
            f.write_table(repro::TableSpec{e.models.size() > 1 ? e.name + "_" + model : e.name,
                                           e.description, e.name, model, names, e.tasks});
          f.commit();
          ++done;
          if (e.importance_only) {
            // No fine-tune, so no metric: what the importance selected.
            std::vector<std::string> kept;
            for (const auto& [target, sel] : r.selected)
              kept.push_back(fmt::format("{} {} of {} layers", target,
                                         std::count(sel.begin(), sel.end(), true), sel.size()));
            log.say(fmt::format("{}/{}: {} {} {} seed {}: importance only, T={} keeps {}, {:.1f} s",
                                pr.name, e.name, model, m.name, task, sd, o.threshold,
                                fmt::join(kept, ", "), r.seconds));
          } else {
            log.say(fmt::format("{}/{}: {} {} {} seed {}: {} = {:.4f}, #Tr. params {}, {:.1f} s",
                                pr.name, e.name, model, m.name, task, sd, td.metric_name,
                                r.eval.metric, r.trainable_params, r.seconds));
          }
        }
    }
  }
  return finish_experiment(pr, e, ro, h5, dir, done, skipped);
}

}  // namespace

int finish_experiment(const repro::Preset& pr, const repro::ExperimentPreset& e,
                      const ReproOptions& ro, const std::string& h5, const std::string& dir,
                      int64_t done, int64_t skipped) {
  if (!fs::exists(h5)) {
    std::printf("%s/%s: no runs (nothing this program can run in it)\n", pr.name.c_str(),
                e.name.c_str());
    return kOk;
  }
  repro::validate_schema(h5);
  std::printf("%s/%s: %lld runs done, %lld already present; %s (schema ok)\n", pr.name.c_str(),
              e.name.c_str(), static_cast<long long>(done), static_cast<long long>(skipped),
              h5.c_str());
  if (ro.plots) {
    const int rc = run_plot(h5, dir + "/" + e.name + "_figures");
    if (rc != 0 && rc != 77) return kRuntimeFailure;
  }
  return kOk;
}

int cmd_repro(const ReproOptions& ro) {
  ld::init_threads();
  const std::string path = preset_path(ro.preset);
  if (!fs::exists(path))
    throw InputError(fmt::format("preset '{}' not found ({}); presets: smoke, cpu-real, paper",
                                 ro.preset, path));
  repro::Preset pr = as_input("preset", [&] { return repro::load_preset(path); });
  if (!ro.data_dir.empty()) pr.data_dir = ro.data_dir;
  if (!ro.assets_dir.empty()) pr.assets_dir = ro.assets_dir;
  if (fs::path(pr.data_dir).is_relative() && !fs::exists(pr.data_dir))
    pr.data_dir = source_dir() + "/" + pr.data_dir;
  if (ro.list) {
    std::printf("preset %s (%s): %s\n", pr.name.c_str(), pr.expected_time.c_str(),
                pr.description.c_str());
    for (const auto& e : pr.experiments) {
      std::printf("  %-18s %s%s\n", e.name.c_str(), e.description.c_str(),
                  e.enabled ? "" : " [disabled]");
      for (const auto& p : e.produces) std::printf("  %-18s   produces %s\n", "", p.c_str());
    }
    std::printf("paper items (numbering assumed, not checked against the paper's text):\n");
    for (const auto& it : paper_items())
      std::printf("  %-9s -> %-18s %s\n", it.item, *it.experiment ? it.experiment : "(none)",
                  it.what);
    return kOk;
  }
  std::vector<std::string> exps;
  if (ro.item == "all") {
    for (const auto& e : pr.experiments) exps.push_back(e.name);
  } else {
    std::string name = ro.item;
    for (const auto& it : paper_items())
      if (ro.item == it.item) {
        if (!*it.experiment)
          throw UsageError(fmt::format("{}: {}; no experiment regenerates it", it.item, it.what));
        name = it.experiment;
      }
    bool found = false;
    for (const auto& e : pr.experiments) found = found || e.name == name;
    if (!found)
      throw UsageError(fmt::format("preset {} has no experiment '{}' (see loradrop repro --list)",
                                   pr.name, ro.item));
    exps.push_back(name);
  }
  int rc = kOk;
  for (const std::string& e : exps) {
    const int r = run_experiment(pr, pr.experiment(e), ro);
    if (r != kOk) rc = r;
  }
  return rc;
}

}  // namespace ld::app
