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
expected+=(table_main.md table_sample_proportion.md index.md)
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
n=$(ls "$work/out" | wc -l)
if [[ $n -ne ${#expected[@]} ]]; then echo "FAIL: $n files written, expected ${#expected[@]}"; ls "$work/out"; fail=1; fi
# A missing file is a clear error, not a traceback.
if python3 "$plot" "$work/none.h5" --out "$work/x" 2>"$work/err"; then echo "FAIL: missing input accepted"; fail=1; fi
grep -q "none.h5: no such file" "$work/err" || { echo "FAIL: error message"; cat "$work/err"; fail=1; }
[[ $fail -eq 0 ]] && echo "PASS: ${#expected[@]} files"
exit $fail
