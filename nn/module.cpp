// Module tree: registration, traversal by dotted HF names, freezing by pattern, state_dict, and the
// leaf layers.
#include "nn/module.h"

#include <cmath>
#include <regex>

#include "core/autograd.h"
#include "core/nvtx.h"

namespace ld::nn {

namespace {

bool glob_match(const char* p, const char* s) {
  // Iterative glob with backtracking on the last '*'.
  const char* star = nullptr;
  const char* ss = nullptr;
  while (*s) {
    if (*p == '?' || (*p && *p != '*' && *p == *s)) {
      ++p, ++s;
    } else if (*p == '*') {
      star = p++;
      ss = s;
    } else if (star) {
      p = star + 1;
      s = ++ss;
    } else {
      return false;
    }
  }
  while (*p == '*') ++p;
  return *p == 0;
}

std::string join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "." + b; }

}  // namespace

bool name_matches(const std::string& pattern, const std::string& name) {
  if (pattern.rfind("re:", 0) == 0) {
    try {
      return std::regex_match(name, std::regex(pattern.substr(3)));
    } catch (const std::regex_error& e) {
      LD_FAIL("bad regular expression in name pattern '{}': {}", pattern, e.what());
    }
  }
  return glob_match(pattern.c_str(), name.c_str());
}

Tensor& Module::register_parameter(const std::string& name, Tensor t, bool trainable) {
  LD_CHECK(t.defined(), "module '{}': parameter '{}' is undefined", path_, name);
  for (const Param& p : params_)
    LD_CHECK(p.name != name, "module '{}': parameter '{}' registered twice", path_, name);
  t.set_requires_grad(trainable);
  params_.push_back({name, std::move(t)});
  return params_.back().t;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t, bool persistent) {
  buffers_.push_back({name, std::move(t), persistent});
  return buffers_.back().t;
}

void Module::add_child(const std::string& name, ModulePtr m) {
  LD_CHECK(m, "module '{}': child '{}' is null", path_, name);
  LD_CHECK(name.find('.') == std::string::npos, "child name '{}' must not contain '.'", name);
  for (auto& [n, c] : children_)
    LD_CHECK(n != name, "module '{}': child '{}' registered twice", path_, name);
  children_.emplace_back(name, m);
  m->set_path(join(path_, name));
  if (gen_ && !m->gen_) m->set_generator(gen_);
}

void Module::set_path(const std::string& p) {
  path_ = p;
  for (auto& [n, c] : children_) c->set_path(join(path_, n));
}

const ModulePtr& Module::child_ptr(const std::string& name) const {
  for (auto& [n, c] : children_)
    if (n == name) return c;
  LD_FAIL("module '{}' ({}) has no child '{}'", path_, type_, name);
}

ModulePtr Module::find_module(const std::string& dotted) const {
  if (dotted.empty()) LD_FAIL("find_module: empty path (the module itself is not shared-owned)");
  size_t dot = dotted.find('.');
  const ModulePtr& c = child_ptr(dotted.substr(0, dot));
  if (dot == std::string::npos) return c;
  return c->find_module(dotted.substr(dot + 1));
}

ModulePtr Module::replace_child(const std::string& dotted, ModulePtr m) {
  LD_CHECK(m, "replace_child('{}'): null module", dotted);
  size_t dot = dotted.rfind('.');
  Module* parent = this;
  ModulePtr holder;
  if (dot != std::string::npos) {
    holder = find_module(dotted.substr(0, dot));
    parent = holder.get();
  }
  std::string local = dot == std::string::npos ? dotted : dotted.substr(dot + 1);
  for (auto& [n, c] : parent->children_) {
    if (n == local) {
      ModulePtr old = c;
      c = m;
      m->set_path(join(parent->path_, n));
      m->training_ = old->training_;
      if (parent->gen_) m->set_generator(parent->gen_);
      return old;
    }
  }
  LD_FAIL("replace_child: module '{}' has no child '{}'", parent->path_, local);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const Param& p : params_) out.emplace_back(p.name, p.t);
  for (auto& [n, c] : children_)
    for (auto& [pn, t] : c->named_parameters()) out.emplace_back(n + "." + pn, t);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool persistent_only) const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const Buffer& b : buffers_)
    if (b.persistent || !persistent_only) out.emplace_back(b.name, b.t);
  for (auto& [n, c] : children_)
    for (auto& [bn, t] : c->named_buffers(persistent_only)) out.emplace_back(n + "." + bn, t);
  return out;
}

