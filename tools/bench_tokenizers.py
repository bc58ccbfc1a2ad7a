#!/usr/bin/env python3
# Tokenisation throughput, loradrop (ld_bench_tokenizer) vs Hugging Face `tokenizers`, on the same
# real text (GLUE/E2E/DART/DialogSum from ../shared/data) in one run; prints MB/s and the ratio.
"""Usage: python3 tools/bench_tokenizers.py [--bin build/b2/apps/bench/ld_bench_tokenizer]
                                           [--data ../shared/data] [--repeat 3]

Both sides run on ONE thread: loradrop's bench is single-threaded; HF runs with
TOKENIZERS_PARALLELISM=false and RAYON_NUM_THREADS=1 and calls `Tokenizer.encode_batch` (the
fast Rust path, no per-call Python overhead) on the same lines, without special tokens. Both
take the best of --repeat passes after one warm-up pass (which fills both BPE caches). The llama2
HF side is transformers 5's LlamaTokenizer backend (tokenizers BPE with byte fallback); loradrop's
is libsentencepiece, so that row compares two different implementations of the same model.
"""
import os

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_tokenizer_goldens import real_texts  # noqa: E402


def corpus(data):
    singles, pairs, e2e, dart, dsum = real_texts(data)
    lines = list(singles)
    for a, b in pairs + e2e + dart + dsum:
        lines += [a, b]
    return [l.replace("\r", " ").replace("\n", " ") for l in lines]


def hf_tokenizer(name, tokdir):
    from transformers import BertTokenizer, LlamaTokenizer, RobertaTokenizer
    cls = {"roberta-base": RobertaTokenizer, "bert-base-uncased": BertTokenizer,
           "llama2": LlamaTokenizer}[name]
    return cls.from_pretrained(os.path.join(tokdir, name)).backend_tokenizer


def main():
    ap = argparse.ArgumentParser()
    repo = os.path.dirname(HERE)
    ap.add_argument("--bin", default=os.path.join(repo, "build", "b2", "apps", "bench", "ld_bench_tokenizer"))
    ap.add_argument("--data", default=os.path.join(repo, "..", "shared", "data"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import tokenizers
    lines = corpus(args.data)
    nbytes = sum(len(l.encode("utf-8")) for l in lines)
    tokdir = os.path.join(args.data, "tokenizers")
    print("corpus: %d lines, %.2f MB of real text; single thread on both sides (tokenizers %s)" % (
        len(lines), nbytes / 1e6, tokenizers.__version__))
    print("%-18s %12s %12s %8s %14s" % ("tokenizer", "loradrop MB/s", "HF MB/s", "ratio", "tokens ld/HF"))
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        path = f.name
    try:
        for name in ["roberta-base", "bert-base-uncased", "llama2"]:
            if not os.path.isdir(os.path.join(tokdir, name)):
                print("%-18s skipped: %s not found" % (name, os.path.join(tokdir, name)))
                continue
            out = subprocess.run([args.bin, "--tokenizer", os.path.join(tokdir, name), "--input", path,
                                  "--repeat", str(args.repeat)], check=True, capture_output=True, text=True)
            ld = json.loads(out.stdout)
            hf = hf_tokenizer(name, tokdir)
            hf_tokens = sum(len(e.ids) for e in hf.encode_batch(lines, add_special_tokens=False))
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                hf.encode_batch(lines, add_special_tokens=False)
                best = min(best, time.perf_counter() - t0)
            hf_mbs = nbytes / 1e6 / best
            print("%-18s %12.2f %12.2f %8.2fx %14s" % (name, ld["mb_per_s"], hf_mbs, ld["mb_per_s"] / hf_mbs,
                                                      "%d/%d" % (ld["tokens"], hf_tokens)))
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
