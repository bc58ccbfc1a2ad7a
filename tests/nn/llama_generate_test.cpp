// Llama generation options beyond the transformers goldens: no_repeat_ngram_size (greedy and beam)
// bans n-grams of the generated tokens only, as microsoft/LoRA's NLG beam search.
#include <gtest/gtest.h>

#include <set>

#include "nn/llama.h"
#include "tests/test_util.h"

namespace ld {
namespace {

std::shared_ptr<nn::LlamaForCausalLM> small_decoder(uint64_t seed) {
  nn::ModelConfig c;
  c.model_type = "llama";
  c.vocab_size = 16;
  c.hidden_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.intermediate_size = 32;
  c.hidden_act = "silu";
  c.max_position_embeddings = 64;
  auto m = std::make_shared<nn::LlamaForCausalLM>(c);
  Generator g(seed);
  NoGradGuard ng;
  for (auto& [n, t] : m->named_parameters()) {
    Tensor p = t;
    if (n.ends_with("norm.weight"))
      p.fill_(1.0);
    else
      normal_(p, 0.0, 0.5, g);
  }
  return m;
}

// Generated part of row b.
std::vector<int64_t> generated(const Tensor& out, int64_t b, int64_t prompt_len) {
  auto v = out.select(0, b).contiguous().to_vector<int64_t>();
  return {v.begin() + prompt_len, v.end()};
}

TEST(LlamaGenerate, NoRepeatNgramBansRepeatsOfGeneratedTokensOnly) {
  auto m = small_decoder(3);
  // The prompt repeats token 5; a size-1 ban must not forbid tokens of the prompt.
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{5, 5, 7, 5, 9, 9, 9, 9}, {2, 4});
  for (int64_t beams : {1, 3}) {
    nn::GenerateOptions o;
    o.max_new_tokens = 10;
    o.num_beams = beams;
    o.no_repeat_ngram_size = 1;
    Tensor out = m->generate(ids, Tensor(), o);
    for (int64_t b = 0; b < 2; ++b) {
      auto g = generated(out, b, 4);
      ASSERT_EQ(g.size(), 10u);
      EXPECT_EQ(std::set<int64_t>(g.begin(), g.end()).size(), g.size())
          << "beams " << beams << " row " << b;  // all distinct
    }
    o.no_repeat_ngram_size = 2;
    out = m->generate(ids, Tensor(), o);
    for (int64_t b = 0; b < 2; ++b) {
      auto g = generated(out, b, 4);
      std::set<std::pair<int64_t, int64_t>> bigrams;
      for (size_t i = 0; i + 1 < g.size(); ++i)
        EXPECT_TRUE(bigrams.insert({g[i], g[i + 1]}).second)
            << "beams " << beams << " row " << b << " repeats a bigram at " << i;
    }
  }
}

}  // namespace
}  // namespace ld
