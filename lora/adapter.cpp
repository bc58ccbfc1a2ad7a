// Adapted Linear layers (LoRA / VeRA / Tied-LoRA / SNIP-masked LoRA), the AdapterSet registry,
// LoRA-drop rebuild, merging, counting and Gram-form importance.
//
// Tied-LoRA (TL6, "vBuA") initialisation chosen here: A and B Kaiming-uniform (a = sqrt(5)), tied
// per target type (every `query` site uses one A and one B; every `value` site another), u = 1 and
// v = 0 per site. Why: v = 0 makes ΔW = 0 at the start, so the adapted model computes exactly the
// pretrained function (LoRA's B = 0 plays that role); v then receives a gradient at the first step
// (dL/dv = g ⊙ B(u ⊙ A x) with B != 0) and A, B, u receive theirs from the second step on. Zeroing
// B as LoRA does would be wrong together with v = 0: every gradient term carries a factor B or v,
// so nothing would ever move.
#include "lora/adapter.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_set>

#include "core/nvtx.h"
#include "core/ops/lora_linear.h"

namespace ld::lora {

namespace {

// Holds one registered parameter ("weight") so that the PEFT names are <site>.lora_A.weight.
class ParamHolder : public nn::Module {
 public:
  ParamHolder(const std::string& type, const Tensor& w, bool trainable) : nn::Module(type) {
    register_parameter("weight", w, trainable);
  }
  Tensor& weight() { return local("weight"); }
};

bool is_pattern(const std::string& t) {
  return t.rfind("re:", 0) == 0 || t.find_first_of("*?") != std::string::npos;
}

bool matches_target(const std::string& name, const std::vector<std::string>& targets) {
  for (const std::string& t : targets) {
    if (is_pattern(t)) {
      if (nn::name_matches(t, name)) return true;
    } else if (name == t || (name.size() > t.size() && name.ends_with("." + t))) {
      return true;
    }
  }
  return false;
}

DType adapter_dtype(const Tensor& base_w) {
  return base_w.dtype() == DType::f64 ? DType::f64 : DType::f32;
}

Tensor kaiming(const Shape& s, double a, Generator& gen, DType dt, Device dev) {
  Tensor t = Tensor::empty(s, dt);
  kaiming_uniform_(t, a, gen);
  return dev.is_cpu() ? t : t.to(dev);
}

}  // namespace

Method parse_method(const std::string& s) {
  if (s == "full" || s == "fullft" || s == "full-ft") return Method::FullFT;
  if (s == "lora") return Method::LoRA;
  if (s == "vera") return Method::VeRA;
  if (s == "tied" || s == "tied-lora" || s == "tl6") return Method::TiedLoRA;
  if (s == "sparse" || s == "snip" || s == "sparse-adapter") return Method::Sparse;
  LD_FAIL("unknown method '{}': expected full, lora, vera, tied or sparse", s);
}

const char* method_name(Method m) {
  switch (m) {
    case Method::FullFT:
      return "full";
    case Method::LoRA:
      return "lora";
    case Method::VeRA:
      return "vera";
    case Method::TiedLoRA:
      return "tied";
    case Method::Sparse:
      return "sparse";
  }
  return "?";
}

std::vector<std::string> default_targets(const std::string& model_type) {
  if (model_type == "roberta" || model_type == "bert") return {"query", "value"};
  if (model_type == "llama") return {"q_proj", "v_proj"};
  LD_FAIL("no default LoRA targets for model type '{}' (roberta, bert, llama)", model_type);
}

SharedInit parse_shared_init(const std::string& s) {
  if (s == "fresh") return SharedInit::Fresh;
  if (s == "mean") return SharedInit::Mean;
  LD_FAIL("unknown shared-adapter init '{}': expected fresh or mean", s);
}

std::string target_of(const std::string& site) {
  size_t dot = site.rfind('.');
  return dot == std::string::npos ? site : site.substr(dot + 1);
}

int64_t layer_of(const std::string& site) {
  size_t start = 0;
  while (start <= site.size()) {
    size_t dot = site.find('.', start);
    std::string part =
        site.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!part.empty() &&
        std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::stoll(part);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return -1;
}

// ---- importance ----

void ImportanceCollector::flush() {
  if (!tracker_) {
    pending_.clear();
    return;
  }
  for (auto& [site, v] : pending_) tracker_->add(site, v);
  pending_.clear();
}

Tensor gram_importance(const Tensor& u, const Tensor& B, const Tensor& b, double scale,
                       const Tensor& token_mask) {
  NoGradGuard ng;
  LD_CHECK(u.dim() == 2 || u.dim() == 3, "gram_importance: u {} must be [N, r] or [N, T, r]",
           u.desc());
  LD_CHECK(B.dim() == 2 && B.size(1) == u.size(-1), "gram_importance: B {} must be [out, r={}]",
           B.desc(), u.size(-1));
  Tensor Bb = b.defined() ? B * b.unsqueeze(1) : B;
  Tensor G = matmul(Bb.t(), Bb);                                      // [r, r]
  Tensor q = sum(matmul(u, G) * u, {u.dim() - 1}) * (scale * scale);  // [N, T] or [N]
  if (q.dim() == 2) {
    if (token_mask.defined()) {
      LD_CHECK(token_mask.shape() == q.shape(),
               "gram_importance: token mask {} does not match the site's tokens {}",
               token_mask.desc(), shape_str(q.shape()));
      q = q * token_mask.to(q.device(), q.dtype());
    }
    q = sum(q, {1});
  }
  return q;
}

// ---- AdaptedLinear ----

AdaptedLinear::AdaptedLinear(std::shared_ptr<nn::Linear> base, Method method, AdapterPtr adapter,
                             double scale, double dropout)
    : nn::Linear("AdaptedLinear", *base),
      base_(std::move(base)),
      method_(method),
      adapter_(std::move(adapter)),
      scale_(scale) {
  LD_CHECK(adapter_ && adapter_->A.defined() && adapter_->B.defined(),
           "AdaptedLinear: adapter without A/B");
  const int64_t r = adapter_->r;
  LD_CHECK(adapter_->A.size(0) == r && adapter_->B.size(1) == r,
           "AdaptedLinear: adapter '{}' A {} / B {} do not have rank {}", adapter_->id,
           adapter_->A.desc(), adapter_->B.desc(), r);
  if (method_ == Method::VeRA) {
    LD_CHECK(adapter_->A.size(1) >= in_ && adapter_->B.size(0) >= out_,
             "VeRA projections A {} / B {} are smaller than the layer [{}, {}]", adapter_->A.desc(),
             adapter_->B.desc(), out_, in_);
    register_module("vera_dropout", std::make_shared<nn::Dropout>(dropout));
    return;
  }
  LD_CHECK(adapter_->A.size(1) == in_ && adapter_->B.size(0) == out_,
           "adapter '{}' A {} / B {} does not fit a Linear [{}, {}]", adapter_->id,
           adapter_->A.desc(), adapter_->B.desc(), out_, in_);
  const bool tied = method_ == Method::TiedLoRA;
  register_module(tied ? "tied_A" : "lora_A",
                  std::make_shared<ParamHolder>("LoraA", adapter_->A, true));
  register_module(tied ? "tied_B" : "lora_B",
                  std::make_shared<ParamHolder>("LoraB", adapter_->B, true));
  register_module("lora_dropout", std::make_shared<nn::Dropout>(dropout));
}

void AdaptedLinear::set_vectors(Tensor d, Tensor b) {
  LD_CHECK(method_ == Method::VeRA || method_ == Method::TiedLoRA,
           "per-site vectors only exist for VeRA and Tied-LoRA");
  LD_CHECK(d.dim() == 1 && d.size(0) == adapter_->r && b.dim() == 1 && b.size(0) == out_,
           "per-site vectors d {} / b {} must be [r={}] / [out={}]", d.desc(), b.desc(),
           adapter_->r, out_);
  const bool vera = method_ == Method::VeRA;
  d_ = register_parameter(vera ? "vera_lambda_d" : "tied_u", d, true);
  b_ = register_parameter(vera ? "vera_lambda_b" : "tied_v", b, true);
}

Tensor AdaptedLinear::site_A() const {
  if (method_ == Method::VeRA) return adapter_->A.slice(1, 0, in_);
  return adapter_->eff_A();
}

Tensor AdaptedLinear::site_B() const {
  if (method_ == Method::VeRA) return adapter_->B.slice(0, 0, out_);
  return adapter_->eff_B();
}

Tensor AdaptedLinear::forward(const Tensor& x) {
  LD_NVTX_RANGE(range_name());
  Tensor y = linear(x, weight(), bias());
  if (merged_) return mark_backward(y);
  if (method_ != Method::VeRA) {
    // Module::to() replaces parameters by new leaves per module, which would unshare the adapter.
    auto& a = child<ParamHolder>(method_ == Method::TiedLoRA ? "tied_A" : "lora_A");
    LD_CHECK(a.weight().impl() == adapter_->A.impl(),
             "site '{}': its lora_A parameter is no longer the adapter's tensor (was the model "
             "moved with Module::to() after attaching adapters? attach them after moving)",
             path_);
  }
  LD_CHECK((method_ != Method::VeRA && method_ != Method::TiedLoRA) || d_.defined(),
           "site '{}': {} adapter without its per-site vectors", path_, method_name(method_));
  auto& drop = child<nn::Dropout>(method_ == Method::VeRA ? "vera_dropout" : "lora_dropout");
  const bool collect = collector_ && collector_->enabled();
  if (!d_.defined() && !b_.defined() && !weight().requires_grad()) {
    // LoRA / Sparse: the fused op (dropout, both projections and the Gram-form importance).
    const bool do_drop = training_ && drop.p() > 0.0;
    LD_CHECK(!do_drop || gen_,
             "site '{}': LoRA dropout {} in training mode needs a generator "
             "(call set_generator on the model)",
             path_, drop.p());
    uint64_t seed = do_drop ? gen_->seed() : 0, offset = do_drop ? gen_->next_offset() : 0;
    Tensor imp;
    Tensor mask = collect ? collector_->token_mask() : Tensor();
    if (mask.defined() && mask.dtype() != DType::b8) mask = ne(mask, 0.0);
    if (mask.defined())
      LD_CHECK(
          x.dim() == 3 && mask.dim() == 2 && mask.size(0) == x.size(0) && mask.size(1) == x.size(1),
          "site '{}': token mask {} does not match the input {}", path_, mask.desc(), x.desc());
    Tensor y = lora_linear(x, weight(), bias(), site_A(), site_B(), scale_, drop.p(), do_drop, seed,
                           offset, collect ? &imp : nullptr, mask);
    if (collect) collector_->record(path_, imp);
    return mark_backward(y);
  }
  Tensor xd = drop.forward(x);
  // VeRA / Tied-LoRA (per-site vectors) and trainable base weights: the composition of ops.
  Tensor u = linear(xd, site_A());  // [..., r]
  if (d_.defined()) u = u * d_;
  Tensor B = site_B();
  Tensor delta = linear(u, B);  // [..., out]
  if (b_.defined()) delta = delta * b_;
  if (collect) {
    NoGradGuard ng;
    collector_->record(
        path_, gram_importance(u.detach(), B.detach(), b_.defined() ? b_.detach() : Tensor(),
                               scale_, collector_->token_mask()));
  }
  return mark_backward(y + (scale_ == 1.0 ? delta : delta * scale_));
}

Tensor AdaptedLinear::delta_weight() const {
  NoGradGuard ng;
  Tensor B = site_B().detach(), A = site_A().detach();
  if (d_.defined()) B = B * d_.detach().unsqueeze(0);
  if (b_.defined()) B = B * b_.detach().unsqueeze(1);
  return matmul(B, A) * scale_;
}

void AdaptedLinear::merge() {
  LD_CHECK(!merged_, "site '{}' is already merged", path_);
  NoGradGuard ng;
  Tensor& w = weight();
  add_(w, delta_weight().to(w.device(), w.dtype()));
  merged_ = true;
}

void AdaptedLinear::unmerge() {
  LD_CHECK(merged_, "site '{}' is not merged", path_);
  NoGradGuard ng;
  Tensor& w = weight();
  add_(w, delta_weight().to(w.device(), w.dtype()), -1.0);
  merged_ = false;
}

// ---- AdapterSet ----

AdapterSet::AdapterSet(nn::Module& root, const AdapterConfig& cfg, Generator& gen,
                       const std::vector<std::string>& keep_trainable)
    : root_(&root), cfg_(cfg), head_patterns_(keep_trainable) {
  if (cfg_.method == Method::FullFT) {
    root.unfreeze("*");
    return;
  }
  std::vector<std::string> names;
  for (auto& [name, m] : root.named_modules())
    if (dynamic_cast<nn::Linear*>(m.get()) && !dynamic_cast<AdaptedLinear*>(m.get()) &&
        matches_target(name, cfg_.targets))
      names.push_back(name);
  LD_CHECK(!names.empty(), "no Linear module matches the adapter targets [{}]",
           fmt::join(cfg_.targets, ", "));
  attach(names, gen);
}

AdapterSet::AdapterSet(nn::Module& root, const std::vector<std::string>& sites,
                       const AdapterConfig& cfg, Generator& gen,
                       const std::vector<std::string>& keep_trainable)
    : root_(&root), cfg_(cfg), head_patterns_(keep_trainable) {
  LD_CHECK(cfg_.method != Method::FullFT, "an explicit site list needs an adapter method");
  LD_CHECK(!sites.empty(), "AdapterSet: empty site list");
  attach(sites, gen);
}

AdapterPtr AdapterSet::new_lora(const std::string& id, int64_t in, int64_t out,
                                Generator& gen) const {
  LD_CHECK(cfg_.r > 0, "LoRA rank must be positive, got {}", cfg_.r);
  // dtype/device from any site's base weight (all sites of a model share them)
  Tensor w;
  for (const Site& s : sites_)
    if (s.module) {
      w = s.module->weight();
      break;
    }
  DType dt = w.defined() ? adapter_dtype(w) : DType::f32;
  Device dev = w.defined() ? w.device() : kCPU;
  auto a = std::make_shared<LoraAdapter>();
  a->id = id;
  a->r = cfg_.r;
  a->A = kaiming({cfg_.r, in}, std::sqrt(5.0), gen, dt, dev);
  a->B = Tensor::zeros({out, cfg_.r}, dt, dev);
  return a;
}

void AdapterSet::attach(const std::vector<std::string>& names, Generator& gen) {
  LD_CHECK(cfg_.r > 0, "adapter rank must be positive, got {}", cfg_.r);
  root_->freeze_all();
  for (const std::string& p : head_patterns_) root_->unfreeze(p);
  std::vector<std::shared_ptr<nn::Linear>> bases;
  for (const std::string& n : names) {
    auto lin = std::dynamic_pointer_cast<nn::Linear>(root_->find_module(n));
    LD_CHECK(lin && !std::dynamic_pointer_cast<AdaptedLinear>(lin),
             "adapter site '{}' is not a plain Linear", n);
    bases.push_back(lin);
  }
  const DType dt = adapter_dtype(bases.front()->weight());
  const Device dev = bases.front()->weight().device();
  const double s = cfg_.method == Method::VeRA ? 1.0 : cfg_.alpha / static_cast<double>(cfg_.r);
  std::map<std::string, AdapterPtr> tied;
  if (cfg_.method == Method::VeRA) {
    int64_t max_in = 0, max_out = 0;
    for (auto& b : bases) {
      max_in = std::max(max_in, b->in_features());
      max_out = std::max(max_out, b->out_features());
    }
    Generator vg(cfg_.vera_prng_key);
    vera_ = std::make_shared<LoraAdapter>();
    vera_->id = "vera";
    vera_->r = cfg_.r;
    vera_->A = kaiming({cfg_.r, max_in}, 0.0, vg, dt, dev);  // PEFT: _kaiming_init, gain sqrt(2)
    vera_->B = kaiming({max_out, cfg_.r}, 0.0, vg, dt, dev);
  }
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& n = names[i];
    auto& base = bases[i];
    AdapterPtr ad;
    switch (cfg_.method) {
      case Method::LoRA:
      case Method::Sparse: {
        ad = std::make_shared<LoraAdapter>();
        ad->id = n;
        ad->r = cfg_.r;
        ad->A = kaiming({cfg_.r, base->in_features()}, std::sqrt(5.0), gen, dt, dev);
        ad->B = Tensor::zeros({base->out_features(), cfg_.r}, dt, dev);
        break;
      }
      case Method::TiedLoRA: {
        std::string t = target_of(n);
        auto it = tied.find(t);
        if (it == tied.end()) {
          ad = std::make_shared<LoraAdapter>();
          ad->id = t + ".tied";
          ad->r = cfg_.r;
          ad->A = kaiming({cfg_.r, base->in_features()}, std::sqrt(5.0), gen, dt, dev);
          ad->B = kaiming({base->out_features(), cfg_.r}, std::sqrt(5.0), gen, dt, dev);
          tied[t] = ad;
        } else {
          ad = it->second;
        }
        break;
      }
      case Method::VeRA:
        ad = vera_;
        break;
      case Method::FullFT:
        LD_FAIL("FullFT attaches no adapter");
    }
    auto m = std::make_shared<AdaptedLinear>(base, cfg_.method, ad, s, cfg_.dropout);
    if (cfg_.method == Method::VeRA)
      m->set_vectors(Tensor::full({cfg_.r}, cfg_.vera_d_initial, dt, dev),
                     Tensor::zeros({base->out_features()}, dt, dev));
    else if (cfg_.method == Method::TiedLoRA)
      m->set_vectors(Tensor::ones({cfg_.r}, dt, dev),
                     Tensor::zeros({base->out_features()}, dt, dev));
    if (collector_) m->set_collector(collector_);
    root_->replace_child(n, m);
    sites_.push_back({n, target_of(n), layer_of(n), m});
  }
}

const Site& AdapterSet::site(const std::string& name) const {
  for (const Site& s : sites_)
    if (s.name == name) return s;
  LD_FAIL("no adapted site '{}'", name);
}

std::vector<const Site*> AdapterSet::sites_of(const std::string& target) const {
  std::vector<const Site*> out;
  for (const Site& s : sites_)
    if (s.target == target) out.push_back(&s);
  std::stable_sort(out.begin(), out.end(),
                   [](const Site* a, const Site* b) { return a->layer < b->layer; });
  return out;
}

std::vector<std::string> AdapterSet::targets() const {
  std::set<std::string> t;
  for (const Site& s : sites_) t.insert(s.target);
  return {t.begin(), t.end()};
}

void AdapterSet::set_adapter(const std::string& name, const AdapterPtr& a) {
  LD_CHECK(cfg_.method == Method::LoRA || cfg_.method == Method::Sparse,
           "set_adapter: only LoRA / Sparse sites can be re-assigned (method {})",
           method_name(cfg_.method));
  for (Site& s : sites_) {
    if (s.name != name) continue;
    std::shared_ptr<nn::Linear> base;
    double dropout = cfg_.dropout;
    if (s.module) {
      LD_CHECK(!s.module->merged(), "set_adapter: site '{}' is merged; unmerge first", name);
      base = s.module->base();
    } else {
      base = std::dynamic_pointer_cast<nn::Linear>(root_->find_module(name));
    }
    const double sc = cfg_.alpha / static_cast<double>(cfg_.r);
    auto m = std::make_shared<AdaptedLinear>(base, cfg_.method, a, sc, dropout);
    if (collector_) m->set_collector(collector_);
    root_->replace_child(name, m);
    s.module = m;
    return;
  }
  LD_FAIL("set_adapter: no adapted site '{}'", name);
}

void AdapterSet::drop(const std::string& name) {
  for (Site& s : sites_) {
    if (s.name != name) continue;
    if (!s.module) return;
    LD_CHECK(!s.module->merged(), "drop: site '{}' is merged; unmerge first", name);
    root_->replace_child(name, s.module->base());
    s.module.reset();
    return;
  }
  LD_FAIL("drop: no adapted site '{}'", name);
}

void AdapterSet::rebuild(const std::map<std::string, std::vector<bool>>& keep, bool share_rest,
                         SharedInit init, Generator& gen) {
  LD_CHECK(cfg_.method == Method::LoRA || cfg_.method == Method::Sparse,
           "LoRA-drop rebuild needs LoRA adapters (method {})", method_name(cfg_.method));
  for (auto& [target, k] : keep) {
    auto sites = sites_of(target);
    LD_CHECK(!sites.empty(), "rebuild: no sites of target '{}'", target);
    LD_CHECK(k.size() == sites.size(), "rebuild: {} keep flags for {} sites of target '{}'",
             k.size(), sites.size(), target);
    std::vector<std::string> rest;
    for (size_t i = 0; i < sites.size(); ++i)
      if (!k[i]) rest.push_back(sites[i]->name);
    if (rest.empty()) continue;
    if (!share_rest) {
      for (const std::string& n : rest) drop(n);
      continue;
    }
    const Site& first = site(rest.front());
    LD_CHECK(first.module, "rebuild: site '{}' has no adapter to replace", first.name);
    const int64_t in = first.module->in_features(), out = first.module->out_features();
    auto shared = new_lora(
        target + ".shared" + (shared_serial_ ? std::to_string(shared_serial_) : ""), in, out, gen);
    ++shared_serial_;
    if (init == SharedInit::Mean) {
      NoGradGuard ng;
      Tensor sa = Tensor::zeros(shared->A.shape(), shared->A.dtype(), shared->A.device());
      Tensor sb = Tensor::zeros(shared->B.shape(), shared->B.dtype(), shared->B.device());
      std::unordered_set<const LoraAdapter*> seen;
      int64_t n = 0;
      for (const std::string& nm : rest) {
        const Site& s = site(nm);
        LD_CHECK(s.module, "rebuild: site '{}' has no adapter to average", nm);
        LD_CHECK(s.module->in_features() == in && s.module->out_features() == out,
                 "rebuild: sites of target '{}' differ in shape", target);
        if (!seen.insert(s.module->adapter().get()).second) continue;
        add_(sa, s.module->adapter()->A.detach());
        add_(sb, s.module->adapter()->B.detach());
        ++n;
      }
      mul_(sa, 1.0 / static_cast<double>(n));
      mul_(sb, 1.0 / static_cast<double>(n));
      shared->A.copy_(sa);
      shared->B.copy_(sb);
    }
    for (const std::string& n : rest) set_adapter(n, shared);
  }
}

std::vector<std::pair<std::string, Tensor>> AdapterSet::trainable_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  std::unordered_set<const TensorImpl*> seen;
  for (auto& [n, t] : root_->named_parameters())
    if (t.requires_grad() && seen.insert(t.impl()).second) out.emplace_back(n, t);
  return out;
}

