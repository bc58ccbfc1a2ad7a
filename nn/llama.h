// Llama2 decoder with HF names (model.layers.N.self_attn.q_proj, ...): RMSNorm, RoPE, grouped-
// query attention, SwiGLU MLP, causal mask, KV cache, activation checkpointing; LlamaForCausalLM
// (tied or untied lm_head) with greedy and beam-search generation; LlamaForSequenceClassification.
#pragma once
#include <memory>
#include <optional>
#include <vector>

#include "nn/config.h"
#include "nn/layers.h"
#include "nn/module.h"

namespace ld::nn {

// Per-layer keys/values [B, Hkv, T_past, D], appended by each forward that is given the cache.
struct KVCache {
  std::vector<Tensor> k, v;
  int64_t length() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }
  // Keeps rows `idx` (i64 [B']) of every layer: beam reordering.
  void reorder(const Tensor& idx);
};

class LlamaAttention : public Module {
 public:
  LlamaAttention(const ModelConfig& c, int64_t layer, DType dt);
  // x [B, T, hidden]; positions i64 [B, T]; key_mask bool [B, T_past + T] or undefined.
  Tensor forward(const Tensor& x, const Tensor& positions, const Tensor& key_mask, KVCache* cache);

 private:
  int64_t layer_, hq_, hkv_, d_;
  double theta_, p_;
};

class LlamaDecoderLayer : public Module {
 public:
  LlamaDecoderLayer(const ModelConfig& c, int64_t layer, DType dt);
  Tensor forward(const Tensor& x, const Tensor& positions, const Tensor& key_mask, KVCache* cache);

 private:
  std::string act_;
};

// LlamaModel: embed_tokens, layers.N, norm.
class LlamaModel : public Module {
 public:
  explicit LlamaModel(const ModelConfig& c, DType dt = DType::f32);
  // ids i64 [B, T]; attention_mask [B, T_past + T] (nonzero = real) or undefined (all real);
  // positions i64 [B, T] or undefined (T_past .. T_past + T - 1, as HF without position_ids).
  // -> [B, T, hidden]
  Tensor forward(const Tensor& ids, const Tensor& attention_mask, const Tensor& positions,
                 KVCache* cache);
  // Recompute each decoder layer in backward instead of keeping its activations (training only;
  // ignored when a KV cache is passed).
  void set_activation_checkpointing(bool on) { ckpt_ = on; }
  bool activation_checkpointing() const { return ckpt_; }

 private:
  int64_t layers_;
  bool ckpt_ = false;
};

struct CausalLMOutput {
  Tensor logits;  // [B, T, V]
  Tensor loss;    // scalar when labels were given
};

struct GenerateOptions {
  int64_t max_new_tokens = 20;
  int64_t num_beams = 1;               // 1: greedy
  double length_penalty = 1.0;         // beam scores divided by generated_length^length_penalty
  std::vector<int64_t> eos_token_ids;  // empty: never stops early
  std::optional<int64_t> pad_token_id;
  // > 0: a token that would complete an n-gram already present in the generated tokens gets
  // probability 0. Only the generated tokens count, as in microsoft/LoRA's NLG beam search
  // (examples/NLG/src/gpt2_beam.py); transformers' NoRepeatNGramLogitsProcessor also counts the
  // prompt, which would forbid copying a 4-token name from a data-to-text input. Applied to the
  // log-probabilities (beam) or logits (greedy) as transformers applies its processors.
  int64_t no_repeat_ngram_size = 0;
  // HF's default early_stopping=False heuristic (the only mode implemented).
};

class LlamaForCausalLM : public Module {
 public:
  explicit LlamaForCausalLM(const ModelConfig& c, DType dt = DType::f32);
  // labels i64 [B, T] (-100 ignored), shifted inside as HF.
  CausalLMOutput forward(const Tensor& ids, const Tensor& attention_mask = Tensor(),
                         const Tensor& labels = Tensor(), const Tensor& positions = Tensor(),
                         KVCache* cache = nullptr);
  // Batched generation from left-padded prompts (ids i64 [B, L], attention_mask [B, L]), matching
  // transformers' generate(do_sample=False): greedy when num_beams == 1, else its vectorised beam
  // search. Returns [B, L + generated] ids; finished rows are padded as HF does.
  Tensor generate(const Tensor& ids, const Tensor& attention_mask, const GenerateOptions& opt);
  LlamaModel& model() { return child<LlamaModel>("model"); }
  const ModelConfig& config() const { return cfg_; }

 private:
  Tensor generate_greedy(const Tensor& ids, const Tensor& mask, const GenerateOptions& opt);
  Tensor generate_beam(const Tensor& ids, const Tensor& mask, const GenerateOptions& opt);
  Tensor lm_logits(const Tensor& h);
  ModelConfig cfg_;
};

struct SeqClsOutputLlama {
  Tensor logits;  // [B, num_labels], at the pooled token
  Tensor loss;
};

// score (no bias) applied to every token, pooled at the rightmost token that is not pad_token_id
// (transformers 5: argmax(arange(T) * (ids != pad)), which is 0 for an all-pad row and handles
// left and right padding); without pad_token_id the last token, batch size 1 only.
class LlamaForSequenceClassification : public Module {
 public:
  explicit LlamaForSequenceClassification(const ModelConfig& c, DType dt = DType::f32);
  SeqClsOutputLlama forward(const Tensor& ids, const Tensor& attention_mask = Tensor(),
                            const Tensor& labels = Tensor());
  LlamaModel& model() { return child<LlamaModel>("model"); }
  // The pooled position per row, i64 [B].
  static Tensor pooled_positions(const Tensor& ids, std::optional<int64_t> pad_token_id);

 private:
  ModelConfig cfg_;
};

// HF generate's position ids for a padded batch: cumsum(mask) - 1, and 1 where mask == 0.
Tensor positions_from_mask(const Tensor& attention_mask);

}  // namespace ld::nn
