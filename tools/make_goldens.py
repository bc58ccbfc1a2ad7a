#!/usr/bin/env python3
"""Golden fixtures for tests/nn: tiny random-weight Hugging Face models with a PEFT LoRA.

Writes tests/fixtures/models/<name>/{config.json, model.safetensors, adapter_model.safetensors,
golden.safetensors, golden.json}. Models: RobertaForSequenceClassification (3 labels),
BertForSequenceClassification (num_labels=1, regression/MSE), LlamaForCausalLM (grouped K/V
heads, untied lm_head), LlamaForSequenceClassification. LoRA r=4, alpha=8 on query/value
(q_proj/v_proj), B set randomly after get_peft_model so it is non-zero; the classifier/score head
is trainable too (as in the paper's setting). Dropout is 0 everywhere: torch's dropout RNG cannot be
reproduced by loradrop's Philox stream, so a golden with dropout would test nothing.

golden.safetensors holds input_ids, attention_mask, labels, logits, loss, grad.<name> (every
trainable parameter, PEFT names), step3.<name> (parameters after 3 AdamW steps with a linear
warmup schedule and gradient clipping) and, for the causal LM, generation ids. Everything f32 on
the CPU with fixed seeds. Run: python tools/make_goldens.py (needs torch, transformers, peft).
"""
import json
import os
import sys

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import (BertConfig, BertForSequenceClassification, LlamaConfig,
                          LlamaForCausalLM, LlamaForSequenceClassification, RobertaConfig,
                          RobertaForSequenceClassification, get_linear_schedule_with_warmup)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "models")
# Optimiser settings shared with the C++ tests (also written to golden.json).
OPT = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, warmup=2, total=6,
           max_grad_norm=0.5, steps=3)


def lora(model, targets):
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=targets, lora_dropout=0.0, bias="none")
    pm = get_peft_model(model, cfg)
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return pm


def train_golden(pm, head_prefix, batch, out):
    for n, p in pm.named_parameters():
        if n.startswith("base_model.model." + head_prefix):
            p.requires_grad_(True)
    pm.train()
    params = [(n, p) for n, p in pm.named_parameters() if p.requires_grad]
    res = pm(**batch)
    out["logits"] = res.logits.detach().clone()
    out["loss"] = res.loss.detach().reshape([])
    res.loss.backward()
    for n, p in params:
        out["grad." + n] = p.grad.detach().clone()
    pm.zero_grad()
    opt = torch.optim.AdamW([p for _, p in params], lr=OPT["lr"], betas=OPT["betas"],
                            eps=OPT["eps"], weight_decay=OPT["weight_decay"])
    sch = get_linear_schedule_with_warmup(opt, OPT["warmup"], OPT["total"])
    losses = []
    for _ in range(OPT["steps"]):
        opt.zero_grad()
        loss = pm(**batch).loss
        losses.append(loss.item())
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in params], OPT["max_grad_norm"])
        opt.step()
        sch.step()
    out["step_losses"] = torch.tensor(losses, dtype=torch.float32)
    for n, p in params:
        out["step3." + n] = p.detach().clone()
    return [n for n, _ in params]


def write(name, base_model, pm, golden, meta):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(base_model.config.to_json_string())
    # Base weights in HF names (what save_pretrained writes), before LoRA was attached.
    save_file({k: v.contiguous() for k, v in meta.pop("base_state").items()},
              os.path.join(d, "model.safetensors"))
    # The adapter in PEFT's on-disk names (base_model.model.<...>.lora_A.weight).
    from peft.utils import get_peft_model_state_dict
    ad = get_peft_model_state_dict(pm, state_dict=meta.pop("adapter_state"))
    save_file({k: v.contiguous() for k, v in ad.items()}, os.path.join(d, "adapter_model.safetensors"))
    save_file({k: v.contiguous() for k, v in golden.items()}, os.path.join(d, "golden.safetensors"))
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(meta, f, indent=1)


def snapshot(pm):
    base = {}
    for k, v in pm.base_model.model.state_dict().items():
        if "lora_" in k:
            continue
        base[k.replace(".base_layer.", ".")] = v.detach().clone()
    return base, {k: v.detach().clone() for k, v in pm.state_dict().items()}


