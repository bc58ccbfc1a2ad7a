// The built-in synthetic language of `loradrop quickstart`: a Markov language over 48 words in 4
// categories, masked-token pretraining on it, and a counting classification task built from it.
#include <algorithm>
#include <cmath>

#include "apps/loradrop/app.h"
#include "data/sampling.h"
#include "nn/optim.h"

namespace ld::app::synth {
namespace {

// The language is fixed (its own seed); run seeds only change which sentences are drawn.
constexpr uint64_t kLanguageSeed = 20240212;
constexpr int64_t kPerCat = kWords / kCategories;  // 12 words per category

struct Language {
  // Category transitions: each category prefers two successors; 0 and 1 are symmetric so that the
  // counting task below is balanced.
  double cat_next[kCategories][kCategories] = {{0.10, 0.20, 0.45, 0.25},
                                               {0.20, 0.10, 0.25, 0.45},
                                               {0.35, 0.35, 0.10, 0.20},
                                               {0.35, 0.35, 0.20, 0.10}};
  // Each word has 3 preferred successors in every category (70% of the mass within a category).
  int64_t succ[kWords][kCategories][3];
  Language() {
    std::mt19937_64 rng(kLanguageSeed);
    for (int64_t w = 0; w < kWords; ++w)
      for (int64_t c = 0; c < kCategories; ++c)
        for (int64_t j = 0; j < 3; ++j)
          succ[w][c][j] = c * kPerCat + static_cast<int64_t>(data::uniform_below(rng, kPerCat));
  }
};
const Language& language() {
  static const Language L;
  return L;
}

double unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

int64_t category(int64_t token) {
  return token >= kFirstWord && token < kVocab ? (token - kFirstWord) / kPerCat : -1;
}

std::vector<int64_t> sentence(std::mt19937_64& rng, int64_t len) {
  const Language& L = language();
  std::vector<int64_t> s = {kCls};
  int64_t w = static_cast<int64_t>(data::uniform_below(rng, kWords));
  for (int64_t i = 0; i < len; ++i) {
    s.push_back(kFirstWord + w);
    const int64_t c = w / kPerCat;
    double u = unit(rng);
    int64_t nc = kCategories - 1;
    for (int64_t k = 0; k < kCategories; ++k) {
      if (u < L.cat_next[c][k]) {
        nc = k;
        break;
      }
      u -= L.cat_next[c][k];
    }
    if (unit(rng) < 0.7)
      w = L.succ[w][nc][data::uniform_below(rng, 3)];
    else
      w = nc * kPerCat + static_cast<int64_t>(data::uniform_below(rng, kPerCat));
  }
  s.push_back(kSep);
  return s;
}

TaskData classification_task(int64_t n_train, int64_t n_eval, uint64_t seed) {
  TaskData t;
  t.name = "synthetic";
  t.metric_name = "accuracy";
  t.num_labels = 2;
  t.pad_id = kPad;
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + 11);
  auto fill = [&](lora::ClassificationData& d, int64_t n) {
    int64_t want = 0;  // alternate the label so that the classes are balanced
    while (static_cast<int64_t>(d.size()) < n) {
      auto s = sentence(rng, 12 + static_cast<int64_t>(data::uniform_below(rng, 9)));
      int64_t c0 = 0, c1 = 0;
      for (int64_t tok : s) {
        c0 += category(tok) == 0;
        c1 += category(tok) == 1;
      }
      if (c0 == c1) continue;
      const int64_t label = c0 > c1 ? 1 : 0;
      if (label != want) continue;
      d.ids.push_back(std::move(s));
      d.labels.push_back(label);
      want = 1 - want;
    }
  };
  fill(t.train, n_train);
  fill(t.eval, n_eval);
  return t;
}

namespace {

struct MlmBatch {
  Tensor ids, mask, targets;
};

MlmBatch mlm_batch(std::mt19937_64& rng, int64_t B) {
  std::vector<std::vector<int64_t>> sents;
  size_t T = 0;
  for (int64_t b = 0; b < B; ++b) {
    sents.push_back(sentence(rng, 12 + static_cast<int64_t>(data::uniform_below(rng, 9))));
    T = std::max(T, sents.back().size());
  }
  std::vector<int64_t> ids(B * T, kPad), mask(B * T, 0), tgt(B * T, -100);
  for (int64_t b = 0; b < B; ++b) {
    const auto& s = sents[b];
    for (size_t i = 0; i < s.size(); ++i) {
      const size_t k = b * T + i;
      ids[k] = s[i];
      mask[k] = 1;
      if (category(s[i]) < 0 || unit(rng) >= 0.15) continue;
      tgt[k] = s[i];
      const double u = unit(rng);
      if (u < 0.8)
        ids[k] = kMask;
      else if (u < 0.9)
        ids[k] = kFirstWord + static_cast<int64_t>(data::uniform_below(rng, kWords));
    }
  }
  const int64_t Ti = static_cast<int64_t>(T);
  return {Tensor::from_vector(ids, {B, Ti}), Tensor::from_vector(mask, {B, Ti}),
          Tensor::from_vector(tgt, {B * Ti})};
}

}  // namespace

std::pair<double, double> pretrain(nn::EncoderForSequenceClassification& model, int64_t steps,
                                   uint64_t seed, Logger& log) {
  const int64_t H = model.config().hidden_size, V = model.config().vocab_size;
  nn::Linear head(H, V);
  {
    Generator g(seed + 5);
    NoGradGuard ng;
    Tensor w = head.weight().detach();
    normal_(w, 0.0, 0.02, g);
    Tensor b = head.bias().detach();
    b.copy_(Tensor::zeros(b.shape()));
  }
  nn::EncoderModel& enc = model.base();
  auto logits_of = [&](const MlmBatch& b) {
    Tensor h = enc.forward(b.ids, b.mask, Tensor());
    return head.forward(h).reshape({-1, V});
  };
  // Held-out masked-token accuracy (fixed sentences and masks).
  auto accuracy = [&] {
    std::mt19937_64 rng(kLanguageSeed + 1);
    NoGradGuard ng;
    const bool was = model.is_training();
    model.eval();
    int64_t hit = 0, n = 0;
    for (int i = 0; i < 8; ++i) {
      MlmBatch b = mlm_batch(rng, 32);
      auto pred = argmax(logits_of(b), 1).to_vector<int64_t>();
      auto tgt = b.targets.to_vector<int64_t>();
      for (size_t k = 0; k < tgt.size(); ++k)
        if (tgt[k] >= 0) hit += pred[k] == tgt[k], ++n;
    }
    model.train(was);
    return n ? static_cast<double>(hit) / static_cast<double>(n) : 0.0;
  };
  const double before = accuracy();
  std::vector<std::pair<std::string, Tensor>> params = enc.named_parameters();
  for (auto& [n, p] : head.named_parameters()) params.emplace_back("mlm." + n, p);
  nn::AdamWOptions ao;
  ao.lr = 2e-3;
  ao.weight_decay = 0.01;
  nn::AdamW opt(params, ao);
  std::vector<Tensor> all;
  for (auto& np : params) all.push_back(np.second);
  std::mt19937_64 rng(seed * 1315423911ULL + 3);
  const int64_t warmup = steps / 10;
  model.train();
  for (int64_t s = 0; s < steps; ++s) {
    MlmBatch b = mlm_batch(rng, 32);
    opt.set_lr(ao.lr * nn::linear_warmup_factor(s, warmup, steps));
    Tensor loss = cross_entropy(logits_of(b), b.targets);
    const double lv = loss.item();
    LD_CHECK(std::isfinite(lv), "pretraining: non-finite loss at step {}", s);
    loss.backward();
    nn::clip_grad_norm_(all, 1.0);
    opt.step();
    opt.zero_grad();
    log.step("pretrain (masked tokens)", s + 1, steps, lv, opt.lr(), b.ids.numel());
  }
  log.end_phase();
  return {before, accuracy()};
}

}  // namespace ld::app::synth