std::vector<std::pair<std::string, ModulePtr>> Module::named_modules() const {
  std::vector<std::pair<std::string, ModulePtr>> out;
  for (auto& [n, c] : children_) {
    out.emplace_back(n, c);
    for (auto& [cn, cc] : c->named_modules()) out.emplace_back(n + "." + cn, cc);
  }
  return out;
}

std::vector<std::pair<std::string, ModulePtr>> Module::find_modules(
    const std::string& pattern) const {
  std::vector<std::pair<std::string, ModulePtr>> out;
  for (auto& [n, m] : named_modules())
    if (name_matches(pattern, n)) out.emplace_back(n, m);
  return out;
}

std::vector<Tensor> Module::parameters(bool trainable_only) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters())
    if (!trainable_only || t.requires_grad()) out.push_back(t);
  return out;
}

Tensor Module::parameter(const std::string& dotted) const {
  for (auto& [n, t] : named_parameters())
    if (n == dotted) return t;
  LD_FAIL("module '{}' ({}) has no parameter '{}'", path_, type_, dotted);
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::to(Device device, DType dtype) {
  for (Param& p : params_) {
    bool tr = p.t.requires_grad();
    Tensor t = p.t.detach().to(device, dtype);
    if (t.shares_storage(p.t)) t = t.clone();
    p.t = t.detach();
    p.t.set_requires_grad(tr);
  }
  for (Buffer& b : buffers_)
    b.t = is_floating(b.t.dtype()) ? b.t.to(device, dtype) : b.t.to(device);
  for (auto& [n, c] : children_) c->to(device, dtype);
}

void Module::to(Device device) {
  for (Param& p : params_) {
    bool tr = p.t.requires_grad();
    if (p.t.device() == device) continue;
    p.t = p.t.detach().to(device);
    p.t.set_requires_grad(tr);
  }
  for (Buffer& b : buffers_) b.t = b.t.to(device);
  for (auto& [n, c] : children_) c->to(device);
}

int64_t Module::freeze(const std::string& pattern) {
  int64_t k = 0;
  for (auto& [n, t] : named_parameters())
    if (name_matches(pattern, n)) {
      Tensor(t).set_requires_grad(false);
      ++k;
    }
  return k;
}

int64_t Module::unfreeze(const std::string& pattern) {
  int64_t k = 0;
  for (auto& [n, t] : named_parameters())
    if (name_matches(pattern, n)) {
      Tensor(t).set_requires_grad(true);
      ++k;
    }
  return k;
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t k = 0;
  for (const Tensor& t : parameters(trainable_only)) k += t.numel();
  return k;
}

std::map<std::string, Tensor> Module::state_dict(bool trainable_only) const {
  std::map<std::string, Tensor> sd;
  for (auto& [n, t] : named_parameters())
    if (!trainable_only || t.requires_grad()) sd[n] = t.detach();
  if (!trainable_only)
    for (auto& [n, t] : named_buffers(true)) sd[n] = t;
  return sd;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& sd, bool strict) {
  std::map<std::string, Tensor> mine;
  for (auto& [n, t] : named_parameters()) mine[n] = t;
  for (auto& [n, t] : named_buffers(true)) mine[n] = t;
  std::vector<std::string> unexpected, missing;
  for (auto& [n, t] : sd) {
    auto it = mine.find(n);
    if (it == mine.end()) {
      unexpected.push_back(n);
      continue;
    }
    LD_CHECK(it->second.shape() == t.shape(),
             "load_state_dict: tensor '{}' has shape {} but the model expects {}", n,
             shape_str(t.shape()), shape_str(it->second.shape()));
  }
  for (auto& [n, t] : mine)
    if (!sd.count(n)) missing.push_back(n);
  if (strict) {
    LD_CHECK(unexpected.empty(), "load_state_dict: {} unexpected tensor(s): {}", unexpected.size(),
             fmt::join(unexpected, ", "));
    LD_CHECK(missing.empty(), "load_state_dict: {} missing tensor(s): {}", missing.size(),
             fmt::join(missing, ", "));
  }
  NoGradGuard ng;
  for (auto& [n, t] : sd) {
    auto it = mine.find(n);
    if (it != mine.end()) Tensor(it->second).copy_(t);
  }
}

void Module::set_generator(std::shared_ptr<Generator> gen) {
  gen_ = gen;
  for (auto& [n, c] : children_) c->set_generator(gen);
}

Tensor Module::mark_backward(const Tensor& y) const {
#ifdef LD_WITH_CUDA
  if (!nvtx_enabled() || !needs_grad(y)) return y;
  std::string name = path_ + ".backward";
  Tensor out = y.detach();
  return record("module_backward_mark", out, {y}, [name](const Tensor& g) {
    LD_NVTX_RANGE(name);
    return std::vector<Tensor>{g};
  });
#else
  return y;
#endif
}

Tensor& Module::local(const std::string& name) {
  for (Param& p : params_)
    if (p.name == name) return p.t;
  LD_FAIL("module '{}' ({}) has no parameter '{}'", path_, type_, name);
}

// ---- Linear ----

Linear::Linear(int64_t in, int64_t out, bool bias, DType dtype)
    : Module("Linear"), in_(in), out_(out) {
  register_parameter("weight", Tensor::zeros({out, in}, dtype));
  if (bias) register_parameter("bias", Tensor::zeros({out}, dtype));
}

Linear::Linear(const std::string& type, const Linear& base)
    : Module(type), in_(base.in_), out_(base.out_) {
  for (const Param& p : base.params_) params_.push_back(p);
  training_ = base.training_;
}

void Linear::reset_parameters(Generator& gen) {
  NoGradGuard ng;
  Tensor b = bias();
  linear_init_(weight(), b, gen);
}

Tensor Linear::forward(const Tensor& x) {
  LD_NVTX_RANGE(range_name());
  return mark_backward(linear(x, weight(), bias()));
}

// ---- Embedding ----

Embedding::Embedding(int64_t num, int64_t dim, int64_t padding_idx, DType dtype)
    : Module("Embedding"), padding_idx_(padding_idx) {
  register_parameter("weight", Tensor::zeros({num, dim}, dtype));
}

Tensor Embedding::forward(const Tensor& ids) {
  LD_NVTX_RANGE(range_name());
  return mark_backward(embedding(local("weight"), ids, padding_idx_));
}

// ---- norms ----

LayerNorm::LayerNorm(int64_t n, double eps, DType dtype) : Module("LayerNorm"), eps_(eps) {
  register_parameter("weight", Tensor::ones({n}, dtype));
  register_parameter("bias", Tensor::zeros({n}, dtype));
}

Tensor LayerNorm::forward(const Tensor& x) {
  LD_NVTX_RANGE(range_name());
  return mark_backward(layer_norm(x, local("weight"), local("bias"), eps_));
}

RMSNorm::RMSNorm(int64_t n, double eps, DType dtype) : Module("RMSNorm"), eps_(eps) {
  register_parameter("weight", Tensor::ones({n}, dtype));
}

Tensor RMSNorm::forward(const Tensor& x) {
  LD_NVTX_RANGE(range_name());
  return mark_backward(rms_norm(x, local("weight"), eps_));
}

// ---- Dropout ----

Tensor Dropout::forward(const Tensor& x) {
  if (!training_ || p_ == 0.0) return x;
  LD_NVTX_RANGE(range_name());
  LD_CHECK(gen_,
           "Dropout '{}' in training mode with p={} but no generator was set (call "
           "set_generator on the model)",
           path_, p_);
  return dropout(x, p_, true, gen_->seed(), gen_->next_offset());
}

}  // namespace ld::nn
