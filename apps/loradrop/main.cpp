// loradrop: the command-line program (train, importance, select, eval, export, info, quickstart,
// repro). Parses the command line with CLI11, maps errors to documented exit codes.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "apps/loradrop/app.h"
#include "core/profiler.h"

namespace {

const char* kExitCodes =
    "Exit codes: 0 ok; 1 runtime failure (training diverged, I/O error, ...); 2 usage error (bad "
    "command line or setting); 3 bad input file (missing or malformed model, adapter, data, config "
    "or preset file).\n"
    "Settings: defaults < --config FILE (TOML, keys as below, [sections] allowed) < --set "
    "key=value (repeatable) < direct flags (--lr 1e-3). Keys: run `loradrop keys`.";

// Where --profile writes profile.json (empty: not asked for); set once the settings are known.
std::string g_profile_json;

// profile.json next to the run's outputs, written atomically (temp file, rename); a failure is
// a warning (the run itself succeeded).
bool write_profile_json(const std::string& path) {
  try {
    ld::app::write_file_atomically(path, ld::Profiler::json());
    return true;
  } catch (const std::exception&) {
    std::fprintf(stderr, "loradrop: warning: cannot write '%s'\n", path.c_str());
    return false;
  }
}

std::string dashed(std::string k) {
  for (char& c : k)
    if (c == '_') c = '-';
  return k;
}

}  // namespace

int run(int argc, char** argv);

