// `loradrop repro nlg`: causal-LM LoRA / LoRA-drop on E2E, DART (BLEU) and DialogSum (ROUGE-L)
// with a Llama decoder (an HF directory, or a built-in one that is randomly initialised or
// self-pretrained on the training split's text), into the same HDF5 schema as the other
// experiments.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "apps/loradrop/app.h"
#include "core/threads.h"
#include "data/batching.h"
#include "data/nlg.h"
#include "data/sampling.h"
#include "data/tasks.h"
#include "lora/lm_pipeline.h"
#include "nn/llama.h"
#include "nn/safetensors.h"
#include "paper_repro/presets.h"

namespace fs = std::filesystem;

namespace ld::app {

nn::ModelConfig builtin_llama_config(const std::string& name, int64_t vocab_size) {
  nn::ModelConfig c;
  c.model_type = "llama";
  c.architectures = {"LlamaForCausalLM"};
  c.hidden_act = "silu";
  LD_CHECK(vocab_size > 0, "builtin:{} needs a tokenizer (its vocabulary size)", name);
  c.vocab_size = vocab_size;
  c.bos_token_id = 1;  // Llama 2's SentencePiece ids
  c.eos_token_ids = {2};
  c.rms_norm_eps = 1e-6;
  c.tie_word_embeddings = true;  // the 32k-row output layer is most of the cost; share it
  c.max_position_embeddings = 1024;
  if (name == "tiny-llama") {  // CI: 4 layers so that selection has something to choose
    c.hidden_size = 32;
    c.num_hidden_layers = 4;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;  // grouped-query attention, as Llama 2 70B (7b has none)
    c.intermediate_size = 64;
  } else if (name == "small-llama") {  // cpu-real: self-pretrained on the training split
    c.hidden_size = 128;
    c.num_hidden_layers = 6;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 4;
    c.intermediate_size = 344;
  } else {
    throw UsageError(fmt::format(
        "unknown built-in decoder 'builtin:{}' (builtin:tiny-llama or builtin:small-llama)", name));
  }
  c.head_dim = c.hidden_size / c.num_attention_heads;
  return c;
}

namespace {

// Llama initialisation as HF's LlamaPreTrainedModel: N(0, 0.02) weights, RMSNorm weights 1.
void init_llama(nn::Module& m, uint64_t seed) {
  NoGradGuard ng;
  Generator gen(seed);
  for (auto& [name, p] : m.named_parameters()) {
    Tensor t = p.detach();
    if (name.ends_with("norm.weight"))
      t.copy_(Tensor::ones(t.shape(), t.dtype(), t.device()));
    else
      normal_(t, 0.0, 0.02, gen);
  }
}

// Where a decoder comes from: a built-in configuration (random init, then optionally the
// self-pretrained weights) or an HF Llama directory.
struct LmSource {
  std::string name;
  nn::ModelConfig config;
  std::string checkpoint_dir;                // HF directory
  std::map<std::string, Tensor> base_state;  // built-in: weights after self-pretraining

