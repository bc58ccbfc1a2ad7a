// Module: a tree of named parameters, buffers and children with Hugging Face names, plus the leaf
// layers every model composes (Linear, Embedding, LayerNorm, RMSNorm, Dropout).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/ops.h"

namespace ld::nn {

// Name patterns for freeze/unfreeze/find_modules. A pattern is a glob by default and is matched
// against the whole dotted name: '*' matches any run of characters (dots included), '?' one
// character, everything else literally ("*.attention.self.query.*", "classifier.*"). A pattern
// starting with "re:" is an ECMAScript regular expression that must match the whole name
// ("re:.*layer\\.(0|1)\\..*").
bool name_matches(const std::string& pattern, const std::string& name);

class Module;
using ModulePtr = std::shared_ptr<Module>;

class Module {
 public:
  explicit Module(std::string type) : type_(std::move(type)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& type_name() const { return type_; }
  // Full dotted path from the root ("roberta.encoder.layer.3"); "" for the root. Set by
  // register_module / replace_child (children registered before their parent is attached get
  // their path fixed when the parent is attached).
  const std::string& path() const { return path_; }

  // ---- structure ----
  // Registers a parameter (requires_grad = trainable) under a local name and returns it.
  Tensor& register_parameter(const std::string& name, Tensor t, bool trainable = true);
  // Buffers are state that is not trained (e.g. RoPE tables); persistent ones go to state_dict.
  Tensor& register_buffer(const std::string& name, Tensor t, bool persistent = true);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }
  // The child with this local name, cast to M (throws naming the path when absent or of another
  // type). Parents call their children through this so that replace_child takes effect.
  template <class M>
  M& child(const std::string& name) const {
    M* p = dynamic_cast<M*>(child_ptr(name).get());
    LD_CHECK(p, "module '{}': child '{}' is a {}, not the expected type", path_, name,
             child_ptr(name)->type_name());
    return *p;
  }
  const ModulePtr& child_ptr(const std::string& name) const;
  // Replaces the module at a dotted path below this one ("encoder.layer.0.attention.self.query")
  // and returns the old one. The hook point for adapters: find_modules + replace_child.
  ModulePtr replace_child(const std::string& dotted, ModulePtr m);
  // The module at a dotted path ("" = this).
  ModulePtr find_module(const std::string& dotted) const;

  // ---- traversal (names relative to this module, in registration order) ----
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool persistent_only = true) const;
  std::vector<std::pair<std::string, ModulePtr>> named_modules() const;  // excludes this
  std::vector<std::pair<std::string, ModulePtr>> find_modules(const std::string& pattern) const;
  std::vector<Tensor> parameters(bool trainable_only = false) const;
  Tensor parameter(const std::string& dotted) const;  // throws naming the missing parameter

  // ---- modes and placement ----
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Moves every parameter and buffer; floating ones are cast to `dtype` (integer/bool buffers keep
  // theirs). Parameters keep their trainable flag but are new leaves (make the optimiser after).
  void to(Device device, DType dtype);
  void to(Device device);

  // ---- trainability ----
  // Returns how many parameters matched.
  int64_t freeze(const std::string& pattern);
  int64_t unfreeze(const std::string& pattern);
  void freeze_all() { freeze("*"); }
  int64_t num_parameters(bool trainable_only = false) const;

  // ---- state ----
  // Parameters and persistent buffers, HF names. trainable_only: just the trainable parameters.
  std::map<std::string, Tensor> state_dict(bool trainable_only = false) const;
  // Copies values into the existing tensors (dtype converted). strict: every key must be known and
  // every parameter/persistent buffer present; shape mismatches always throw naming the tensor.
  void load_state_dict(const std::map<std::string, Tensor>& sd, bool strict = true);

  // Dropout stream shared by the whole tree (set on the root, inherited by children).
  void set_generator(std::shared_ptr<Generator> gen);
  const std::shared_ptr<Generator>& generator() const { return gen_; }

 protected:
  // NVTX range name for forward: "Type(path)".
  std::string range_name() const { return type_ + "(" + path_ + ")"; }
  // Records a cheap identity node on a module output: its backward opens an NVTX range named
  // "<path>.backward", marking where the module's backward starts in Nsight (the ops' own ranges
  // show the work). Only recorded when NVTX is compiled in and on.
  Tensor mark_backward(const Tensor& y) const;
  // This module's own parameter (not a child's) by local name; throws when absent.
  Tensor& local(const std::string& name);

  std::string type_;
  std::string path_;
  bool training_ = true;
  std::shared_ptr<Generator> gen_;

 private:
  void add_child(const std::string& name, ModulePtr m);
  void set_path(const std::string& p);
  struct Param {
    std::string name;
    Tensor t;
  };
  struct Buffer {
    std::string name;
    Tensor t;
    bool persistent;
  };
  std::vector<Param> params_;
  std::vector<Buffer> buffers_;
  std::vector<std::pair<std::string, ModulePtr>> children_;
  friend class Linear;
};

// y = x W^T + b; W [out, in], b [out]. Virtual forward: LoRA replaces a Linear with a subclass that
// takes over its weight and bias (same names) and adds lora_A / lora_B children.
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias = true, DType dtype = DType::f32);
  // x [..., in] -> [..., out]
  virtual Tensor forward(const Tensor& x);
  Tensor& weight() { return params_[0].t; }
  Tensor bias() const { return params_.size() > 1 ? params_[1].t : Tensor(); }
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  void reset_parameters(Generator& gen);  // nn.Linear's default init

 protected:
  // For subclasses that wrap an existing Linear: shares its weight/bias tensors.
  Linear(const std::string& type, const Linear& base);
  int64_t in_, out_;
};

// weight [V, d]; ids i64 [...] -> [..., d].
class Embedding : public Module {
 public:
  Embedding(int64_t num, int64_t dim, int64_t padding_idx = -1, DType dtype = DType::f32);
  Tensor forward(const Tensor& ids);
  Tensor& weight() { return local("weight"); }
  int64_t padding_idx() const { return padding_idx_; }

 private:
  int64_t padding_idx_;
};

// Over the last dim; weight/bias [n].
class LayerNorm : public Module {
 public:
  LayerNorm(int64_t n, double eps, DType dtype = DType::f32);
  Tensor forward(const Tensor& x);

 private:
  double eps_;
};

// Llama's RMSNorm: x / sqrt(mean(x^2) + eps) * weight; weight [n].
class RMSNorm : public Module {
 public:
  RMSNorm(int64_t n, double eps, DType dtype = DType::f32);
  Tensor forward(const Tensor& x);

 private:
  double eps_;
};

// Inverted dropout. Each call in training mode draws a fresh Philox counter block from the tree's
// Generator (seed + per-call offset), so a run is reproducible from (seed, offset) and the offset
// is what a checkpoint saves. Without a generator set, training-mode dropout with p > 0 throws.
class Dropout : public Module {
 public:
  explicit Dropout(double p) : Module("Dropout"), p_(p) {}
  Tensor forward(const Tensor& x);
  double p() const { return p_; }

 private:
  double p_;
};

}  // namespace ld::nn
