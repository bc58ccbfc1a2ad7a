// Causal-LM LoRA / LoRA-drop: loss with label smoothing, training, eval loss, importance pass,
// batched generation and scoring; the run itself reuses pipeline.cpp's loop and rebuild.
#include "lora/lm_pipeline.h"

#include <algorithm>
#include <cmath>

#include "data/metrics.h"
#include "data/sampling.h"
#include "nn/layers.h"

namespace ld::lora {
namespace {

Device device_of(const nn::Module& m) {
  auto ps = m.parameters();
  return ps.empty() ? kCPU : ps.front().device();
}

std::vector<size_t> iota_n(size_t n) {
  std::vector<size_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

data::PadOptions right_pad(int64_t pad_id) {
  data::PadOptions p;
  p.pad_id = pad_id;
  return p;
}

// Labels i64 [B, T] -> the number of positions whose shifted label counts, and that mask (f32).
std::pair<int64_t, std::vector<float>> shifted_valid(const Tensor& labels) {
  const int64_t B = labels.size(0), T = labels.size(1);
  std::vector<int64_t> l = labels.to(kCPU).contiguous().to_vector<int64_t>();
  std::vector<float> v(B * T, 0.0f);
  int64_t n = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t + 1 < T; ++t)
      if (l[b * T + t + 1] != data::kIgnoreIndex) {
        v[b * T + t] = 1.0f;
        ++n;
      }
  return {n, v};
}

}  // namespace

LmData LmData::subset(const std::vector<size_t>& idx) const {
  LmData out;
  for (size_t i : idx) {
    LD_CHECK(i < pairs.size(), "subset: index {} out of range ({} pairs)", i, pairs.size());
    out.pairs.push_back(pairs[i]);
  }
  return out;
}

Tensor lm_batch_loss(nn::LlamaForCausalLM& m, const data::Batch& b, double label_smoothing) {
  LD_CHECK(b.labels.defined() && b.labels.dim() == 2, "lm_batch_loss: the batch has no LM labels");
  LD_CHECK(label_smoothing >= 0 && label_smoothing < 1, "label smoothing must be in [0, 1), got {}",
           label_smoothing);
  const Device dev = device_of(m);
  Tensor ids = b.input_ids.to(dev), mask = b.attention_mask.to(dev), labels = b.labels.to(dev);
  if (label_smoothing == 0) return m.forward(ids, mask, labels).loss;
  nn::CausalLMOutput out = m.forward(ids, mask);
  Tensor nll = nn::causal_lm_loss(out.logits, labels);
  auto [n, valid] = shifted_valid(b.labels);
  LD_CHECK(n > 0, "lm_batch_loss: no target token in the batch");
  const int64_t B = out.logits.size(0), T = out.logits.size(1);
  // -mean_v log p(v) at every counted position, averaged over those positions.
  Tensor per_pos = mean(log_softmax(out.logits, -1), {2});  // [B, T]
  Tensor smooth =
      mul(sum(per_pos * Tensor::from_vector(valid, {B, T}, dev)), -1.0 / static_cast<double>(n));
  return mul(nll, 1.0 - label_smoothing) + mul(smooth, label_smoothing);
}

std::vector<double> train_lm(nn::LlamaForCausalLM& m, AdapterSet* set, const LmData& d,
                             const TrainOptions& opt, double label_smoothing,
                             bool collect_last_epoch, const StepFn& on_step) {
  LD_CHECK(d.size() > 0, "train_lm: no training pairs");
  std::vector<std::pair<std::string, Tensor>> params;
  if (set) {
    params = set->trainable_parameters();
  } else {
    for (auto& [n, p] : m.named_parameters())
      if (p.requires_grad()) params.emplace_back(n, p);
  }
  return train_steps(
      m, params, set, d.size(), opt,
      [&](const std::vector<size_t>& idx, bool collect) {
        data::Batch b = data::collate_lm(d.pairs, idx, right_pad(opt.pad_id));
        if (collect) set->collector().set_token_mask(b.attention_mask.to(device_of(m)));
        return StepLoss{lm_batch_loss(m, b, label_smoothing), b.num_tokens};
      },
      collect_last_epoch, on_step);
}

double lm_eval_loss(nn::LlamaForCausalLM& m, const LmData& d, int64_t batch_size, int64_t pad_id) {
  LD_CHECK(d.size() > 0, "lm_eval_loss: no pairs");
  const bool was_training = m.is_training();
  m.eval();
  NoGradGuard ng;
  double sum = 0;
  int64_t count = 0;
  for (const auto& idx : batches_of(d.size(), batch_size, iota_n(d.size()))) {
    data::Batch b = data::collate_lm(d.pairs, idx, right_pad(pad_id));
    const int64_t n = shifted_valid(b.labels).first;
    if (n == 0) continue;
    sum += lm_batch_loss(m, b, 0.0).item() * static_cast<double>(n);
    count += n;
  }
  m.train(was_training);
  LD_CHECK(count > 0, "lm_eval_loss: no target tokens");
  return sum / static_cast<double>(count);
}

void lm_importance_pass(AdapterSet& set, nn::LlamaForCausalLM& m, const LmData& d,
                        int64_t batch_size, int64_t pad_id) {
  const bool was_training = m.is_training();
  m.eval();
  NoGradGuard ng;
  const Device dev = device_of(m);
  set.set_collecting(true);
  for (const auto& idx : batches_of(d.size(), batch_size, iota_n(d.size()))) {
    data::Batch b = data::collate_lm(d.pairs, idx, right_pad(pad_id));
    set.collector().set_token_mask(b.attention_mask.to(dev));
    m.forward(b.input_ids.to(dev), b.attention_mask.to(dev));
    set.collector().flush();
  }
  set.set_collecting(false);
  m.train(was_training);
}

std::vector<std::vector<int64_t>> generate_continuations(
    nn::LlamaForCausalLM& m, const std::vector<std::vector<int64_t>>& prompts,
    const nn::GenerateOptions& gen, int64_t batch_size, int64_t pad_id) {
  const Device dev = device_of(m);
  nn::GenerateOptions g = gen;
  if (!g.pad_token_id) g.pad_token_id = pad_id;
  std::vector<std::vector<int64_t>> out(prompts.size());
  data::PadOptions po;
  po.pad_id = pad_id;
  po.side = data::PadSide::kLeft;
  for (const auto& idx : batches_of(prompts.size(), batch_size, iota_n(prompts.size()))) {
    data::Batch b = data::collate_generation(prompts, idx, po);
    const int64_t L = b.input_ids.size(1);
    Tensor ids = m.generate(b.input_ids.to(dev), b.attention_mask.to(dev), g);
    const int64_t W = ids.size(1);
    std::vector<int64_t> host = ids.to(kCPU).contiguous().to_vector<int64_t>();
    for (size_t r = 0; r < idx.size(); ++r) {
      std::vector<int64_t>& o = out[idx[r]];
      for (int64_t t = L; t < W; ++t) {
        const int64_t tok = host[static_cast<int64_t>(r) * W + t];
        if (std::find(g.eos_token_ids.begin(), g.eos_token_ids.end(), tok) != g.eos_token_ids.end())
          break;
        o.push_back(tok);
      }
    }
  }
  return out;
}

double score_generation(const std::string& metric, const std::vector<std::string>& hypotheses,
                        const std::vector<std::vector<std::string>>& references) {
  LD_CHECK(hypotheses.size() == references.size(), "score: {} hypotheses but {} reference lists",
           hypotheses.size(), references.size());
  LD_CHECK(!hypotheses.empty(), "score: nothing to score");
  if (metric == "bleu") return data::corpus_bleu(hypotheses, references).score;
  if (metric == "rougeL") return data::corpus_rouge_l(hypotheses, references);
  LD_FAIL("score: unknown generation metric '{}' (bleu or rougeL)", metric);
}

LmPipelineResult run_lm_pipeline(nn::LlamaForCausalLM& m, const LmData& train,
                                 const LmPipelineConfig& cfg) {
  LD_CHECK(train.size() > 0, "causal-LM run: empty training set");
  LD_CHECK(!cfg.loradrop || cfg.adapter.method == Method::LoRA,
           "LoRA-drop runs on LoRA adapters, not {}", method_name(cfg.adapter.method));
  LD_CHECK(cfg.adapter.method != Method::FullFT && cfg.adapter.method != Method::Sparse,
           "causal-LM runs support lora, vera, tied and LoRA-drop, not {}",
           method_name(cfg.adapter.method));
  LD_CHECK(cfg.sample_ratio > 0 && cfg.sample_ratio <= 1,
           "sample ratio alpha must be in (0, 1], got {}", cfg.sample_ratio);
  if (!m.generator()) m.set_generator(std::make_shared<Generator>(cfg.seed));
  auto progress = [&](const std::string& phase) -> StepFn {
    if (!cfg.progress) return {};
    return [&cfg, phase](int64_t step, int64_t total, double loss, double lr, int64_t tokens) {
      cfg.progress(phase, step, total, loss, lr, tokens);
    };
  };
  LmPipelineResult res;
  Generator gen(cfg.seed * 31 + 7);
  res.adapters = std::make_shared<AdapterSet>(m, cfg.adapter, gen);
  AdapterSet& set = *res.adapters;
  res.lora_params = set.num_adapter_parameters();
  TrainOptions to = cfg.train;

  if (cfg.loradrop) {
    res.tracker = std::make_shared<ImportanceTracker>(cfg.importance);
    set.attach_tracker(*res.tracker);
    // 1. random sample of ratio alpha (at least one pair), in data order
    std::vector<size_t> idx = data::shuffled_indices(train.size(), cfg.seed * 7919 + 3);
    const auto k = std::max<size_t>(
        1, static_cast<size_t>(std::ceil(cfg.sample_ratio * static_cast<double>(train.size()))));
    idx.resize(std::min(k, idx.size()));
    std::sort(idx.begin(), idx.end());
    LmData sample = train.subset(idx);
    res.sample_size = static_cast<int64_t>(sample.size());
    // 2. n epochs of LoRA on the sample, 3. importance over its real tokens
    to.epochs = cfg.sample_epochs;
    to.seed = cfg.seed;
    res.sample_loss = train_lm(m, &set, sample, to, cfg.label_smoothing, false, progress("sample"));
    lm_importance_pass(set, m, sample, to.batch_size, to.pad_id);
    // 4. selection at T, 5. rebuild
    SelectionOutcome sel =
        select_and_rebuild(set, *res.tracker, cfg.selection, cfg.shared_init, gen);
    res.importance = sel.importance;
    res.normalised = sel.normalised;
    res.selected = sel.selected;
  }
  // 6. training on the full set
  to.epochs = cfg.epochs;
  to.seed = cfg.seed + 1;
  res.train_loss = train_lm(m, &set, train, to, cfg.label_smoothing, false, progress("train"));
  res.trainable_params = set.num_adapter_parameters();
  return res;
}

}  // namespace ld::lora
