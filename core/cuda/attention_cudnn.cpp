// cuDNN fused scaled-dot-product attention through the cudnn-frontend graph API (sdpa with
// softmax statistics for training, sdpa_backward), compiled by the host compiler; the frontend is
// header-only and comes from tools/fetch_cudnn_frontend.sh (LD_CUDNN_FRONTEND_DIR). Graphs are
// built once per (device, dtype, shapes, strides, mask kind, causal kind, scale) and cached;
// workspace comes from the caching allocator.
//
// Masks. Our key_padding_mask is any bool [B, Tk] pattern (left padding, holes), while cuDNN's
// padding mask (seq_len_q/seq_len_kv) only expresses right padding, and telling the two apart
// would need a device-to-host copy per call. So the mask travels as an additive bias in the input
// dtype: [B, 1, 1, Tk] (broadcast over heads and queries; if cuDNN rejects the broadcast form the
// graph is rebuilt with a materialised [B, 1, Tq, Tk] one) holding 0 or a large finite negative
// (not -inf: a row whose keys are all masked then stays finite instead of 0/0). Such rows are
// zeroed afterwards by a per-row scale, and their output gradient is zeroed before the backward,
// so they output 0 and pass no gradient, as the unfused composition does.
// Causal: Tq == Tk uses cuDNN's causal mask (top-left == bottom-right); Tq < Tk without a padding
// mask uses its bottom-right causal mask; the remaining cases (cuDNN takes no bottom-right causal
// mask together with a bias, nor Tq > Tk) fold causal into the materialised bias.
// Determinism: cuDNN's default backward accumulates dQ with atomics; LD_CUDNN_SDPA_DETERMINISTIC=1
// asks for its deterministic algorithm.
#include "core/cuda/attention_cudnn.h"

#include <atomic>

#include "core/error.h"

#ifdef LD_WITH_CUDNN_FRONTEND

#include <cudnn.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <cudnn_frontend.h>

#include "core/autograd.h"
#include "core/cuda/runtime.h"
#include "core/nvtx.h"
#include "core/ops.h"

#endif

namespace ld::cuda {

namespace {
std::atomic<int64_t> g_calls{0};
}  // namespace

int64_t cudnn_sdpa_calls() { return g_calls.load(); }

#ifndef LD_WITH_CUDNN_FRONTEND

bool cudnn_sdpa_built() { return false; }

Tensor cudnn_sdpa(const Tensor&, const Tensor&, const Tensor&, const Tensor&, bool, double) {
  LD_FAIL(
      "attention: the cuDNN SDPA path (LD_ATTENTION=cudnn) is not built: the cudnn-frontend "
      "headers or cuDNN were not found at configure time (run tools/fetch_cudnn_frontend.sh and "
      "reconfigure; see LD_CUDNN_FRONTEND_DIR); use LD_ATTENTION=fused or unfused");
}

#else

namespace fe = cudnn_frontend;

namespace {

// Tensor uids of the variant packs.
enum Uid : int64_t { kQ = 1, kK, kV, kO, kStats, kBias, kDO, kDQ, kDK, kDV };

enum class CausalKind : int64_t { None, TopLeft, BottomRight };
enum class BiasKind : int64_t { None, Broadcast, Full };

struct Plan {
  std::shared_ptr<fe::graph::Graph> graph;
  int64_t workspace = 0;
  std::string error;  // non-empty: cuDNN does not take this graph
};

// Everything a graph depends on; also the cache key.
struct Spec {
  bool backward = false, stats = false, deterministic = false;
  int device = 0;
  DType dt = DType::bf16;
  int64_t B = 0, Hq = 0, Hkv = 0, Tq = 0, Tk = 0, D = 0;
  int64_t qs[4] = {}, ks[4] = {}, vs[4] = {};
  CausalKind causal = CausalKind::None;
  BiasKind bias = BiasKind::None;
  float scale = 1.f;

