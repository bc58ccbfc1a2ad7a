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
  threshold_<exp>_<model>_<task>.png                  metric and retained-parameter share vs
                                                      threshold T (runs with a threshold
                                                      attribute), LoRA as a dashed reference
  threshold_<exp>_<model>.md                          the same as a table, one row per T
  efficiency_<exp>_<model>_<task>.png                 experiments named efficiency*: bars of
                                                      #Tr. Params, time per step, training time
                                                      (LoRA-drop's sample training and importance
                                                      pass stacked) and peak tensor memory
  efficiency_<exp>_<model>.md                         the same as a table
  importance_source_<exp>_<model>_<task>.png          y_i = g_i / sum g per layer, importance
                                                      collected during training vs a separate
                                                      pass (runs with importance_during), kept
                                                      layers filled
  importance_source_<exp>_<model>.md                  rank correlation and selection agreement
  table_<name>.md                                     each /tables/<name>: rows = methods,
                                                      columns = tasks, mean ± std over seeds,
                                                      #Tr. Params, the paper's numbers beside ours;
                                                      each /text_tables/<name> (hyperparameters:
                                                      rows = settings, columns = tasks, where set,
                                                      source)
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
    import matplotlib.ticker
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


# Metrics in [0, 1] that the paper reports ×100 (ROUGE-L F is stored as rouge-score gives it, in
# [0, 1]); BLEU is stored 0..100 (sacrebleu) and shown as is.
SCALE100 = {"accuracy", "f1", "matthews", "mcc", "pearson", "spearman", "rougeL"}
METRIC_LABELS = {"bleu": "BLEU", "rougeL": "ROUGE-L"}


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
            if exp in ("tables", "text_tables"):
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
                                       trainable_params=float(g["trainable_params"][()])
                                       if "trainable_params" in g else 0.0,
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
        for name in f.get("text_tables", {}):
            d = f["text_tables"][name]
            cols = list(d.dtype.names)
            rows = [{k: s(r[k]) for k in cols} for r in d[()]]
            tables[name] = dict(rows=rows, columns=cols, text=True,
                                title=s(d.attrs.get("title", name)),
                                experiment=s(d.attrs.get("experiment", "")),
                                model=s(d.attrs.get("model", "")))
    return meta, runs, tables


def label(m):
    if m in METHOD_LABELS:
        return METHOD_LABELS[m]
    if re.match(r"^loradrop_t[0-9.]+$", m):
        return f"LoRA-drop T={float(m[10:]):g}"
    if m == "loradrop_pass":
        return "LoRA-drop (separate pass)"
    if m == "loradrop_during":
        return "LoRA-drop (during training)"
    return m


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
    # Auto-ranged bins may span less than a decade: then matplotlib labels minor ticks, which
    # must stay small and sparse enough not to overlap.
    ax.xaxis.set_minor_formatter(matplotlib.ticker.LogFormatterSciNotation(
        labelOnlyBase=False, minor_thresholds=(1, 0.5)))
    ax.tick_params(axis="x", which="both", labelsize=6)


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
        # Sweeps have their own figures (the importance of a threshold run is the same as at
        # any other T; importance-source runs are compared in importance_source_*).
        if r["importance"] and not {"sample_proportion", "threshold",
                                    "importance_during"} & set(r["params"]):
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


def scale_of(metric_name):
    return 100 if metric_name in SCALE100 else 1


def mean_std(vals):
    vals = [v for v in vals if not math.isnan(v)]
    if not vals:
        return float("nan"), float("nan")
    m = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return m, sd


def retained(r):
    """(share of LoRA's parameters retained, share of (layer, target) sites with their own
    adapter) of a LoRA-drop run; None where not recorded."""
    lp = r["params"].get("lora_params")
    p = r["trainable_params"] / lp if lp else None
    sel = [np.asarray(v, dtype=bool) for v in r["selected"].values()]
    layers = float(np.mean(np.concatenate(sel))) if sel else None
    return p, layers


