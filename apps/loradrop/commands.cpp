// The loradrop subcommands train, importance, select, eval, export, info and quickstart.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/loradrop/app.h"
#include "core/threads.h"
#include "lora/peft_io.h"
#include "lora/selection.h"
#include "nn/safetensors.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace ld::app {

void write_file_atomically(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << text;
    if (!f) throw Error(fmt::format("cannot write '{}'", path));
  }
  fs::rename(tmp, path);
}

namespace {

constexpr int64_t kPretrainSteps = 150, kPretrainStepsFast = 60;

std::string safe_name(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  s = fs::path(s).filename().string();
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '+' &&
        c != '-')
      c = '-';
  if (s.empty() || s[0] == '.') s = "model" + s;
  return s;
}

std::string model_name(const std::string& model) {
  return model.rfind("builtin:", 0) == 0 ? "builtin-" + model.substr(8) : safe_name(model);
}

std::string default_tokenizer() {
  return source_dir() + "/../shared/data/tokenizers/bert-base-uncased";
}

struct Prepared {
  ModelSource src;
  TaskData task;
  Device device;
  std::string model_name;
  double mlm_before = -1, mlm_after = -1;  // quickstart pretraining, masked-token accuracy
};

Prepared prepare(const Settings& s, Logger& log, bool pretrain_builtin, bool fast = false) {
  Prepared p;
  p.device = parse_device(s.device);
  p.model_name = model_name(s.model);
  const bool synthetic = s.task == "synthetic";
  if (s.model.rfind("builtin:", 0) == 0) {
    const std::string name = s.model.substr(8);
    if (synthetic) {
      p.src.config = builtin_config(name == "tiny-bert" ? "tiny-bert" : name, synth::kVocab);
      p.src.config.pad_token_id = synth::kPad;
    } else {
      if (name != "tiny-bert")
        throw UsageError(
            fmt::format("builtin:{} speaks the synthetic language only; use "
                        "--task synthetic, or builtin:tiny-bert / a model directory "
                        "for GLUE tasks",
                        name));
      const std::string tdir = s.tokenizer.empty() ? default_tokenizer() : s.tokenizer;
      p.src.tokenizer = as_input(
          "tokenizer '" + tdir + "'",
          [&]() -> std::shared_ptr<data::Tokenizer> { return data::load_tokenizer(tdir); });
      p.src.config = builtin_config(name, p.src.tokenizer->vocab_size());
    }
    p.src.name = s.model;
    if (synthetic && name == "quickstart" && pretrain_builtin) {
      const int64_t steps =
          s.pretrain_steps >= 0 ? s.pretrain_steps : (fast ? kPretrainStepsFast : kPretrainSteps);
      auto m = p.src.make(2, static_cast<uint64_t>(s.seed), kCPU);
      log.say(
          fmt::format("pretraining the built-in encoder on masked tokens of the synthetic "
                      "language ({} steps)...",
                      steps));
      auto [b, a] = synth::pretrain(*m, steps, static_cast<uint64_t>(s.seed), log);
      p.mlm_before = b;
      p.mlm_after = a;
      for (auto& [n, t] : m->state_dict())
        if (!nn::name_matches("classifier.*", n)) p.src.builtin_state[n] = t;
    }
  } else {
    p.src = load_model_dir(s.model);
    if (synthetic)
      throw UsageError(
          "the synthetic task runs on the built-in encoders only; name a GLUE task "
          "(--task rte) for a model directory");
  }
  if (synthetic) {
    p.task = synth::classification_task(s.max_train_examples > 0 ? s.max_train_examples : 2000,
                                        s.max_eval_examples > 0 ? s.max_eval_examples : 1000,
                                        static_cast<uint64_t>(s.seed));
  } else {
    if (!p.src.tokenizer)
      throw InputError(
          fmt::format("model directory '{}' has no tokenizer files (tokenizer.json, "
                      "vocab.json + merges.txt, vocab.txt or tokenizer.model)",
                      s.model));
    p.task = load_glue_task(s.task, s.data, *p.src.tokenizer, s.max_length, s.max_train_examples,
                            s.max_eval_examples, static_cast<uint64_t>(s.seed));
  }
  return p;
}