std::vector<AdapterPtr> AdapterSet::adapters() const {
  std::vector<AdapterPtr> out;
  std::unordered_set<const LoraAdapter*> seen;
  for (const Site& s : sites_)
    if (s.module && seen.insert(s.module->adapter().get()).second)
      out.push_back(s.module->adapter());
  return out;
}

int64_t AdapterSet::num_adapter_parameters() const {
  if (cfg_.method == Method::FullFT) return count_trainable(*root_, head_patterns_);
  int64_t n = 0;
  if (cfg_.method != Method::VeRA) {
    for (const AdapterPtr& a : adapters()) {
      auto count = [](const Tensor& t, const Tensor& mask) -> int64_t {
        if (!mask.defined()) return t.numel();
        NoGradGuard ng;
        return static_cast<int64_t>(std::llround(sum(mask.to(DType::f64)).item()));
      };
      n += count(a->A, a->mask_A) + count(a->B, a->mask_B);
    }
  }
  for (const Site& s : sites_)
    if (s.module && s.module->vec_d().defined())
      n += s.module->vec_d().numel() + s.module->vec_b().numel();
  return n;
}

void AdapterSet::merge() {
  for (Site& s : sites_)
    if (s.module) s.module->merge();
}

void AdapterSet::unmerge() {
  for (Site& s : sites_)
    if (s.module) s.module->unmerge();
}

