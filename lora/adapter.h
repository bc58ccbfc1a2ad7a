// Shareable low-rank adapters on Linear layers (LoRA, VeRA, Tied-LoRA TL6, SNIP-masked LoRA), the
// registry of adapted sites (AdapterSet), merge/unmerge, parameter counting and importance hooks.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/ops.h"
#include "lora/importance.h"
#include "nn/module.h"

namespace ld::lora {

// Which parameter-efficient method the adapted sites implement.
//   LoRA:     ΔW x = s · B A x,                 s = alpha / r; A [r, in], B [out, r]
//   VeRA:     ΔW x = λ_b ⊙ B (λ_d ⊙ A x)        A, B frozen, shared by every site, sliced from
//                                              [r, max in] / [max out, r]; λ_d [r], λ_b [out]
//   TiedLoRA: ΔW x = s · v ⊙ B (u ⊙ A x)        TL6 "vBuA": A, B tied across sites and trainable,
//                                              u [r] and v [out] per site
//   Sparse:   LoRA whose A and B are multiplied by fixed 0/1 masks (SNIP at initialisation)
enum class Method { FullFT, LoRA, VeRA, TiedLoRA, Sparse };
Method parse_method(const std::string& s);  // full|lora|vera|tied|sparse
const char* method_name(Method m);

struct AdapterConfig {
  Method method = Method::LoRA;
  // Target modules: a plain name matches the last component of a Linear's dotted path ("query"
  // matches roberta.encoder.layer.3.attention.self.query); a name with '*' / '?' or a "re:" prefix
  // is a full-path pattern (nn::name_matches).
  std::vector<std::string> targets = {"query", "value"};
  int64_t r = 8;
  double alpha = 8.0;  // LoRA and Tied-LoRA scale s = alpha / r (PEFT's default lora_alpha = 8)
  double dropout = 0.0;
  // VeRA (PEFT's VeraConfig): d_initial for λ_d, projection_prng_key seeds vera_A / vera_B.
  double vera_d_initial = 0.1;
  uint64_t vera_prng_key = 0;
};

// The default targets of a model family: query/value for roberta/bert, q_proj/v_proj for llama.
std::vector<std::string> default_targets(const std::string& model_type);

// The tensors of one adapter. Several sites may hold the same LoraAdapter: they then use the same
// A / B tensors, autograd accumulates their gradients from every site, and the optimiser and the
// parameter count see them once.
struct LoraAdapter {
  std::string id;         // unique in its AdapterSet, e.g. the site name or "query.shared"
  Tensor A;               // [r, in] (VeRA: [r, max in], sliced per site)
  Tensor B;               // [out, r] (VeRA: [max out, r])
  Tensor mask_A, mask_B;  // Sparse: 0/1 masks of A's / B's shape and dtype; undefined otherwise
  int64_t r = 0;
  // A and B with their masks applied ([r, in] / [out, r]); what the forward multiplies by.
  Tensor eff_A() const { return mask_A.defined() ? A * mask_A : A; }
  Tensor eff_B() const { return mask_B.defined() ? B * mask_B : B; }
};
using AdapterPtr = std::shared_ptr<LoraAdapter>;

// Pending per-example importance values of one forward pass (kept as tensors until flush so that
// a CUDA run does not synchronise once per site), and the token mask of the current batch.
class ImportanceCollector {
 public:
  explicit ImportanceCollector(ImportanceTracker* tracker) : tracker_(tracker) {}
  bool enabled() const { return enabled_ && tracker_ != nullptr; }
  void set_enabled(bool on) { enabled_ = on; }
  // Real-token mask of the batch about to be run: [B, T], nonzero = real; undefined = all real.
  void set_token_mask(const Tensor& mask) { mask_ = mask; }
  const Tensor& token_mask() const { return mask_; }
  void record(const std::string& site, Tensor per_example) {
    pending_.emplace_back(site, std::move(per_example));
  }
  // Moves the pending values into the tracker.
  void flush();
  ImportanceTracker* tracker() const { return tracker_; }

