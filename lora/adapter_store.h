// A run's trained adapter on disk, for starting another run from it (paper_repro `init_from`):
// LoRA / Sparse / LoRA-drop as PEFT (lora/peft_io), VeRA and Tied-LoRA (no PEFT LoRA form) as our
// own safetensors file; the directory is written atomically (temp directory, rename).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lora/adapter.h"

namespace ld::lora {

// Writes the adapter tensors of `set` into `dir` (replacing what is there) through a temporary
// sibling directory renamed into place, so a reader sees either no directory or a complete one.
//   LoRA, Sparse (masks applied), LoRA-drop: export_peft (adapter_config.json +
//     adapter_model.safetensors; shared adapters written per site, sharing in its metadata).
//   VeRA, Tied-LoRA: adapter_tensors.safetensors holding every trainable adapter parameter by its
//     model name (VeRA λ_d / λ_b; Tied-LoRA tied_A / tied_B per site, u / v), head excluded;
//     metadata loradrop.method, loradrop.r, loradrop.alpha and, for VeRA, loradrop.vera_prng_key
//     (its frozen projections are not stored: they are regenerated from that key).
// The head (classifier / score) is written too for PEFT (modules_to_save) but never read back by
// init_adapters_from: it is task-specific.
void save_adapter(const AdapterSet& set, const std::string& dir,
                  const std::string& base_model_name = "");

// A saved adapter read back: its tensors by model parameter name (PEFT's "base_model.model."
// prefix removed; head tensors left out).
struct StoredAdapter {
  std::string dir;
  Method method = Method::LoRA;  // LoRA for PEFT files (LoRA, Sparse and LoRA-drop runs)
  int64_t r = 0;
  double alpha = 0;
  uint64_t vera_prng_key = 0;
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> adapter_of;  // PEFT: site -> adapter id (sharing)
  // The shared adapter of `target` ("<target>.shared*" id of a LoRA-drop rebuild): the names of
  // its A and B tensors at one of its sites, or empty when the stored run shared none.
  std::pair<std::string, std::string> shared_of(const std::string& target) const;
};
// Throws ld::Error naming the directory when it holds no adapter or a malformed one.
StoredAdapter load_adapter(const std::string& dir);
// True when `dir` holds a saved adapter (either format).
bool has_saved_adapter(const std::string& dir);

// What init_adapters_from loaded.
struct InitReport {
  std::vector<std::string> loaded;  // parameter names copied from the stored adapter
  std::vector<std::string> kept;    // adapter parameters of `set` it has no tensor for (fresh)
  std::string digest;               // adapter_digest of the loaded tensors as `set` now holds them
};
// Copies the stored tensors into `set`'s adapter parameters of the same name (bit-exact, on the
// set's device). Only adapters: the head is never touched. The stored method must be the set's
// (a PEFT LoRA file fits a LoRA or Sparse set), with the same r and alpha (and VeRA key);
// mismatched shapes throw naming the tensor. Parameters without a stored tensor keep their fresh
// initialisation (e.g. a site a "w/o share" run dropped) and are listed in `kept`.
InitReport init_adapters_from(AdapterSet& set, const StoredAdapter& src);

// LoRA-drop after its rebuild: every shared adapter of `set` ("<target>.shared*") starts from the
// stored run's shared adapter of the same target, when that run had one (else it keeps its
// initialisation). Returns the targets so initialised.
std::vector<std::string> init_shared_from(AdapterSet& set, const StoredAdapter& src);

// FNV-1a 64 over (name, shape, f32 little-endian bytes) of each tensor in name order, as 16 hex
// digits: equal digests mean bit-equal tensors (up to hash collisions).
std::string adapter_digest(const std::map<std::string, Tensor>& tensors);

}  // namespace ld::lora
