// RoBERTa/BERT encoder forward passes composed from core ops (post-LN transformer layers).
#include "nn/encoder.h"

#include "core/nvtx.h"

namespace ld::nn {

EncoderEmbeddings::EncoderEmbeddings(const ModelConfig& c, DType dt)
    : Module("EncoderEmbeddings"),
      roberta_(c.model_type == "roberta"),
      pad_(c.pad_token_id.value_or(0)) {
  register_module("word_embeddings",
                  std::make_shared<Embedding>(c.vocab_size, c.hidden_size, pad_, dt));
  register_module("position_embeddings",
                  std::make_shared<Embedding>(c.max_position_embeddings, c.hidden_size,
                                              roberta_ ? pad_ : -1, dt));
  register_module("token_type_embeddings",
                  std::make_shared<Embedding>(c.type_vocab_size, c.hidden_size, -1, dt));
  register_module("LayerNorm", std::make_shared<LayerNorm>(c.hidden_size, c.layer_norm_eps, dt));
  register_module("dropout", std::make_shared<Dropout>(c.hidden_dropout_prob));
}

Tensor EncoderEmbeddings::roberta_position_ids(const Tensor& ids, int64_t padding_idx) {
  const int64_t T = ids.size(1);
  Tensor real = ne(ids, static_cast<double>(padding_idx)).to(DType::f64);  // [B, T]
  // cumsum along T as a product with an upper-triangular ones matrix (exact in f64).
  Tensor r = arange(0, static_cast<double>(T), 1, DType::f64, ids.device());
  Tensor tri = compare(CompareOp::Le, r.reshape({T, 1}), r.reshape({1, T})).to(DType::f64);
  Tensor pos = matmul(real, tri) * real + static_cast<double>(padding_idx);
  return pos.to(DType::i64);
}

Tensor EncoderEmbeddings::forward(const Tensor& ids, const Tensor& token_type_ids) {
  LD_NVTX_RANGE(range_name());
  LD_CHECK(ids.dim() == 2 && ids.dtype() == DType::i64,
           "embeddings: ids must be i64 [B, T], got {}", ids.desc());
  const int64_t B = ids.size(0), T = ids.size(1);
  Tensor pos;
  if (roberta_) {
    pos = roberta_position_ids(ids, pad_);
  } else {
    pos = arange(0, static_cast<double>(T), 1, DType::i64, ids.device())
              .reshape({1, T})
              .expand({B, T});
  }
  Tensor tt =
      token_type_ids.defined() ? token_type_ids : Tensor::zeros({B, T}, DType::i64, ids.device());
  Tensor x = child<Embedding>("word_embeddings").forward(ids) +
             child<Embedding>("token_type_embeddings").forward(tt);
  x = x + child<Embedding>("position_embeddings").forward(pos.contiguous());
  x = child<LayerNorm>("LayerNorm").forward(x);
  return mark_backward(child<Dropout>("dropout").forward(x));
}

EncoderSelfAttention::EncoderSelfAttention(const ModelConfig& c, DType dt)
    : Module("EncoderSelfAttention"),
      heads_(c.num_attention_heads),
      head_dim_(c.hidden_size / c.num_attention_heads),
      p_(c.attention_probs_dropout_prob) {
  for (const char* n : {"query", "key", "value"})
    register_module(n, std::make_shared<Linear>(c.hidden_size, c.hidden_size, true, dt));
  register_module("dropout", std::make_shared<Dropout>(p_));
}

Tensor EncoderSelfAttention::forward(const Tensor& x, const Tensor& key_mask) {
  LD_NVTX_RANGE(range_name());
  const int64_t B = x.size(0), T = x.size(1);
  auto heads = [&](const Tensor& t) {
    return t.view({B, T, heads_, head_dim_}).permute({0, 2, 1, 3});
  };
  Tensor q = heads(child<Linear>("query").forward(x));
  Tensor k = heads(child<Linear>("key").forward(x));
  Tensor v = heads(child<Linear>("value").forward(x));
  Tensor ctx;
  if (!training_ || p_ == 0.0) {
    ctx = scaled_dot_product_attention(q, k, v, key_mask, false);
  } else {
    // Explicit path so that attention probabilities can be dropped out, as HF's eager attention.
    Tensor scores =
        matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(head_dim_)));
    Tensor bias;
    if (key_mask.defined())
      bias =
          where(key_mask.reshape({B, 1, 1, T}), Tensor::zeros({}, x.dtype(), x.device()),
                Tensor::full({}, -std::numeric_limits<double>::infinity(), x.dtype(), x.device()));
    Tensor probs = child<Dropout>("dropout").forward(softmax(scores, -1, bias));
    ctx = matmul(probs, v);
  }
  return mark_backward(ctx.permute({0, 2, 1, 3}).reshape({B, T, heads_ * head_dim_}));
}

EncoderAddNorm::EncoderAddNorm(int64_t in, int64_t hidden, double eps, double p, DType dt)
    : Module("EncoderAddNorm") {
  register_module("dense", std::make_shared<Linear>(in, hidden, true, dt));
  register_module("LayerNorm", std::make_shared<LayerNorm>(hidden, eps, dt));
  register_module("dropout", std::make_shared<Dropout>(p));
}

Tensor EncoderAddNorm::forward(const Tensor& x, const Tensor& residual) {
  LD_NVTX_RANGE(range_name());
  Tensor h = child<Dropout>("dropout").forward(child<Linear>("dense").forward(x));
  return mark_backward(child<LayerNorm>("LayerNorm").forward(h + residual));
}

