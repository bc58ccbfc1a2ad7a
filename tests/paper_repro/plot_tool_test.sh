#!/usr/bin/env bash
# PlotTool.WritesEveryFigure: tools/plot.py on the synthetic sample results writes every expected
# PNG and Markdown table, each non-empty (PNGs checked by signature). Exit 77 = skipped.
set -euo pipefail
make_sample=$1 plot=$2 work=$3
if ! command -v python3 >/dev/null; then echo "SKIP: python3 not found"; exit 77; fi
if ! python3 -c "import h5py, matplotlib, numpy" 2>/dev/null; then
  echo "SKIP: h5py/matplotlib/numpy missing for $(command -v python3) (scripts/setup installs them)"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work"
"$make_sample" "$work/sample.h5"
python3 "$plot" "$work/sample.h5" --out "$work/out"
# What the sample holds (paper_repro/results.cpp write_sample_results): experiment main (model
# tiny; full, lora, loradrop; tasks rte, sts-b; histograms and importance for lora and loradrop),
# experiment sample_proportion (ten proportions on rte, importance only), tables main and
# sample_proportion; targets query and value.
expected=()
for t in query value; do
  for m in lora loradrop; do
    for task in rte sts-b; do expected+=("hist_main_tiny_${m}_${task}_${t}.png"); done
    expected+=("importance_main_tiny_${m}_${t}.png")
  done
  for task in rte sts-b; do expected+=("overlay_main_tiny_${task}_${t}.png"); done
  expected+=("sensitivity_sample_proportion_tiny_rte_${t}.png")
done
# threshold_sweep (lora + seven T on rte), efficiency (six methods on rte), importance_source
# (pass / during on rte and sts-b) and the text table hyperparameters_tiny.
expected+=(threshold_threshold_sweep_tiny_rte.png threshold_threshold_sweep_tiny.md)
expected+=(efficiency_efficiency_tiny_rte.png efficiency_efficiency_tiny.md)
for task in rte sts-b; do expected+=("importance_source_importance_source_tiny_${task}.png"); done
expected+=(importance_source_importance_source_tiny.md)
expected+=(table_main.md table_sample_proportion.md table_threshold_sweep.md table_efficiency.md)
expected+=(table_hyperparameters_tiny.md index.md)
fail=0
for f in "${expected[@]}"; do
  p="$work/out/$f"
  if [[ ! -s "$p" ]]; then echo "FAIL: $f missing or empty"; fail=1; continue; fi
  if [[ $f == *.png ]] && [[ "$(head -c 8 "$p" | od -An -tx1 | tr -d ' \n')" != 89504e470d0a1a0a ]]; then
    echo "FAIL: $f is not a PNG"; fail=1
  fi
done
# The table is in the paper's layout with mean ± std and the paper column note.
grep -q "| Method | #Tr. Params | RTE (accuracy) | STS-B (pearson) | Avg. |" "$work/out/table_main.md" ||
  { echo "FAIL: table_main.md header"; cat "$work/out/table_main.md"; fail=1; }
grep -q "| LoRA-drop | 9.2K | .* ± " "$work/out/table_main.md" || { echo "FAIL: LoRA-drop row"; fail=1; }
grep -q "paper value not recorded" "$work/out/table_main.md" || { echo "FAIL: paper note"; fail=1; }
# The hyperparameter table is pivoted: settings as rows, tasks as columns, where set and source.
grep -q "| Setting | RTE | STS-B | Set in | Source |" "$work/out/table_hyperparameters_tiny.md" ||
  { echo "FAIL: hyperparameter table header"; cat "$work/out/table_hyperparameters_tiny.md"; fail=1; }
grep -q '| `lr` | 5e-4 | 4e-4 | \[model.tiny.task.<task>\] | sample scripts |' \
  "$work/out/table_hyperparameters_tiny.md" || { echo "FAIL: hyperparameter lr row"; fail=1; }
grep -q '| `max_steps` | not recorded | not recorded | - | not stated |' \
  "$work/out/table_hyperparameters_tiny.md" || { echo "FAIL: not-recorded row"; fail=1; }
grep -q "| RTE (accuracy) | 0.5 | " "$work/out/threshold_threshold_sweep_tiny.md" ||
  { echo "FAIL: threshold table"; cat "$work/out/threshold_threshold_sweep_tiny.md"; fail=1; }
grep -q "| RTE | LoRA-drop | .* | 9.2K | " "$work/out/efficiency_efficiency_tiny.md" ||
  { echo "FAIL: efficiency table"; cat "$work/out/efficiency_efficiency_tiny.md"; fail=1; }
n=$(ls "$work/out" | wc -l)
if [[ $n -ne ${#expected[@]} ]]; then echo "FAIL: $n files written, expected ${#expected[@]}"; ls "$work/out"; fail=1; fi
# A missing file is a clear error, not a traceback.
if python3 "$plot" "$work/none.h5" --out "$work/x" 2>"$work/err"; then echo "FAIL: missing input accepted"; fail=1; fi
grep -q "none.h5: no such file" "$work/err" || { echo "FAIL: error message"; cat "$work/err"; fail=1; }
[[ $fail -eq 0 ]] && echo "PASS: ${#expected[@]} files"
exit $fail
