// RoBERTa and BERT (BERT-family, e.g. MiniLM) encoders with HF parameter names, and their
// sequence-classification heads (RobertaClassificationHead; BERT's pooler + classifier).
#pragma once
#include <memory>
#include <string>

#include "nn/config.h"
#include "nn/layers.h"
#include "nn/module.h"

namespace ld::nn {

// Embeddings: word + position + token type, LayerNorm, dropout. RoBERTa's position ids count real
// tokens from padding_idx + 1 (create_position_ids_from_input_ids); BERT's are 0..T-1.
class EncoderEmbeddings : public Module {
 public:
  EncoderEmbeddings(const ModelConfig& c, DType dt);
  // ids i64 [B, T], token_type_ids i64 [B, T] or undefined (zeros) -> [B, T, hidden]
  Tensor forward(const Tensor& ids, const Tensor& token_type_ids);
  // RoBERTa position ids: (cumsum(ids != pad) * (ids != pad)) + pad, i64 [B, T].
  static Tensor roberta_position_ids(const Tensor& ids, int64_t padding_idx);

 private:
  bool roberta_;
  int64_t pad_;
};

// attention.self: query/key/value Linear; attention-probability dropout when training with p > 0.
class EncoderSelfAttention : public Module {
 public:
  EncoderSelfAttention(const ModelConfig& c, DType dt);
  // x [B, T, hidden], key_mask bool [B, T] -> context [B, T, hidden]
  Tensor forward(const Tensor& x, const Tensor& key_mask);

 private:
  int64_t heads_, head_dim_;
  double p_;
};

// dense + dropout + residual + LayerNorm (attention.output and output share this shape).
class EncoderAddNorm : public Module {
 public:
  EncoderAddNorm(int64_t in, int64_t hidden, double eps, double p, DType dt);
  Tensor forward(const Tensor& x, const Tensor& residual);
};

class EncoderLayer : public Module {
 public:
  EncoderLayer(const ModelConfig& c, DType dt);
  Tensor forward(const Tensor& x, const Tensor& key_mask);  // [B, T, hidden]

 private:
  std::string act_;
};

// RobertaModel / BertModel: embeddings, encoder.layer.N, optional pooler (dense + tanh on [CLS]).
class EncoderModel : public Module {
 public:
  EncoderModel(const ModelConfig& c, bool add_pooler, DType dt = DType::f32);
  // -> last hidden state [B, T, hidden]
  Tensor forward(const Tensor& ids, const Tensor& attention_mask, const Tensor& token_type_ids);
  Tensor pool(const Tensor& hidden);  // [B, hidden]

 private:
  int64_t layers_;
};

struct SeqClsOutput {
  Tensor logits;  // [B, num_labels]
  Tensor loss;    // scalar, when labels were given
};

// RobertaForSequenceClassification ("roberta." + classifier.dense/out_proj) or
// BertForSequenceClassification ("bert." with pooler + classifier), chosen by config.model_type.
class EncoderForSequenceClassification : public Module {
 public:
  explicit EncoderForSequenceClassification(const ModelConfig& c, DType dt = DType::f32);
  // ids i64 [B, T]; attention_mask [B, T] (nonzero = real; undefined = all real); token_type_ids
  // i64 [B, T] or undefined; labels i64 [B] (classification) or f32 [B] (regression) or undefined.
  SeqClsOutput forward(const Tensor& ids, const Tensor& attention_mask,
                       const Tensor& token_type_ids = Tensor(), const Tensor& labels = Tensor());
  const ModelConfig& config() const { return cfg_; }
  EncoderModel& base() { return child<EncoderModel>(cfg_.model_type); }

 private:
  ModelConfig cfg_;
};

}  // namespace ld::nn
