#!/usr/bin/env python3
"""One LoRA training step of a random-weight RoBERTa-base-shaped model: loradrop vs PyTorch + PEFT.

Runs the built ld_bench_train_step binary and then a PyTorch + PEFT worker (this script with
--worker torch), each in its own subprocess so that peak RSS (getrusage ru_maxrss) is per process,
both on the CPU with the same thread count (OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS
= N for both, torch.set_num_threads(N) and one inter-op thread in the worker). A step is
zero_grad + forward (with loss) + backward + AdamW step; the figure is the median over --steps
steps after --warmup steps. Same model on both sides: RoBERTa (post-LN, exact GELU), LoRA r/alpha
on query and value of every layer (PEFT task_type SEQ_CLS: the classification head is trainable
too), dropout p on hidden states, attention probabilities and LoRA input (training mode), no
padding. Prints a table: both times (and forward/backward/optimiser medians), the ratio
torch/loradrop (> 1 means loradrop is faster), both peak RSS, threads and load averages.

Usage: python3 tools/bench_vs_torch.py build/bench/apps/bench/ld_bench_train_step [--threads 2]
       [--steps 5] [--warmup 2] [--rounds 1] [--dropout 0.1] [--vocab 1000] [--layers 12] ...
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def add_model_args(p):
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--intermediate", type=int, default=3072)
    p.add_argument("--vocab", type=int, default=1000, help="small vocab (embeddings are frozen)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16.0)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"],
                   help="transformers attention implementation on the torch side")


def torch_worker(a):
    import torch
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(a.seed)
    cfg = RobertaConfig(vocab_size=a.vocab, hidden_size=a.hidden, num_hidden_layers=a.layers,
                        num_attention_heads=a.heads, intermediate_size=a.intermediate,
                        hidden_act="gelu", max_position_embeddings=a.seq + 2, type_vocab_size=1,
                        pad_token_id=1, bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5,
                        hidden_dropout_prob=a.dropout, attention_probs_dropout_prob=a.dropout,
                        num_labels=2)
    cfg._attn_implementation = a.attn
    model = RobertaForSequenceClassification(cfg)
    lc = LoraConfig(task_type=TaskType.SEQ_CLS, r=a.rank, lora_alpha=a.alpha,
                    target_modules=["query", "value"], lora_dropout=a.dropout, bias="none")
    pm = get_peft_model(model, lc)
    pm.train()
    params = [p for p in pm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    g = torch.Generator().manual_seed(a.seed + 2)
    ids = torch.randint(3, a.vocab, (a.batch, a.seq), generator=g)
    ids[:, 0] = 0
    mask = torch.ones(a.batch, a.seq, dtype=torch.long)
    labels = torch.randint(0, 2, (a.batch,), generator=g)

    step_t, fwd_t, bwd_t, opt_t, cpu_t, losses = [], [], [], [], [], []
    for i in range(a.warmup + a.steps):
        c0, t0 = time.process_time(), time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = pm(input_ids=ids, attention_mask=mask, labels=labels).loss
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3, c3 = time.perf_counter(), time.process_time()
        losses.append(loss.item())
        if i >= a.warmup:
            step_t.append(t3 - t0)
            fwd_t.append(t1 - t0)
            bwd_t.append(t2 - t1)
            opt_t.append(t3 - t2)
            cpu_t.append(c3 - c0)
    out = dict(impl="torch+peft", threads=torch.get_num_threads(),
               versions={m: __import__(m).__version__ for m in ("torch", "transformers", "peft")},
               attn=a.attn, trainable_params=sum(p.numel() for p in params), warmup=a.warmup,
               steps=a.steps, step_s=step_t, step_s_median=statistics.median(step_t),
               fwd_s_median=statistics.median(fwd_t), bwd_s_median=statistics.median(bwd_t),
               opt_s_median=statistics.median(opt_t),
               cpu_s_median=statistics.median(cpu_t), losses=losses,
               peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    print(json.dumps(out))


def thread_env(n, wait_policy):
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(n)
    if wait_policy:
        env["OMP_WAIT_POLICY"] = wait_policy
    return env


def run_json(cmd, env):
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} exited with {r.returncode}:\n{r.stderr}")
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if not lines:
        sys.exit(f"error: no JSON from {' '.join(cmd)}:\n{r.stdout}\n{r.stderr}")
    return json.loads(lines[-1])


def model_argv(a):
    argv = []
    for k in ("layers", "hidden", "heads", "intermediate", "vocab", "batch", "seq", "rank",
              "alpha", "dropout", "warmup", "steps", "seed"):
        argv += ["--" + k, str(getattr(a, k))]
    return argv


def load():
    return "%.2f %.2f %.2f" % os.getloadavg()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("binary", nargs="?", help="path of the built ld_bench_train_step")
    p.add_argument("--worker", choices=["torch"], help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=1,
                   help="alternate loradrop/torch this many times; report the median of rounds")
    p.add_argument("--json", help="also write all raw results to this file")
    p.add_argument("--omp-wait-policy", choices=["active", "passive"],
                   help="OMP_WAIT_POLICY for both processes (default: unset, libgomp's default)")
    add_model_args(p)
    a = p.parse_args()
    if a.worker == "torch":
        torch_worker(a)
        return
    if not a.binary or not os.access(a.binary, os.X_OK):
        sys.exit("error: give the path of the built ld_bench_train_step binary "
                 "(cmake --build <dir> --target ld_bench_train_step)")
    env = thread_env(a.threads, a.omp_wait_policy)
    rounds = []
    for _ in range(a.rounds):
        l0 = load()
        ld = run_json([a.binary] + model_argv(a), env)
        l1 = load()
        th = run_json([sys.executable, os.path.abspath(__file__), "--worker", "torch",
                       "--threads", str(a.threads), "--attn", a.attn] + model_argv(a), env)
        l2 = load()
        rounds.append(dict(loradrop=ld, torch=th, load=[l0, l1, l2]))

    def med(impl, key):
        return statistics.median(r[impl][key] for r in rounds)

    print(f"LoRA training step, RoBERTa-shaped: {a.layers} layers, hidden {a.hidden}, {a.heads} "
          f"heads, intermediate {a.intermediate}, vocab {a.vocab}; batch {a.batch} x seq "
          f"{a.seq}, no padding")
    print(f"LoRA r={a.rank} alpha={a.alpha:g} on query/value (+ trainable classifier head), "
          f"dropout {a.dropout:g} (hidden, attention, LoRA), AdamW; random weights; f32 CPU")
    th0 = rounds[0]["torch"]
    print(f"threads {a.threads} (loradrop: OpenMP {rounds[0]['loradrop']['threads']}, OpenBLAS "
          f"{rounds[0]['loradrop']['blas_threads']}; torch: {th0['threads']}, attn {th0['attn']}; "
          f"OMP_WAIT_POLICY {a.omp_wait_policy or 'unset'}); "
          f"median of {a.steps} steps after {a.warmup} warm-up, median of {a.rounds} round(s)")
    print(f"trainable params: loradrop {rounds[0]['loradrop']['trainable_params']}, torch "
          f"{th0['trainable_params']}; torch {th0['versions']['torch']}, transformers "
          f"{th0['versions']['transformers']}, peft {th0['versions']['peft']}")
    print()
    hdr = (f"{'':12} {'step s':>8} {'fwd s':>8} {'bwd s':>8} {'optim s':>8} {'CPU s':>8} "
           f"{'peak RSS MiB':>13}")
    print(hdr)
    for impl, name in (("loradrop", "loradrop"), ("torch", "torch+peft")):
        print(f"{name:12} {med(impl, 'step_s_median'):8.3f} {med(impl, 'fwd_s_median'):8.3f} "
              f"{med(impl, 'bwd_s_median'):8.3f} {med(impl, 'opt_s_median'):8.4f} "
              f"{med(impl, 'cpu_s_median'):8.3f} {med(impl, 'peak_rss_mib'):13.0f}")
    ratio = med("torch", "step_s_median") / med("loradrop", "step_s_median")
    print()
    who = "loradrop faster" if ratio > 1 else "torch faster"
    print(f"ratio torch/loradrop (step): {ratio:.3f}  ({who})")
    for i, r in enumerate(rounds):
        print(f"round {i}: loradrop {r['loradrop']['step_s_median']:.3f} s, torch "
              f"{r['torch']['step_s_median']:.3f} s; load avg (1/5/15 min) before/between/after: "
              f"{r['load'][0]} | {r['load'][1]} | {r['load'][2]}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rounds, f, indent=1)


if __name__ == "__main__":
    main()