int64_t labels_arg(const TaskData& t) { return t.regression ? 1 : t.num_labels; }

repro::RunMeta meta_of(const std::string& config_json, const std::string& device) {
  repro::RunMeta m;
  m.program_version = repro::program_version();
  m.git_commit = repro::build_git_commit();
  m.config_json = config_json;
  m.device = device == "cpu" ? "cpu (" + std::to_string(ld::num_threads()) + " threads)" : device;
  return m;
}

void write_json(const std::string& path, const json& j) {
  write_file_atomically(path, j.dump(2) + '\n');
}

json run_json(const RunOutput& r, const TaskData& t) {
  json sel = json::object(), imp = json::object();
  for (const auto& [k, v] : r.selected) sel[k] = std::vector<bool>(v.begin(), v.end());
  for (const auto& [k, v] : r.importance) imp[k] = v;
  return json{{"method", r.method},
              {"task", t.name},
              {"metric", t.metric_name},
              {"value", r.eval.metric},
              {"metrics", r.eval.all},
              {"eval_loss", r.eval.eval_loss},
              {"trainable_params", r.trainable_params},
              {"lora_params_before_drop", r.lora_params},
              {"sample_size", r.sample_size},
              {"importance", imp},
              {"selected", sel},
              {"seconds", r.seconds}};
}

bool peft_method(const std::string& m) {
  return m == "lora" || m == "sparse" || m.rfind("loradrop", 0) == 0;
}

void print_importance(const RunOutput& r) {
  for (const auto& [t, g] : r.importance) {
    double sum = 0;
    for (double v : g) sum += v;
    std::printf("  %-8s layer:", t.c_str());
    for (size_t i = 0; i < g.size(); ++i) std::printf(" %6zu", i);
    std::printf("\n  %-8s y_i:  ", "");
    for (double v : g) std::printf(" %6.3f", sum > 0 ? v / sum : 0.0);
    auto it = r.selected.find(t);
    if (it != r.selected.end()) {
      std::printf("\n  %-8s keep: ", "");
      for (bool b : it->second) std::printf(" %6s", b ? "own" : "shared");
    }
    std::printf("\n");
  }
}

// num_labels of the classifier saved with a PEFT adapter (modules_to_save), or -1.
int64_t adapter_num_labels(const std::string& dir) {
  const std::string f = dir + "/adapter_model.safetensors";
  if (!fs::exists(f)) return -1;
  nn::SafetensorsFile st(f);
  for (const std::string& n : st.names())
    if (n.ends_with("classifier.out_proj.weight") || n.ends_with("classifier.weight"))
      return st.shape(n)[0];
  return -1;
}

std::shared_ptr<lora::AdapterSet> load_adapter(nn::Module& m, const std::string& dir,
                                               uint64_t seed) {
  if (!fs::is_directory(dir))
    throw InputError(fmt::format("adapter directory '{}' does not exist", dir));
  if (fs::exists(dir + "/adapter_config.json")) {
    Generator gen(seed);
    return as_input("adapter '" + dir + "'", [&] {
      return std::make_shared<lora::AdapterSet>(lora::import_peft(m, dir, gen));
    });
  }
  if (fs::exists(dir + "/trainable.safetensors")) {
    as_input("adapter '" + dir + "'", [&] {
      m.load_state_dict(nn::load_safetensors(dir + "/trainable.safetensors"), false);
      return 0;
    });
    return nullptr;
  }
  throw InputError(
      fmt::format("adapter directory '{}' has neither adapter_config.json (PEFT) nor "
                  "trainable.safetensors",
                  dir));
}

}  // namespace

void setup_threads(const Settings& s) {
  ld::init_threads();
  if (s.threads > 0) ld::set_num_threads(static_cast<int>(s.threads));
}