 private:
  ImportanceTracker* tracker_;
  bool enabled_ = false;
  Tensor mask_;
  std::vector<std::pair<std::string, Tensor>> pending_;
};

// Per-example ||s · b ⊙ B (d ⊙ u)||² summed over real tokens in Gram form: with Bb = b ⊙ B
// ([out, r]) and G = Bbᵀ Bb ([r, r]), a token costs uᵀ G u (O(r²)), not O(out · r).
// u [N, T, r] or [N, r] (already multiplied by d); B [out, r]; b [out] or undefined;
// token_mask [N, T] (nonzero = real) or undefined. Returns [N] (no autograd).
Tensor gram_importance(const Tensor& u, const Tensor& B, const Tensor& b, double scale,
                       const Tensor& token_mask);

// A Linear with an adapter. Takes over the base Linear's weight and bias (same tensors, same
// names), so the HF names of the model are unchanged; adds PEFT-named adapter parameters:
//   LoRA / Sparse: <site>.lora_A.weight [r, in], <site>.lora_B.weight [out, r], <site>.lora_dropout
//   VeRA:          <site>.vera_lambda_d [r], <site>.vera_lambda_b [out] (vera_A / vera_B are
//                  frozen and held by the adapter, not registered per site)
//   TiedLoRA:      <site>.tied_A.weight, <site>.tied_B.weight (shared), <site>.tied_u [r],
//                  <site>.tied_v [out]
class AdaptedLinear : public nn::Linear {
 public:
  AdaptedLinear(std::shared_ptr<nn::Linear> base, Method method, AdapterPtr adapter, double scale,
                double dropout);
  // x [..., in] -> [..., out]
  Tensor forward(const Tensor& x) override;

  Method method() const { return method_; }
  const AdapterPtr& adapter() const { return adapter_; }
  double scale() const { return scale_; }
  // The per-site vectors (VeRA λ_d / λ_b, Tied-LoRA u / v); undefined for LoRA.
  Tensor vec_d() const { return d_; }
  Tensor vec_b() const { return b_; }
  void set_vectors(Tensor d, Tensor b);  // registers them (PEFT / Tied names)
  // The Linear this module replaced (shares weight and bias).
  const std::shared_ptr<nn::Linear>& base() const { return base_; }
  // ΔW [out, in] = s · diag(b) B diag(d) A (no autograd).
  Tensor delta_weight() const;
  // Adds / subtracts ΔW to the base weight; while merged, forward is the base Linear alone.
  void merge();
  void unmerge();
  bool merged() const { return merged_; }
  void set_collector(std::shared_ptr<ImportanceCollector> c) { collector_ = std::move(c); }

 private:
  Tensor site_A() const;  // [r, in] (masked, or VeRA's slice)
  Tensor site_B() const;  // [out, r]
  std::shared_ptr<nn::Linear> base_;
  Method method_;
  AdapterPtr adapter_;
  double scale_;
  Tensor d_, b_;
  bool merged_ = false;
  std::shared_ptr<ImportanceCollector> collector_;
};

// One adapted site of a model.
struct Site {
  std::string name;    // full dotted module path
  std::string target;  // target type: the last path component ("query", "v_proj")
  int64_t layer = -1;  // first all-digit path component ("...layer.3...") or -1
  std::shared_ptr<AdaptedLinear> module;  // null when the site's adapter was dropped
};

// Parses target type and layer index from a module path.
std::string target_of(const std::string& site);
int64_t layer_of(const std::string& site);

// How a shared adapter that replaces several adapters is initialised (see rebuild()).
enum class SharedInit { Fresh, Mean };
SharedInit parse_shared_init(const std::string& s);  // fresh|mean

// The adapted sites of one model and their adapters. The model must outlive the set, and adapters
// should be attached after the model is on its final device (Module::to() makes new leaves per
// module and would silently unshare shared tensors; forward checks this and throws).
class AdapterSet {
 public:
  // Attaches an adapter of cfg.method at every Linear of `root` matching cfg.targets (throws when
  // none matches). Freezes everything that is not an adapter parameter, except the modules that
  // match `keep_trainable` (e.g. "classifier.*"). LoRA: A Kaiming-uniform(a = sqrt(5)), B zero (as
  // PEFT). VeRA: one vera_A [r, max in], vera_B [max out, r] Kaiming-uniform (a = 0, PEFT's
  // _kaiming_init) drawn from Generator(vera_prng_key), λ_d = d_initial, λ_b = 0. Tied-LoRA: see
  // the note in adapter.cpp. FullFT attaches nothing and leaves every parameter trainable.
  AdapterSet(nn::Module& root, const AdapterConfig& cfg, Generator& gen,
             const std::vector<std::string>& keep_trainable = {"classifier.*", "score.*"});
  // Attaches LoRA exactly at the listed sites (PEFT import).
  AdapterSet(nn::Module& root, const std::vector<std::string>& sites, const AdapterConfig& cfg,
             Generator& gen,
             const std::vector<std::string>& keep_trainable = {"classifier.*", "score.*"});

