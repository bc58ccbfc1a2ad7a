// Llama2 forward passes (ops only), KV cache, and the generation drivers (greedy, HF's vectorised
// beam search). The drivers do their small per-row bookkeeping (top-k over [B, beams * V], eos
// checks) on host vectors, as HF does with torch ops on the CPU.
#include "nn/llama.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/nvtx.h"
#include "nn/checkpoint.h"

namespace ld::nn {

namespace {
class Container : public Module {
 public:
  explicit Container(const char* t) : Module(t) {}
};
}  // namespace

void KVCache::reorder(const Tensor& idx) {
  for (auto& t : k) t = index_select(t, 0, idx);
  for (auto& t : v) t = index_select(t, 0, idx);
}

Tensor positions_from_mask(const Tensor& attention_mask) {
  const int64_t T = attention_mask.size(1);
  Tensor real = mask_to_bool(attention_mask).to(DType::f64);
  Tensor r = arange(0, static_cast<double>(T), 1, DType::f64, attention_mask.device());
  Tensor tri = compare(CompareOp::Le, r.reshape({T, 1}), r.reshape({1, T})).to(DType::f64);
  Tensor cs = matmul(real, tri) - 1.0;  // cumsum - 1
  Tensor one = Tensor::full({}, 1.0, DType::f64, attention_mask.device());
  return where(mask_to_bool(attention_mask), cs, one).to(DType::i64);
}

// ---- attention / MLP / layer ----

LlamaAttention::LlamaAttention(const ModelConfig& c, int64_t layer, DType dt)
    : Module("LlamaAttention"),
      layer_(layer),
      hq_(c.num_attention_heads),
      hkv_(c.num_key_value_heads),
      d_(c.head_dim),
      theta_(c.rope_theta),
      p_(c.attention_dropout) {
  register_module("q_proj",
                  std::make_shared<Linear>(c.hidden_size, hq_ * d_, c.attention_bias, dt));
  register_module("k_proj",
                  std::make_shared<Linear>(c.hidden_size, hkv_ * d_, c.attention_bias, dt));
  register_module("v_proj",
                  std::make_shared<Linear>(c.hidden_size, hkv_ * d_, c.attention_bias, dt));
  register_module("o_proj",
                  std::make_shared<Linear>(hq_ * d_, c.hidden_size, c.attention_bias, dt));
}

Tensor LlamaAttention::forward(const Tensor& x, const Tensor& positions, const Tensor& key_mask,
                               KVCache* cache) {
  LD_NVTX_RANGE(range_name());
  LD_CHECK(!(training_ && p_ > 0.0),
           "LlamaAttention: attention_dropout {} > 0 in training is not supported", p_);
  const int64_t B = x.size(0), T = x.size(1);
  auto heads = [&](const Tensor& t, int64_t h) {
    return t.view({B, T, h, d_}).permute({0, 2, 1, 3}).contiguous();
  };
  Tensor q = rope(heads(child<Linear>("q_proj").forward(x), hq_), positions, theta_);
  Tensor k = rope(heads(child<Linear>("k_proj").forward(x), hkv_), positions, theta_);
  Tensor v = heads(child<Linear>("v_proj").forward(x), hkv_);
  if (cache) {
    if (static_cast<int64_t>(cache->k.size()) <= layer_) {
      cache->k.resize(layer_ + 1);
      cache->v.resize(layer_ + 1);
    }
    if (cache->k[layer_].defined()) {
      k = cat({cache->k[layer_], k}, 2);
      v = cat({cache->v[layer_], v}, 2);
    }
    cache->k[layer_] = k.detach();
    cache->v[layer_] = v.detach();
  }
  Tensor ctx = scaled_dot_product_attention(q, k, v, key_mask, true);
  ctx = ctx.permute({0, 2, 1, 3}).reshape({B, T, hq_ * d_});
  return mark_backward(child<Linear>("o_proj").forward(ctx));
}

LlamaDecoderLayer::LlamaDecoderLayer(const ModelConfig& c, int64_t layer, DType dt)
    : Module("LlamaDecoderLayer"), act_(c.hidden_act) {
  register_module("self_attn", std::make_shared<LlamaAttention>(c, layer, dt));
  auto mlp = register_module("mlp", std::make_shared<Container>("LlamaMLP"));
  mlp->register_module(
      "gate_proj", std::make_shared<Linear>(c.hidden_size, c.intermediate_size, c.mlp_bias, dt));
  mlp->register_module(
      "up_proj", std::make_shared<Linear>(c.hidden_size, c.intermediate_size, c.mlp_bias, dt));
  mlp->register_module(
      "down_proj", std::make_shared<Linear>(c.intermediate_size, c.hidden_size, c.mlp_bias, dt));
  register_module("input_layernorm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps, dt));
  register_module("post_attention_layernorm",
                  std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps, dt));
}

Tensor LlamaDecoderLayer::forward(const Tensor& x, const Tensor& positions, const Tensor& key_mask,
                                  KVCache* cache) {
  LD_NVTX_RANGE(range_name());
  Tensor h =
      x + child<LlamaAttention>("self_attn")
              .forward(child<RMSNorm>("input_layernorm").forward(x), positions, key_mask, cache);
  Module& mlp = child<Module>("mlp");
  Tensor n = child<RMSNorm>("post_attention_layernorm").forward(h);
  // SwiGLU: down(act(gate(x)) * up(x))
  Tensor m = mlp.child<Linear>("down_proj")
                 .forward(activation(act_, mlp.child<Linear>("gate_proj").forward(n)) *
                          mlp.child<Linear>("up_proj").forward(n));
  return mark_backward(h + m);
}

// ---- model ----

LlamaModel::LlamaModel(const ModelConfig& c, DType dt)
    : Module("LlamaModel"), layers_(c.num_hidden_layers) {
  LD_CHECK(c.model_type == "llama", "LlamaModel: model_type is '{}'", c.model_type);
  register_module("embed_tokens", std::make_shared<Embedding>(c.vocab_size, c.hidden_size,
                                                              c.pad_token_id.value_or(-1), dt));
  auto list = register_module("layers", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < layers_; ++i) list->append(std::make_shared<LlamaDecoderLayer>(c, i, dt));
  register_module("norm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps, dt));
}

Tensor LlamaModel::forward(const Tensor& ids, const Tensor& attention_mask,
                           const Tensor& positions_in, KVCache* cache) {
  LD_NVTX_RANGE(range_name());
  LD_CHECK(ids.dim() == 2 && ids.dtype() == DType::i64,
           "LlamaModel: ids must be i64 [B, T], got {}", ids.desc());
  const int64_t B = ids.size(0), T = ids.size(1);
  const int64_t past = cache ? cache->length() : 0;
  Tensor positions = positions_in;
  if (!positions.defined())
    positions = arange(static_cast<double>(past), static_cast<double>(past + T), 1, DType::i64,
                       ids.device())
                    .reshape({1, T})
                    .expand({B, T})
                    .contiguous();
  Tensor key_mask;
  if (attention_mask.defined()) {
    LD_CHECK(attention_mask.dim() == 2 && attention_mask.size(0) == B &&
                 attention_mask.size(1) == past + T,
             "LlamaModel: attention_mask {} must be [B, past + T] = [{}, {}]",
             attention_mask.desc(), B, past + T);
    key_mask = mask_to_bool(attention_mask);
  }
  Tensor h = child<Embedding>("embed_tokens").forward(ids);
  const ModuleList& list = child<ModuleList>("layers");
  for (int64_t i = 0; i < layers_; ++i) {
    LlamaDecoderLayer& layer = list.at<LlamaDecoderLayer>(i);
    if (ckpt_ && !cache && training_) {
      h = checkpoint(
          [&layer, positions, key_mask](const Tensor& x) {
            return layer.forward(x, positions, key_mask, nullptr);
          },
          h, layer.parameters(true), gen_);
    } else {
      h = layer.forward(h, positions, key_mask, cache);
    }
  }
  return child<RMSNorm>("norm").forward(h);
}

// ---- causal LM ----

LlamaForCausalLM::LlamaForCausalLM(const ModelConfig& c, DType dt)
    : Module("LlamaForCausalLM"), cfg_(c) {
  register_module("model", std::make_shared<LlamaModel>(c, dt));
  if (!c.tie_word_embeddings)
    register_module("lm_head", std::make_shared<Linear>(c.hidden_size, c.vocab_size, false, dt));
}

Tensor LlamaForCausalLM::lm_logits(const Tensor& h) {
  if (cfg_.tie_word_embeddings) return linear(h, model().child<Embedding>("embed_tokens").weight());
  return child<Linear>("lm_head").forward(h);
}

CausalLMOutput LlamaForCausalLM::forward(const Tensor& ids, const Tensor& attention_mask,
                                         const Tensor& labels, const Tensor& positions,
                                         KVCache* cache) {
  LD_NVTX_RANGE(range_name());
  CausalLMOutput out;
  out.logits = lm_logits(model().forward(ids, attention_mask, positions, cache));
  if (labels.defined()) out.loss = causal_lm_loss(out.logits, labels);
  return out;
}

Tensor LlamaForCausalLM::generate(const Tensor& ids, const Tensor& mask,
                                  const GenerateOptions& opt) {
  LD_CHECK(ids.dim() == 2 && ids.dtype() == DType::i64, "generate: ids must be i64 [B, L], got {}",
           ids.desc());
  LD_CHECK(opt.max_new_tokens >= 1, "generate: max_new_tokens must be >= 1");
  LD_CHECK(opt.num_beams >= 1, "generate: num_beams must be >= 1");
  Tensor m = mask.defined() ? mask : Tensor::ones(ids.shape(), DType::i64, ids.device());
  NoGradGuard ng;
  bool was_training = is_training();
  eval();
  Tensor out = opt.num_beams == 1 ? generate_greedy(ids, m, opt) : generate_beam(ids, m, opt);
  train(was_training);
  return out;
}

namespace {
std::vector<float> last_logits(const Tensor& logits) {  // [N, T, V] -> host [N, V] of position T-1
  return logits.select(1, logits.size(1) - 1).to(DType::f32).to_vector<float>();
}
bool is_eos(int64_t t, const std::vector<int64_t>& eos) {
  return std::find(eos.begin(), eos.end(), t) != eos.end();
}
// Sets row[t] = -inf for every token t that would repeat an n-gram of gen[0, len).
void ban_repeated_ngrams(const int64_t* gen, int64_t len, int64_t n, float* row) {
  if (n <= 0 || len + 1 < n) return;
  const int64_t* prefix = gen + len - (n - 1);
  for (int64_t s = 0; s + n <= len; ++s)
    if (std::equal(gen + s, gen + s + n - 1, prefix))
      row[gen[s + n - 1]] = -std::numeric_limits<float>::infinity();
}
}  // namespace

Tensor LlamaForCausalLM::generate_greedy(const Tensor& ids, const Tensor& mask_in,
                                         const GenerateOptions& opt) {
  const int64_t B = ids.size(0), L = ids.size(1), V = cfg_.vocab_size;
  const bool has_eos = !opt.eos_token_ids.empty();
  LD_CHECK(!has_eos || opt.pad_token_id,
           "generate: eos_token_ids need a pad_token_id for finished rows");
  std::vector<std::vector<int64_t>> seqs(B);
  std::vector<int64_t> host = ids.to(kCPU).contiguous().to_vector<int64_t>();
  for (int64_t b = 0; b < B; ++b) seqs[b].assign(host.begin() + b * L, host.begin() + (b + 1) * L);
  Tensor mask = mask_in.to(DType::i64);
  Tensor pos = positions_from_mask(mask);
  KVCache cache;
  std::vector<float> lg = last_logits(forward(ids, mask, Tensor(), pos, &cache).logits);
  std::vector<bool> unfinished(B, true);
  for (int64_t step = 0; step < opt.max_new_tokens; ++step) {
    std::vector<int64_t> next(B);
    for (int64_t b = 0; b < B; ++b) {
      float* row = lg.data() + b * V;
      ban_repeated_ngrams(seqs[b].data() + L, static_cast<int64_t>(seqs[b].size()) - L,
                          opt.no_repeat_ngram_size, row);
      int64_t best = std::max_element(row, row + V) - row;  // first maximum, as torch.argmax
      next[b] = (has_eos && !unfinished[b]) ? *opt.pad_token_id : best;
      seqs[b].push_back(next[b]);
      if (has_eos && is_eos(next[b], opt.eos_token_ids)) unfinished[b] = false;
    }
    if (std::none_of(unfinished.begin(), unfinished.end(), [](bool u) { return u; })) break;
    if (step + 1 == opt.max_new_tokens) break;
    pos = (pos.select(1, pos.size(1) - 1).reshape({B, 1}).to(DType::f64) + 1.0).to(DType::i64);
    mask = cat({mask, Tensor::ones({B, 1}, DType::i64, ids.device())}, 1);
    Tensor nt = Tensor::from_vector(next, {B, 1}, ids.device());
    lg = last_logits(forward(nt, mask, Tensor(), pos, &cache).logits);
  }
  const int64_t len = static_cast<int64_t>(seqs[0].size());
  std::vector<int64_t> flat;
  for (auto& s : seqs) flat.insert(flat.end(), s.begin(), s.end());
  return Tensor::from_vector(flat, {B, len}, ids.device());
}

// transformers' GenerationMixin._beam_search (vectorised since 4.50), do_sample=False,
// early_stopping=False, num_return_sequences=1, float32 scores.
Tensor LlamaForCausalLM::generate_beam(const Tensor& ids, const Tensor& mask_in,
                                       const GenerateOptions& opt) {
  const int64_t B = ids.size(0), L = ids.size(1), V = cfg_.vocab_size, K = opt.num_beams;
  const int64_t max_len = L + opt.max_new_tokens;
  const auto& eos = opt.eos_token_ids;
  const int64_t keep = std::max<int64_t>(2, 1 + static_cast<int64_t>(eos.size())) * K;
  LD_CHECK(keep <= K * V, "beam search: {} candidates needed but only {} exist", keep, K * V);
  // HF: output_fill_value = pad_token_id or eos_token_id[0] (a pad id of 0 is falsy there).
  int64_t fill = -1;
  if (!eos.empty())
    fill = (opt.pad_token_id && *opt.pad_token_id != 0) ? *opt.pad_token_id : eos[0];
  const float NEG = -1.0e9f;
  const float lp = static_cast<float>(opt.length_penalty);
  const int64_t G = max_len - L;
  // [B][K][max_len] sequences, [B][K][G] beam indices, [B][K] scores/flags.
  using Seq = std::vector<int64_t>;
  std::vector<std::vector<Seq>> run_seq(B, std::vector<Seq>(K, Seq(max_len, fill)));
  std::vector<int64_t> host = ids.to(kCPU).contiguous().to_vector<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < K; ++k)
      std::copy(host.begin() + b * L, host.begin() + (b + 1) * L, run_seq[b][k].begin());
  auto seqs = run_seq;
  std::vector<std::vector<float>> run_score(B, std::vector<float>(K, NEG)),
      beam_score(B, std::vector<float>(K, NEG));
  for (int64_t b = 0; b < B; ++b) run_score[b][0] = 0.0f;
  std::vector<std::vector<Seq>> run_bi(B, std::vector<Seq>(K, Seq(G, -1)));
  auto beam_idx = run_bi;
  std::vector<std::vector<bool>> finished(B, std::vector<bool>(K, false));
  std::vector<bool> heur_unsat(B, true);

  // Flattened [B*K, L] prompt (repeat_interleave).
  std::vector<int64_t> rep;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < K; ++k)
      rep.insert(rep.end(), host.begin() + b * L, host.begin() + (b + 1) * L);
  Tensor flat_ids = Tensor::from_vector(rep, {B * K, L}, ids.device());
  Tensor mask = index_select(mask_in.to(DType::i64), 0,
                             Tensor::from_vector(
                                 [&] {
                                   std::vector<int64_t> r;
                                   for (int64_t b = 0; b < B; ++b)
                                     for (int64_t k = 0; k < K; ++k) r.push_back(b);
                                   return r;
                                 }(),
                                 {B * K}, ids.device()));
  Tensor pos = positions_from_mask(mask);
  KVCache cache;
  Tensor logits = forward(flat_ids, mask, Tensor(), pos, &cache).logits;
  int64_t cur = L;
  while (true) {
    // log_softmax of the last position, f32, plus the running beam scores.
    std::vector<float> lpv =
        log_softmax(logits.select(1, logits.size(1) - 1).to(DType::f32), -1).to_vector<float>();
    if (opt.no_repeat_ngram_size > 0)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t k = 0; k < K; ++k)
          ban_repeated_ngrams(run_seq[b][k].data() + L, cur - L, opt.no_repeat_ngram_size,
                              lpv.data() + (b * K + k) * V);
    std::vector<std::vector<float>> topv(B);
    std::vector<std::vector<int64_t>> topi(B);
    std::vector<std::vector<Seq>> tk_seq(B), tk_bi(B);
    std::vector<std::vector<bool>> hits(B, std::vector<bool>(keep));
    for (int64_t b = 0; b < B; ++b) {
      std::vector<float> acc(K * V);
      for (int64_t k = 0; k < K; ++k)
        for (int64_t t = 0; t < V; ++t) acc[k * V + t] = lpv[(b * K + k) * V + t] + run_score[b][k];
      std::vector<int64_t> order(K * V);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(
          order.begin(), order.begin() + keep, order.end(),
          [&](int64_t x, int64_t y) { return acc[x] > acc[y] || (acc[x] == acc[y] && x < y); });
      for (int64_t j = 0; j < keep; ++j) {
        int64_t idx = order[j], kb = idx / V, tok = idx % V;
        topv[b].push_back(acc[idx]);
        topi[b].push_back(idx);
        Seq s = run_seq[b][kb];
        s[cur] = tok;
        tk_seq[b].push_back(s);
        Seq bi = run_bi[b][kb];
        bi[cur - L] = kb + b * K;
        tk_bi[b].push_back(bi);
        hits[b][j] = (cur + 1 >= max_len) || is_eos(tok, eos);
      }
    }
    // Next running beams: the best K continuations that did not stop.
    for (int64_t b = 0; b < B; ++b) {
      std::vector<float> r(keep);
      for (int64_t j = 0; j < keep; ++j) r[j] = topv[b][j] + (hits[b][j] ? NEG : 0.0f);
      std::vector<int64_t> o(keep);
      std::iota(o.begin(), o.end(), 0);
      std::stable_sort(o.begin(), o.end(), [&](int64_t x, int64_t y) { return r[x] > r[y]; });
      for (int64_t k = 0; k < K; ++k) {
        run_seq[b][k] = tk_seq[b][o[k]];
        run_score[b][k] = r[o[k]];
        run_bi[b][k] = tk_bi[b][o[k]];
      }
    }
    // Finished hypotheses: merge the current best K with the top-K candidates that just stopped.
    const float denom =
        static_cast<float>(std::pow(static_cast<double>(cur + 1 - L), static_cast<double>(lp)));
    for (int64_t b = 0; b < B; ++b) {
      std::vector<float> ms = beam_score[b];
      std::vector<Seq> mseq = seqs[b], mbi = beam_idx[b];
      std::vector<bool> mfin = finished[b];
      for (int64_t j = 0; j < keep; ++j) {
        bool did = hits[b][j] && j < K;
        float s = topv[b][j] / denom;
        s += heur_unsat[b] ? 0.0f : NEG;
        s += did ? 0.0f : NEG;
        ms.push_back(s);
        mseq.push_back(tk_seq[b][j]);
        mbi.push_back(tk_bi[b][j]);
        mfin.push_back(did);
      }
      std::vector<int64_t> o(ms.size());
      std::iota(o.begin(), o.end(), 0);
      std::stable_sort(o.begin(), o.end(), [&](int64_t x, int64_t y) { return ms[x] > ms[y]; });
      for (int64_t k = 0; k < K; ++k) {
        beam_score[b][k] = ms[o[k]];
        seqs[b][k] = mseq[o[k]];
        beam_idx[b][k] = mbi[o[k]];
        finished[b][k] = mfin[o[k]];
      }
    }
    // Reorder the cache to the new running beams.
    std::vector<int64_t> reorder;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < K; ++k) reorder.push_back(run_bi[b][k][cur - L]);
    cache.reorder(Tensor::from_vector(reorder, {B * K}, ids.device()));
    ++cur;
    // Early-stop heuristic (early_stopping=False): best running score at the current length vs
    // the worst finished one.
    const float best_den =
        static_cast<float>(std::pow(static_cast<double>(cur - L), static_cast<double>(lp)));
    bool any_unsat = false, all_hits = true;
    for (int64_t b = 0; b < B; ++b) {
      float best = run_score[b][0] / best_den;
      float worst = *std::min_element(beam_score[b].begin(), beam_score[b].end());
      bool any = false;
      for (int64_t k = 0; k < K; ++k) any = any || best > (finished[b][k] ? worst : NEG);
      heur_unsat[b] = heur_unsat[b] && any;
      any_unsat = any_unsat || heur_unsat[b];
      for (int64_t j = 0; j < keep; ++j) all_hits = all_hits && hits[b][j];
    }
    if (!any_unsat || all_hits) break;
    // Next step: the running beams' last tokens.
    std::vector<int64_t> nt;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < K; ++k) nt.push_back(run_seq[b][k][cur - 1]);
    pos = (pos.select(1, pos.size(1) - 1).reshape({B * K, 1}).to(DType::f64) + 1.0).to(DType::i64);
    mask = cat({mask, Tensor::ones({B * K, 1}, DType::i64, ids.device())}, 1);
    logits = forward(Tensor::from_vector(nt, {B * K, 1}, ids.device()), mask, Tensor(), pos, &cache)
                 .logits;
  }
  int64_t gen = 0;
  for (int64_t b = 0; b < B; ++b)
    gen = std::max<int64_t>(gen, std::count_if(beam_idx[b][0].begin(), beam_idx[b][0].end(),
                                               [](int64_t x) { return x != -1; }));
  std::vector<int64_t> flat;
  for (int64_t b = 0; b < B; ++b)
    flat.insert(flat.end(), seqs[b][0].begin(), seqs[b][0].begin() + L + gen);
  return Tensor::from_vector(flat, {B, L + gen}, ids.device());
}