int cmd_train(const Settings& s) {
  Logger log(s.out + "/log.jsonl", s.progress, /*fresh=*/true);
  Prepared p = prepare(s, log, true);
  auto model = p.src.make(labels_arg(p.task), static_cast<uint64_t>(s.seed), p.device);
  RunOutput r = run_method(*model, p.device, p.task, run_options(s), log);
  print_table(fmt::format("{} on {} ({} train / {} eval examples)", p.model_name, p.task.name,
                          p.task.train.size(), p.task.eval.size()),
              {r}, p.task);
  print_importance(r);
  json j = run_json(r, p.task);
  if (r.adapters && peft_method(r.method)) {
    lora::PeftExportOptions eo;
    eo.base_model_name_or_path = s.model;
    lora::export_peft(*r.adapters, s.out + "/adapter", eo);
    j["adapter"] = s.out + "/adapter";
  } else {
    fs::create_directories(s.out + "/adapter");
    nn::save_safetensors(s.out + "/adapter/trainable.safetensors", model->state_dict(true));
    j["adapter"] = s.out + "/adapter (trainable.safetensors)";
  }
  write_json(s.out + "/metrics.json", j);
  auto f = repro::ResultsFile::create(s.out + "/results.h5", meta_of(s.to_json(), s.device));
  repro::RunKey key{"train", p.model_name, r.method, p.task.name, s.seed};
  f.write_run(to_record(r, key, p.task));
  f.commit();
  std::printf("wrote %s/metrics.json, %s/adapter, %s/results.h5, %s/log.jsonl\n", s.out.c_str(),
              s.out.c_str(), s.out.c_str(), s.out.c_str());
  return kOk;
}

int cmd_importance(const Settings& s) {
  Logger log(s.out + "/log.jsonl", s.progress, /*fresh=*/true);
  Prepared p = prepare(s, log, true);
  auto model = p.src.make(labels_arg(p.task), static_cast<uint64_t>(s.seed), p.device);
  RunOptions o = run_options(s);
  if (o.method.rfind("loradrop", 0) != 0) o.method = "loradrop";
  o.importance_only = true;
  RunOutput r = run_method(*model, p.device, p.task, o, log);
  std::printf(
      "importance g_i = mean ||dW x||^2 over %lld sample examples (alpha = %g, n = %lld "
      "epochs); y_i = g_i / sum g; selection at T = %g:\n",
      static_cast<long long>(r.sample_size), s.sample_proportion,
      static_cast<long long>(s.sample_epochs), s.threshold);
  print_importance(r);
  json j = run_json(r, p.task);
  j["model"] = s.model;
  j["threshold"] = s.threshold;
  write_json(s.out + "/importance.json", j);
  std::printf("wrote %s/importance.json\n", s.out.c_str());
  return kOk;
}

int cmd_select(const Settings& s) {
  if (s.importance.empty()) throw UsageError("select: --importance FILE is required");
  if (!fs::is_regular_file(s.importance))
    throw InputError(fmt::format("importance file '{}' does not exist", s.importance));
  json j;
  {
    std::ifstream f(s.importance);
    j = json::parse(f, nullptr, false);
  }
  if (j.is_discarded() || !j.contains("importance") || !j["importance"].is_object())
    throw InputError(
        fmt::format("'{}' is not an importance.json (needs an \"importance\" object "
                    "of per-layer lists)",
                    s.importance));
  lora::SelectionConfig sc;
  sc.mode =
      s.select == "threshold" ? lora::SelectMode::Threshold : lora::parse_select_mode(s.select);
  sc.threshold = s.threshold;
  sc.k = s.k;
  sc.seed = static_cast<uint64_t>(s.seed);
  RunOutput r;
  json out = json::object();
  for (auto& [t, v] : j["importance"].items()) {
    std::vector<double> g;
    try {
      g = v.get<std::vector<double>>();
    } catch (const std::exception&) {
      throw InputError(
          fmt::format("'{}': importance.{} is not a list of numbers", s.importance, t));
    }
    r.importance[t] = g;
    r.selected[t] = as_input(s.importance, [&] { return lora::select_target_layers(g, sc, t); });
    out[t] = std::vector<bool>(r.selected[t].begin(), r.selected[t].end());
  }
  std::printf("selection (%s, T = %g):\n", s.select.c_str(), s.threshold);
  print_importance(r);
  write_json(s.out + "/selection.json",
             json{{"rule", s.select}, {"threshold", s.threshold}, {"selected", out}});
  std::printf("wrote %s/selection.json\n", s.out.c_str());
  return kOk;
}

