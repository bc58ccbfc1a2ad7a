#!/usr/bin/env bash
# Runs every experiment of a paper_repro preset (every table and figure it regenerates) into
# OUT/<preset>/<experiment>.h5 and draws the figures. Resumable: rerun the same command after an
# interruption and the runs already in the results files are skipped.
#   paper_repro/run_all.sh PRESET [OUT]      PRESET: smoke | cpu-real | paper | path/to/preset.toml
# The loradrop binary: $LORADROP, else the first of build/{release,default,cpu,h}/apps/loradrop.
set -uo pipefail
cd "$(dirname "$0")/.."
preset=${1:?usage: paper_repro/run_all.sh PRESET [OUT]   (PRESET: smoke | cpu-real | paper)}
out=${2:-paper_repro_out}
bin=${LORADROP:-}
if [ -z "$bin" ]; then
  for b in build/release build/default build/cpu build/h; do
    [ -x "$b/apps/loradrop/loradrop" ] && { bin=$b/apps/loradrop/loradrop; break; }
  done
fi
[ -n "$bin" ] || { echo "run_all.sh: no loradrop binary; build it (cmake --build --preset release --target loradrop) or set LORADROP" >&2; exit 2; }
file=$preset
[[ $file == *.toml ]] || file=paper_repro/presets/$preset.toml
[ -f "$file" ] || { echo "run_all.sh: preset file $file not found" >&2; exit 3; }
mapfile -t exps < <(sed -n 's/^\[experiment\.\([A-Za-z0-9_]*\)\]$/\1/p' "$file")
failed=()
for e in "${exps[@]}"; do
  echo "== $preset: $e"
  "$bin" repro "$e" --preset "$preset" --out "$out" || failed+=("$e")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "run_all.sh: failed: ${failed[*]} (rerun to resume)" >&2
  exit 1
fi
echo "run_all.sh: all ${#exps[@]} experiments of $preset done; results and figures under $out/$(basename "$preset" .toml)"