def threshold_figures(runs, tparams, out, written):
    """Metric and retained share vs threshold T; LoRA (same experiment) as a dashed line."""
    groups = defaultdict(lambda: defaultdict(list))
    lora = defaultdict(list)
    for r in runs:
        if "threshold" in r["params"]:
            groups[(r["experiment"], r["model"], r["task"])][r["params"]["threshold"]].append(r)
        elif r["method"] == "lora":
            lora[(r["experiment"], r["model"], r["task"])].append(r)
    tables = defaultdict(list)
    for (exp, model, task), by_t in sorted(groups.items()):
        Ts = sorted(by_t)
        mname = by_t[Ts[0]][0]["metric_name"]
        k = scale_of(mname)
        ms = [mean_std([k * r["metric"] for r in by_t[T]]) for T in Ts]
        shares = [[retained(r) for r in by_t[T]] for T in Ts]
        pshare = [np.mean([x[0] for x in sh if x[0] is not None]) if any(x[0] is not None for x in sh)
                  else np.nan for sh in shares]
        lshare = [np.mean([x[1] for x in sh if x[1] is not None]) if any(x[1] is not None for x in sh)
                  else np.nan for sh in shares]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9.5, 3.5))
        a1.errorbar(Ts, [m for m, _ in ms], yerr=[sd for _, sd in ms], marker="o", ms=4,
                    capsize=3, color="C3", label="LoRA-drop")
        ref = lora.get((exp, model, task))
        if ref:
            lm, _ = mean_std([k * r["metric"] for r in ref])
            a1.axhline(lm, ls="--", color="C0", label="LoRA")
        a1.set_xlabel("threshold T")
        a1.set_ylabel(f"{mname}" + (" ×100" if k == 100 else ""))
        a1.legend(fontsize=8)
        a1.set_title("metric", fontsize=9)
        a2.plot(Ts, 100 * np.asarray(pshare), marker="o", ms=4, color="C3",
                label="#Tr. params / LoRA's")
        a2.plot(Ts, 100 * np.asarray(lshare), marker="s", ms=4, color="C2", ls=":",
                label="sites with own adapter")
        a2.set_xlabel("threshold T")
        a2.set_ylabel("retained (%)")
        a2.set_ylim(0, 105)
        a2.legend(fontsize=8)
        a2.set_title("retained share", fontsize=9)
        fig.suptitle(f"Threshold T · {tlabel(task)} · {model} ({exp})", fontsize=10)
        fig.tight_layout()
        save(fig, out, f"threshold_{exp}_{model}_{task}.png", written)
        for T, (m, sd), p, l, rs in zip(Ts, ms, pshare, lshare, [by_t[T] for T in Ts]):
            tables[(exp, model)].append((task, mname, T, m, sd, len(rs),
                                         float(np.mean([r["trainable_params"] for r in rs])), p, l))
        if ref:
            lm, lsd = mean_std([k * r["metric"] for r in ref])
            tables[(exp, model)].append((task, mname, "LoRA", lm, lsd, len(ref),
                                         float(np.mean([r["trainable_params"] for r in ref])),
                                         1.0, 1.0))
    for (exp, model), rows in sorted(tables.items()):
        lines = [f"# Threshold T · {model} ({exp})", "",
                 "Metric (mean ± std over seeds, ×100 for accuracy/F1/correlation), #Tr. Params, "
                 "the retained share of LoRA's adapter parameters and the share of (layer, target) "
                 "sites that keep their own adapter. The paper's values: not recorded.", "",
                 "| Task | T | Metric | #Tr. Params | Retained params | Own-adapter sites |",
                 "|---|---|---|---|---|---|"]
        for task, mname, T, m, sd, n, tp, p, l in rows:
            tt = T if isinstance(T, str) else f"{T:g}"
            pc = "–" if p is None or np.isnan(p) else f"{100 * p:.1f}%"
            lc = "–" if l is None or np.isnan(l) else f"{100 * l:.1f}%"
            lines.append(f"| {tlabel(task)} ({mname}) | {tt} | {msd(m, sd, n)} | "
                         f"{fmt_params(tp)} | {pc} | {lc} |")
        lines.append("")
        name = f"threshold_{exp}_{model}.md"
        with open(os.path.join(out, name), "w") as fh:
            fh.write("\n".join(lines) + "\n")
        written.append(name)