int cmd_eval(const Settings& s) {
  Logger log("", false);
  Prepared p = prepare(s, log, true);
  int64_t nl = labels_arg(p.task);
  auto model = p.src.make(nl, static_cast<uint64_t>(s.seed), p.device);
  if (!s.adapter.empty())
    load_adapter(*model, s.adapter, static_cast<uint64_t>(s.seed));
  else
    std::fprintf(stderr,
                 "loradrop: note: no --adapter: evaluating the base model with an untrained "
                 "head\n");
  EvalResult e = evaluate_task(*model, device_forward(*model, p.device), p.task, s.batch_size);
  json j{{"task", p.task.name},      {"metric", p.task.metric_name},
         {"value", e.metric},        {"metrics", e.all},
         {"eval_loss", e.eval_loss}, {"examples", p.task.eval.size()},
         {"adapter", s.adapter},     {"model", s.model}};
  std::printf("%s\n", j.dump().c_str());
  if (s.out != "loradrop_out") write_json(s.out + "/eval.json", j);
  return kOk;
}

int cmd_export(const Settings& s) {
  if (s.adapter.empty()) throw UsageError("export: --adapter DIR is required");
  if (s.model.rfind("builtin:", 0) == 0)
    throw UsageError("export: --model must be the model directory the adapter was trained on");
  ModelSource src = load_model_dir(s.model);
  int64_t nl = adapter_num_labels(s.adapter);
  if (nl < 0) nl = src.config.num_labels;
  auto model = src.make(nl, 0, kCPU);
  auto set = load_adapter(*model, s.adapter, 0);
  if (!set) throw InputError("export: the adapter is not in PEFT format (trainable.safetensors)");
  if (s.format == "peft") {
    lora::PeftExportOptions eo;
    eo.base_model_name_or_path = s.model;
    lora::export_peft(*set, s.out, eo);
    std::printf("wrote PEFT adapter to %s (adapter_config.json, adapter_model.safetensors)\n",
                s.out.c_str());
    return kOk;
  }
  set->merge();
  std::map<std::string, Tensor> sd;
  for (auto& [n, t] : model->state_dict())
    if (n.find(".lora_") == std::string::npos) sd[n] = t;
  fs::create_directories(s.out);
  nn::save_safetensors(s.out + "/model.safetensors", sd, {{"format", "pt"}});
  json cfg;
  {
    std::ifstream f(s.model + "/config.json");
    cfg = json::parse(f);
  }
  cfg["num_labels"] = nl;
  json id2label = json::object();
  for (int64_t i = 0; i < nl; ++i) id2label[std::to_string(i)] = "LABEL_" + std::to_string(i);
  cfg["id2label"] = id2label;
  cfg["architectures"] = {src.config.model_type == "roberta" ? "RobertaForSequenceClassification"
                                                             : "BertForSequenceClassification"};
  write_json(s.out + "/config.json", cfg);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                        "vocab.txt", "special_tokens_map.json"})
    if (fs::exists(s.model + "/" + f))
      fs::copy_file(s.model + "/" + f, s.out + "/" + f, fs::copy_options::overwrite_existing);
  std::printf("wrote merged model to %s (model.safetensors, config.json, tokenizer files)\n",
              s.out.c_str());
  return kOk;
}

