// Export/import of LoRA adapters in PEFT's on-disk format: <dir>/adapter_config.json +
// <dir>/adapter_model.safetensors, keys "base_model.model.<site>.lora_A.weight" [r, in] and
// "...lora_B.weight" [out, r]; modules_to_save (the trained head) as "base_model.model.<name>".
#pragma once
#include <string>
#include <vector>

#include "lora/adapter.h"

namespace ld::lora {

struct PeftExportOptions {
  std::string base_model_name_or_path;  // written into adapter_config.json
  std::string task_type = "SEQ_CLS";    // SEQ_CLS | CAUSAL_LM | "" (none)
  // Top-level modules of the model saved in full (PEFT's modules_to_save), e.g. "classifier"
  // (RoBERTa/BERT) or "score" (Llama); those absent from the model are skipped.
  std::vector<std::string> modules_to_save = {"classifier", "score"};
};

// Writes the adapters of `set` (LoRA or LoRA-drop; Sparse adapters are written with their masks
// applied). A shared adapter is written once per site that uses it, so PEFT sees an ordinary
// LoRA; which sites shared which adapter is kept in the safetensors metadata
// ("loradrop.adapter_of": JSON {site: adapter id}) for import. When not every matching Linear has
// an adapter (w/o share), target_modules lists the exact site names. Both files are written
// atomically; the directory is created if needed. Merged sites are refused.
void export_peft(const AdapterSet& set, const std::string& dir, const PeftExportOptions& opt = {});

// Attaches LoRA to `root` at the sites found in <dir>/adapter_model.safetensors with r,
// lora_alpha and lora_dropout from adapter_config.json, loads A/B and the modules_to_save
// tensors, and restores sharing recorded by export_peft (sites sharing an adapter id get one
// adapter; their tensors must be equal). Throws naming the file on a missing/mis-shaped tensor,
// an unknown key, or a config PEFT features this importer does not support (use_dora, rslora,
// rank/alpha patterns, bias other than "none").
AdapterSet import_peft(nn::Module& root, const std::string& dir, Generator& gen);

}  // namespace ld::lora