def efficiency_figures(runs, out, written):
    """Experiments named efficiency*: #Tr. params, time per step, training time and peak memory
    per method (mean over seeds)."""
    groups = defaultdict(lambda: defaultdict(list))
    for r in runs:
        if r["experiment"].startswith("efficiency") and "seconds_per_step" in r["params"]:
            groups[(r["experiment"], r["model"], r["task"])][r["method"]].append(r)
    tables = defaultdict(list)
    for (exp, model, task), by_m in sorted(groups.items()):
        methods = [m for m in METHOD_LABELS if m in by_m] + sorted(m for m in by_m
                                                                  if m not in METHOD_LABELS)
        avg = lambda m, key: float(np.mean([r["params"].get(key, 0.0) for r in by_m[m]]))
        tp = [float(np.mean([r["trainable_params"] for r in by_m[m]])) for m in methods]
        step = [1000 * avg(m, "seconds_per_step") for m in methods]
        main = [avg(m, "finetune_seconds") for m in methods]
        samp = [avg(m, "sample_seconds") for m in methods]
        imp = [avg(m, "importance_seconds") for m in methods]
        mem = [avg(m, "peak_memory_bytes") / 2 ** 20 for m in methods]
        x = np.arange(len(methods))
        colors = ["C3" if m == "loradrop" else "C0" for m in methods]
        fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
        axes[0].bar(x, tp, color=colors)
        axes[0].set_yscale("log")
        axes[0].set_title("#Tr. Params", fontsize=9)
        axes[1].bar(x, step, color=colors)
        axes[1].set_title("time per training step (ms)", fontsize=9)
        axes[2].bar(x, main, color=colors, label="training (fine-tune)")
        axes[2].bar(x, samp, bottom=main, color="C1", label="LoRA-drop sample training")
        axes[2].bar(x, imp, bottom=np.asarray(main) + np.asarray(samp), color="C2",
                    label="importance pass")
        axes[2].set_title("training time (s)", fontsize=9)
        axes[2].legend(fontsize=7, loc="upper left")
        axes[3].bar(x, mem, color=colors)
        axes[3].set_title("peak tensor memory (MiB)", fontsize=9)
        for ax in axes:
            ax.set_xticks(x)
            ax.set_xticklabels([label(m) for m in methods], rotation=35, ha="right", fontsize=8)
            ax.tick_params(axis="y", labelsize=8)
        fig.suptitle(f"Efficiency · {tlabel(task)} · {model} ({exp})", fontsize=10)
        fig.tight_layout()
        save(fig, out, f"efficiency_{exp}_{model}_{task}.png", written)
        for i, m in enumerate(methods):
            mname = by_m[m][0]["metric_name"]
            k = scale_of(mname)
            mm, sd = mean_std([k * r["metric"] for r in by_m[m]])
            tables[(exp, model)].append((task, m, mname, mm, sd, tp[i], step[i], main[i],
                                         samp[i] + imp[i], mem[i], len(by_m[m])))
    for (exp, model), rows in sorted(tables.items()):
        lines = [f"# Efficiency · {model} ({exp})", "",
                 "Per method: the task metric (×100 for accuracy/F1/correlation), #Tr. Params, "
                 "wall time per step of the main training phase (LoRA-drop: its fine-tune), that "
                 "phase's time, LoRA-drop's overhead (sample training + importance pass) and the "
                 "peak tensor storage during the main phase (not the process's RSS). Mean over "
                 "seeds; timings on a shared machine are noisy. The paper's values: not recorded.",
                 "",
                 "| Task | Method | Metric | #Tr. Params | ms / step | Training (s) | "
                 "LoRA-drop overhead (s) | Peak memory (MiB) |",
                 "|---|---|---|---|---|---|---|---|"]
        for task, m, mname, mm, sd, tp, st, mn, ov, mem, n in rows:
            ovc = f"{ov:.1f}" if m == "loradrop" else "–"
            lines.append(f"| {tlabel(task)} | {label(m)} | {msd(mm, sd, n)} ({mname}) | "
                         f"{fmt_params(tp)} | {st:.1f} | {mn:.1f} | {ovc} | {mem:.1f} |")
        lines.append("")
        name = f"efficiency_{exp}_{model}.md"
        with open(os.path.join(out, name), "w") as fh:
            fh.write("\n".join(lines) + "\n")
        written.append(name)