int cmd_info(const Settings& s) {
  ModelSource src;
  if (s.model.rfind("builtin:", 0) == 0) {
    const std::string name = s.model.substr(8);
    int64_t vocab = synth::kVocab;
    if (name == "tiny-bert") {
      const std::string tdir = s.tokenizer.empty() ? default_tokenizer() : s.tokenizer;
      vocab = as_input("tokenizer '" + tdir + "'", [&] {
                return data::load_tokenizer(tdir);
              })->vocab_size();
    }
    src.config = builtin_config(name, vocab);
    src.name = s.model;
  } else {
    src = load_model_dir(s.model);
  }
  const auto& c = src.config;
  int64_t nl = s.adapter.empty() ? c.num_labels : adapter_num_labels(s.adapter);
  if (nl < 0) nl = c.num_labels;
  auto base = src.make(nl, 0, kCPU);
  std::printf("model       %s\n", src.name.c_str());
  std::printf(
      "type        %s, %lld layers, hidden %lld, %lld heads, intermediate %lld, vocab %lld\n",
      c.model_type.c_str(), static_cast<long long>(c.num_hidden_layers),
      static_cast<long long>(c.hidden_size), static_cast<long long>(c.num_attention_heads),
      static_cast<long long>(c.intermediate_size), static_cast<long long>(c.vocab_size));
  std::printf("parameters  %lld in all (%lld without the classifier head, %lld labels)\n",
              static_cast<long long>(base->num_parameters()),
              static_cast<long long>(lora::count_trainable(*base)), static_cast<long long>(nl));
  std::printf("tokenizer   %s\n", src.tokenizer ? std::string(src.tokenizer->kind()).c_str()
                                                : "(none in the directory)");
  std::printf(
      "\n#Tr. Params per method (adapter parameters; the head is trained but not counted):\n");
  const auto targets = lora::default_targets(c.model_type);
  std::printf("  %-28s %12lld\n", "full fine-tuning",
              static_cast<long long>(lora::count_trainable(*base)));
  struct M {
    std::string label;
    lora::Method m;
    int64_t r;
  };
  int64_t per_layer_lora = 0;
  for (const M& m : {M{fmt::format("LoRA r={}", s.r), lora::Method::LoRA, s.r},
                     M{fmt::format("VeRA r={}", s.vera_r), lora::Method::VeRA, s.vera_r},
                     M{fmt::format("Tied-LoRA r={}", s.tied_r), lora::Method::TiedLoRA, s.tied_r},
                     M{fmt::format("Sparse Adapter r={} (0.5)", s.r), lora::Method::Sparse, s.r}}) {
    auto fresh = src.make(nl, 0, kCPU);
    lora::AdapterConfig ac;
    ac.method = m.m;
    ac.r = m.r;
    ac.targets = targets;
    Generator g(0);
    lora::AdapterSet set(*fresh, ac, g);
    int64_t n = set.num_adapter_parameters();
    if (m.m == lora::Method::Sparse) n = n / 2;  // SNIP keeps half of the entries
    if (m.m == lora::Method::LoRA) per_layer_lora = n / std::max<int64_t>(1, c.num_hidden_layers);
    std::printf("  %-28s %12lld\n", m.label.c_str(), static_cast<long long>(n));
  }
  std::printf("  LoRA-drop r=%lld keeping k of %lld layers per target (the rest share one):\n",
              static_cast<long long>(s.r), static_cast<long long>(c.num_hidden_layers));
  for (int64_t k = 1; k <= c.num_hidden_layers; ++k)
    std::printf("    k=%-3lld %12lld\n", static_cast<long long>(k),
                static_cast<long long>(per_layer_lora * (k + (k < c.num_hidden_layers ? 1 : 0))));
  if (!s.adapter.empty()) {
    auto set = load_adapter(*base, s.adapter, 0);
    std::printf("\nadapter     %s\n", s.adapter.c_str());
    if (set) {
      std::map<lora::LoraAdapter*, std::vector<std::string>> by;
      for (const lora::Site& site : set->sites())
        if (site.module) by[site.module->adapter().get()].push_back(site.name);
      std::printf("sites       %zu adapted, %zu distinct adapters, r = %lld\n", set->sites().size(),
                  by.size(), static_cast<long long>(set->config().r));
      for (const auto& [a, sites] : by)
        if (sites.size() > 1)
          std::printf("shared      %s by %zu sites\n", a->id.c_str(), sites.size());
      std::printf("#Tr. Params %lld\n", static_cast<long long>(set->num_adapter_parameters()));
    } else {
      std::printf("trainable.safetensors (non-PEFT method)\n");
    }
  }
  return kOk;
}

