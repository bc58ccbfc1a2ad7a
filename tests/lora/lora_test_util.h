// Helpers for the lora/ tests: tiny random RoBERTa-style classifiers and synthetic token data.
#pragma once
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/ops.h"
#include "lora/pipeline.h"
#include "nn/config.h"
#include "nn/encoder.h"

namespace ld::test {

inline nn::ModelConfig tiny_config(int64_t layers = 4, int64_t hidden = 32, int64_t labels = 2) {
  nn::ModelConfig c;
  c.model_type = "roberta";
  c.vocab_size = 24;
  c.hidden_size = hidden;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 4;
  c.intermediate_size = 2 * hidden;
  c.max_position_embeddings = 40;
  c.pad_token_id = 1;
  c.type_vocab_size = 1;
  c.layer_norm_eps = 1e-5;
  c.hidden_dropout_prob = 0.0;
  c.attention_probs_dropout_prob = 0.0;
  c.num_labels = labels;
  return c;
}

// Random "pretrained" weights: N(0, std) for matrices and embeddings, zero biases, unit norms.
inline void randomise(nn::Module& m, uint64_t seed, double std = 0.1) {
  Generator g(seed);
  NoGradGuard ng;
  for (auto& [n, t] : m.named_parameters()) {
    Tensor p = t;
    if (n.ends_with("LayerNorm.weight"))
      p.fill_(1.0);
    else if (n.ends_with(".bias"))
      p.zero_();
    else
      normal_(p, 0.0, std, g);
  }
}

inline std::shared_ptr<nn::EncoderForSequenceClassification> tiny_model(uint64_t seed,
                                                                        DType dt = DType::f32,
                                                                        int64_t layers = 4,
                                                                        int64_t hidden = 32) {
  auto m = std::make_shared<nn::EncoderForSequenceClassification>(tiny_config(layers, hidden), dt);
  randomise(*m, seed);
  m->set_generator(std::make_shared<Generator>(seed));
  return m;
}

// A padded batch of n random sequences with lengths in [min_len, max_len] (tokens 3..vocab-1).
inline lora::Batch random_batch(int64_t n, int64_t min_len, int64_t max_len, uint64_t seed,
                                int64_t vocab = 24) {
  lora::ClassificationData d;
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    int64_t len =
        min_len + static_cast<int64_t>(rng() % static_cast<uint64_t>(max_len - min_len + 1));
    std::vector<int64_t> ids{0};
    for (int64_t t = 1; t < len; ++t) ids.push_back(3 + static_cast<int64_t>(rng() % (vocab - 3)));
    d.ids.push_back(ids);
    d.labels.push_back(static_cast<int64_t>(rng() % 2));
  }
  std::vector<size_t> idx(d.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  return lora::make_batch(d, idx, 1);
}

// Tiny task: label 1 iff token 5 occurs in the sequence (half the examples each).
inline lora::ClassificationData synthetic_task(int64_t n, uint64_t seed, int64_t vocab = 24) {
  lora::ClassificationData d;
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    int64_t len = 4 + static_cast<int64_t>(rng() % 5);
    int64_t label = i % 2;
    std::vector<int64_t> ids{0};
    for (int64_t t = 1; t < len; ++t) {
      int64_t tok;
      do tok = 3 + static_cast<int64_t>(rng() % (vocab - 3));
      while (tok == 5);
      ids.push_back(tok);
    }
    if (label) ids[1 + rng() % (len - 1)] = 5;
    d.ids.push_back(ids);
    d.labels.push_back(label);
  }
  return d;
}

}  // namespace ld::test
