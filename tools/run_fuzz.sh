#!/usr/bin/env bash
# Builds the `fuzz` preset (clang, libFuzzer, ASan+UBSan) and runs every data/fuzz/fuzz_*.cpp target
# for a bounded time. Usage: tools/run_fuzz.sh [seconds per target, default 30] [target names...]
# Corpora live in build/fuzz/corpus/<target>/ (seeded from small heads of ../shared/data when it is
# there; nothing is copied into the repo); crash inputs go to build/fuzz/artifacts/. Exit status is
# nonzero when any target found a crash: turn each crash into a regression test in tests/data/.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
shift || true
if (($#)); then
  targets=("$@")
else
  targets=()
  for f in data/fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi
build=build/fuzz
cmake --preset fuzz >/dev/null || exit 1
cmake --build --preset fuzz --target "${targets[@]}" -- -j"${FUZZ_BUILD_JOBS:-2}" || exit 1

shared=../shared/data
seed() {  # seed <target> <source file> <bytes> [prefix byte]
  local dir=$build/corpus/$1 src=$2
  [ -f "$src" ] || return 0
  if [ -n "${4:-}" ]; then
    { printf "\\x$4"; head -c "$3" "$src"; } >"$dir/seed_$(basename "$src")_$4"
  else
    head -c "$3" "$src" >"$dir/seed_$(basename "$src")"
  fi
}

status=0
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t" "$build/artifacts"
  case $t in
    fuzz_glue_tsv)  # first byte: task (x % 8) and labelled ((x / 8) % 2 == 0)
      seed "$t" "$shared/glue/CoLA/dev.tsv" 2000 00
      seed "$t" "$shared/glue/MRPC/dev.tsv" 2000 02
      seed "$t" "$shared/glue/STS-B/dev.tsv" 2000 04
      seed "$t" "$shared/glue/RTE/test.tsv" 2000 0f ;;
    fuzz_e2e_csv) seed "$t" "$shared/e2e_nlg/devset.csv" 2000 ;;
    fuzz_dialogsum_jsonl) seed "$t" "$shared/dialogsum/dialogsum.dev.jsonl" 3000 ;;
    fuzz_dart_json)
      python3 - "$shared/dart/dart-v1.1.1-full-dev.json" "$build/corpus/$t/seed_dart.json" <<'PY' || true
import json, sys
json.dump(json.load(open(sys.argv[1]))[:3], open(sys.argv[2], "w"), indent=1)
PY
      ;;
  esac
  echo "== $t (${secs}s)"
  log=$build/artifacts/$t.log
  "$build/fuzz/$t" -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$build/artifacts/$t-" "$build/corpus/$t" >"$log" 2>&1
  rc=$?
  runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1)
  if ((rc != 0)); then
    status=1
    summary+=("$t: FAILED (rc $rc), see $log and $build/artifacts/$t-*")
    grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5
  else
    summary+=("$t: ok, ${runs:-? runs}, ${cov:-cov ?}, corpus $(ls "$build/corpus/$t" | wc -l)")
  fi
done
printf '%s\n' "${summary[@]}"
exit $status