void quickstart_defaults(Settings& s, bool fast) {
  s.out = "quickstart_out";
  s.lr = 1e-3;
  s.epochs = 3;
  s.batch_size = 16;
  s.r = 8;
  s.lora_alpha = 16;
  s.sample_proportion = 0.1;
  s.sample_epochs = 3;
  s.threshold = 0.9;
  s.hist_bins = 40;
  s.max_train_examples = fast ? 400 : 1000;
  s.max_eval_examples = fast ? 200 : 500;
}

int cmd_quickstart(Settings s, const QuickstartOptions& q) {
  fs::create_directories(s.out);
  const std::string h5 = s.out + "/results.h5";
  Logger log(s.out + "/log.jsonl", s.progress, /*fresh=*/true);
  if (q.real && s.task == "synthetic")
    throw UsageError("quickstart --model DIR needs --task (a GLUE task) and --data DIR");
  Prepared p = prepare(s, log, true, q.fast);
  if (p.mlm_after >= 0)
    std::printf(
        "pretraining: masked-token accuracy on held-out sentences %.3f -> %.3f (chance "
        "1/%lld)\n",
        p.mlm_before, p.mlm_after, static_cast<long long>(synth::kWords));
  std::printf("task %s: %zu train / %zu eval examples, metric %s\n", p.task.name.c_str(),
              p.task.train.size(), p.task.eval.size(), p.task.metric_name.c_str());
  std::vector<RunOutput> runs;
  auto f = repro::ResultsFile::create(h5, meta_of(s.to_json(), s.device));
  for (const std::string method : {"frozen", "lora", "loradrop"}) {
    Settings ms = s;
    ms.method = method;
    ms.histograms = method != "frozen";
    RunOptions o = run_options(ms);
    auto model = p.src.make(labels_arg(p.task), static_cast<uint64_t>(s.seed), p.device);
    runs.push_back(run_method(*model, p.device, p.task, o, log));
    f.write_run(to_record(runs.back(),
                          repro::RunKey{"quickstart", p.model_name, method, p.task.name, s.seed},
                          p.task));
  }
  f.write_table(repro::TableSpec{"quickstart",
                                 "loradrop quickstart: frozen base + head, LoRA, LoRA-drop",
                                 "quickstart",
                                 p.model_name,
                                 {"frozen", "lora", "loradrop"},
                                 {p.task.name}});
  f.commit();
  repro::validate_schema(h5);
  print_table(
      fmt::format("{} on {} (seed {}, T = {})", p.model_name, p.task.name, s.seed, s.threshold),
      runs, p.task);
  const RunOutput& ld = runs[2];
  const RunOutput& lr = runs[1];
  std::printf("\nLoRA-drop importance (on the %lld-example sample) and selection:\n",
              static_cast<long long>(ld.sample_size));
  print_importance(ld);
  std::printf(
      "\nLoRA-drop keeps %.1f%% of LoRA's parameters (%lld of %lld); its %s is %+.4f vs "
      "LoRA and %+.4f vs the frozen base + head.\n",
      100.0 * static_cast<double>(ld.trainable_params) /
          static_cast<double>(std::max<int64_t>(1, lr.trainable_params)),
      static_cast<long long>(ld.trainable_params), static_cast<long long>(lr.trainable_params),
      p.task.metric_name.c_str(), ld.eval.metric - lr.eval.metric,
      ld.eval.metric - runs[0].eval.metric);
  std::printf(
      "One seed: differences of about a point are within seed noise (see paper_repro "
      "presets for several seeds).\n");
  std::printf("results: %s (schema ok)\n", h5.c_str());
  if (q.plots) {
    const int rc = run_plot(h5, s.out + "/figures");
    if (rc == 0) std::printf("figures: %s/figures (index.md lists them)\n", s.out.c_str());
  }
  return kOk;
}

}  // namespace ld::app
