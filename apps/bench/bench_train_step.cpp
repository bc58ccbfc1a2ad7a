// One LoRA training step (forward, backward, AdamW) of a random-weight RoBERTa-base-shaped
// classifier on the CPU, as one JSON line (median seconds, peak RSS); tools/bench_vs_torch.py.
// Usage: ld_bench_train_step [--layers 12] [--hidden 768] [--heads 12] [--intermediate 3072]
//   [--vocab 1000] [--batch 16] [--seq 128] [--rank 8] [--alpha 16] [--dropout 0.1] [--warmup 2]
//   [--steps 5] [--seed 0]   (threads: OMP_NUM_THREADS; OpenBLAS follows it)
#include <cblas.h>
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/threads.h"
#include "lora/adapter.h"
#include "nn/config.h"
#include "nn/encoder.h"
#include "nn/optim.h"

using namespace ld;

namespace {

struct Args {
  int64_t layers = 12, hidden = 768, heads = 12, intermediate = 3072, vocab = 1000;
  int64_t batch = 16, seq = 128, rank = 8;
  double alpha = 16, dropout = 0.1;
  int warmup = 2, steps = 5;
  uint64_t seed = 0;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.npos, suffix) == 0;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

int usage(const char* prog) {
  std::fprintf(stderr,
               "usage: %s [--layers N] [--hidden N] [--heads N] [--intermediate N] [--vocab N]\n"
               "  [--batch N] [--seq N] [--rank N] [--alpha X] [--dropout P] [--warmup N]\n"
               "  [--steps N] [--seed N]\n",
               prog);
  return 2;
}

int run(const Args& a) {
  init_threads();
  nn::ModelConfig c;
  c.model_type = "roberta";
  c.architectures = {"RobertaForSequenceClassification"};
  c.vocab_size = a.vocab;
  c.hidden_size = a.hidden;
  c.num_hidden_layers = a.layers;
  c.num_attention_heads = a.heads;
  c.head_dim = a.hidden / a.heads;
  c.intermediate_size = a.intermediate;
  c.hidden_act = "gelu";
  c.max_position_embeddings = a.seq + 2;  // RoBERTa positions start at pad + 1 = 2
  c.pad_token_id = 1;
  c.bos_token_id = 0;
  c.eos_token_ids = {2};
  c.type_vocab_size = 1;
  c.layer_norm_eps = 1e-5;
  c.hidden_dropout_prob = a.dropout;
  c.attention_probs_dropout_prob = a.dropout;
  c.num_labels = 2;

  auto model = std::make_shared<nn::EncoderForSequenceClassification>(c);
  model->set_generator(std::make_shared<Generator>(a.seed + 1));
  Generator init(a.seed);
  {
    // HF's _init_weights: N(0, 0.02) weights, zero biases, LayerNorm weight 1.
    NoGradGuard ng;
    for (auto& [name, p] : model->named_parameters()) {
      Tensor t = p;
      if (ends_with(name, "LayerNorm.weight"))
        t.copy_(Tensor::ones(t.shape()));
      else if (ends_with(name, ".bias"))
        t.copy_(Tensor::zeros(t.shape()));
      else
        normal_(t, 0.0, 0.02, init);
    }
  }
  // The production LoRA path (lora::AdapterSet -> the fused lora_linear op), as `loradrop train`.
  lora::AdapterConfig lc;
  lc.targets = {"query", "value"};
  lc.r = a.rank;
  lc.alpha = a.alpha;
  lc.dropout = a.dropout;
  lora::AdapterSet set(*model, lc, init, {"classifier.*"});
  const auto& sites = set.sites();
  model->train();

  // Inputs: <s> then random ids in [3, vocab), no padding (mask all ones), labels in {0, 1}.
  Generator data(a.seed + 2);
  Tensor ids = rand_uniform({a.batch, a.seq}, 3.0, static_cast<double>(a.vocab), data, DType::f64)
                   .to(DType::i64);
  {
    std::vector<int64_t> v = ids.to_vector<int64_t>();
    for (int64_t b = 0; b < a.batch; ++b) v[b * a.seq] = 0;
    ids = Tensor::from_vector(v, {a.batch, a.seq});
  }
  Tensor mask = Tensor::ones({a.batch, a.seq}, DType::i64);
  Tensor labels =
      compare(CompareOp::Gt, rand_uniform({a.batch}, 0.0, 1.0, data), 0.5).to(DType::i64);

  std::vector<std::pair<std::string, Tensor>> params;
  int64_t trainable = 0;
  for (auto& [n, p] : model->named_parameters())
    if (p.requires_grad()) {
      params.emplace_back(n, p);
      trainable += p.numel();
    }
  nn::AdamWOptions ao;
  ao.lr = 1e-4;
  nn::AdamW opt(params, ao);

  std::vector<double> step_t, fwd_t, bwd_t, opt_t, cpu_t;
  std::vector<double> losses;
  for (int i = 0; i < a.warmup + a.steps; ++i) {
    double c0 = cpu_s(), t0 = now_s();
    opt.zero_grad();
    Tensor loss = model->forward(ids, mask, Tensor(), labels).loss;
    double t1 = now_s();
    loss.backward();
    double t2 = now_s();
    opt.step();
    double t3 = now_s(), c3 = cpu_s();
    losses.push_back(loss.item());
    if (i >= a.warmup) {
      step_t.push_back(t3 - t0);
      fwd_t.push_back(t1 - t0);
      bwd_t.push_back(t2 - t1);
      opt_t.push_back(t3 - t2);
      cpu_t.push_back(c3 - c0);
    }
  }

  nlohmann::json j;
  j["impl"] = "loradrop";
  j["threads"] = omp_get_max_threads();
  j["blas_threads"] = openblas_get_num_threads();
  j["blas"] = openblas_get_config();
  j["config"] = {{"layers", a.layers},
                 {"hidden", a.hidden},
                 {"heads", a.heads},
                 {"intermediate", a.intermediate},
                 {"vocab", a.vocab},
                 {"batch", a.batch},
                 {"seq", a.seq},
                 {"rank", a.rank},
                 {"alpha", a.alpha},
                 {"dropout", a.dropout},
                 {"lora_sites", sites.size()}};
  j["trainable_params"] = trainable;
  j["warmup"] = a.warmup;
  j["steps"] = a.steps;
  j["step_s"] = step_t;
  j["step_s_median"] = median(step_t);
  j["fwd_s_median"] = median(fwd_t);
  j["bwd_s_median"] = median(bwd_t);
  j["opt_s_median"] = median(opt_t);
  j["cpu_s_median"] = median(cpu_t);
  j["losses"] = losses;
  j["peak_rss_mib"] = peak_rss_mib();
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) return usage(argv[0]);
    const char* v = argv[++i];
    if (k == "--layers")
      a.layers = std::atoll(v);
    else if (k == "--hidden")
      a.hidden = std::atoll(v);
    else if (k == "--heads")
      a.heads = std::atoll(v);
    else if (k == "--intermediate")
      a.intermediate = std::atoll(v);
    else if (k == "--vocab")
      a.vocab = std::atoll(v);
    else if (k == "--batch")
      a.batch = std::atoll(v);
    else if (k == "--seq")
      a.seq = std::atoll(v);
    else if (k == "--rank")
      a.rank = std::atoll(v);
    else if (k == "--alpha")
      a.alpha = std::atof(v);
    else if (k == "--dropout")
      a.dropout = std::atof(v);
    else if (k == "--warmup")
      a.warmup = std::atoi(v);
    else if (k == "--steps")
      a.steps = std::atoi(v);
    else if (k == "--seed")
      a.seed = std::strtoull(v, nullptr, 10);
    else
      return usage(argv[0]);
  }
  if (a.steps < 1 || a.warmup < 0 || a.heads < 1 || a.hidden % a.heads || a.vocab < 4 ||
      a.batch < 1 || a.seq < 1 || a.rank < 1)
    return usage(argv[0]);
  try {
    return run(a);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
