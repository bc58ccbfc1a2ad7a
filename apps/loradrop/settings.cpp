// Settings of the loradrop program: keys, parsing of --set values and TOML config files, and the
// JSON-lines logger with its terminal progress line.
#include <unistd.h>

#include <toml++/toml.h>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/loradrop/app.h"

namespace ld::app {
namespace {

int64_t to_int(const std::string& k, const std::string& v) {
  try {
    size_t pos = 0;
    long long x = std::stoll(v, &pos);
    if (pos == v.size()) return x;
  } catch (const std::exception&) {
  }
  throw UsageError(fmt::format("setting '{}': expected an integer, got '{}'", k, v));
}
double to_double(const std::string& k, const std::string& v) {
  try {
    size_t pos = 0;
    double x = std::stod(v, &pos);
    if (pos == v.size()) return x;
  } catch (const std::exception&) {
  }
  throw UsageError(fmt::format("setting '{}': expected a number, got '{}'", k, v));
}
bool to_bool(const std::string& k, const std::string& v) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  throw UsageError(fmt::format("setting '{}': expected true or false, got '{}'", k, v));
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& Settings::keys() {
  static const std::vector<std::pair<std::string, std::string>> k = {
      {"method",
       "frozen|full|lora|loradrop|vera|tied|sparse|loradrop_noshare|loradrop_inverted|"
       "loradrop_random|loradrop_lastk"},
      {"task", "synthetic, or a GLUE task: rte mrpc cola sts-b sst-2 qnli qqp mnli"},
      {"model", "HF model directory, or builtin:quickstart / builtin:tiny-bert"},
      {"data", "GLUE root (with RTE/, MRPC/, ...) or one task's folder"},
      {"tokenizer", "tokenizer directory for a builtin model on a GLUE task"},
      {"out", "output directory"},
      {"device", "cpu | cuda"},
      {"adapter", "adapter directory (PEFT format) for eval/export/info"},
      {"format", "export format: peft | merged"},
      {"importance", "importance.json written by `loradrop importance` (for select)"},
      {"select", "selection rule: threshold|topk|inverted|random|last"},
      {"shared_init", "initialisation of the shared adapters: fresh | mean"},
      {"seed", "seed of data order, sampling, init and dropout"},
      {"threads", "CPU threads (0: OMP_NUM_THREADS or all cores)"},
      {"r", "LoRA rank"},
      {"lora_alpha", "LoRA alpha (scale = alpha / r)"},
      {"lr", "learning rate (AdamW, linear warmup then linear decay)"},
      {"head_lr", "learning rate of the classifier head (<= 0: lr)"},
      {"epochs", "epochs of the (full) fine-tune"},
      {"batch_size", "batch size"},
      {"max_length", "maximum tokens per example (longer inputs are truncated)"},
      {"weight_decay", "AdamW weight decay"},
      {"warmup_ratio", "share of steps for linear warmup"},
      {"grad_clip", "gradient clipping norm (<= 0: off)"},
      {"eval_every", "evaluate every N steps (0: at the end only)"},
      {"max_train_examples", "cap the training set (stratified subset; 0: all)"},
      {"max_eval_examples", "cap the eval set (0: all)"},
      {"sample_proportion", "LoRA-drop alpha: stratified share of the training set"},
      {"sample_epochs", "LoRA-drop n: epochs of LoRA training on the sample"},
      {"threshold", "LoRA-drop T: cumulative normalised importance to keep"},
      {"k", "layers for topk/random/last selection (-1: as many as the threshold keeps)"},
      {"share", "unselected layers share one adapter (false: they get none, 'w/o share')"},
      {"sparsity", "Sparse Adapter (SNIP) sparsity"},
      {"vera_r", "VeRA rank"},
      {"tied_r", "Tied-LoRA rank"},
      {"dropout", "LoRA dropout"},
      {"histograms", "store per-layer ||dW x||^2 histograms after fine-tuning"},
      {"hist_bins", "histogram bins"},
      {"pretrain_steps", "quickstart: masked-token pretraining steps (-1: default)"},
      {"progress", "progress line on a terminal"},
  };
  return k;
}

void Settings::set(const std::string& key, const std::string& v) {
  auto S = [&](std::string& f) { f = v; };
  auto I = [&](int64_t& f) { f = to_int(key, v); };
  auto D = [&](double& f) { f = to_double(key, v); };
  auto B = [&](bool& f) { f = to_bool(key, v); };
  if (key == "method")
    S(method);
  else if (key == "task")
    S(task);
  else if (key == "model")
    S(model);
  else if (key == "data")
    S(data);
  else if (key == "tokenizer")
    S(tokenizer);
  else if (key == "out")
    S(out);
  else if (key == "device")
    S(device);
  else if (key == "adapter")
    S(adapter);
  else if (key == "format")
    S(format);
  else if (key == "importance")
    S(importance);
  else if (key == "select")
    S(select);
  else if (key == "shared_init")
    S(shared_init);
  else if (key == "seed")
    I(seed);
  else if (key == "threads")
    I(threads);
  else if (key == "r")
    I(r);
  else if (key == "lora_alpha")
    D(lora_alpha);
  else if (key == "lr")
    D(lr);
  else if (key == "head_lr")
    D(head_lr);
  else if (key == "epochs")
    I(epochs);
  else if (key == "batch_size")
    I(batch_size);
  else if (key == "max_length")
    I(max_length);
  else if (key == "weight_decay")
    D(weight_decay);
  else if (key == "warmup_ratio")
    D(warmup_ratio);
  else if (key == "grad_clip")
    D(grad_clip);
  else if (key == "eval_every")
    I(eval_every);
  else if (key == "max_train_examples")
    I(max_train_examples);
  else if (key == "max_eval_examples")
    I(max_eval_examples);
  else if (key == "sample_proportion")
    D(sample_proportion);
  else if (key == "sample_epochs")
    I(sample_epochs);
  else if (key == "threshold")
    D(threshold);
  else if (key == "k")
    I(k);
  else if (key == "share")
    B(share);
  else if (key == "sparsity")
    D(sparsity);
  else if (key == "vera_r")
    I(vera_r);
  else if (key == "tied_r")
    I(tied_r);
  else if (key == "dropout")
    D(dropout);
  else if (key == "histograms")
    B(histograms);
  else if (key == "hist_bins")
    I(hist_bins);
  else if (key == "pretrain_steps")
    I(pretrain_steps);
  else if (key == "progress")
    B(progress);
  else
    throw UsageError(
        fmt::format("unknown setting '{}' (see `loradrop train --help` for the list)", key));
  // Range checks that would otherwise fail deep inside a run.
  if (key == "r" || key == "epochs" || key == "batch_size" || key == "vera_r" || key == "tied_r" ||
      key == "hist_bins" || key == "max_length") {
    if (to_int(key, v) <= 0) throw UsageError(fmt::format("setting '{}' must be positive", key));
  }
  if ((key == "sample_proportion" || key == "threshold") &&
      !(to_double(key, v) > 0 && to_double(key, v) <= 1))
    throw UsageError(fmt::format("setting '{}' must be in (0, 1], got {}", key, v));
  if (key == "sparsity" && !(sparsity >= 0 && sparsity < 1))
    throw UsageError(fmt::format("setting 'sparsity' must be in [0, 1), got {}", v));
  if (key == "device" && v != "cpu" && v != "cuda" && v.rfind("cuda:", 0) != 0)
    throw UsageError(fmt::format("setting 'device' must be cpu or cuda, got '{}'", v));
  if (key == "format" && v != "peft" && v != "merged")
    throw UsageError(fmt::format("setting 'format' must be peft or merged, got '{}'", v));
  if (key == "method" && !is_known_method(v))
    throw UsageError(
        fmt::format("unknown method '{}' (one of frozen, full, lora, loradrop, vera, "
                    "tied, sparse, loradrop_noshare, loradrop_inverted, "
                    "loradrop_random, loradrop_lastk)",
                    v));
}

void Settings::load_toml(const std::string& path) {
  if (!std::filesystem::is_regular_file(path))
    throw InputError(fmt::format("config file '{}' does not exist", path));
  toml::table tbl;
  try {
    tbl = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw InputError(
        fmt::format("config file '{}' line {}: {}", path, e.source().begin.line, e.description()));
  }
  std::function<void(const toml::table&)> walk = [&](const toml::table& t) {
    for (auto&& [k, node] : t) {
      std::string key(k.str());
      if (node.is_table()) {
        walk(*node.as_table());
        continue;
      }
      std::string text;
      if (auto s = node.value<std::string>())
        text = *s;
      else if (node.is_boolean())
        text = *node.value<bool>() ? "true" : "false";
      else if (node.is_integer())
        text = std::to_string(*node.value<int64_t>());
      else if (node.is_floating_point())
        text = fmt::format("{}", *node.value<double>());
      else
        throw InputError(fmt::format("config file '{}' line {}: key '{}' has an unsupported type",
                                     path, node.source().begin.line, key));
      try {
        set(key, text);
      } catch (const UsageError& e) {
        throw InputError(
            fmt::format("config file '{}' line {}: {}", path, node.source().begin.line, e.what()));
      }
    }
  };
  walk(tbl);
}

std::string Settings::to_json() const {
  nlohmann::json j = {{"method", method},
                      {"task", task},
                      {"model", model},
                      {"data", data},
                      {"device", device},
                      {"seed", seed},
                      {"r", r},
                      {"lora_alpha", lora_alpha},
                      {"lr", lr},
                      {"head_lr", head_lr},
                      {"epochs", epochs},
                      {"batch_size", batch_size},
                      {"max_length", max_length},
                      {"weight_decay", weight_decay},
                      {"warmup_ratio", warmup_ratio},
                      {"grad_clip", grad_clip},
                      {"max_train_examples", max_train_examples},
                      {"max_eval_examples", max_eval_examples},
                      {"sample_proportion", sample_proportion},
                      {"sample_epochs", sample_epochs},
                      {"threshold", threshold},
                      {"k", k},
                      {"share", share},
                      {"shared_init", shared_init},
                      {"sparsity", sparsity},
                      {"vera_r", vera_r},
                      {"tied_r", tied_r},
                      {"dropout", dropout}};
  return j.dump();
}

RunOptions run_options(const Settings& s) {
  RunOptions o;
  o.method = s.method;
  o.r = s.r;
  o.epochs = s.epochs;
  o.batch_size = s.batch_size;
  o.eval_every = s.eval_every;
  o.sample_epochs = s.sample_epochs;
  o.k = s.k;
  o.vera_r = s.vera_r;
  o.tied_r = s.tied_r;
  o.hist_bins = s.hist_bins;
  o.lora_alpha = s.lora_alpha;
  o.lr = s.lr;
  o.head_lr = s.head_lr;
  o.weight_decay = s.weight_decay;
  o.warmup_ratio = s.warmup_ratio;
  o.grad_clip = s.grad_clip;
  o.dropout = s.dropout;
  o.sample_proportion = s.sample_proportion;
  o.threshold = s.threshold;
  o.sparsity = s.sparsity;
  o.shared_init = s.shared_init;
  o.histograms = s.histograms;
  o.seed = static_cast<uint64_t>(s.seed);
  if (!s.share && o.method == "loradrop") o.method = "loradrop_noshare";
  if (o.method == "loradrop" && s.select != "threshold") {
    if (s.select == "inverted")
      o.method = "loradrop_inverted";
    else if (s.select == "random")
      o.method = "loradrop_random";
    else if (s.select == "last")
      o.method = "loradrop_lastk";
    else if (s.select == "topk")
      o.method = "loradrop_topk";
    else
      throw UsageError(fmt::format("unknown selection rule '{}'", s.select));
  }
  return o;
}

// ---- Logger ----

Logger::Logger(const std::string& jsonl_path, bool progress, bool fresh)
    : path_(jsonl_path), tty_(progress && ::isatty(2)), t0_(now_s()) {
  if (!path_.empty()) {
    std::filesystem::path p(path_);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    if (fresh) {
      std::ofstream f(path_, std::ios::trunc);
      if (!f) throw Error(fmt::format("cannot write log file {}", path_));
    }
  }
}

void Logger::event(const std::string& line) {
  if (path_.empty()) return;
  std::ofstream f(path_, std::ios::app);
  f << line << '\n';
}

void Logger::step(const std::string& phase, int64_t step, int64_t total, double loss, double lr,
                  int64_t tokens) {
  // The clock of a phase starts when its first step is reported: rates and the ETA come from the
  // steps after it (the first step's own time is not known here), none for the first.
  if (phase != phase_) {
    end_phase();
    phase_ = phase;
    t0_ = now_s();
    tokens_ = 0;
    steps_ = 0;
  } else {
    tokens_ += tokens;
    ++steps_;
  }
  const double secs = now_s() - t0_;
  const bool timed = steps_ > 0 && secs > 0;
  const double tps = timed ? static_cast<double>(tokens_) / secs : 0;
  const double eta =
      timed ? secs / static_cast<double>(steps_) * static_cast<double>(total - step) : 0;
  nlohmann::json j = {
      {"phase", phase}, {"step", step}, {"total", total}, {"loss", loss}, {"lr", lr}};
  j["tokens_per_s"] = timed ? nlohmann::json(tps) : nlohmann::json(nullptr);
  event(j.dump());
  if (tty_) {
    const std::string rate = timed ? fmt::format("{:.0f} tok/s  ETA {:.0f}s", tps, eta) : "";
    std::fprintf(stderr, "\r%-24s step %lld/%lld  loss %.4f  %s   ", phase.c_str(),
                 static_cast<long long>(step), static_cast<long long>(total), loss, rate.c_str());
    open_line_ = true;
  }
}

void Logger::end_phase() {
  if (open_line_) std::fprintf(stderr, "\n");
  open_line_ = false;
  phase_.clear();
}

void Logger::say(const std::string& line) {
  end_phase();
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace ld::app
