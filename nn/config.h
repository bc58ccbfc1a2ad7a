// Hugging Face config.json for the model families loradrop runs: roberta, bert (BERT-family such
// as MiniLM) and llama.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ld::nn {

struct ModelConfig {
  std::string model_type;  // "roberta", "bert", "llama"
  std::vector<std::string> architectures;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // llama; defaults to num_attention_heads
  int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
  int64_t intermediate_size = 0;
  std::string hidden_act = "gelu";
  int64_t max_position_embeddings = 0;
  std::optional<int64_t> pad_token_id;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // eos_token_id may be an int or a list
  // encoders
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  std::optional<double> classifier_dropout;
  // llama
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  double attention_dropout = 0.0;
  // heads
  int64_t num_labels = 2;
  std::map<int64_t, std::string> id2label;
  std::string problem_type;  // "", "regression", "single_label_classification",
                             // "multi_label_classification"

  bool is_encoder() const { return model_type == "roberta" || model_type == "bert"; }
};

// Parses a config.json. Throws ld::Error naming the file and the key for missing/ill-typed keys,
// unknown model types, and unsupported features (e.g. llama rope_scaling other than default).
ModelConfig load_config(const std::string& path);
ModelConfig parse_config(const std::string& json_text, const std::string& origin = "<string>");

}  // namespace ld::nn
