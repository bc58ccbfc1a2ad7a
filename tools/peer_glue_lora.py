#!/usr/bin/env python3
"""The peer for a cpu-real main_glue cell: Hugging Face + PEFT LoRA (or frozen base + head) on one
GLUE task with the cpu-real preset's settings (r=8, alpha=16 on query/value, AdamW lr 5e-4, weight
decay 0.1, warmup 6% then linear decay, clipping 1.0, batch 16, 2 epochs, a random subset of the
training set, the dev set). A sanity check that a number of ours comes from the setting and not
from our code; it does not draw the same subset or initialise the head like loradrop does.

  python3 tools/peer_glue_lora.py --task cola [--mode lora|frozen] [--model assets/all-MiniLM-L6-v2]
      [--data ../shared/data/glue] [--max-train 2000] [--epochs 2] [--max-length 128] [--seed 0]
"""
import argparse
import csv
import random
import sys
import time

# task -> (folder, has header, text_a column, text_b column or None, label column, kind)
TASKS = {
    "cola": ("CoLA", False, 3, None, 1, "class"),
    "sst-2": ("SST-2", True, 0, None, 1, "class"),
    "mrpc": ("MRPC", True, 3, 4, 0, "class"),
    "sts-b": ("STS-B", True, 7, 8, 9, "regression"),
    "rte": ("RTE", True, 1, 2, 3, "rte"),
}


def read(path, spec):
    _, header, a, b, y, kind = spec
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if header:
        rows = rows[1:]
    out = []
    for r in rows:
        if kind == "regression":
            label = float(r[y])
        elif kind == "rte":
            label = 0 if r[y] == "entailment" else 1
        else:
            label = int(r[y])
        out.append(((r[a], r[b] if b is not None else None), label))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", required=True, choices=sorted(TASKS))
    ap.add_argument("--mode", default="lora", choices=["lora", "frozen"])
    ap.add_argument("--model", default="assets/all-MiniLM-L6-v2")
    ap.add_argument("--data", default="../shared/data/glue")
    ap.add_argument("--max-train", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    try:
        import numpy as np
        import torch
        from peft import LoraConfig, get_peft_model
        from scipy.stats import pearsonr
        from sklearn.metrics import matthews_corrcoef
        from transformers import (AutoModelForSequenceClassification, AutoTokenizer,
                                  get_linear_schedule_with_warmup)
    except ImportError as e:
        print(f"peer_glue_lora.py: {e} (pip install torch transformers peft scipy scikit-learn)",
              file=sys.stderr)
        return 77
    spec = TASKS[args.task]
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    train = read(f"{args.data}/{spec[0]}/train.tsv", spec)
    dev = read(f"{args.data}/{spec[0]}/dev.tsv", spec)
    random.shuffle(train)
    train = train[: args.max_train]
    regression = spec[5] == "regression"
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(args.model,
                                                               num_labels=1 if regression else 2)
    if args.mode == "lora":
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["query", "value"],
                                                 modules_to_save=["classifier"],
                                                 task_type="SEQ_CLS"))
    else:
        for n, p in model.named_parameters():
            p.requires_grad = n.startswith("classifier")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.1)
    steps = args.epochs * ((len(train) + 15) // 16)
    sched = get_linear_schedule_with_warmup(opt, int(0.06 * steps), steps)

    def encode(batch):
        a = [x[0] for x, _ in batch]
        b = [x[1] for x, _ in batch] if batch[0][0][1] is not None else None
        return tok(a, b, padding=True, truncation=True, max_length=args.max_length,
                   return_tensors="pt")

    t0 = time.time()
    model.train()
    for _ in range(args.epochs):
        random.shuffle(train)
        for i in range(0, len(train), 16):
            batch = train[i: i + 16]
            labels = torch.tensor([y for _, y in batch],
                                  dtype=torch.float if regression else torch.long)
            loss = model(**encode(batch), labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(dev), 64):
            logits = model(**encode(dev[i: i + 64])).logits
            preds += logits[:, 0].tolist() if regression else logits.argmax(-1).tolist()
    gold = [y for _, y in dev]
    if regression:
        metric, value = "pearson", pearsonr(gold, preds)[0]
    elif args.task == "cola":
        metric, value = "matthews", matthews_corrcoef(gold, preds)
    else:
        metric, value = "accuracy", float(np.mean(np.array(gold) == np.array(preds)))
    print(f"{args.mode} {args.task} {metric} {value:.4f} ({len(train)} train, {len(dev)} dev, "
          f"{time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