def encoder(kind):
    torch.manual_seed(0)
    common = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=32, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                  max_position_embeddings=40)
    if kind == "roberta":
        cfg = RobertaConfig(**common, type_vocab_size=1, pad_token_id=1, bos_token_id=0,
                            eos_token_id=2, num_labels=3, layer_norm_eps=1e-5)
        model = RobertaForSequenceClassification(cfg)
        pad, head = 1, "classifier."
        labels = torch.tensor([0, 2, 1])
    else:
        cfg = BertConfig(**common, type_vocab_size=2, pad_token_id=0, num_labels=1)
        model = BertForSequenceClassification(cfg)
        pad, head = 0, "classifier."
        labels = torch.tensor([0.5, -1.25, 2.0])
    model.config._attn_implementation = "eager"
    pm = lora(model, ["query", "value"])
    base_state, adapter_state = snapshot(pm)
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(3, 50, (3, 7), generator=g)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 5:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = pad
    batch = dict(input_ids=ids, attention_mask=mask, labels=labels)
    if kind == "bert":
        tt = torch.zeros(3, 7, dtype=torch.long)
        tt[:, 4:] = 1
        batch["token_type_ids"] = tt
    golden = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if "token_type_ids" in batch:
        golden["token_type_ids"] = batch["token_type_ids"]
    trainable = train_golden(pm, head, batch, golden)
    meta = dict(opt=OPT, trainable=trainable, lora=dict(r=4, alpha=8), base_state=base_state,
                adapter_state=adapter_state)
    write(kind + "_seqcls", model, pm, golden, meta)


def llama(kind):
    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=48, max_position_embeddings=64,
                      rms_norm_eps=1e-5, rope_theta=500.0, pad_token_id=3, bos_token_id=1,
                      eos_token_id=2, tie_word_embeddings=False, attention_dropout=0.0,
                      num_labels=2)
    model = (LlamaForCausalLM if kind == "causal" else LlamaForSequenceClassification)(cfg)
    model.config._attn_implementation = "eager"
    pm = lora(model, ["q_proj", "v_proj"])
    base_state, adapter_state = snapshot(pm)
    g = torch.Generator().manual_seed(11)
    ids = torch.randint(4, 64, (3, 8), generator=g)
    mask = torch.ones(3, 8, dtype=torch.long)
    mask[1, 6:] = 0
    mask[2, 4:] = 0
    ids[mask == 0] = 3
    if kind == "causal":
        labels = ids.clone()
        labels[mask == 0] = -100
        head = "lm_head."
    else:
        labels = torch.tensor([1, 0, 1])
        head = "score."
    batch = dict(input_ids=ids, attention_mask=mask, labels=labels)
    golden = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    trainable = train_golden(pm, head, batch, golden)
    meta = dict(opt=OPT, trainable=trainable, lora=dict(r=4, alpha=8), base_state=base_state,
                adapter_state=adapter_state)
    if kind == "causal":
        # Generation from the LoRA model as it was before training (the saved weights), batched
        # with left padding. eos is picked from a first greedy run so that one sequence stops early.
        pm.load_state_dict(adapter_state)
        pm.eval()
        prompts = [[1, 17, 9, 33, 41], [1, 22, 5]]
        L = max(map(len, prompts))
        pids = torch.full((2, L), 3, dtype=torch.long)
        pmask = torch.zeros((2, L), dtype=torch.long)
        for i, p in enumerate(prompts):
            pids[i, L - len(p):] = torch.tensor(p)
            pmask[i, L - len(p):] = 1
        with torch.no_grad():
            probe = pm.generate(input_ids=pids, attention_mask=pmask, max_new_tokens=8,
                                do_sample=False, num_beams=1, eos_token_id=None, pad_token_id=3)
            eos = int(probe[1, L + 2])  # sequence 1 stops after its 3rd new token
            greedy = pm.generate(input_ids=pids, attention_mask=pmask, max_new_tokens=8,
                                 do_sample=False, num_beams=1, eos_token_id=eos, pad_token_id=3)
            beam = pm.generate(input_ids=pids, attention_mask=pmask, max_new_tokens=6,
                               do_sample=False, num_beams=3, eos_token_id=eos, pad_token_id=3,
                               length_penalty=1.0)
            beam_lp = pm.generate(input_ids=pids, attention_mask=pmask, max_new_tokens=6,
                                  do_sample=False, num_beams=4, eos_token_id=eos, pad_token_id=3,
                                  length_penalty=0.5)
        golden.update(gen_input_ids=pids, gen_attention_mask=pmask, greedy_ids=greedy,
                      beam3_ids=beam, beam4_lp05_ids=beam_lp)
        meta["gen"] = dict(eos=eos, pad=3, greedy_max_new=8, beam_max_new=6)
    write("llama_" + kind, model, pm, golden, meta)


if __name__ == "__main__":
    torch.set_num_threads(1)
    for k in ("roberta", "bert"):
        encoder(k)
    for k in ("causal", "seqcls"):
        llama(k)
    total = 0
    for dp, _, fs in os.walk(ROOT):
        total += sum(os.path.getsize(os.path.join(dp, f)) for f in fs)
    print(f"fixtures written to {ROOT}: {total / 1e6:.3f} MB", file=sys.stderr)
