#!/usr/bin/env bash
# One command for a lent H200: unpack the carried .debs (tools/fetch_gpu_debs.sh) into
# /tmp/ldprefix (never into /), configure + build Release for sm_90, run every CUDA test
# (ctest -R Cuda), then the kernel benchmarks. Writes $OUT/gpu_check.log and $OUT/bench.json.
# Usage (repo root): OUT=/some/dir tools/gpu_check.sh
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-$root/out}"
mkdir -p "$OUT"
log="$OUT/gpu_check.log"
exec > >(tee "$log") 2>&1
t0=$(date +%s)
stamp() { echo "[gpu_check +$(( $(date +%s) - t0 ))s] $*"; }

prefix=/tmp/ldprefix
if compgen -G "$root/.debs/*.deb" >/dev/null; then
  stamp "unpacking $(ls "$root"/.debs/*.deb | wc -l) .debs into $prefix"
  mkdir -p "$prefix"
  for d in "$root"/.debs/*.deb; do dpkg -x "$d" "$prefix"; done
  # .pc files name /usr: rewrite them to the prefix.
  mkdir -p "$prefix/pkgconfig"
  while IFS= read -r pc; do
    sed "s|/usr|$prefix/usr|g" "$pc" > "$prefix/pkgconfig/$(basename "$pc")"
  done < <(find "$prefix/usr" -name '*.pc')
  ob="$prefix/usr/lib/x86_64-linux-gnu/openblas-pthread"
  export PKG_CONFIG_PATH="$prefix/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export CMAKE_PREFIX_PATH="$prefix/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export LD_LIBRARY_PATH="$ob:$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export CPATH="$prefix/usr/include:$prefix/usr/include/x86_64-linux-gnu/openblas-pthread${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$ob:$prefix/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}"
else
  stamp "no .debs carried: using the system's packages"
fi

nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader || true
build="$root/build/gpu"
stamp "configure (Release, sm_90)"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DLD_WITH_CUDA=ON || { stamp "configure FAILED"; exit 1; }
stamp "build"
cmake --build "$build" -j"$(nproc)" --target core_tests ld_bench_kernels || {
  stamp "build FAILED"
  exit 1
}
stamp "ctest -R Cuda"
(cd "$build" && timeout 240 ctest -R Cuda --output-on-failure -j4)
test_rc=$?
stamp "ctest exit $test_rc"
stamp "benchmarks"
timeout 150 "$build/apps/bench/ld_bench_kernels" --json "$OUT/bench.json"
bench_rc=$?
stamp "bench exit $bench_rc"
[ -f "$OUT/bench.json" ] && cat "$OUT/bench.json"
stamp "done"
exit $(( test_rc != 0 || bench_rc != 0 ))