def spearman(a, b):
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def importance_source_figures(runs, out, written):
    """y_i per layer: importance collected during the sample training vs a separate pass."""
    groups = defaultdict(lambda: defaultdict(list))
    for r in runs:
        if r["importance"] and "importance_during" in r["params"]:
            src = "during" if r["params"]["importance_during"] else "pass"
            groups[(r["experiment"], r["model"], r["task"])][src].append(r)
    summary = defaultdict(list)
    styles = {"pass": dict(color="C0", marker="o", label="separate pass (paper)"),
              "during": dict(color="C3", marker="s", ls="--", label="during training")}
    for (exp, model, task), by_s in sorted(groups.items()):
        targets = sorted({t for rs in by_s.values() for r in rs for t in r["importance"]})
        fig, axes = plt.subplots(1, len(targets), figsize=(4.8 * len(targets), 3.5), squeeze=False)
        for ax, target in zip(axes[0], targets):
            ys = {}
            for src in ("pass", "during"):
                rs = by_s.get(src, [])
                v = mean_importance(rs, target)
                if v is None:
                    continue
                y = v / v.sum() if v.sum() > 0 else v
                ys[src] = y
                st = styles[src]
                ax.plot(np.arange(len(y)), y, color=st["color"], ls=st.get("ls", "-"),
                        label=st["label"], lw=1.2)
                sel = rs[0]["selected"].get(target)
                kept = np.asarray(sel, dtype=bool) if sel is not None else np.zeros(len(y), bool)
                ax.scatter(np.arange(len(y))[kept], y[kept], color=st["color"],
                           marker=st["marker"], s=28, zorder=3)
                ax.scatter(np.arange(len(y))[~kept], y[~kept], facecolors="none",
                           edgecolors=st["color"], marker=st["marker"], s=28, zorder=3)
            rho = spearman(ys["pass"], ys["during"]) if len(ys) == 2 else float("nan")
            agree = float("nan")
            if len(ys) == 2:
                sp, sd_ = by_s["pass"][0]["selected"].get(target), by_s["during"][0]["selected"].get(target)
                if sp is not None and sd_ is not None:
                    agree = float(np.mean(np.asarray(sp, bool) == np.asarray(sd_, bool)))
            summary[(exp, model)].append((task, target, rho, agree))
            ax.set_xlabel("layer")
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            ax.set_ylabel("y_i = g_i / sum g")
            ax.set_ylim(bottom=0)
            ax.set_title(f"{target} (Spearman {rho:.2f}, same selection {100 * agree:.0f}%)"
                         if not math.isnan(rho) and not math.isnan(agree) else target, fontsize=9)
            ax.legend(fontsize=7)
        fig.suptitle(f"Importance source · {tlabel(task)} · {model} ({exp}); filled = kept",
                     fontsize=10)
        fig.tight_layout()
        save(fig, out, f"importance_source_{exp}_{model}_{task}.png", written)
    for (exp, model), rows in sorted(summary.items()):
        lines = [f"# Importance during training vs a separate pass · {model} ({exp})", "",
                 "Spearman rank correlation of y_i per layer between the two sources, and the "
                 "share of layers whose selection (own adapter or shared) agrees at the preset's "
                 "T. Lowest seed's selection; importance averaged over seeds.", "",
                 "| Task | Target | Spearman | Same selection |", "|---|---|---|---|"]
        for task, target, rho, agree in rows:
            lines.append(f"| {tlabel(task)} | {target} | "
                         f"{'–' if math.isnan(rho) else f'{rho:.2f}'} | "
                         f"{'–' if math.isnan(agree) else f'{100 * agree:.0f}%'} |")
        lines.append("")
        name = f"importance_source_{exp}_{model}.md"
        with open(os.path.join(out, name), "w") as fh:
            fh.write("\n".join(lines) + "\n")
        written.append(name)