void AdapterSet::attach_tracker(ImportanceTracker& tracker) {
  collector_ = std::make_shared<ImportanceCollector>(&tracker);
  for (Site& s : sites_) {
    if (!tracker.has_site(s.name)) tracker.register_site(s.name, s.target, s.layer);
    if (s.module) s.module->set_collector(collector_);
  }
}

ImportanceCollector& AdapterSet::collector() {
  LD_CHECK(collector_, "no importance tracker attached (call attach_tracker first)");
  return *collector_;
}

void AdapterSet::set_collecting(bool on) { collector().set_enabled(on); }

void AdapterSet::apply_masks_() {
  NoGradGuard ng;
  for (const AdapterPtr& a : adapters()) {
    if (a->mask_A.defined()) {
      Tensor t = a->A.detach();
      t.copy_(a->A.detach() * a->mask_A);
    }
    if (a->mask_B.defined()) {
      Tensor t = a->B.detach();
      t.copy_(a->B.detach() * a->mask_B);
    }
  }
}

int64_t count_trainable(const nn::Module& m, const std::vector<std::string>& exclude) {
  int64_t n = 0;
  std::unordered_set<const TensorImpl*> seen;
  for (auto& [name, t] : m.named_parameters()) {
    if (!t.requires_grad() || !seen.insert(t.impl()).second) continue;
    bool ex = false;
    for (const std::string& p : exclude) ex = ex || nn::name_matches(p, name);
    if (!ex) n += t.numel();
  }
  return n;
}

}  // namespace ld::lora
