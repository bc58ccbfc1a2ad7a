#!/usr/bin/env python3
"""Writes the data-metric golden fixtures (tests/fixtures/data/metrics_golden.json).

References are real E2E / DART / DialogSum dev references from ../shared/data; hypotheses are
seeded perturbations of them (word drops, swaps, replacements, insertions, truncation). Expected
values come from the reference implementations: sacrebleu (corpus_bleu, defaults), rouge-score
(RougeScorer(['rougeL'], use_stemmer=False/True)), nltk's PorterStemmer, scikit-learn
(accuracy_score, f1_score, matthews_corrcoef) and scipy (pearsonr, spearmanr).

Usage: python3 tools/make_data_goldens.py [--data ../shared/data] [--out tests/fixtures/data]
"""
import argparse
import csv
import json
import os
import random

import numpy as np
import sacrebleu
import scipy.stats
import sklearn.metrics
from nltk.stem import porter
from rouge_score import rouge_scorer, tokenize
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

SEED = 1234


def load_e2e(data):
    groups = {}
    with open(os.path.join(data, "e2e_nlg", "devset.csv"), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            groups.setdefault(row["mr"], []).append(row["ref"])
    return list(groups.items())


def load_dart(data):
    with open(os.path.join(data, "dart", "dart-v1.1.1-full-dev.json"), encoding="utf-8") as f:
        d = json.load(f)
    return [(" | ".join(" : ".join(t) for t in e["tripleset"]), [a["text"] for a in e["annotations"]])
            for e in d]


def load_dialogsum(data):
    out = []
    with open(os.path.join(data, "dialogsum", "dialogsum.dev.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                out.append((o["dialogue"], [o["summary"]]))
    return out


def perturb(rng, text, vocab):
    words = text.split()
    op = rng.choice(["same", "drop", "swap", "replace", "insert", "truncate", "mix", "mix"])
    if op == "same" or not words:
        return text
    n_ops = 1 if op != "mix" else rng.randint(2, 6)
    for _ in range(n_ops):
        kind = op if op != "mix" else rng.choice(["drop", "swap", "replace", "insert"])
        if not words:
            break
        i = rng.randrange(len(words))
        if kind == "drop":
            del words[i]
        elif kind == "swap" and len(words) > 1:
            j = min(i + 1, len(words) - 1)
            words[i], words[j] = words[j], words[i] if i != j else words[i]
        elif kind == "replace":
            words[i] = rng.choice(vocab)
        elif kind == "insert":
            words.insert(i, rng.choice(vocab))
        elif kind == "truncate":
            words = words[: max(1, len(words) // 2)]
    return " ".join(words)


def bleu_case(name, hyps, refs):
    # sacrebleu takes reference *streams*; pad ragged reference lists with None.
    k = max(len(r) for r in refs)
    streams = [[r[i] if i < len(r) else None for r in refs] for i in range(k)]
    b = sacrebleu.corpus_bleu(hyps, streams)
    return {"name": name, "hypotheses": hyps, "references": refs, "score": b.score,
            "counts": list(b.counts), "totals": list(b.totals), "precisions": list(b.precisions),
            "bp": b.bp, "sys_len": b.sys_len, "ref_len": b.ref_len}


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "data"))
    args = ap.parse_args()
    rng = random.Random(SEED)
    nrng = np.random.default_rng(SEED)

    e2e, dart, dsum = load_e2e(args.data), load_dart(args.data), load_dialogsum(args.data)
    out = {"generator": "tools/make_data_goldens.py", "seed": SEED,
           "versions": {"sacrebleu": sacrebleu.__version__, "numpy": np.__version__,
                        "scipy": scipy.__version__, "sklearn": sklearn.__version__}}

    # ---- BLEU: corpus cases on each dataset, then single-segment corpora ----
    bleu = []
    for name, data, n in (("e2e", e2e, 40), ("dart", dart, 40), ("dialogsum", dsum, 25)):
        picked = rng.sample(data, n)
        vocab = sorted({w for _, refs in picked for r in refs for w in r.split()})
        hyps = [perturb(rng, rng.choice(refs), vocab) for _, refs in picked]
        refs = [list(r) for _, r in picked]
        bleu.append(bleu_case(name + "_corpus", hyps, refs))
        # The same hypotheses scored one at a time (exercises smoothing and the brevity penalty).
        for i in range(12):
            bleu.append(bleu_case(f"{name}_segment_{i}", [hyps[i]], [refs[i]]))
    tricky_refs = ["The price is $20-25, isn't it? (Yes.)", "A 3.5 km walk, 1,000 steps."]
    for i, h in enumerate(["", "price", "The price is &quot;$20-25&quot; &amp; more...",
                           "A 3.5km walk,1,000 steps.", "Caf\u00e9 \u00abnice\u00bb\u00a0na\u00efve\u2003place.",
                           "zzz qqq", "The price is $20-25, isn't it? (Yes.)"]):
        bleu.append(bleu_case(f"tricky_{i}", [h], [tricky_refs]))
    out["bleu"] = bleu

    tok13a = Tokenizer13a()
    tok_inputs = ["Hello, world.", "It costs $5.50, or 5,000 yen.", "1990-2000 and a-b",
                  "x.y,z .5 ,5 5. 5,", "<skipped> tag &amp; &lt;b&gt; &quot;q&quot;",
                  "line-\nbreak\nhere", "trailing spaces \t ", "\u00a0nbsp\u2009thin\u3000ideo",
                  "caf\u00e9. na\u00efve, \u00fcber-cool", "{braces} [brackets] ~tilde` ^caret_",
                  "a/b:c;d<e=f>g?h@i", "..,,..", "\u0416.\u0416,1.2"]
    out["tokenize_13a"] = [{"input": s, "output": tok13a(s.rstrip())} for s in tok_inputs]

    # ---- ROUGE-L (rouge-score) ----
    sc_plain = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    sc_stem = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge = []
    for name, data, n in (("dialogsum", dsum, 40), ("e2e", e2e, 20), ("dart", dart, 20)):
        picked = rng.sample(data, n)
        vocab = sorted({w for _, refs in picked for r in refs for w in r.split()})
        items = []
        for _, refs in picked:
            hyp = perturb(rng, rng.choice(refs), vocab)
            a, b = sc_plain.score_multi(refs, hyp)["rougeL"], sc_stem.score_multi(refs, hyp)["rougeL"]
            items.append({"references": list(refs), "prediction": hyp,
                          "precision": a.precision, "recall": a.recall, "f": a.fmeasure,
                          "stem_precision": b.precision, "stem_recall": b.recall, "stem_f": b.fmeasure})
        rouge.append({"name": name, "items": items,
                      "mean_f": float(np.mean([x["f"] for x in items])),
                      "mean_stem_f": float(np.mean([x["stem_f"] for x in items]))})
    edge = []
    for refs, hyp in ((["the cat sat"], ""), ([""], "anything"), (["\u0130stanbul \u212aelvin"], "istanbul kelvin"),
                      (["Running, runners RAN!"], "runs ran running"), (["a b c", "b c d e"], "b c d")):
        a, b = sc_plain.score_multi(refs, hyp)["rougeL"], sc_stem.score_multi(refs, hyp)["rougeL"]
        edge.append({"references": refs, "prediction": hyp, "precision": a.precision, "recall": a.recall,
                     "f": a.fmeasure, "stem_precision": b.precision, "stem_recall": b.recall,
                     "stem_f": b.fmeasure})
    rouge.append({"name": "edge", "items": edge, "mean_f": float(np.mean([x["f"] for x in edge])),
                  "mean_stem_f": float(np.mean([x["stem_f"] for x in edge]))})
    out["rouge_l"] = rouge
    tok_texts = ["Hello, World! It's 2024-01-05.", "#Person1#: Don't -- stop_now?", "Caf\u00e9 NA\u00cfVE \u0130zmir"]
    out["rouge_tokenize"] = [{"input": t, "output": tokenize.tokenize(t, None),
                              "stem_output": tokenize.tokenize(t, porter.PorterStemmer())} for t in tok_texts]

    # ---- Porter stemmer (nltk, NLTK_EXTENSIONS mode as rouge-score uses) ----
    stemmer = porter.PorterStemmer()
    words = set()
    for _, refs in dsum:
        for r in refs:
            words.update(tokenize.tokenize(r, None))
    for src, _ in dsum[:200]:
        words.update(tokenize.tokenize(src, None))
    words = sorted(w for w in words if len(w) > 2)
    words = sorted(rng.sample(words, min(2500, len(words))))
    extra = ["skies", "dying", "lying", "tying", "news", "innings", "outings", "cannings", "howe",
             "proceed", "exceed", "succeed", "caresses", "ponies", "ties", "cats", "feed", "agreed",
             "plastered", "bled", "motoring", "sing", "conflated", "troubled", "sized", "hopping",
             "tanned", "falling", "hissing", "fizzed", "failing", "filing", "happy", "sky",
             "relational", "conditional", "rational", "valenci", "hesitanci", "digitizer",
             "conformabli", "radicalli", "differentli", "vileli", "analogousli", "vietnamization",
             "predication", "operator", "feudalism", "decisiveness", "hopefulness", "callousness",
             "formaliti", "sensitiviti", "sensibiliti", "triplicate", "formative", "formalize",
             "electriciti", "electrical", "hopeful", "goodness", "revival", "allowance", "inference",
             "airliner", "gyroscopic", "adjustable", "defensible", "irritant", "replacement",
             "adjustment", "dependent", "adoption", "homologou", "communism", "activate",
             "angulariti", "homologous", "effective", "bowdlerize", "probate", "rate", "cease",
             "controll", "roll", "generalizations", "oscillators", "yyyy", "syzygy", "boyish",
             "sayings", "eyeing", "fully", "logically", "archaeology", "apology", "ied", "died",
             "cried", "dies", "spies", "flies", "traditionally", "beautifully", "1990s", "mp3s"]
    out["porter"] = [{"word": w, "stem": stemmer.stem(w)} for w in words + extra]

    # ---- classification and correlation metrics ----
    cls = []
    for n, k, acc_p in ((50, 2, 0.7), (200, 2, 0.85), (500, 2, 0.5), (300, 3, 0.6), (97, 3, 0.9)):
        y = nrng.integers(0, k, n)
        p = np.where(nrng.random(n) < acc_p, y, nrng.integers(0, k, n))
        cls.append((f"random_n{n}_k{k}", y, p))
    y = nrng.integers(0, 2, 120)
    cls.append(("all_one_prediction", y, np.ones(120, dtype=int)))
    cls.append(("all_zero_prediction", y, np.zeros(120, dtype=int)))
    cls.append(("no_positive_labels_or_predictions", np.zeros(40, dtype=int), np.zeros(40, dtype=int)))
    cls.append(("perfect", y, y.copy()))
    cls.append(("inverted", y, 1 - y))
    out["classification"] = []
    for name, y, p in cls:
        e = {"name": name, "labels": y.tolist(), "predictions": p.tolist(),
             "accuracy": sklearn.metrics.accuracy_score(y, p),
             "matthews": sklearn.metrics.matthews_corrcoef(y, p)}
        if max(y.max(), p.max()) <= 1:
            e["f1"] = sklearn.metrics.f1_score(y, p, zero_division=0)
        out["classification"].append(e)

    corr = []
    x = nrng.normal(size=300)
    corr.append(("normal", x, 0.6 * x + nrng.normal(size=300)))
    s = np.round(nrng.uniform(0, 5, 400) * 5) / 5  # STS-B-like scores with many ties
    corr.append(("stsb_like_ties", s, np.clip(s + nrng.normal(0, 0.8, 400), 0, 5)))
    a = nrng.integers(0, 6, 200).astype(float)
    corr.append(("both_tied", a, np.round(a + nrng.normal(0, 1.5, 200))))
    corr.append(("negative", x, -2 * x + 0.1 * nrng.normal(size=300)))
    corr.append(("tiny", np.array([1.0, 2.0, 2.0, 4.0]), np.array([2.0, 1.0, 3.0, 3.0])))
    out["correlation"] = [{"name": n, "x": u.tolist(), "y": v.tolist(),
                           "pearson": float(scipy.stats.pearsonr(u, v)[0]),
                           "spearman": float(scipy.stats.spearmanr(u, v)[0]),
                           "ranks_x": scipy.stats.rankdata(u).tolist()} for n, u, v in corr]

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "metrics_golden.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