def text_table_markdown(name, tb):
    """A text table; hyperparameter tables (columns task, key, value, ...) pivoted to rows =
    settings, columns = tasks, then where each is set and its source."""
    cols = tb["columns"]
    rows = tb["rows"]
    lines = [f"# {tb['title'] or name}", "", f"Experiment `{tb['experiment']}`, model "
             f"`{tb['model']}`.", ""]
    if {"task", "key", "value"} <= set(cols):
        tasks = list(dict.fromkeys(r["task"] for r in rows))
        keys = list(dict.fromkeys(r["key"] for r in rows))
        cell = {(r["key"], r["task"]): r for r in rows}
        lines.append("Generated from the preset file: each value as a run uses it; \"Set in\" is "
                     "the preset section that sets it, \"Source\" where that section's values "
                     "come from ([sources] of the preset). \"*\": the model's settings, no per-task "
                     "table.")
        lines.append("")
        head = ["Setting"] + [tlabel(t) if t != "*" else "all tasks (*)" for t in tasks] + \
            ["Set in", "Source"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---"] * len(head)) + "|")
        for k in keys:
            rs = [cell.get((k, t)) for t in tasks]
            vals = [r["value"] if r else "–" for r in rs]
            # "[model.M.task.rte]", "[model.M.task.mrpc]", ... read as one "[model.M.task.<task>]".
            set_in = list(dict.fromkeys(r["set_in"].replace(f".task.{r['task']}]", ".task.<task>]")
                                        for r in rs if r))
            src = list(dict.fromkeys(r.get("source", "") for r in rs if r and r.get("source")))
            lines.append("| " + " | ".join([f"`{k}`"] + vals + ["; ".join(set_in),
                                                                 "; ".join(src) or "not stated"])
                         + " |")
    else:
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "|".join(["---"] * len(cols)) + "|")
        for r in rows:
            lines.append("| " + " | ".join(r[c] for c in cols) + " |")
    lines.append("")
    return "\n".join(lines)


def msd(mean, sd, n, show_n=True):
    """A table cell: mean ± std over n seeds; one seed has no std (just the value); [n] unless 3."""
    txt = f"{mean:.2f}" + (f" ± {sd:.2f}" if n > 1 else "")
    return txt + (f" [{n}]" if show_n and n != 3 else "")


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
             f"over seeds (n seeds in brackets when not 3; one seed: no ±), ×100 for accuracy/F1/correlation "
             f"metrics and ROUGE-L; the paper's value after "
             f"\"/\" where recorded. #Tr. Params: trainable adapter parameters (mean over tasks "
             f"and seeds; a classifier head is not counted).", ""]
    head = ["Method", "#Tr. Params"] + [
        f"{tlabel(t)} ({METRIC_LABELS.get(metric_of[t], metric_of[t])})" for t in tasks] + ["Avg."]
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
            txt = msd(k * r["mean"], k * r["std"], r["n"])
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
    threshold_figures(runs, None, a.out, written)
    efficiency_figures(runs, a.out, written)
    importance_source_figures(runs, a.out, written)
    for name, tb in sorted(tables.items()):
        fn = f"table_{name}.md"
        with open(os.path.join(a.out, fn), "w") as fh:
            fh.write(text_table_markdown(name, tb) if tb.get("text") else
                     table_markdown(name, tb, paper))
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