  std::shared_ptr<nn::LlamaForCausalLM> make(uint64_t seed, Device device) const {
    auto m = std::make_shared<nn::LlamaForCausalLM>(config);
    if (checkpoint_dir.empty()) {
      init_llama(*m, 0x5eed);  // fixed base weights, the same for every run
      if (!base_state.empty()) m->load_state_dict(base_state, /*strict=*/true);
    } else {
      nn::LoadOptions lo;
      lo.allow_unexpected = {"*rotary_emb.inv_freq"};
      as_input("model directory '" + checkpoint_dir + "'",
               [&] { return nn::load_checkpoint(*m, checkpoint_dir, lo); });
    }
    if (!device.is_cpu()) m->to(device);
    m->set_generator(std::make_shared<Generator>(seed));
    return m;
  }
};

// One NLG task, tokenised.
struct NlgTask {
  std::string name, metric_name;  // "e2e", "bleu"
  lora::LmData train;             // every (input, reference) pair of the training inputs
  lora::LmData eval_pairs;        // each eval input with its first reference (eval loss)
  lora::GenerationData eval;      // each eval input with all its references
  lora::LmData pretrain;          // self-pretraining documents: <s> text </s>
  std::string split;              // how train / eval were made (recorded in the log)
  int64_t pad_id = 0, bos_id = 1, eos_id = 2;
};

struct TaskFiles {
  std::string dir, train, dev, what;
};
TaskFiles task_files(const std::string& task, const std::string& data_dir) {
  if (task == "e2e")
    return {data_dir + "/e2e_nlg", "trainset.csv", "devset.csv",
            "the E2E NLG dev set (tuetschek/e2e-dataset devset.csv)"};
  if (task == "dart")
    return {data_dir + "/dart", "dart-v1.1.1-full-train.json", "dart-v1.1.1-full-dev.json",
            "the DART v1.1.1 dev set (Yale-LILY/dart)"};
  if (task == "dialogsum")
    return {data_dir + "/dialogsum", "dialogsum.train.jsonl", "dialogsum.dev.jsonl",
            "the DialogSum dev set (cylnlp/dialogsum)"};
  throw UsageError(fmt::format("'{}' is not an NLG task (e2e, dart, dialogsum)", task));
}

// Throws an InputError naming the dev file when it is missing (before anything is loaded).
void check_nlg_data(const std::string& task, const std::string& data_dir) {
  const TaskFiles f = task_files(task, data_dir);
  const std::string dev = f.dir + "/" + f.dev;
  if (!fs::is_regular_file(dev))
    throw InputError(fmt::format("{}: data file '{}' does not exist (expected {})",
                                 data::task_info(task).display, dev, f.what));
}

data::NlgDataset read_nlg(const std::string& task, const std::string& path) {
  return as_input("data file '" + path + "'", [&] {
    if (task == "e2e") return data::read_e2e(path);
    if (task == "dart") return data::read_dart(path);
    return data::read_dialogsum(path);
  });
}

// Token ids of `text`; SentencePiece marks the word boundary itself (a leading " " would add a
// lone "▁" token), byte-level BPE needs the space.
std::vector<int64_t> ids_of(const data::Tokenizer& tok, const std::string& text) {
  auto v = tok.encode_ids(tok.kind() == "sentencepiece" ? text : " " + text);
  return {v.begin(), v.end()};
}

// <s> + prompt, with the source cut (by tokens, then decoded back to text) until the prompt fits
// `budget` tokens; a prompt that still does not fit is cut on the left of its last tokens.
std::vector<int64_t> prompt_ids(const data::Tokenizer& tok, const std::string& task,
                                const std::string& source, int64_t bos, size_t budget) {
  std::string src = source;
  std::vector<int64_t> p;
  for (int iter = 0; iter < 4; ++iter) {
    auto v = tok.encode_ids(data::nlg_prompt(task, src));
    p.assign(1, bos);
    p.insert(p.end(), v.begin(), v.end());
    if (p.size() <= budget) return p;
    auto s = tok.encode_ids(src);
    const size_t excess = p.size() - budget + 2;
    if (s.size() <= excess) break;
    s.resize(s.size() - excess);
    src = tok.decode(s);
  }
  if (p.size() > budget) p.erase(p.begin() + 1, p.begin() + 1 + (p.size() - budget));
  return p;
}

struct NlgLimits {
  int64_t max_length = 128, max_new_tokens = 64, max_train = 0, max_eval = 0;
};

// Reads and tokenises a task. With the official training file present, trains on it and
// evaluates on the dev set; otherwise (../shared/data has dev/test splits only) the dev set's
// inputs are split deterministically (seeded shuffle of the inputs, seed 0, independent of the run
// seed): 80% train, 20% eval, so that no input's references are on both sides.
NlgTask load_nlg_task(const std::string& task, const std::string& data_dir,
                      const data::Tokenizer& tok, const NlgLimits& lim) {
  NlgTask t;
  t.name = task;
  t.metric_name = data::metric_name(data::task_info(task).paper_metric);
  const TaskFiles f = task_files(task, data_dir);
  const std::string dev = f.dir + "/" + f.dev, train = f.dir + "/" + f.train;
  check_nlg_data(task, data_dir);
  std::vector<data::NlgExample> tr, ev;
  if (fs::is_regular_file(train)) {
    tr = read_nlg(task, train).examples;
    ev = read_nlg(task, dev).examples;
    t.split = fmt::format("train: {} ({} inputs); eval: {} ({} inputs)", train, tr.size(), dev,
                          ev.size());
  } else {
    std::vector<data::NlgExample> all = read_nlg(task, dev).examples;
    std::erase_if(all, [](const data::NlgExample& x) { return x.references.empty(); });
    if (all.size() < 2)
      throw InputError(fmt::format("{}: '{}' has {} inputs with references; need at least 2", task,
                                   dev, all.size()));
    auto order = data::shuffled_indices(all.size(), 0);
    const size_t n_eval = std::max<size_t>(1, all.size() / 5);
    for (size_t i = 0; i < order.size(); ++i) (i < n_eval ? ev : tr).push_back(all[order[i]]);
    t.split = fmt::format(
        "no training file ({}): {} split by input with a seeded shuffle (seed 0): {} inputs "
        "train, {} eval",
        train, dev, tr.size(), ev.size());
  }
  const auto& sp = tok.special_ids();
  t.bos_id = sp.bos >= 0 ? sp.bos : 1;
  t.eos_id = sp.eos >= 0 ? sp.eos : 2;
  t.pad_id = sp.pad >= 0 ? sp.pad : 0;
  const size_t max_len = static_cast<size_t>(lim.max_length);
  const size_t max_target = static_cast<size_t>(std::min(lim.max_new_tokens, lim.max_length / 2));
  auto target_ids = [&](const std::string& ref) {
    std::vector<int64_t> v = ids_of(tok, ref);
    v.push_back(t.eos_id);
    if (v.size() > max_target) v.resize(max_target);
    return v;
  };
  // Training pairs, capped by a seeded subset.
  std::vector<std::pair<size_t, size_t>> pairs;
  for (size_t i = 0; i < tr.size(); ++i)
    for (size_t r = 0; r < tr[i].references.size(); ++r) pairs.emplace_back(i, r);
  if (lim.max_train > 0 && pairs.size() > static_cast<size_t>(lim.max_train)) {
    auto o = data::shuffled_indices(pairs.size(), 1);
    o.resize(static_cast<size_t>(lim.max_train));
    std::sort(o.begin(), o.end());
    std::vector<std::pair<size_t, size_t>> kept;
    for (size_t i : o) kept.push_back(pairs[i]);
    pairs = kept;
  }
  std::map<size_t, std::vector<int64_t>> prompt_cache;
  for (auto [i, r] : pairs) {
    data::LmPair p;
    p.target = target_ids(tr[i].references[r]);
    auto it = prompt_cache.find(i);
    if (it == prompt_cache.end())
      it = prompt_cache
               .emplace(i, prompt_ids(tok, task, tr[i].source, t.bos_id, max_len - max_target))
               .first;
    p.prompt = it->second;
    t.train.pairs.push_back(std::move(p));
  }
  // Self-pretraining documents: the training inputs' source texts and references, each alone.
  std::set<size_t> inputs;
  for (auto [i, r] : pairs) inputs.insert(i);
  for (size_t i : inputs) {
    std::vector<std::string> texts = tr[i].references;
    texts.push_back(tr[i].source);
    for (const std::string& x : texts) {
      data::LmPair d;
      d.prompt = {t.bos_id};
      d.target = ids_of(tok, x);
      d.target.push_back(t.eos_id);
      if (d.target.size() > max_len - 1) d.target.resize(max_len - 1);
      t.pretrain.pairs.push_back(std::move(d));
    }
  }
  // Eval inputs (capped by the first ones of the split's order).
  if (lim.max_eval > 0 && ev.size() > static_cast<size_t>(lim.max_eval))
    ev.resize(static_cast<size_t>(lim.max_eval));
  std::erase_if(ev, [](const data::NlgExample& x) { return x.references.empty(); });
  const size_t gen_budget =
      max_len - static_cast<size_t>(std::min(lim.max_new_tokens, lim.max_length - 1));
  for (const auto& x : ev) {
    t.eval.prompts.push_back(prompt_ids(tok, task, x.source, t.bos_id, gen_budget));
    t.eval.references.push_back(x.references);
    data::LmPair p;
    p.target = target_ids(x.references.front());
    p.prompt = prompt_ids(tok, task, x.source, t.bos_id, max_len - max_target);
    t.eval_pairs.pairs.push_back(std::move(p));
  }
  if (t.train.size() == 0 || t.eval.size() == 0)
    throw InputError(fmt::format("{}: no training pairs or no eval inputs ({})", task, t.split));
  return t;
}

// The settings of one causal-LM run, from the preset's resolved hyperparameters.
struct NlgSettings {
  lora::LmPipelineConfig pipe;
  nn::GenerateOptions gen;
  int64_t max_length = 128, pretrain_steps = 0;
  double pretrain_lr = 1e-3;
};

NlgSettings nlg_settings(const repro::Preset& pr, const repro::ExperimentPreset& e,
                         const repro::ModelPreset& mp, const std::string& task) {
  const repro::Hyper h = pr.resolve(e, mp.name, task);
  auto refuse = [&](bool bad, const std::string& what) {
    if (bad) throw UsageError(fmt::format("preset {}: {}", pr.name, what));
  };
  refuse(h.schedule && *h.schedule != "linear",
         fmt::format("schedule '{}' is not implemented (linear only)", h.schedule.value_or("")));
  refuse(h.optimizer && *h.optimizer != "adamw",
         fmt::format("optimizer '{}' is not implemented (adamw only)", h.optimizer.value_or("")));
  refuse((h.adam_beta1 && *h.adam_beta1 != 0.9) || (h.adam_beta2 && *h.adam_beta2 != 0.999) ||
             (h.adam_eps && *h.adam_eps != 1e-8),
         "only AdamW(0.9, 0.999, 1e-8) is wired here");
  refuse(h.max_steps.has_value(), "max_steps is not implemented");
  refuse(h.init_from.has_value(), "init_from is not implemented");
  NlgSettings s;
  lora::LmPipelineConfig& c = s.pipe;
  c.adapter.targets = mp.targets;
  c.adapter.r = h.lora_r.value_or(8);
  c.adapter.alpha = h.lora_alpha.value_or(16);
  c.adapter.dropout = h.dropout.value_or(0.0);
  c.sample_ratio = pr.loradrop.sample_proportion;
  c.sample_epochs = pr.loradrop.sample_epochs;
  c.selection.threshold = pr.loradrop.threshold;
  c.epochs = h.epochs.value_or(3);
  c.train.batch_size = h.batch_size.value_or(8);
  c.train.lr = h.lr.value_or(2e-4);
  c.train.weight_decay = h.weight_decay.value_or(0.0);
  c.train.warmup_ratio = h.warmup_ratio.value_or(0.0);
  c.train.warmup_steps = h.warmup_steps.value_or(-1);
  c.train.max_grad_norm = h.grad_clip.value_or(0.0);
  c.label_smoothing = h.label_smoothing.value_or(0.0);
  c.importance.hist_lo = 1e-10;
  c.importance.hist_hi = 1e6;
  c.importance.bins = e.hist_bins;
  s.max_length = h.max_length.value_or(128);
  s.gen.max_new_tokens = h.max_new_tokens.value_or(64);
  s.gen.num_beams = h.num_beams.value_or(1);
  s.gen.length_penalty = h.length_penalty.value_or(1.0);
  s.gen.no_repeat_ngram_size = h.no_repeat_ngram_size.value_or(0);
  s.pretrain_steps = h.pretrain_steps.value_or(0);
  s.pretrain_lr = h.pretrain_lr.value_or(1e-3);
  refuse(s.gen.max_new_tokens < 1 || s.gen.max_new_tokens >= s.max_length,
         fmt::format("max_new_tokens {} must be in [1, max_length {})", s.gen.max_new_tokens,
                     s.max_length));
  refuse(s.gen.num_beams < 1, "num_beams must be >= 1");
  return s;
}

// The method names an NLG experiment may list.
void method_setup(const std::string& method, lora::LmPipelineConfig& c, uint64_t seed) {
  c.adapter.method = lora::Method::LoRA;
  c.loradrop = method.rfind("loradrop", 0) == 0;
  c.selection.seed = seed;
  if (method == "lora" || method == "loradrop") return;
  if (method == "vera" || method == "tied") {
    c.adapter.method = lora::parse_method(method);
    return;
  }
  if (method == "loradrop_noshare") return void(c.selection.share_rest = false);
  if (method == "loradrop_inverted") return void(c.selection.mode = lora::SelectMode::Inverted);
  if (method == "loradrop_random") return void(c.selection.mode = lora::SelectMode::RandomK);
  if (method == "loradrop_lastk") return void(c.selection.mode = lora::SelectMode::LastK);
  throw UsageError(fmt::format(
      "method '{}' is not wired for causal-LM (NLG) runs (frozen, lora, vera, tied, loradrop and "
      "its ablations are)",
      method));
}

struct NlgRun {
  double metric = 0, eval_loss = 0, seconds = 0;
  int64_t trainable_params = 0, lora_params = 0, sample_size = 0;
  std::vector<double> train_loss;
  std::map<std::string, std::vector<double>> importance;
  std::map<std::string, std::vector<bool>> selected;
  std::vector<std::string> hypotheses;
  int64_t steps = 0;
};

NlgRun run_one(const LmSource& src, Device dev, const data::Tokenizer& tok, const NlgTask& task,
               const NlgSettings& st, const std::string& method, uint64_t seed, Logger& log) {
  const auto t0 = std::chrono::steady_clock::now();
  auto m = src.make(seed, dev);
  NlgRun r;
  lora::LmPipelineConfig c = st.pipe;
  c.seed = seed;
  c.train.pad_id = task.pad_id;
  c.importance.bins = st.pipe.importance.bins;
  std::shared_ptr<lora::AdapterSet> adapters;
  if (method != "frozen") {
    method_setup(method, c, seed);
    c.progress = [&](const std::string& phase, int64_t step, int64_t total, double loss, double lr,
                     int64_t tokens) {
      log.step(method + " " + task.name + " (" + phase + ")", step, total, loss, lr, tokens);
    };
    lora::LmPipelineResult res = lora::run_lm_pipeline(*m, task.train, c);
    log.end_phase();
    adapters = res.adapters;
    r.train_loss = res.train_loss;
    r.trainable_params = res.trainable_params;
    r.lora_params = res.lora_params;
    r.sample_size = res.sample_size;
    r.importance = res.importance;
    r.selected = res.selected;
    r.steps = static_cast<int64_t>(res.train_loss.size());
  } else {
    m->freeze_all();
  }
  r.eval_loss = lora::lm_eval_loss(*m, task.eval_pairs, c.train.batch_size, task.pad_id);
  // Plain adapters: ||ΔW x||² after training on the eval inputs (the importance figure's data).
  if (adapters && !c.loradrop) {
    lora::ImportanceTracker after(c.importance);
    adapters->attach_tracker(after);
    lora::lm_importance_pass(*adapters, *m, task.eval_pairs, c.train.batch_size, task.pad_id);
    for (const std::string& t : after.targets()) r.importance[t] = after.means(t);
  }
  nn::GenerateOptions g = st.gen;
  g.eos_token_ids = {task.eos_id};
  g.pad_token_id = task.pad_id;
  auto outs =
      lora::generate_continuations(*m, task.eval.prompts, g, c.train.batch_size, task.pad_id);
  for (const auto& o : outs) {
    std::vector<int32_t> v(o.begin(), o.end());
    std::string s = tok.decode(v);
    while (!s.empty() && (s.front() == ' ' || s.front() == '\n')) s.erase(s.begin());
    r.hypotheses.push_back(s);
  }
  r.metric = lora::score_generation(task.metric_name, r.hypotheses, task.eval.references);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

// Self-pretraining of a built-in decoder as a causal LM on the training split's text (full
// parameters, AdamW, linear warmup/decay), cached in `cache` so that every run of the task (and a
// resumed experiment) starts from the same weights.
std::map<std::string, Tensor> self_pretrain(const LmSource& src, const NlgTask& task,
                                            const NlgSettings& st, const std::string& cache,
                                            Logger& log) {
  if (fs::exists(cache)) {
    log.say(fmt::format("{}: self-pretrained weights from {}", task.name, cache));
    return nn::load_safetensors(cache);
  }
  auto m = src.make(0, kCPU);
  const double before = lora::lm_eval_loss(*m, task.eval_pairs, 16, task.pad_id);
  // Exactly steps x batch documents: the shuffled documents, repeated as often as needed.
  const int64_t bs = st.pipe.train.batch_size;
  std::vector<size_t> idx;
  for (uint64_t ep = 0; static_cast<int64_t>(idx.size()) < st.pretrain_steps * bs; ++ep)
    for (size_t i : data::shuffled_indices(task.pretrain.size(), 0x9e37 + ep)) idx.push_back(i);
  idx.resize(static_cast<size_t>(st.pretrain_steps * bs));
  lora::LmData docs = task.pretrain.subset(idx);
  lora::TrainOptions to;
  to.epochs = 1;
  to.batch_size = bs;
  to.lr = st.pretrain_lr;
  to.weight_decay = 0.01;
  to.warmup_ratio = 0.05;
  to.max_grad_norm = 1.0;
  to.pad_id = task.pad_id;
  to.seed = 0x5eed;
  lora::train_lm(*m, nullptr, docs, to, 0.0, false,
                 [&](int64_t step, int64_t total, double loss, double lr, int64_t tokens) {
                   log.step("self-pretrain " + task.name, step, total, loss, lr, tokens);
                 });
  log.end_phase();
  const double after = lora::lm_eval_loss(*m, task.eval_pairs, 16, task.pad_id);
  log.say(fmt::format(
      "{}: self-pretrained {} for {} steps on {} documents of the training split: eval target "
      "loss {:.3f} -> {:.3f}",
      task.name, src.name, st.pretrain_steps, task.pretrain.size(), before, after));
  auto sd = m->state_dict();
  nn::save_safetensors(cache, sd);
  return sd;
}

}  // namespace

bool is_generation_experiment(const repro::ExperimentPreset& e) {
  for (const std::string& t : e.tasks)
    if (t != "synthetic" && data::task_info(t).kind == data::TaskKind::kGeneration) return true;
  return false;
}

int run_nlg_experiment(const repro::Preset& pr, const repro::ExperimentPreset& e,
                       const ReproOptions& ro) {
  for (const std::string& t : e.tasks)
    if (t == "synthetic" || data::task_info(t).kind != data::TaskKind::kGeneration)
      throw UsageError(fmt::format(
          "preset {}: experiment {} mixes generation tasks with '{}'; put them in separate "
          "experiments",
          pr.name, e.name, t));
  const std::string dir = ro.out + "/" + pr.name;
  fs::create_directories(dir);
  const std::string h5 = dir + "/" + e.name + ".h5";
  const std::string device = ro.device.empty() ? pr.device : ro.device;
  const Device dev = parse_device(device);
  repro::RunMeta meta;
  meta.program_version = repro::program_version();
  meta.git_commit = repro::build_git_commit();
  meta.config_json = pr.to_json();
  meta.device =
      device == "cpu" ? "cpu (" + std::to_string(ld::num_threads()) + " threads)" : device;
  Logger log(dir + "/" + e.name + ".log.jsonl", true);
  const std::vector<int64_t> seeds = e.seeds.empty() ? pr.seeds : e.seeds;
  int64_t done = 0, skipped = 0;
  for (const std::string& model : e.models) {
    const repro::ModelPreset& mp = pr.models.at(model);
    for (const std::string& task : e.tasks) {
      if (fs::exists(h5)) {
        repro::ResultsReader rd(h5);
        bool need = false;
        for (const std::string& m : e.methods)
          for (int64_t sd : seeds) need = need || !rd.has_run({e.name, model, m, task, sd});
        if (!need) {
          skipped += static_cast<int64_t>(e.methods.size() * seeds.size());
          continue;
        }
      }
      check_nlg_data(task, pr.data_dir);
      const NlgSettings st = nlg_settings(pr, e, mp, task);
      // Decoder and tokenizer.
      LmSource src;
      std::shared_ptr<data::Tokenizer> tok;
      const std::string source = pr.expand(mp.source);
      src.name = source;
      if (source.rfind("builtin:", 0) == 0) {
        const std::string tdir = pr.data_dir + "/tokenizers/llama2";
        tok = as_input("tokenizer '" + tdir + "'", [&]() -> std::shared_ptr<data::Tokenizer> {
          if (!fs::is_regular_file(tdir + "/tokenizer.model"))
            throw InputError(fmt::format("'{}/tokenizer.model' does not exist", tdir));
          return data::load_tokenizer(tdir);
        });
        src.config = builtin_llama_config(source.substr(8), tok->vocab_size());
      } else {
        if (!fs::is_directory(source))
          throw InputError(fmt::format("model directory '{}' does not exist", source));
        if (!fs::is_regular_file(source + "/config.json"))
          throw InputError(fmt::format("model directory '{}' has no config.json", source));
        src.config =
            as_input("model config", [&] { return nn::load_config(source + "/config.json"); });
        if (src.config.model_type != "llama")
          throw InputError(fmt::format("model '{}' is a {} model; NLG runs need a llama decoder",
                                       source, src.config.model_type));
        src.checkpoint_dir = source;
        tok = as_input("tokenizer in '" + source + "'", [&]() -> std::shared_ptr<data::Tokenizer> {
          return data::load_tokenizer(source);
        });
      }
      NlgLimits lim;
      const repro::Hyper h = pr.resolve(e, model, task);
      lim.max_length = st.max_length;
      lim.max_new_tokens = st.gen.max_new_tokens;
      lim.max_train = h.max_train_examples.value_or(0);
      lim.max_eval = h.max_eval_examples.value_or(0);
      const NlgTask td = load_nlg_task(task, pr.data_dir, *tok, lim);
      log.say(fmt::format("{}/{}: {} {}: {} training pairs, {} eval inputs; {}", pr.name, e.name,
                          model, task, td.train.size(), td.eval.size(), td.split));
      if (st.pretrain_steps > 0) {
        if (!src.checkpoint_dir.empty())
          throw UsageError(
              fmt::format("preset {}: pretrain_steps is for built-in decoders only; "
                          "{} is a pretrained model",
                          pr.name, source));
        const std::string cache =
            fmt::format("{}/{}_{}_{}_selfpretrained_s{}_n{}_L{}.safetensors", dir, e.name, model,
                        task, st.pretrain_steps, td.pretrain.size(), st.max_length);
        src.base_state = self_pretrain(src, td, st, cache, log);
      }
      for (const std::string& method : e.methods)
        for (int64_t sd : seeds) {
          repro::RunKey key{e.name, model, method, task, sd};
          auto f = repro::ResultsFile::open_or_create(h5, meta);
          if (f.has_run(key)) {
            ++skipped;
            continue;
          }
          NlgRun r = run_one(src, dev, *tok, td, st, method, static_cast<uint64_t>(sd), log);
          repro::RunRecord rec;
          rec.key = key;
          rec.metric_name = td.metric_name;
          rec.metric = r.metric;
          rec.trainable_params = r.trainable_params;
          rec.train_loss = r.train_loss;
          rec.eval_history = {{static_cast<double>(r.steps), r.metric}};
          rec.importance = r.importance;
          rec.selected = r.selected;
          rec.params["seconds"] = r.seconds;
          rec.params["eval_loss"] = r.eval_loss;
          rec.params["self_pretrained"] = st.pretrain_steps > 0 ? 1.0 : 0.0;
          rec.params["num_beams"] = static_cast<double>(st.gen.num_beams);
          rec.params["eval_inputs"] = static_cast<double>(td.eval.size());
          rec.params["train_pairs"] = static_cast<double>(td.train.size());
          if (r.sample_size > 0) {
            rec.params["lora_params"] = static_cast<double>(r.lora_params);
            rec.params["sample_size"] = static_cast<double>(r.sample_size);
          }
          f.write_run(rec);
          f.write_table(repro::TableSpec{e.models.size() > 1 ? e.name + "_" + model : e.name,
                                         e.description, e.name, model, e.methods, e.tasks});
          f.commit();
          ++done;
          // The generated texts beside the results, for reading.
          {
            const std::string pdir = dir + "/" + e.name + "_predictions";
            fs::create_directories(pdir);
            std::ofstream out(
                fmt::format("{}/{}_{}_{}_seed{}.jsonl", pdir, model, method, task, sd));
            for (size_t i = 0; i < r.hypotheses.size(); ++i)
              out << nlohmann::json(
                         {{"hypothesis", r.hypotheses[i]}, {"references", td.eval.references[i]}})
                         .dump()
                  << "\n";
          }
          log.event(nlohmann::json({{"event", "run_done"},
                                    {"method", method},
                                    {"task", task},
                                    {"seed", sd},
                                    {"metric", td.metric_name},
                                    {"value", r.metric},
                                    {"eval_loss", r.eval_loss},
                                    {"trainable_params", r.trainable_params},
                                    {"seconds", r.seconds}})
                        .dump());
          std::string kept;
          for (const auto& [t, sel] : r.selected)
            kept +=
                fmt::format(" {} {}/{}", t, std::count(sel.begin(), sel.end(), true), sel.size());
          log.say(fmt::format(
              "{}/{}: {} {} {} seed {}: {} = {:.4f}, eval loss {:.4f}, #Tr. params {}{}{}, "
              "{:.1f} s",
              pr.name, e.name, model, method, task, sd, td.metric_name, r.metric, r.eval_loss,
              r.trainable_params, kept.empty() ? "" : ", own adapters:", kept, r.seconds));
        }
    }
  }
  return finish_experiment(pr, e, ro, h5, dir, done, skipped);
}

}  // namespace ld::app