  const AdapterConfig& config() const { return cfg_; }
  nn::Module& root() const { return *root_; }
  const std::vector<Site>& sites() const { return sites_; }
  const Site& site(const std::string& name) const;
  std::vector<const Site*> sites_of(const std::string& target) const;  // by layer
  std::vector<std::string> targets() const;                            // sorted

  // A new LoRA adapter [r, in] / [out, r] (A Kaiming-uniform a = sqrt(5), B zero).
  AdapterPtr new_lora(const std::string& id, int64_t in, int64_t out, Generator& gen) const;
  // Gives `site` the adapter `a` (sharing it with whoever else holds it). LoRA/Sparse only.
  void set_adapter(const std::string& site, const AdapterPtr& a);
  // Removes the site's adapter: the base Linear goes back into the model ("w/o share").
  void drop(const std::string& site);

  // LoRA-drop rebuild. keep[target][i] says whether the i-th site of `target` (by layer) keeps its
  // own adapter; the others share ONE new adapter per target (share_rest) or lose theirs.
  // SharedInit::Fresh (default) gives the shared adapter a fresh Kaiming A / zero B;
  // SharedInit::Mean averages the A's and the B's of the adapters it replaces.
  //
  // Why Fresh is the default: the replaced adapters were trained briefly on the sample, each on
  // its own layer's inputs. ΔW = B A is bilinear and the rank-r bases of different layers are not
  // aligned, so mean(B_i) · mean(A_i) is not the mean of the ΔW_i: it is an arbitrary non-zero
  // perturbation applied to every shared site at once. Fresh starts the shared sites at ΔW = 0,
  // i.e. the rebuilt model computes exactly what the retained adapters compute, and the shared
  // adapter is trained during the full fine-tune as the paper describes. Mean is kept as an option
  // for studying that choice.
  void rebuild(const std::map<std::string, std::vector<bool>>& keep, bool share_rest,
               SharedInit init, Generator& gen);

  // Unique trainable tensors (adapter parameters plus whatever else is trainable in the model,
  // e.g. the head), each once, named by their first name in the model.
  std::vector<std::pair<std::string, Tensor>> trainable_parameters() const;
  // #Tr. Params as the paper reports it: adapter parameters only (head excluded), shared tensors
  // counted once, Sparse counts unmasked entries. FullFT: every trainable parameter outside the
  // head patterns given at construction.
  int64_t num_adapter_parameters() const;
  // Unique adapters (each once).
  std::vector<AdapterPtr> adapters() const;

  void merge();
  void unmerge();

  // Importance collection: registers every adapted site with `tracker` (once) and makes the sites
  // record ||ΔW x||² per example while enabled. Call collector().set_token_mask(mask) before each
  // forward and collector().flush() after it (or after backward).
  void attach_tracker(ImportanceTracker& tracker);
  ImportanceCollector& collector();
  void set_collecting(bool on);

  // Sparse: multiply A and B by their masks in place (after each optimiser step).
  void apply_masks_();

 private:
  void attach(const std::vector<std::string>& sites, Generator& gen);
  nn::Module* root_;
  AdapterConfig cfg_;
  std::vector<std::string> head_patterns_;
  std::vector<Site> sites_;
  AdapterPtr vera_;  // VeRA's shared frozen projections
  std::shared_ptr<ImportanceCollector> collector_;
  int64_t shared_serial_ = 0;
};

// #Tr. Params of any module: unique trainable tensors whose names match none of `exclude`.
int64_t count_trainable(const nn::Module& m,
                        const std::vector<std::string>& exclude = {"classifier.*", "score.*"});

}  // namespace ld::lora
