// Batching of already-tokenised examples: dynamic padding to the longest sequence of a batch
// (right or left), optional length bucketing, seeded batch order, and causal-LM batches whose loss
// covers only the target tokens. Independent of the tokenizers: everything is token id vectors.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ld::data {

// ---- NLG prompt formats (text level; tokenise prompt and target separately, then collate_lm) ----
//   E2E, DART:  prompt = "Input: " + linearised input + "\nOutput:"
//               e.g. "Input: name : Alimentum | area : city centre | familyFriendly : no\nOutput:"
//               (DART: "Mars Hill College : JOINED : 1973 | Mars Hill College : LOCATION : ...")
//   DialogSum:  prompt = "Summarize the dialogue.\nDialogue:\n" + dialogue + "\nSummary:"
//   target (all three) = " " + reference text; the caller appends the tokenizer's EOS id to the
//   target ids (so the model learns to stop) and any BOS to the prompt ids.
// At evaluation the model is given the prompt only (left-padded, collate_generation) and generates
// until EOS; the generated text is scored against every reference of the input (metrics.h).
std::string nlg_prompt(const std::string& task, const std::string& source);
std::string nlg_target(const std::string& reference);

enum class PadSide { kRight, kLeft };  // left for decoder generation

struct PadOptions {
  int64_t pad_id = 0;
  PadSide side = PadSide::kRight;
  int64_t pad_to_multiple_of = 1;  // round the batch length up (e.g. 8 for tensor cores)
  int64_t max_length = 0;          // 0: no limit; otherwise a longer sequence is an error
};

// One tokenised classification/regression input (ids already include special tokens).
struct Encoded {
  std::vector<int64_t> ids;
  std::vector<int64_t> type_ids;  // empty (all 0) or one per id
};

// One causal-LM training pair: input = prompt ++ target; loss on the target tokens only.
struct LmPair {
  std::vector<int64_t> prompt;
  std::vector<int64_t> target;
};

constexpr int64_t kIgnoreIndex = -100;  // label value ignored by the loss (as PyTorch/HF)

// A padded batch. Shapes: input_ids, attention_mask, token_type_ids [B, T] i64 (mask 1 = real
// token, 0 = padding; token types 0 on padding). labels: [B] i64 (classification), [B] f32
// (regression), [B, T] i64 aligned with input_ids (causal LM; -100 on prompt and padding; the
// model shifts by one as Hugging Face does), or undefined (generation).
struct Batch {
  ld::Tensor input_ids, attention_mask, token_type_ids, labels;
  std::vector<size_t> indices;  // which examples, in row order
  int64_t num_tokens = 0;       // non-padding tokens
};

Batch collate_classification(const std::vector<Encoded>& examples,
                             const std::vector<size_t>& indices, const std::vector<int64_t>& labels,
                             const PadOptions& opt);
Batch collate_regression(const std::vector<Encoded>& examples, const std::vector<size_t>& indices,
                         const std::vector<double>& targets, const PadOptions& opt);
Batch collate_lm(const std::vector<LmPair>& pairs, const std::vector<size_t>& indices,
                 const PadOptions& opt);
// Prompts only (no labels), normally with PadSide::kLeft so every row ends at the last column.
Batch collate_generation(const std::vector<std::vector<int64_t>>& prompts,
                         const std::vector<size_t>& indices, const PadOptions& opt);

struct BatchPlanOptions {
  size_t batch_size = 32;
  bool shuffle = true;
  uint64_t seed = 0;
  // Length bucketing: after shuffling, take windows of batch_size * bucket_window examples, sort
  // each window by length (stable), cut it into batches, then shuffle the order of all batches.
  bool bucket_by_length = false;
  size_t bucket_window = 50;
  bool drop_last = false;  // drop a final batch smaller than batch_size
};

// The example indices of every batch of one epoch. The epoch's shuffle uses mt19937_64 seeded with
// seed + epoch * 0x9E3779B97F4A7C15, so each epoch differs and every run repeats exactly.
// Without shuffle the order is 0..n-1 (bucketing then sorts windows of that order).
std::vector<std::vector<size_t>> plan_batches(const std::vector<int64_t>& lengths,
                                              const BatchPlanOptions& opt, uint64_t epoch = 0);

}  // namespace ld::data