// ---- sequence classification ----

LlamaForSequenceClassification::LlamaForSequenceClassification(const ModelConfig& c, DType dt)
    : Module("LlamaForSequenceClassification"), cfg_(c) {
  register_module("model", std::make_shared<LlamaModel>(c, dt));
  register_module("score", std::make_shared<Linear>(c.hidden_size, c.num_labels, false, dt));
}

Tensor LlamaForSequenceClassification::pooled_positions(const Tensor& ids,
                                                        std::optional<int64_t> pad) {
  const int64_t B = ids.size(0), T = ids.size(1);
  if (!pad) {
    LD_CHECK(B == 1, "Cannot handle batch sizes > 1 if no padding token is defined (batch {})", B);
    return Tensor::full({1}, static_cast<double>(T - 1), DType::i64, ids.device());
  }
  Tensor nonpad = ne(ids, static_cast<double>(*pad)).to(DType::f32);
  Tensor idx = arange(0, static_cast<double>(T), 1, DType::f32, ids.device()).reshape({1, T});
  return argmax(idx * nonpad, 1);
}

SeqClsOutputLlama LlamaForSequenceClassification::forward(const Tensor& ids,
                                                          const Tensor& attention_mask,
                                                          const Tensor& labels) {
  LD_NVTX_RANGE(range_name());
  const int64_t B = ids.size(0), T = ids.size(1);
  Tensor h = model().forward(ids, attention_mask, Tensor(), nullptr);
  Tensor logits = child<Linear>("score").forward(h);  // [B, T, C]
  // Integer ops are f32/f64 only in core: index arithmetic in f64 (exact), then back to i64.
  Tensor rows =
      (pooled_positions(ids, cfg_.pad_token_id).to(DType::f64) +
       arange(0, static_cast<double>(B * T), static_cast<double>(T), DType::f64, ids.device()))
          .to(DType::i64);
  SeqClsOutputLlama out;
  out.logits = index_select(logits.reshape({B * T, cfg_.num_labels}), 0, rows);
  if (labels.defined())
    out.loss = sequence_classification_loss(out.logits, labels, cfg_.num_labels, cfg_.problem_type);
  return out;
}

}  // namespace ld::nn
