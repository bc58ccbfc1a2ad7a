// config.json parsing with HF defaults per model type and clear errors.
#include "nn/config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace ld::nn {

using json = nlohmann::json;

namespace {

template <class T>
T req(const json& j, const char* key, const std::string& origin) {
  LD_CHECK(j.contains(key) && !j[key].is_null(), "{}: config lacks required key '{}'", origin, key);
  try {
    return j[key].get<T>();
  } catch (const json::exception& e) {
    LD_FAIL("{}: config key '{}' has the wrong type ({}): {}", origin, key, j[key].dump(),
            e.what());
  }
}

template <class T>
T opt(const json& j, const char* key, T def, const std::string& origin) {
  if (!j.contains(key) || j[key].is_null()) return def;
  try {
    return j[key].get<T>();
  } catch (const json::exception& e) {
    LD_FAIL("{}: config key '{}' has the wrong type ({}): {}", origin, key, j[key].dump(),
            e.what());
  }
}

}  // namespace

ModelConfig parse_config(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    LD_FAIL("{}: bad config JSON: {}", origin, e.what());
  }
  LD_CHECK(j.is_object(), "{}: config is not a JSON object", origin);
  ModelConfig c;
  c.model_type = req<std::string>(j, "model_type", origin);
  LD_CHECK(c.model_type == "roberta" || c.model_type == "bert" || c.model_type == "llama",
           "{}: model_type '{}' is not supported (roberta, bert, llama)", origin, c.model_type);
  c.architectures = opt<std::vector<std::string>>(j, "architectures", {}, origin);
  c.vocab_size = req<int64_t>(j, "vocab_size", origin);
  c.hidden_size = req<int64_t>(j, "hidden_size", origin);
  c.num_hidden_layers = req<int64_t>(j, "num_hidden_layers", origin);
  c.num_attention_heads = req<int64_t>(j, "num_attention_heads", origin);
  c.intermediate_size = req<int64_t>(j, "intermediate_size", origin);
  LD_CHECK(c.num_attention_heads > 0 && c.hidden_size > 0, "{}: non-positive sizes", origin);
  c.head_dim = opt<int64_t>(j, "head_dim", c.hidden_size / c.num_attention_heads, origin);
  if (!j.contains("head_dim"))
    LD_CHECK(c.hidden_size % c.num_attention_heads == 0,
             "{}: hidden_size {} is not a multiple of num_attention_heads {}", origin,
             c.hidden_size, c.num_attention_heads);
  c.max_position_embeddings = opt<int64_t>(j, "max_position_embeddings", 512, origin);
  if (j.contains("pad_token_id") && !j["pad_token_id"].is_null())
    c.pad_token_id = req<int64_t>(j, "pad_token_id", origin);
  if (j.contains("bos_token_id") && !j["bos_token_id"].is_null())
    c.bos_token_id = req<int64_t>(j, "bos_token_id", origin);
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    if (j["eos_token_id"].is_array())
      c.eos_token_ids = req<std::vector<int64_t>>(j, "eos_token_id", origin);
    else
      c.eos_token_ids = {req<int64_t>(j, "eos_token_id", origin)};
  }
  c.tie_word_embeddings = opt<bool>(j, "tie_word_embeddings", c.model_type != "llama", origin);
  if (c.is_encoder()) {
    c.hidden_act = opt<std::string>(j, "hidden_act", "gelu", origin);
    c.type_vocab_size = opt<int64_t>(j, "type_vocab_size", 2, origin);
    c.layer_norm_eps = opt<double>(j, "layer_norm_eps", 1e-12, origin);
    c.hidden_dropout_prob = opt<double>(j, "hidden_dropout_prob", 0.1, origin);
    c.attention_probs_dropout_prob = opt<double>(j, "attention_probs_dropout_prob", 0.1, origin);
    if (j.contains("classifier_dropout") && !j["classifier_dropout"].is_null())
      c.classifier_dropout = req<double>(j, "classifier_dropout", origin);
    std::string pet = opt<std::string>(j, "position_embedding_type", "absolute", origin);
    LD_CHECK(pet == "absolute", "{}: position_embedding_type '{}' is not supported (absolute only)",
             origin, pet);
    if (c.model_type == "roberta" && !c.pad_token_id) c.pad_token_id = 1;
    if (c.model_type == "bert" && !c.pad_token_id) c.pad_token_id = 0;
  } else {
    c.hidden_act = opt<std::string>(j, "hidden_act", "silu", origin);
    c.num_key_value_heads = opt<int64_t>(j, "num_key_value_heads", c.num_attention_heads, origin);
    LD_CHECK(c.num_key_value_heads > 0 && c.num_attention_heads % c.num_key_value_heads == 0,
             "{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", origin,
             c.num_attention_heads, c.num_key_value_heads);
    c.rms_norm_eps = opt<double>(j, "rms_norm_eps", 1e-6, origin);
    // transformers < 5 writes rope_theta; 5.x writes rope_parameters {rope_theta, rope_type}.
    c.rope_theta = opt<double>(j, "rope_theta", 10000.0, origin);
    for (const char* key : {"rope_parameters", "rope_scaling"}) {
      if (!j.contains(key) || j[key].is_null()) continue;
      const json& rp = j[key];
      LD_CHECK(rp.is_object(), "{}: '{}' is not an object", origin, key);
      std::string type = rp.value("rope_type", rp.value("type", std::string("default")));
      LD_CHECK(type == "default", "{}: {}.rope_type '{}' is not supported (default only)", origin,
               key, type);
      if (rp.contains("rope_theta")) c.rope_theta = rp["rope_theta"].get<double>();
    }
    c.attention_bias = opt<bool>(j, "attention_bias", false, origin);
    c.mlp_bias = opt<bool>(j, "mlp_bias", false, origin);
    c.attention_dropout = opt<double>(j, "attention_dropout", 0.0, origin);
    if (!c.num_key_value_heads) c.num_key_value_heads = c.num_attention_heads;
  }
  LD_CHECK(c.hidden_act == "gelu" || c.hidden_act == "gelu_new" || c.hidden_act == "silu" ||
               c.hidden_act == "relu" || c.hidden_act == "gelu_pytorch_tanh",
           "{}: hidden_act '{}' is not supported", origin, c.hidden_act);
  if (j.contains("id2label") && j["id2label"].is_object()) {
    for (auto& [k, v] : j["id2label"].items()) c.id2label[std::stoll(k)] = v.get<std::string>();
  }
  if (j.contains("num_labels"))
    c.num_labels = req<int64_t>(j, "num_labels", origin);
  else if (!c.id2label.empty())
    c.num_labels = static_cast<int64_t>(c.id2label.size());
  c.problem_type = opt<std::string>(j, "problem_type", "", origin);
  LD_CHECK(c.problem_type.empty() || c.problem_type == "regression" ||
               c.problem_type == "single_label_classification" ||
               c.problem_type == "multi_label_classification",
           "{}: unknown problem_type '{}'", origin, c.problem_type);
  return c;
}

ModelConfig load_config(const std::string& path) {
  std::ifstream in(path);
  LD_CHECK(in, "cannot open config '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace ld::nn