// libgomp reads its wait policy once, when it loads. Its default busy-wait makes an OpenMP team on
// a shared or loaded machine many times slower than a bounded spin (measured on 2 busy cores:
// `quickstart --fast` with 2 threads took 49 s by default, 9 s with GOMP_SPINCOUNT=10000, 8.6 s
// with 1 thread). Unless the user chose a policy, re-execute once with a bounded spin.
static void bound_openmp_spin(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  setenv("GOMP_SPINCOUNT", "10000", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then go on with the default policy
}

// --profile (train, quickstart) or LD_PROFILE=1: print the op profiler's table (calls, total and
// self time per op, forward ops and their "_bwd" backward) on exit; --profile also writes
// profile.json next to the outputs when the run succeeded.
int main(int argc, char** argv) {
  bound_openmp_spin(argv);
  const int rc = run(argc, argv);
  if (ld::Profiler::enabled()) {
    std::fprintf(stderr, "%s\n", ld::Profiler::table().c_str());
    if (rc == ld::app::kOk && !g_profile_json.empty()) {
      if (write_profile_json(g_profile_json))
        std::fprintf(stderr, "wrote %s\n", g_profile_json.c_str());
    }
  }
  return rc;
}

int run(int argc, char** argv) {
  using namespace ld::app;
  CLI::App app{
      "loradrop: LoRA-drop (LoRA parameter pruning by output evaluation) and its baselines "
      "on RoBERTa/BERT encoders."};
  app.require_subcommand(1, 1);
  app.footer(kExitCodes);
  Settings s;
  std::string config;
  std::vector<std::string> sets;
  std::vector<std::pair<std::string, std::string>> flags;
  bool profile = false;
  const char* kProfileHelp =
      "time every op (and its backward) and print a table of calls, total and self time at the "
      "end; also writes profile.json next to the outputs (CPU clock; CUDA events on a GPU)";

  auto add_settings = [&](CLI::App* sc, const std::vector<std::string>& keys) {
    sc->add_option("--config", config, "TOML config file (keys as --set)");
    sc->add_option("--set", sets, "override a setting: key=value (repeatable)");
    for (const std::string& k : keys) {
      std::string help;
      for (const auto& [name, h] : Settings::keys())
        if (name == k) help = h;
      const std::string names =
          k.find('_') != std::string::npos ? "--" + dashed(k) + ",--" + k : "--" + k;
      sc->add_option_function<std::string>(
          names, [&flags, k](const std::string& v) { flags.emplace_back(k, v); }, help);
    }
    sc->footer(kExitCodes);
  };
  const std::vector<std::string> train_keys = {"method",
                                               "task",
                                               "model",
                                               "data",
                                               "tokenizer",
                                               "out",
                                               "device",
                                               "seed",
                                               "threads",
                                               "r",
                                               "lora_alpha",
                                               "lr",
                                               "head_lr",
                                               "epochs",
                                               "batch_size",
                                               "max_length",
                                               "weight_decay",
                                               "warmup_ratio",
                                               "grad_clip",
                                               "eval_every",
                                               "max_train_examples",
                                               "max_eval_examples",
                                               "sample_proportion",
                                               "sample_epochs",
                                               "threshold",
                                               "select",
                                               "k",
                                               "share",
                                               "shared_init",
                                               "sparsity",
                                               "vera_r",
                                               "tied_r",
                                               "dropout",
                                               "histograms",
                                               "hist_bins",
                                               "pretrain_steps",
                                               "progress"};

  auto* train = app.add_subcommand("train",
                                   "fine-tune with one method and write metrics, the "
                                   "adapter, a JSON-lines log and results.h5");
  add_settings(train, train_keys);
  train->add_flag("--profile", profile, kProfileHelp);
  auto* imp = app.add_subcommand("importance",
                                 "LoRA on a stratified sample, then per-layer "
                                 "importance g_i = mean ||dW x||^2 (importance.json)");
  add_settings(imp, train_keys);
  auto* sel = app.add_subcommand("select",
                                 "choose the layers that keep their own LoRA from an "
                                 "importance.json (threshold T or an ablation rule)");
  add_settings(sel, {"importance", "threshold", "select", "k", "seed", "out"});
  auto* ev = app.add_subcommand("eval", "evaluate a model (+ PEFT adapter) on a task's dev set");
  add_settings(ev, {"task", "model", "data", "tokenizer", "adapter", "device", "batch_size",
                    "max_length", "max_eval_examples", "seed", "threads", "out"});
  auto* ex = app.add_subcommand("export",
                                "write an adapter in PEFT format, or the model with "
                                "the adapter merged into its weights");
  add_settings(ex, {"model", "adapter", "format", "out"});
  auto* info = app.add_subcommand("info",
                                  "model and adapter summary with trainable-parameter "
                                  "counts of every method");
  add_settings(info, {"model", "adapter", "r", "vera_r", "tied_r", "tokenizer"});
  auto* keys = app.add_subcommand("keys", "list every setting key with its meaning");

  QuickstartOptions q;
  auto* qs = app.add_subcommand(
      "quickstart",
      "the whole LoRA-drop pipeline next to LoRA and a frozen base + head, on a built-in "
      "synthetic task (no files needed) or, with --model/--task/--data, on real assets; writes "
      "results.h5, figures and prints the table");
  add_settings(qs, {"out", "seed", "model", "task", "data", "tokenizer", "device", "threads",
                    "threshold", "epochs", "lr", "max_train_examples", "max_eval_examples",
                    "max_length", "pretrain_steps", "progress"});
  qs->add_flag("--fast", q.fast, "the CI setting: fewer examples and steps (about 4x faster)");
  qs->add_flag("--profile", profile, kProfileHelp);
  qs->add_flag(
      "--no-plots", [&q](int64_t) { q.plots = false; }, "do not run tools/plot.py");

  ReproOptions ro;
  auto* rp = app.add_subcommand(
      "repro",
      "run one paper_repro experiment (or a tableN / figureN alias, or 'all') of a "
      "preset; resumable: runs already in the results file are skipped");
  rp->add_option("item", ro.item,
                 "experiment name (main_glue, nlg, histograms, ablation, "
                 "sample_proportion), tableN / figureN, or all");
  rp->add_option("--preset", ro.preset, "smoke | cpu-real | paper, or a preset .toml file");
  rp->add_option("--out", ro.out, "output root; results go to OUT/<preset>/<experiment>.h5");
  rp->add_option("--data-dir", ro.data_dir, "override the preset's data_dir");
  rp->add_option("--assets", ro.assets_dir, "override the preset's assets_dir");
  rp->add_option("--device", ro.device, "override the preset's device (cpu | cuda)");
  rp->add_flag("--list", ro.list, "list the experiments and the paper items they produce");
  rp->add_flag(
      "--no-plots", [&ro](int64_t) { ro.plots = false; }, "do not run tools/plot.py");
  rp->footer(kExitCodes);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr,
                 "loradrop: error: %s\nRun 'loradrop --help' or 'loradrop <command> --help'.\n",
                 e.what());
    return kUsageError;
  }

  try {
    if (keys->parsed()) {
      for (const auto& [k, h] : Settings::keys()) std::printf("%-20s %s\n", k.c_str(), h.c_str());
      return kOk;
    }
    if (rp->parsed()) {
      if (ro.item.empty() && !ro.list) throw UsageError("repro: name an experiment (or --list)");
      return cmd_repro(ro);
    }
    if (qs->parsed()) quickstart_defaults(s, q.fast);
    if (!config.empty()) s.load_toml(config);
    for (const std::string& kv : sets) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0)
        throw UsageError(fmt::format("--set expects key=value, got '{}'", kv));
      s.set(kv.substr(0, eq), kv.substr(eq + 1));
    }
    bool model_given = false;
    for (const auto& [k, v] : flags) {
      s.set(k, v);
      model_given = model_given || k == "model";
    }
    setup_threads(s);
    if (profile) {
      ld::Profiler::reset();
      ld::Profiler::enable();
      g_profile_json = s.out + "/profile.json";
    }
    if (train->parsed()) return cmd_train(s);
    if (imp->parsed()) return cmd_importance(s);
    if (sel->parsed()) return cmd_select(s);
    if (ev->parsed()) return cmd_eval(s);
    if (ex->parsed()) return cmd_export(s);
    if (info->parsed()) return cmd_info(s);
    if (qs->parsed()) {
      q.real = model_given || s.model.rfind("builtin:", 0) != 0;
      return cmd_quickstart(s, q);
    }
    return kUsageError;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "loradrop: error: %s\n", e.what());
    return kUsageError;
  } catch (const InputError& e) {
    std::fprintf(stderr, "loradrop: error: %s\n", e.what());
    return kBadInput;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loradrop: error: %s\n", e.what());
    return kRuntimeFailure;
  }
}
