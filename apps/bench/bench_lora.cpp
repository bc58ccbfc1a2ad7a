// LoRA-drop costs on the CPU: a LoRA training step with in-step importance collection (Gram form)
// vs the same step without it, and a LoRA-drop step (shared adapters) vs a plain LoRA step, on a
// random-weight RoBERTa-shaped classifier. Prints a table and one JSON line (medians, ratios).
// Usage: ld_bench_lora [--layers 12] [--hidden 768] [--heads 12] [--intermediate 3072]
//   [--batch 8] [--seq 128] [--rank 8] [--steps 7] [--shared-frac 0.5] [--seed 0]
//   (threads: OMP_NUM_THREADS; OpenBLAS follows it)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/threads.h"
#include "lora/adapter.h"
#include "lora/importance.h"
#include "nn/config.h"
#include "nn/encoder.h"
#include "nn/optim.h"

using namespace ld;

namespace {

struct Args {
  int64_t layers = 12, hidden = 768, heads = 12, intermediate = 3072, vocab = 1000;
  int64_t batch = 8, seq = 128, rank = 8;
  int steps = 7;
  double shared_frac = 0.5;
  uint64_t seed = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", k.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--layers")
      a.layers = std::stoll(next());
    else if (k == "--hidden")
      a.hidden = std::stoll(next());
    else if (k == "--heads")
      a.heads = std::stoll(next());
    else if (k == "--intermediate")
      a.intermediate = std::stoll(next());
    else if (k == "--batch")
      a.batch = std::stoll(next());
    else if (k == "--seq")
      a.seq = std::stoll(next());
    else if (k == "--rank")
      a.rank = std::stoll(next());
    else if (k == "--steps")
      a.steps = std::stoi(next());
    else if (k == "--shared-frac")
      a.shared_frac = std::stod(next());
    else if (k == "--seed")
      a.seed = std::stoull(next());
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  return a;
}

