#!/usr/bin/env python3
"""Loads a loradrop PEFT export into PEFT on the same tiny HF base and checks the logits.

Makes the fixture tests/fixtures/lora/peft_export used by PeftGolden.PeftLogitsOfOurExportMatch:

  LD_WRITE_LORA_FIXTURE=tests/fixtures/lora/peft_export \
      build/<dir>/tests/lora/lora_tests --gtest_filter=PeftGolden.*
  python tools/check_peft_export.py tests/fixtures/lora/peft_export

The C++ test (in its generator mode) writes adapter_config.json, adapter_model.safetensors,
inputs.safetensors and cpp_logits.safetensors; this script loads the adapter with
PeftModel.from_pretrained onto tests/fixtures/models/roberta_seqcls, checks that every tensor of
the file was loaded (LoRA weights and the modules_to_save head), computes the logits, compares
them with the C++ logits (1e-5) and writes peft_logits.safetensors. Exit status 1 on mismatch.
"""
import argparse
import os
import sys

import torch
from peft import PeftModel
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = os.path.join(ROOT, "tests", "fixtures", "models", "roberta_seqcls")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export_dir")
    ap.add_argument("--tol", type=float, default=1e-5)
    a = ap.parse_args()
    torch.manual_seed(0)
    base = AutoModelForSequenceClassification.from_pretrained(BASE, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, a.export_dir)
    model.eval()

    # every tensor of the export went into the model, with its value
    saved = load_file(os.path.join(a.export_dir, "adapter_model.safetensors"))
    loaded = get_peft_model_state_dict(model)
    missing = sorted(set(saved) - set(loaded))
    extra = sorted(set(loaded) - set(saved))
    if missing or extra:
        print(f"key mismatch: in file only {missing}, in PEFT only {extra}")
        return 1
    for k, v in saved.items():
        if not torch.equal(loaded[k].float().cpu(), v.float()):
            print(f"value of {k} differs after loading")
            return 1

    inputs = load_file(os.path.join(a.export_dir, "inputs.safetensors"))
    with torch.no_grad():
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
    cpp = load_file(os.path.join(a.export_dir, "cpp_logits.safetensors"))["logits"]
    diff = (logits - cpp).abs().max().item()
    print(f"PEFT logits {tuple(logits.shape)}; max |PEFT - C++| = {diff:.3g} (tol {a.tol})")
    # The LoRA must matter: the same inputs without the adapter give other logits.
    with model.disable_adapter(), torch.no_grad():
        plain = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
    effect = (plain - logits).abs().max().item()
    print(f"max |with adapter - without| = {effect:.3g}")
    save_file({"logits": logits.contiguous()}, os.path.join(a.export_dir, "peft_logits.safetensors"))
    if not diff <= a.tol or effect < 1e-3:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