namespace {
// attention = {self, output}; intermediate = {dense}: plain containers for HF names.
class Container : public Module {
 public:
  explicit Container(const char* t) : Module(t) {}
};
}  // namespace

EncoderLayer::EncoderLayer(const ModelConfig& c, DType dt)
    : Module("EncoderLayer"), act_(c.hidden_act) {
  auto att = register_module("attention", std::make_shared<Container>("EncoderAttention"));
  att->register_module("self", std::make_shared<EncoderSelfAttention>(c, dt));
  att->register_module(
      "output", std::make_shared<EncoderAddNorm>(c.hidden_size, c.hidden_size, c.layer_norm_eps,
                                                 c.hidden_dropout_prob, dt));
  auto inter = register_module("intermediate", std::make_shared<Container>("EncoderIntermediate"));
  inter->register_module("dense",
                         std::make_shared<Linear>(c.hidden_size, c.intermediate_size, true, dt));
  register_module("output",
                  std::make_shared<EncoderAddNorm>(c.intermediate_size, c.hidden_size,
                                                   c.layer_norm_eps, c.hidden_dropout_prob, dt));
}

Tensor EncoderLayer::forward(const Tensor& x, const Tensor& key_mask) {
  LD_NVTX_RANGE(range_name());
  Module& att = child<Module>("attention");
  Tensor ctx = att.child<EncoderSelfAttention>("self").forward(x, key_mask);
  Tensor a = att.child<EncoderAddNorm>("output").forward(ctx, x);
  Tensor h = activation(act_, child<Module>("intermediate").child<Linear>("dense").forward(a));
  return mark_backward(child<EncoderAddNorm>("output").forward(h, a));
}

EncoderModel::EncoderModel(const ModelConfig& c, bool add_pooler, DType dt)
    : Module(c.model_type == "roberta" ? "RobertaModel" : "BertModel"),
      layers_(c.num_hidden_layers) {
  register_module("embeddings", std::make_shared<EncoderEmbeddings>(c, dt));
  auto enc = register_module("encoder", std::make_shared<Container>("Encoder"));
  auto list = enc->register_module("layer", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    list->append(std::make_shared<EncoderLayer>(c, dt));
  if (add_pooler) {
    auto pooler = register_module("pooler", std::make_shared<Container>("Pooler"));
    pooler->register_module("dense",
                            std::make_shared<Linear>(c.hidden_size, c.hidden_size, true, dt));
  }
}

Tensor EncoderModel::forward(const Tensor& ids, const Tensor& attention_mask,
                             const Tensor& token_type_ids) {
  LD_NVTX_RANGE(range_name());
  Tensor key_mask = attention_mask.defined() ? mask_to_bool(attention_mask) : Tensor();
  Tensor h = child<EncoderEmbeddings>("embeddings").forward(ids, token_type_ids);
  const ModuleList& list = child<Module>("encoder").child<ModuleList>("layer");
  for (int64_t i = 0; i < layers_; ++i) h = list.at<EncoderLayer>(i).forward(h, key_mask);
  return h;
}

Tensor EncoderModel::pool(const Tensor& hidden) {
  LD_NVTX_RANGE(range_name() + ".pooler");
  return tanh(child<Module>("pooler").child<Linear>("dense").forward(hidden.select(1, 0)));
}

EncoderForSequenceClassification::EncoderForSequenceClassification(const ModelConfig& c, DType dt)
    : Module(c.model_type == "roberta" ? "RobertaForSequenceClassification"
                                       : "BertForSequenceClassification"),
      cfg_(c) {
  LD_CHECK(c.is_encoder(), "EncoderForSequenceClassification: model_type '{}' is not an encoder",
           c.model_type);
  bool roberta = c.model_type == "roberta";
  register_module(c.model_type, std::make_shared<EncoderModel>(c, !roberta, dt));
  double p = c.classifier_dropout.value_or(c.hidden_dropout_prob);
  if (roberta) {
    auto head =
        register_module("classifier", std::make_shared<Container>("RobertaClassificationHead"));
    head->register_module("dense",
                          std::make_shared<Linear>(c.hidden_size, c.hidden_size, true, dt));
    head->register_module("dropout", std::make_shared<Dropout>(p));
    head->register_module("out_proj",
                          std::make_shared<Linear>(c.hidden_size, c.num_labels, true, dt));
  } else {
    register_module("dropout", std::make_shared<Dropout>(p));
    register_module("classifier", std::make_shared<Linear>(c.hidden_size, c.num_labels, true, dt));
  }
}

SeqClsOutput EncoderForSequenceClassification::forward(const Tensor& ids,
                                                       const Tensor& attention_mask,
                                                       const Tensor& token_type_ids,
                                                       const Tensor& labels) {
  LD_NVTX_RANGE(range_name());
  Tensor h = base().forward(ids, attention_mask, token_type_ids);
  SeqClsOutput out;
  if (cfg_.model_type == "roberta") {
    // RobertaClassificationHead: dropout, dense, tanh, dropout, out_proj on the first token.
    Module& head = child<Module>("classifier");
    Dropout& drop = head.child<Dropout>("dropout");
    Tensor x = drop.forward(h.select(1, 0));
    x = tanh(head.child<Linear>("dense").forward(x));
    out.logits = head.child<Linear>("out_proj").forward(drop.forward(x));
  } else {
    Tensor pooled = child<Dropout>("dropout").forward(base().pool(h));
    out.logits = child<Linear>("classifier").forward(pooled);
  }
  if (labels.defined())
    out.loss = sequence_classification_loss(out.logits, labels, cfg_.num_labels, cfg_.problem_type);
  return out;
}

}  // namespace ld::nn