  std::vector<int64_t> key() const {
    int32_t sbits;
    std::memcpy(&sbits, &scale, sizeof sbits);
    std::vector<int64_t> k = {backward,
                              stats,
                              deterministic,
                              device,
                              static_cast<int64_t>(dt),
                              B,
                              Hq,
                              Hkv,
                              Tq,
                              Tk,
                              D,
                              static_cast<int64_t>(causal),
                              static_cast<int64_t>(bias),
                              sbits};
    k.insert(k.end(), qs, qs + 4);
    k.insert(k.end(), ks, ks + 4);
    k.insert(k.end(), vs, vs + 4);
    return k;
  }
};

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int64_t i = static_cast<int64_t>(dims.size()) - 2; i >= 0; --i)
    s[i] = s[i + 1] * dims[i + 1];
  return s;
}

std::mutex& cudnn_mutex() {
  static std::mutex m;
  return m;
}

// One handle per device, created on first use and kept for the life of the process (destroying it
// at exit would race the CUDA runtime's own teardown). Caller holds cudnn_mutex().
cudnnHandle_t handle_for(int device) {
  static std::unordered_map<int, cudnnHandle_t> handles;
  auto it = handles.find(device);
  if (it != handles.end()) return it->second;
  cudnnHandle_t h = nullptr;
  LD_CUDNN_CHECK(cudnnCreate(&h));
  handles.emplace(device, h);
  return h;
}

fe::DataType_t fe_dtype(DType dt) {
  return dt == DType::bf16 ? fe::DataType_t::BFLOAT16 : fe::DataType_t::HALF;
}

