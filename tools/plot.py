#!/usr/bin/env python3
# Draws the paper's figures (PNG) and tables (Markdown) from ONE paper_repro results file (HDF5,
# schema in DESIGN.md and paper_repro/results.h); reads nothing else but tools/paper_numbers.json.
"""Usage: python3 tools/plot.py RESULTS.h5 --out DIR [--paper-numbers JSON]

Writes into DIR:
  hist_<exp>_<model>_<method>_<task>_<target>.png     per-layer histograms of ||ΔW x||² (log x),
                                                      small multiples, lowest seed
  overlay_<exp>_<model>_<task>_<target>.png           LoRA vs LoRA-drop histograms per layer
  importance_<exp>_<model>_<method>_<target>.png      importance per layer, one line per task,
                                                      normalised to max 1 (mean over seeds)
  sensitivity_<exp>_<model>_<task>_<target>.png       importance per layer under each sample
                                                      proportion (runs with a sample_proportion
                                                      attribute), normalised to max 1
  table_<name>.md                                     each /tables/<name>: rows = methods,
                                                      columns = tasks, mean ± std over seeds,
                                                      #Tr. Params, the paper's numbers beside ours
  index.md                                            a list of everything written
"""
import argparse
import json
import math
import os
import re
import sys
from collections import defaultdict

try:
    import h5py
    import numpy as np
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as e:  # the test treats exit code 77 as "skipped"
    print(f"plot.py: needs h5py, numpy and matplotlib ({e}); run scripts/setup", file=sys.stderr)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
SEED_RE = re.compile(r"^seed_(\d+)$")
ROOT_ATTRS = ["program_version", "git_commit", "config_json", "device", "start_time", "end_time"]
METHOD_LABELS = {
    "full": "Full-FT", "frozen": "Frozen + head", "lora": "LoRA", "loradrop": "LoRA-drop",
    "sparse": "Sparse Adapter", "vera": "VeRA", "tied": "Tied-LoRA",
    "loradrop_noshare": "LoRA-drop w/o share", "loradrop_inverted": "LoRA-drop inverted",
    "loradrop_random": "LoRA-drop random k", "loradrop_lastk": "LoRA-drop top-k (last k)",
}
TASK_LABELS = {"mnli": "MNLI", "sst-2": "SST-2", "mrpc": "MRPC", "cola": "CoLA", "qnli": "QNLI",
               "qqp": "QQP", "rte": "RTE", "sts-b": "STS-B", "stsb": "STS-B", "e2e": "E2E",
               "dart": "DART", "dialogsum": "DialogSum"}


# Metrics in [0, 1] that the paper reports ×100; others (BLEU, ROUGE-L as stored) are shown as is.
SCALE100 = {"accuracy", "f1", "matthews", "mcc", "pearson", "spearman"}


class ResultsError(Exception):
    pass


