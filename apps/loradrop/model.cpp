// Models (HF directories and the built-in encoders), GLUE task loading and task-metric evaluation
// for the loradrop program.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "apps/loradrop/app.h"
#include "data/glue.h"
#include "data/metrics.h"
#include "data/sampling.h"
#include "data/tasks.h"
#include "nn/safetensors.h"

namespace fs = std::filesystem;

namespace ld::app {

void init_weights(nn::Module& m, uint64_t seed, const std::string& pattern) {
  NoGradGuard ng;
  Generator gen(seed);
  for (auto& [name, p] : m.named_parameters()) {
    if (!nn::name_matches(pattern, name)) continue;
    Tensor t = p.detach();
    const bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (name.find("LayerNorm") != std::string::npos || name.find("layer_norm") != std::string::npos)
      t.copy_(Tensor::full(t.shape(), is_bias ? 0.0 : 1.0, t.dtype(), t.device()));
    else if (is_bias)
      t.copy_(Tensor::zeros(t.shape(), t.dtype(), t.device()));
    else
      normal_(t, 0.0, 0.02, gen);
  }
}

nn::ModelConfig builtin_config(const std::string& name, int64_t vocab_size) {
  nn::ModelConfig c;
  c.hidden_act = "gelu";
  c.hidden_dropout_prob = 0.1;
  c.attention_probs_dropout_prob = 0.1;
  if (name == "quickstart") {
    // RoBERTa-shaped: <s>=0, <pad>=1, </s>=2, <mask>=3; positions start at pad + 1.
    c.model_type = "roberta";
    c.architectures = {"RobertaForSequenceClassification"};
    c.vocab_size = vocab_size > 0 ? vocab_size : synth::kVocab;
    c.hidden_size = 64;
    c.num_hidden_layers = 6;
    c.num_attention_heads = 4;
    c.intermediate_size = 128;
    c.max_position_embeddings = 64;
    c.pad_token_id = 1;
    c.bos_token_id = 0;
    c.eos_token_ids = {2};
    c.type_vocab_size = 1;
    c.layer_norm_eps = 1e-5;
  } else if (name == "tiny-bert") {
    c.model_type = "bert";
    c.architectures = {"BertForSequenceClassification"};
    LD_CHECK(vocab_size > 0, "builtin:tiny-bert needs a tokenizer (its vocabulary size)");
    c.vocab_size = vocab_size;
    c.hidden_size = 64;
    c.num_hidden_layers = 4;
    c.num_attention_heads = 4;
    c.intermediate_size = 128;
    c.max_position_embeddings = 512;
    c.pad_token_id = 0;
    c.type_vocab_size = 2;
    c.layer_norm_eps = 1e-12;
  } else {
    throw UsageError(fmt::format(
        "unknown built-in model 'builtin:{}' (builtin:quickstart or builtin:tiny-bert)", name));
  }
  c.head_dim = c.hidden_size / c.num_attention_heads;
  c.num_key_value_heads = c.num_attention_heads;
  return c;
}

std::shared_ptr<nn::EncoderForSequenceClassification> ModelSource::make(int64_t num_labels,
                                                                        uint64_t seed,
                                                                        Device device) const {
  nn::ModelConfig c = config;
  c.num_labels = num_labels;
  c.problem_type = num_labels == 1 ? "regression" : "single_label_classification";
  auto m = std::make_shared<nn::EncoderForSequenceClassification>(c);
  std::set<std::string> fresh;
  if (checkpoint_dir.empty()) {
    init_weights(*m, 0x5eed);  // fixed base weights, the same for every run
    if (!builtin_state.empty()) m->load_state_dict(builtin_state, /*strict=*/false);
    for (auto& [n, p] : m->named_parameters())
      if (nn::name_matches("classifier.*", n)) fresh.insert(n);
  } else {
    nn::LoadOptions lo;
    lo.allow_missing = {"classifier.*", "*pooler*"};
    lo.allow_unexpected = {"*pooler*", "lm_head.*", "cls.*", "*position_ids"};
    nn::LoadReport rep = as_input("model directory '" + checkpoint_dir + "'",
                                  [&] { return nn::load_checkpoint(*m, checkpoint_dir, lo); });
    fresh.insert(rep.missing.begin(), rep.missing.end());
  }
  {
    NoGradGuard ng;
    Generator gen(seed * 7919 + 17);
    for (auto& [n, p] : m->named_parameters()) {
      if (!fresh.count(n)) continue;
      Tensor t = p.detach();
      if (n.size() > 5 && n.compare(n.size() - 5, 5, ".bias") == 0)
        t.copy_(Tensor::zeros(t.shape(), t.dtype(), t.device()));
      else
        normal_(t, 0.0, 0.02, gen);
    }
  }
  if (!device.is_cpu()) m->to(device);
  m->set_generator(std::make_shared<Generator>(seed));
  return m;
}

ModelSource load_model_dir(const std::string& dir) {
  ModelSource src;
  src.name = dir;
  if (!fs::is_directory(dir))
    throw InputError(fmt::format("model directory '{}' does not exist", dir));
  const std::string cfg = dir + "/config.json";
  if (!fs::is_regular_file(cfg))
    throw InputError(fmt::format("model directory '{}' has no config.json", dir));
  src.config = as_input("model config", [&] { return nn::load_config(cfg); });
  if (!src.config.is_encoder())
    throw InputError(
        fmt::format("model '{}' is a {} model; loradrop's classification commands "
                    "need an encoder (roberta or bert)",
                    dir, src.config.model_type));
  if (!fs::exists(dir + "/model.safetensors") && !fs::exists(dir + "/model.safetensors.index.json"))
    throw InputError(fmt::format(
        "model directory '{}' has no model.safetensors (or model.safetensors.index.json); a "
        "pytorch_model.bin must be converted once (see tools/export_minilm.py)",
        dir));
  src.checkpoint_dir = dir;
  bool has_tok = false;
  for (const char* f : {"tokenizer.json", "vocab.json", "vocab.txt", "tokenizer.model"})
    has_tok = has_tok || fs::exists(dir + "/" + f);
  if (!has_tok) return src;  // info/export need no tokenizer; tasks check for one
  src.tokenizer = as_input("tokenizer in '" + dir + "'", [&]() -> std::shared_ptr<data::Tokenizer> {
    if (src.config.model_type == "bert" && fs::exists(dir + "/vocab.txt")) {
      data::WordPieceOptions wo;
      if (fs::exists(dir + "/tokenizer_config.json")) {
        std::ifstream f(dir + "/tokenizer_config.json");
        auto j = nlohmann::json::parse(f, nullptr, false);
        if (j.is_object() && j.contains("do_lower_case") && j["do_lower_case"].is_boolean())
          wo.lowercase = j["do_lower_case"].get<bool>();
      }
      return data::load_wordpiece(dir + "/vocab.txt", wo);
    }
    return data::load_tokenizer(dir);
  });
  return src;
}

// ---- GLUE ----

TaskData load_glue_task(const std::string& task, const std::string& data_dir,
                        const data::Tokenizer& tok, int64_t max_length, int64_t max_train,
                        int64_t max_eval, uint64_t seed) {
  const data::TaskInfo& info =
      as_input("task", [&]() -> const data::TaskInfo& { return data::task_info(task); });
  if (info.kind == data::TaskKind::kGeneration)
    throw UsageError(
        fmt::format("task '{}' is a generation task; train/eval here run sequence "
                    "classification (GLUE) tasks",
                    task));
  auto file = [&](data::GlueSplit split) {
    const std::string name = data::glue_file_name(info.name, split);
    for (const std::string& p : {data_dir + "/" + info.display + "/" + name, data_dir + "/" + name})
      if (fs::is_regular_file(p)) return p;
    throw InputError(fmt::format("no {} for task {} under '{}' (expected {}/{}/{} or {}/{})", name,
                                 info.display, data_dir, data_dir, info.display, name, data_dir,
                                 name));
  };
  const std::string train_path = file(data::GlueSplit::kTrain);
  const std::string dev_path =
      file(info.name == "mnli" ? data::GlueSplit::kDev : data::GlueSplit::kDev);
  data::GlueDataset tr =
      as_input(train_path, [&] { return data::read_glue(info.name, train_path, true); });
  data::GlueDataset dv =
      as_input(dev_path, [&] { return data::read_glue(info.name, dev_path, true); });
  LD_CHECK(!tr.examples.empty() && !dv.examples.empty(), "task {}: empty train or dev set", task);

  TaskData t;
  t.name = info.name;
  t.regression = info.is_regression();
  t.num_labels = info.num_labels();
  t.metric_name = data::metric_name(info.paper_metric);
  const auto& sp = tok.special_ids();
  t.pad_id = sp.pad >= 0 ? sp.pad : 0;
  data::EncodeOptions eo;
  eo.max_length = static_cast<size_t>(max_length);

  auto encode = [&](const data::GlueDataset& ds, const std::vector<size_t>& idx,
                    lora::ClassificationData& out) {
    for (size_t i : idx) {
      const auto& ex = ds.examples[i];
      data::Encoding e =
          ex.text_b.empty() ? tok.encode(ex.text_a, eo) : tok.encode_pair(ex.text_a, ex.text_b, eo);
      out.ids.emplace_back(e.ids.begin(), e.ids.end());
      // Segment ids travel with every example (BERT pairs need them; for RoBERTa they are 0).
      if (e.type_ids.size() == e.ids.size())
        out.type_ids.emplace_back(e.type_ids.begin(), e.type_ids.end());
      else
        out.type_ids.emplace_back(e.ids.size(), 0);
      if (t.regression)
        out.targets.push_back(ex.score);
      else
        out.labels.push_back(ex.label);
    }
  };
  std::vector<size_t> tr_idx;
  const size_t n = tr.examples.size();
  if (max_train > 0 && static_cast<size_t>(max_train) < n) {
    const double a = static_cast<double>(max_train) / static_cast<double>(n);
    tr_idx = t.regression ? data::stratified_sample_regression(tr.scores(), a, seed)
                          : data::stratified_sample(tr.labels(), a, seed);
  } else {
    for (size_t i = 0; i < n; ++i) tr_idx.push_back(i);
  }
  std::vector<size_t> dv_idx = data::shuffled_indices(dv.examples.size(), 12345);
  if (max_eval > 0 && static_cast<size_t>(max_eval) < dv_idx.size()) dv_idx.resize(max_eval);
  std::sort(dv_idx.begin(), dv_idx.end());
  encode(tr, tr_idx, t.train);
  encode(dv, dv_idx, t.eval);
  return t;
}

// ---- evaluation ----

lora::ForwardFn device_forward(nn::EncoderForSequenceClassification& m, Device device) {
  return [&m, device](const lora::Batch& b) {
    if (device.is_cpu()) return m.forward(b.ids, b.mask, b.type_ids, b.labels);
    return m.forward(b.ids.to(device), b.mask.to(device),
                     b.type_ids.defined() ? b.type_ids.to(device) : Tensor(),
                     b.labels.defined() ? b.labels.to(device) : Tensor());
  };
}

EvalResult evaluate_task(nn::Module& model, const lora::ForwardFn& fwd, const TaskData& task,
                         int64_t batch_size) {
  const auto& d = task.eval;
  LD_CHECK(d.size() > 0, "evaluate: no eval examples");
  const bool was = model.is_training();
  model.eval();
  NoGradGuard ng;
  std::vector<int64_t> pred;
  std::vector<double> score;
  double loss_sum = 0;
  for (size_t i = 0; i < d.size(); i += static_cast<size_t>(batch_size)) {
    std::vector<size_t> idx;
    for (size_t j = i; j < std::min(d.size(), i + static_cast<size_t>(batch_size)); ++j)
      idx.push_back(j);
    lora::Batch b = lora::make_batch(d, idx, task.pad_id);
    nn::SeqClsOutput out = fwd(b);
    loss_sum += out.loss.item() * static_cast<double>(idx.size());
    if (task.regression) {
      auto p = out.logits.reshape({-1}).to(kCPU, DType::f64).to_vector<double>();
      score.insert(score.end(), p.begin(), p.end());
    } else {
      auto p = argmax(out.logits, 1).to(kCPU).to_vector<int64_t>();
      pred.insert(pred.end(), p.begin(), p.end());
    }
  }
  model.train(was);
  EvalResult r;
  r.eval_loss = loss_sum / static_cast<double>(d.size());
  if (task.regression) {
    r.all["pearson"] = data::pearson(score, d.targets);
    r.all["spearman"] = data::spearman(score, d.targets);
  } else {
    r.all["accuracy"] = data::accuracy(pred, d.labels);
    r.all["matthews"] = data::matthews_corr(pred, d.labels);
    if (task.num_labels == 2) r.all["f1"] = data::f1_binary(pred, d.labels);
  }
  auto it = r.all.find(task.metric_name);
  LD_CHECK(it != r.all.end(), "task {}: metric {} not computed", task.name, task.metric_name);
  r.metric = it->second;
  if (std::isnan(r.metric)) r.metric = 0;  // a constant prediction has no correlation
  return r;
}

}  // namespace ld::app
