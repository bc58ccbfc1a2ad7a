#!/usr/bin/env bash
# One smoke experiment for ctest: `loradrop repro EXP --preset smoke` (the program validates the
# HDF5 schema and prints "schema ok"), then tools/plot.py on the file; exit 77 (skip) when the plot
# step lacks h5py/matplotlib. Usage: smoke.sh LORADROP_BIN EXPERIMENT OUT_DIR SOURCE_DIR
set -uo pipefail
bin=$1 exp=$2 out=$3 src=$4
# From scratch every time: a results file left by an earlier build would be resumed (every run
# skipped, nothing tested) or, after a preset change, refused.
rm -rf "$out/smoke/$exp".h5 "$out/smoke/$exp".h5.tmp-* "$out/smoke/$exp".log.jsonl \
  "$out/smoke/${exp}"_figures "$out/smoke/${exp}"_adapters "$out/smoke/${exp}"_tiny* "$out/smoke/${exp}"_predictions
log=$("$bin" repro "$exp" --preset smoke --out "$out" --no-plots 2>&1)
rc=$?
echo "$log" | tail -n 40
[ $rc -eq 0 ] || { echo "smoke.sh: loradrop repro $exp failed (exit $rc)"; exit 1; }
if echo "$log" | grep -q "skipped (disabled"; then exit 0; fi
echo "$log" | grep -q "schema ok" || { echo "smoke.sh: no schema confirmation"; exit 1; }
if [ "$exp" = nlg ]; then  # causal-LM runs (also when resumed): E2E BLEU, DialogSum ROUGE-L
  for m in '"metric":"bleu"' '"metric":"rougeL"'; do
    grep -q "$m" "$out/smoke/nlg.log.jsonl" || { echo "smoke.sh: no $m run in the nlg log"; exit 1; }
  done
fi
python3 "$src/tools/plot.py" "$out/smoke/$exp.h5" --out "$out/smoke/${exp}_figures"
prc=$?
[ $prc -eq 77 ] && { echo "smoke.sh: plot step skipped (h5py/matplotlib missing)"; exit 77; }
[ $prc -eq 0 ] || { echo "smoke.sh: tools/plot.py failed (exit $prc)"; exit 1; }
ls "$out/smoke/${exp}_figures"