def s(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def load(path):
    """Reads the whole results file into plain Python structures."""
    if not os.path.isfile(path):
        raise ResultsError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ResultsError(f"{path}: not a readable HDF5 file ({e})")
    with f:
        missing = [a for a in ROOT_ATTRS if a not in f.attrs]
        if missing:
            raise ResultsError(f"{path}: /: missing root attributes {missing} (not a results file?)")
        meta = {a: s(f.attrs[a]) for a in ROOT_ATTRS}
        runs = []
        for exp in f:
            if exp == "tables":
                continue
            for model in f[exp]:
                for method in f[exp][model]:
                    for task in f[exp][model][method]:
                        for sd in f[exp][model][method][task]:
                            m = SEED_RE.match(sd)
                            g = f[exp][model][method][task][sd]
                            where = f"{path}: {g.name}"
                            if not m or not isinstance(g, h5py.Group):
                                raise ResultsError(f"{where}: expected a group seed_<k>")
                            if "metric" not in g:
                                raise ResultsError(f"{where}: missing dataset metric")
                            run = dict(experiment=exp, model=model, method=method, task=task,
                                       seed=int(m.group(1)), metric=float(g["metric"][()]),
                                       metric_name=s(g["metric"].attrs.get("name", "metric")),
                                       params={k: float(v) for k, v in g.attrs.items()})
                            for grp in ("importance", "selected"):
                                run[grp] = {t: np.asarray(g[grp][t][()]) for t in g.get(grp, {})}
                            run["hist"] = {}
                            for t in g.get("hist", {}):
                                d = g["hist"][t]
                                if "bin_edges" not in d.attrs:
                                    raise ResultsError(f"{where}/hist/{t}: missing attribute bin_edges")
                                run["hist"][t] = (np.asarray(d[()]), np.asarray(d.attrs["bin_edges"]))
                            runs.append(run)
        tables = {}
        for name in f.get("tables", {}):
            d = f["tables"][name]
            rows = [{k: (s(r[k]) if isinstance(r[k], (bytes, str)) else r[k].item())
                     for k in d.dtype.names} for r in d[()]]
            tables[name] = dict(rows=rows, title=s(d.attrs.get("title", name)),
                                experiment=s(d.attrs.get("experiment", "")),
                                model=s(d.attrs.get("model", "")))
    return meta, runs, tables


def label(m):
    return METHOD_LABELS.get(m, m)


def tlabel(t):
    return TASK_LABELS.get(t, t)


def grid(n):
    cols = min(n, 4)
    return int(math.ceil(n / cols)), cols


def save(fig, out, name, written):
    path = os.path.join(out, name)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    written.append(name)


def draw_hist(ax, counts, edges, **kw):
    ax.stairs(counts, edges, **kw)
    ax.set_xscale("log")


def label_bottom(axes, L, cols):
    """x labels on the lowest panel of each column (the grid's last row may be partly empty)."""
    for i in range(L):
        if i + cols >= L:
            ax = axes[i // cols][i % cols]
            ax.tick_params(labelbottom=True)
            ax.set_xlabel("||ΔW x||² per example", fontsize=8)


def hist_figures(runs, out, written):
    """Per-layer histograms (small multiples, log x) of the lowest seed of each run group."""
    first = {}
    for r in sorted(runs, key=lambda r: r["seed"]):
        if r["hist"]:
            first.setdefault((r["experiment"], r["model"], r["method"], r["task"]), r)
    for (exp, model, method, task), r in sorted(first.items()):
        for target, (counts, edges) in sorted(r["hist"].items()):
            L = counts.shape[0]
            rows, cols = grid(L)
            fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False,
                                     sharex=True)
            for i in range(rows * cols):
                ax = axes[i // cols][i % cols]
                if i >= L:
                    ax.axis("off")
                    continue
                draw_hist(ax, counts[i], edges, fill=True, alpha=0.7, color="C0")
                sel = r["selected"].get(target)
                kept = "" if sel is None else (" (kept)" if sel[i] else " (shared)")
                ax.set_title(f"layer {i}{kept}", fontsize=9)
                ax.tick_params(labelsize=7)
            label_bottom(axes, L, cols)
            fig.suptitle(f"{label(method)} · {tlabel(task)} · {target} · {model} "
                         f"(seed {r['seed']}, {exp})", fontsize=10)
            fig.tight_layout()
            save(fig, out, f"hist_{exp}_{model}_{method}_{task}_{target}.png", written)


def overlay_figures(runs, out, written):
    """LoRA vs LoRA-drop histograms per layer, same axes."""
    first = {}
    for r in sorted(runs, key=lambda r: r["seed"]):
        if r["hist"] and r["method"] in ("lora", "loradrop"):
            first.setdefault((r["experiment"], r["model"], r["task"], r["method"]), r)
    pairs = {(e, m, t) for (e, m, t, _) in first}
    for exp, model, task in sorted(pairs):
        a, b = first.get((exp, model, task, "lora")), first.get((exp, model, task, "loradrop"))
        if a is None or b is None:
            continue
        for target in sorted(set(a["hist"]) & set(b["hist"])):
            (ca, ea), (cb, eb) = a["hist"][target], b["hist"][target]
            L = min(ca.shape[0], cb.shape[0])
            rows, cols = grid(L)
            fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False,
                                     sharex=True)
            for i in range(rows * cols):
                ax = axes[i // cols][i % cols]
                if i >= L:
                    ax.axis("off")
                    continue
                draw_hist(ax, ca[i], ea, fill=True, alpha=0.45, color="C0", label="LoRA")
                draw_hist(ax, cb[i], eb, fill=True, alpha=0.45, color="C3", label="LoRA-drop")
                ax.set_title(f"layer {i}", fontsize=9)
                ax.tick_params(labelsize=7)
            axes[0][0].legend(fontsize=7)
            label_bottom(axes, L, cols)
            fig.suptitle(f"LoRA vs LoRA-drop · {tlabel(task)} · {target} · {model} ({exp})",
                         fontsize=10)
            fig.tight_layout()
            save(fig, out, f"overlay_{exp}_{model}_{task}_{target}.png", written)


def mean_importance(rs, target):
    vs = [r["importance"][target] for r in rs if target in r["importance"]]
    if not vs or len({len(v) for v in vs}) != 1:
        return None
    return np.mean(np.stack(vs), axis=0)


def norm_max(v):
    m = float(np.max(v)) if len(v) else 0.0
    return v / m if m > 0 else v


def importance_figures(runs, out, written):
    """Importance per layer, one line per task, normalised to max 1 (mean over seeds)."""
    groups = defaultdict(lambda: defaultdict(list))
    for r in runs:
        if r["importance"] and "sample_proportion" not in r["params"]:
            groups[(r["experiment"], r["model"], r["method"])][r["task"]].append(r)
    for (exp, model, method), by_task in sorted(groups.items()):
        targets = sorted({t for rs in by_task.values() for r in rs for t in r["importance"]})
        for target in targets:
            fig, ax = plt.subplots(figsize=(5.5, 3.6))
            drew = False
            for task, rs in sorted(by_task.items()):
                v = mean_importance(rs, target)
                if v is None:
                    continue
                ax.plot(np.arange(len(v)), norm_max(v), marker="o", ms=3, label=tlabel(task))
                drew = True
            if not drew:
                plt.close(fig)
                continue
            ax.set_xlabel("layer")
            ax.set_ylabel("importance g_i / max g")
            ax.set_ylim(0, 1.05)
            ax.legend(fontsize=8, ncol=2)
            ax.set_title(f"{label(method)} · {target} · {model} ({exp})", fontsize=10)
            fig.tight_layout()
            save(fig, out, f"importance_{exp}_{model}_{method}_{target}.png", written)


def sensitivity_figures(runs, out, written):
    """Importance per layer under each sample proportion, normalised to max 1."""
    groups = defaultdict(lambda: defaultdict(list))
    for r in runs:
        if r["importance"] and "sample_proportion" in r["params"]:
            groups[(r["experiment"], r["model"], r["task"])][r["params"]["sample_proportion"]].append(r)
    for (exp, model, task), by_p in sorted(groups.items()):
        targets = sorted({t for rs in by_p.values() for r in rs for t in r["importance"]})
        for target in targets:
            fig, ax = plt.subplots(figsize=(5.5, 3.6))
            cmap = plt.get_cmap("viridis")
            ps = sorted(by_p)
            for i, p in enumerate(ps):
                v = mean_importance(by_p[p], target)
                if v is not None:
                    ax.plot(np.arange(len(v)), norm_max(v), marker="o", ms=3,
                            color=cmap(i / max(1, len(ps) - 1)), label=f"{p:g}")
            ax.set_xlabel("layer")
            ax.set_ylabel("importance g_i / max g")
            ax.set_ylim(0, 1.05)
            ax.legend(title="sample proportion", fontsize=7, title_fontsize=7, ncol=2)
            ax.set_title(f"Sensitivity · {tlabel(task)} · {target} · {model} ({exp})", fontsize=10)
            fig.tight_layout()
            save(fig, out, f"sensitivity_{exp}_{model}_{task}_{target}.png", written)


def fmt_params(p):
    if p >= 1e6:
        return f"{p / 1e6:.2f}M"
    if p >= 1e3:
        return f"{p / 1e3:.1f}K"
    return f"{p:.0f}"


def paper_lookup(paper, table, model, method, task):
    """The paper's value for one cell, or None when not recorded."""
    for t in paper.get("tables", []):
        if t.get("results_table") == table or (t.get("model") == model and
                                               t.get("experiment") == table):
            v = t.get("values", {}).get(method, {}).get(task)
            if v is not None:
                return v
    return None


def table_markdown(name, tb, paper):
    rows = tb["rows"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    cell = {(r["method"], r["task"]): r for r in rows}
    metric_of = {t: next(r["metric_name"] for r in rows if r["task"] == t) for t in tasks}
    lines = [f"# {tb['title'] or name}", "",
             f"Experiment `{tb['experiment']}`, model `{tb['model']}`. Cells: ours as mean ± std "
             f"over seeds (n seeds in brackets when not 3), ×100 for accuracy/F1/correlation "
             f"metrics; the paper's value after "
             f"\"/\" where recorded. #Tr. Params: trainable adapter parameters (mean over tasks "
             f"and seeds; a classifier head is not counted).", ""]
    head = ["Method", "#Tr. Params"] + [f"{tlabel(t)} ({metric_of[t]})" for t in tasks] + ["Avg."]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * len(head)) + "|")
    any_paper = False
    for m in methods:
        cells, means, params = [], [], []
        for t in tasks:
            r = cell.get((m, t))
            if r is None:
                cells.append("–")
                continue
            k = 100 if r["metric_name"] in SCALE100 else 1
            txt = f"{k * r['mean']:.2f} ± {k * r['std']:.2f}"
            if r["n"] != 3:
                txt += f" [{r['n']}]"
            pv = paper_lookup(paper, name, tb["model"], m, t)
            if pv is not None:
                any_paper = True
                txt += f" / {pv}"
            cells.append(txt)
            means.append(k * r["mean"])
            params.append(r["trainable_params"])
        avg = f"{sum(means) / len(means):.2f}" if means and len(means) == len(tasks) else "–"
        p = fmt_params(sum(params) / len(params)) if params else "–"
        lines.append("| " + " | ".join([label(m), p] + cells + [avg]) + " |")
    lines.append("")
    if not any_paper:
        lines.append("Paper: paper value not recorded (tools/paper_numbers.json has no verified "
                     "numbers for this table).")
    lines.append("")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="results HDF5 file written by paper_repro")
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--paper-numbers", default=os.path.join(HERE, "paper_numbers.json"))
    a = ap.parse_args(argv)
    try:
        meta, runs, tables = load(a.results)
    except ResultsError as e:
        print(f"plot.py: {e}", file=sys.stderr)
        return 1
    paper = {}
    if os.path.exists(a.paper_numbers):
        with open(a.paper_numbers) as fh:
            paper = json.load(fh)
    os.makedirs(a.out, exist_ok=True)
    written = []
    hist_figures(runs, a.out, written)
    overlay_figures(runs, a.out, written)
    importance_figures(runs, a.out, written)
    sensitivity_figures(runs, a.out, written)
    for name, tb in sorted(tables.items()):
        fn = f"table_{name}.md"
        with open(os.path.join(a.out, fn), "w") as fh:
            fh.write(table_markdown(name, tb, paper))
        written.append(fn)
    with open(os.path.join(a.out, "index.md"), "w") as fh:
        fh.write(f"# Results of {os.path.basename(a.results)}\n\n")
        for k in ROOT_ATTRS:
            if k != "config_json":
                fh.write(f"- {k}: {meta[k]}\n")
        fh.write("\n")
        for w in written:
            fh.write(f"- [{w}]({w})\n" if w.endswith(".md") else f"![{w}]({w})\n")
    print(f"plot.py: wrote {len(written)} files to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