#define LD_FE_TRY(expr)                                                                 \
  do {                                                                                  \
    auto ld_fe_st_ = (expr);                                                            \
    if (ld_fe_st_.is_bad()) return std::string(#expr) + ": " + ld_fe_st_.get_message(); \
  } while (0)

// Builds the graph of `s` into `p`; returns "" or why cuDNN does not take it.
std::string build(const Spec& s, cudnnHandle_t h, Plan& p) {
  auto g = std::make_shared<fe::graph::Graph>();
  g->set_io_data_type(fe_dtype(s.dt))
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  auto tensor = [&](const char* name, int64_t uid, std::vector<int64_t> dims,
                    std::vector<int64_t> strides) {
    return g->tensor(fe::graph::Tensor_attributes()
                         .set_name(name)
                         .set_uid(uid)
                         .set_dim(std::move(dims))
                         .set_stride(std::move(strides)));
  };
  const std::vector<int64_t> qd = {s.B, s.Hq, s.Tq, s.D}, kd = {s.B, s.Hkv, s.Tk, s.D};
  auto Q = tensor("Q", kQ, qd, {s.qs, s.qs + 4});
  auto K = tensor("K", kK, kd, {s.ks, s.ks + 4});
  auto V = tensor("V", kV, kd, {s.vs, s.vs + 4});
  std::shared_ptr<fe::graph::Tensor_attributes> bias;
  if (s.bias != BiasKind::None) {
    std::vector<int64_t> bd = {s.B, 1, s.bias == BiasKind::Full ? s.Tq : 1, s.Tk};
    bias = tensor("bias", kBias, bd, contiguous_strides(bd));
  }
  const std::vector<int64_t> os = contiguous_strides(qd);
  const std::vector<int64_t> statd = {s.B, s.Hq, s.Tq, 1};
  if (!s.backward) {
    auto opt = fe::graph::SDPA_attributes().set_name("ld_sdpa").set_generate_stats(s.stats);
    opt.set_attn_scale(s.scale);
    if (s.causal == CausalKind::TopLeft) opt.set_causal_mask(true);
    if (s.causal == CausalKind::BottomRight) opt.set_causal_mask_bottom_right(true);
    if (bias) opt.set_bias(bias);
    auto [O, Stats] = g->sdpa(Q, K, V, opt);
    O->set_output(true).set_uid(kO).set_dim(qd).set_stride(os);
    if (s.stats) {
      Stats->set_output(true)
          .set_uid(kStats)
          .set_data_type(fe::DataType_t::FLOAT)
          .set_dim(statd)
          .set_stride(contiguous_strides(statd));
    }
  } else {
    auto O = tensor("O", kO, qd, os);
    auto dO = tensor("dO", kDO, qd, os);
    auto Stats = g->tensor(fe::graph::Tensor_attributes()
                               .set_name("stats")
                               .set_uid(kStats)
                               .set_dim(statd)
                               .set_stride(contiguous_strides(statd))
                               .set_data_type(fe::DataType_t::FLOAT));
    auto opt = fe::graph::SDPA_backward_attributes().set_name("ld_sdpa_backward");
    opt.set_attn_scale(s.scale);
    if (s.causal == CausalKind::TopLeft) opt.set_causal_mask(true);
    if (s.causal == CausalKind::BottomRight) opt.set_causal_mask_bottom_right(true);
    if (bias) opt.set_bias(bias);
    if (s.deterministic) opt.set_deterministic_algorithm(true);
    auto [dQ, dK, dV] = g->sdpa_backward(Q, K, V, O, dO, Stats, opt);
    dQ->set_output(true).set_uid(kDQ).set_dim(qd).set_stride(os);
    dK->set_output(true).set_uid(kDK).set_dim(kd).set_stride(contiguous_strides(kd));
    dV->set_output(true).set_uid(kDV).set_dim(kd).set_stride(contiguous_strides(kd));
  }
  LD_FE_TRY(g->validate());
  LD_FE_TRY(g->build_operation_graph(h));
  LD_FE_TRY(g->create_execution_plans({fe::HeurMode_t::A, fe::HeurMode_t::FALLBACK}));
  LD_FE_TRY(g->check_support(h));
  LD_FE_TRY(g->build_plans(h));
  int64_t ws = 0;
  LD_FE_TRY(g->get_workspace_size(ws));
  p.graph = std::move(g);
  p.workspace = ws;
  return "";
}

// The cached plan for `s`; a Broadcast bias cuDNN rejects is retried once as Full (s.bias is
// updated so the caller fills the right bias). Caller holds cudnn_mutex().
const Plan& plan_for(Spec& s, cudnnHandle_t h) {
  static std::map<std::vector<int64_t>, Plan> cache;
  auto it = cache.find(s.key());
  if (it == cache.end()) {
    Plan p;
    p.error = build(s, h, p);
    it = cache.emplace(s.key(), std::move(p)).first;
  }
  if (!it->second.error.empty() && s.bias == BiasKind::Broadcast) {
    s.bias = BiasKind::Full;
    return plan_for(s, h);
  }
  return it->second;
}

bool env_flag(const char* name) {
  const char* e = std::getenv(name);
  return e && *e && std::strcmp(e, "0") != 0;
}

void strides4(const Tensor& t, int64_t* s) {
  for (int i = 0; i < 4; ++i) s[i] = t.stride(i);
}

// cuDNN wants 16-byte aligned pointers and 16-byte aligned strides (bar the unit last one);
// anything else is copied to a contiguous tensor.
Tensor cudnn_layout(const Tensor& t) {
  const int64_t el = static_cast<int64_t>(dtype_size(t.dtype()));
  bool ok = t.stride(3) == 1 && reinterpret_cast<uintptr_t>(t.raw_data()) % 16 == 0;
  for (int i = 0; i < 3 && ok; ++i) ok = t.size(i) == 1 || (t.stride(i) * el) % 16 == 0;
  return ok ? t : t.contiguous();
}

// Workspace from the caching allocator, freed to its cache once the call is enqueued (reuse on the
// same stream is ordered after this call).
struct Workspace {
  void* p = nullptr;
  explicit Workspace(int64_t n) {
    if (n > 0) p = device_alloc(static_cast<size_t>(n));
  }
  ~Workspace() {
    if (p) device_free(p);
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
};

void execute(const Plan& p, cudnnHandle_t h, std::unordered_map<int64_t, void*>& pack) {
  Workspace ws(p.workspace);
  LD_CUDNN_CHECK(cudnnSetStream(h, current_stream()));
  auto st = p.graph->execute(h, pack, ws.p);
  LD_CHECK(st.is_good(), "attention: cuDNN SDPA execute failed: {}", st.get_message());
}

}  // namespace

bool cudnn_sdpa_built() { return true; }

Tensor cudnn_sdpa(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                  const Tensor& key_padding_mask, bool causal, double scale) {
  LD_NVTX_FN();
  // Outside what cuDNN's SDPA takes: the caller runs the unfused composition (which also reports
  // malformed inputs with the op's own messages).
  if (q_in.dim() != 4 || k_in.dim() != 4 || v_in.dim() != 4) return Tensor();
  if (!q_in.is_cuda() || !k_in.is_cuda() || !v_in.is_cuda()) return Tensor();
  const DType dt = q_in.dtype();
  if ((dt != DType::bf16 && dt != DType::f16) || k_in.dtype() != dt || v_in.dtype() != dt)
    return Tensor();
  const int64_t B = q_in.size(0), Hq = q_in.size(1), Tq = q_in.size(2), D = q_in.size(3);
  const int64_t Hkv = k_in.size(1), Tk = k_in.size(2);
  if (k_in.size(0) != B || v_in.size(0) != B || v_in.size(1) != Hkv || v_in.size(2) != Tk ||
      k_in.size(3) != D || v_in.size(3) != D)
    return Tensor();
  if (D % 8 != 0 || D > 256 || Hkv == 0 || Hq % Hkv != 0) return Tensor();
  if (B == 0 || Hq == 0 || Tq == 0 || Tk == 0) return Tensor();
  const Tensor& kpm = key_padding_mask;
  if (kpm.defined() && (kpm.dtype() != DType::b8 || kpm.dim() != 2 || !kpm.is_cuda() ||
                        kpm.size(0) != B || kpm.size(1) != Tk))
    return Tensor();
  if (q_in.device() != k_in.device() || q_in.device() != v_in.device() ||
      (kpm.defined() && kpm.device() != q_in.device()))
    return Tensor();

  const double sc = scale > 0 ? scale : 1.0 / std::sqrt(static_cast<double>(D));
  Tensor q = cudnn_layout(q_in.detach()), k = cudnn_layout(k_in.detach()),
         v = cudnn_layout(v_in.detach());
  const bool train =
      grad_enabled() && (q_in.requires_grad() || k_in.requires_grad() || v_in.requires_grad());

  Spec s;
  s.stats = train;
  s.deterministic = env_flag("LD_CUDNN_SDPA_DETERMINISTIC");
  s.device = q.device().index;
  s.dt = dt;
  s.B = B, s.Hq = Hq, s.Hkv = Hkv, s.Tq = Tq, s.Tk = Tk, s.D = D;
  strides4(q, s.qs);
  strides4(k, s.ks);
  strides4(v, s.vs);
  s.scale = static_cast<float>(sc);
  // Rows with no key to attend exist only with a padding mask or causal with Tq > Tk.
  const bool may_empty_rows = kpm.defined() || (causal && Tq > Tk);
  if (causal && Tq == Tk) s.causal = CausalKind::TopLeft;
  if (causal && Tq < Tk && !kpm.defined()) s.causal = CausalKind::BottomRight;
  if (kpm.defined()) s.bias = BiasKind::Broadcast;
  if (causal && Tq != Tk && s.causal == CausalKind::None) s.bias = BiasKind::Full;

  std::unique_lock<std::mutex> lock(cudnn_mutex());
  cudnnHandle_t h = handle_for(s.device);
  const Plan& fp = plan_for(s, h);
  if (!fp.error.empty()) {
    static std::map<std::vector<int64_t>, bool> noted;
    if (!noted[s.key()]) {
      noted[s.key()] = true;
      std::fprintf(stderr,
                   "loradrop: cuDNN SDPA does not take q [%lld, %lld, %lld, %lld] k/v [%lld, "
                   "%lld, %lld, %lld] %s%s%s; running the unfused attention. cuDNN: %s\n",
                   (long long)B, (long long)Hq, (long long)Tq, (long long)D, (long long)B,
                   (long long)Hkv, (long long)Tk, (long long)D, dtype_name(dt),
                   causal ? " causal" : "", kpm.defined() ? " masked" : "", fp.error.c_str());
    }
    return Tensor();
  }

  // Bias (0 / large negative; see the top of this file) and the row scale. The negative is far
  // below any score yet finite after cuDNN's internal log2(e) scaling, in bf16 and in f16.
  const double neg = dt == DType::bf16 ? -1e30 : -30000.0;
  Tensor bias, rowscale;
  if (s.bias != BiasKind::None)
    bias = Tensor::empty({B, 1, s.bias == BiasKind::Full ? Tq : 1, Tk}, dt, q.device());
  if (may_empty_rows) rowscale = Tensor::empty({B, 1, Tq, 1}, dt, q.device());
  cudnn_sdpa_masks(kpm, B, Tq, Tk, causal, neg, bias, rowscale);

  Tensor out = Tensor::empty({B, Hq, Tq, D}, dt, q.device());
  Tensor stats;
  if (train) stats = Tensor::empty({B, Hq, Tq, 1}, DType::f32, q.device());
  {
    std::unordered_map<int64_t, void*> pack = {
        {kQ, q.raw_data()}, {kK, k.raw_data()}, {kV, v.raw_data()}, {kO, out.raw_data()}};
    if (train) pack[kStats] = stats.raw_data();
    if (bias.defined()) pack[kBias] = bias.raw_data();
    execute(fp, h, pack);
  }
  g_calls.fetch_add(1);
  lock.unlock();

  Tensor result;
  {
    NoGradGuard ng;
    result = rowscale.defined() ? mul(out, rowscale) : out;
  }
  if (!train) return result;

  Spec bs = s;
  bs.backward = true;
  bs.stats = false;
  return record("cudnn_sdpa", result, {q_in, k_in, v_in}, [=](const Tensor& g) mutable {
    NoGradGuard ng;
    Tensor go = g.dtype() == dt ? g : g.to(dt);
    if (rowscale.defined()) go = mul(go, rowscale);  // rows with no key pass no gradient
    go = go.contiguous();
    Tensor dq = Tensor::empty(q.shape(), dt, q.device());
    Tensor dk = Tensor::empty({B, Hkv, Tk, D}, dt, q.device());
    Tensor dv = Tensor::empty({B, Hkv, Tk, D}, dt, q.device());
    std::lock_guard<std::mutex> lk(cudnn_mutex());
    cudnnHandle_t hb = handle_for(bs.device);
    const Plan& bp = plan_for(bs, hb);
    LD_CHECK(bp.error.empty(),
             "attention: cuDNN SDPA backward graph not supported for q {} k {} (its forward "
             "was): {}",
             q.desc(), k.desc(), bp.error);
    // The backward took only the materialised bias: expand the broadcast one.
    Tensor bb = bias;
    if (bs.bias == BiasKind::Full && s.bias == BiasKind::Broadcast)
      bb = bias.expand({B, 1, Tq, Tk}).contiguous();
    std::unordered_map<int64_t, void*> pack = {
        {kQ, q.raw_data()},   {kK, k.raw_data()},   {kV, v.raw_data()},
        {kO, out.raw_data()}, {kDO, go.raw_data()}, {kStats, stats.raw_data()},
        {kDQ, dq.raw_data()}, {kDK, dk.raw_data()}, {kDV, dv.raw_data()}};
    if (bb.defined()) pack[kBias] = bb.raw_data();
    execute(bp, hb, pack);
    return std::vector<Tensor>{dq, dk, dv};
  });
}

#endif  // LD_WITH_CUDNN_FRONTEND

}  // namespace ld::cuda