std::shared_ptr<nn::EncoderForSequenceClassification> make_model(const Args& a) {
  nn::ModelConfig c;
  c.model_type = "roberta";
  c.vocab_size = a.vocab;
  c.hidden_size = a.hidden;
  c.num_hidden_layers = a.layers;
  c.num_attention_heads = a.heads;
  c.intermediate_size = a.intermediate;
  c.max_position_embeddings = a.seq + 2;
  c.pad_token_id = 1;
  c.type_vocab_size = 1;
  c.layer_norm_eps = 1e-5;
  c.hidden_dropout_prob = 0.0;
  c.attention_probs_dropout_prob = 0.0;
  auto m = std::make_shared<nn::EncoderForSequenceClassification>(c);
  Generator g(a.seed);
  NoGradGuard ng;
  for (auto& [n, t] : m->named_parameters()) {
    Tensor p = t;
    if (n.ends_with("LayerNorm.weight"))
      p.fill_(1.0);
    else if (n.ends_with(".bias"))
      p.zero_();
    else
      normal_(p, 0.0, 0.02, g);
  }
  m->set_generator(std::make_shared<Generator>(a.seed));
  return m;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Runner {
  std::shared_ptr<nn::EncoderForSequenceClassification> model;
  std::unique_ptr<lora::AdapterSet> set;
  std::unique_ptr<nn::AdamW> opt;
  lora::ImportanceTracker tracker;
  // One training step; with `collect`, the importance of every site is collected in the step.
  double step(const Tensor& ids, const Tensor& mask, const Tensor& labels, bool collect) {
    double t0 = now();
    if (collect) {
      set->set_collecting(true);
      set->collector().set_token_mask(mask);
    }
    Tensor loss = model->forward(ids, mask, Tensor(), labels).loss;
    loss.backward();
    if (collect) {
      set->collector().flush();
      set->set_collecting(false);
    }
    opt->step();
    opt->zero_grad();
    return now() - t0;
  }
};

Runner make_runner(const Args& a, bool loradrop) {
  Runner r;
  r.model = make_model(a);
  Generator g(a.seed + 1);
  lora::AdapterConfig c;
  c.r = a.rank;
  c.alpha = 16;
  r.set = std::make_unique<lora::AdapterSet>(*r.model, c, g);
  if (loradrop) {
    // the first shared_frac of the layers of each target share one adapter
    std::map<std::string, std::vector<bool>> keep;
    for (const std::string& t : r.set->targets()) {
      auto sites = r.set->sites_of(t);
      std::vector<bool> k(sites.size(), true);
      for (size_t i = 0; i < static_cast<size_t>(a.shared_frac * static_cast<double>(sites.size()));
           ++i)
        k[i] = false;
      keep[t] = k;
    }
    r.set->rebuild(keep, true, lora::SharedInit::Fresh, g);
  }
  r.set->attach_tracker(r.tracker);
  // B != 0 so that the statistic is not trivially zero (as after a few steps of training)
  NoGradGuard ng;
  for (const auto& ad : r.set->adapters()) {
    Tensor b = ad->B;
    normal_(b, 0.0, 0.02, g);
  }
  r.opt = std::make_unique<nn::AdamW>(r.set->trainable_parameters(), nn::AdamWOptions{.lr = 1e-4});
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a = parse(argc, argv);
    init_threads();
    Runner lo = make_runner(a, false), drop = make_runner(a, true);
    Generator dg(a.seed + 7);
    Tensor ids =
        rand_uniform({a.batch, a.seq}, 3, static_cast<double>(a.vocab) - 1, dg).to(DType::i64);
    // a quarter of each sequence is padding, so the token mask matters
    std::vector<int64_t> mv(a.batch * a.seq, 1);
    for (int64_t b = 0; b < a.batch; ++b)
      for (int64_t t = a.seq - a.seq / 4; t < a.seq; ++t) mv[b * a.seq + t] = 0;
    Tensor mask = Tensor::from_vector(mv, {a.batch, a.seq});
    Tensor labels = Tensor::zeros({a.batch}, DType::i64);
    // warm-up (allocations, first-touch, AdamW state)
    lo.step(ids, mask, labels, false);
    lo.step(ids, mask, labels, true);
    drop.step(ids, mask, labels, false);
    std::vector<double> t_plain, t_imp, t_drop, t_fwd, t_fwd_imp;
    // interleaved so that load changes on a shared machine hit every variant alike
    for (int i = 0; i < a.steps; ++i) {
      t_plain.push_back(lo.step(ids, mask, labels, false));
      t_imp.push_back(lo.step(ids, mask, labels, true));
      t_drop.push_back(drop.step(ids, mask, labels, false));
      NoGradGuard ng;
      lo.model->eval();
      double t0 = now();
      lo.model->forward(ids, mask);
      t_fwd.push_back(now() - t0);
      lo.set->set_collecting(true);
      lo.set->collector().set_token_mask(mask);
      t0 = now();
      lo.model->forward(ids, mask);
      lo.set->collector().flush();
      t_fwd_imp.push_back(now() - t0);
      lo.set->set_collecting(false);
      lo.model->train();
    }
    // The statistic alone, isolated from step-to-step noise: Gram-form importance of every site on
    // u [B, T, r] and B [hidden, r], as the sites compute it.
    std::vector<double> t_stat;
    {
      Tensor u = rand_normal({a.batch, a.seq, a.rank}, 0, 1, dg),
             Bm = rand_normal({a.hidden, a.rank}, 0, 1, dg);
      const int64_t nsites = static_cast<int64_t>(lo.set->sites().size());
      for (int i = 0; i < a.steps; ++i) {
        double t0 = now();
        for (int64_t k = 0; k < nsites; ++k)
          lora::gram_importance(u, Bm, Tensor(), 2.0, mask).to_vector<float>();
        t_stat.push_back(now() - t0);
      }
    }
    const double st = median(t_stat);
    const double p = median(t_plain), im = median(t_imp), d = median(t_drop);
    const double f = median(t_fwd), fi = median(t_fwd_imp);
    std::printf(
        "model: %lld layers, hidden %lld, heads %lld, FFN %lld; batch %lld x seq %lld; r=%lld; "
        "threads %d; %d steps (medians)\n",
        (long long)a.layers, (long long)a.hidden, (long long)a.heads, (long long)a.intermediate,
        (long long)a.batch, (long long)a.seq, (long long)a.rank, num_threads(), a.steps);
    std::printf("LoRA step                          %9.1f ms\n", p * 1e3);
    std::printf("LoRA step + importance (in step)   %9.1f ms   ratio %.4f  (+%.2f%%)\n", im * 1e3,
                im / p, (im / p - 1) * 100);
    std::printf("LoRA-drop step (%.0f%% sites shared) %9.1f ms   ratio %.4f\n", a.shared_frac * 100,
                d * 1e3, d / p);
    std::printf("no-grad forward                    %9.1f ms\n", f * 1e3);
    std::printf("no-grad forward + importance pass  %9.1f ms   ratio %.4f  (+%.2f%%)\n", fi * 1e3,
                fi / f, (fi / f - 1) * 100);
    std::printf("importance statistic alone (all sites) %7.2f ms = %.3f%% of the LoRA step\n",
                st * 1e3, st / p * 100);
    std::printf("#Tr. params: LoRA %lld, LoRA-drop %lld\n",
                (long long)lo.set->num_adapter_parameters(),
                (long long)drop.set->num_adapter_parameters());
    nlohmann::json j = {{"layers", a.layers},
                        {"hidden", a.hidden},
                        {"batch", a.batch},
                        {"seq", a.seq},
                        {"rank", a.rank},
                        {"threads", num_threads()},
                        {"lora_step_s", p},
                        {"lora_step_importance_s", im},
                        {"importance_step_ratio", im / p},
                        {"loradrop_step_s", d},
                        {"loradrop_vs_lora_ratio", d / p},
                        {"eval_forward_s", f},
                        {"importance_stat_s", st},
                        {"importance_stat_step_fraction", st / p},
                        {"importance_pass_ratio", fi / f},
                        {"lora_params", lo.set->num_adapter_parameters()},
                        {"loradrop_params", drop.set->num_adapter_parameters()}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ld_bench_lora: %s\n", e.what());
    return 1;
  }
}
