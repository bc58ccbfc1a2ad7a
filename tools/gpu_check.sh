#!/usr/bin/env bash
# One command for a lent H200: unpack the carried .debs (tools/fetch_gpu_debs.sh) into
# /tmp/ldprefix (never into /), configure + build Release for sm_90 (with the cuDNN attention path
# when the carried cudnn-frontend headers, .deps/, and a cuDNN on the machine are found), run every
# CUDA test (ctest -R Cuda), the kernel benchmarks, then (time allowing) the loradrop program's
# `quickstart --fast` on the CPU and on CUDA. Writes $OUT/gpu_check.log, $OUT/ctest.log,
# $OUT/bench.json and $OUT/quickstart_{cpu,cuda}{.log,/}. A failing step is recorded and the later ones still run;
# the exit status is non-zero when any step failed.
#
# Prepare here (network):  tools/fetch_gpu_debs.sh      (.debs/ ~27 MiB, and .deps/ ~3 MiB)
# Then the `run` tool call (carry stays under its 64 MiB: du -sh .debs .deps):
#   carry:     [".debs", ".deps"]
#   command:   OUT=$OUT tools/gpu_check.sh
#   timeout_s: 540   (the script bounds itself under 8 min: unpack ~5 s, configure ~20 s, build
#                     <= 300 s, ctest <= 90 s, bench <= 60 s, the two quickstarts in what is left
#                     of 460 s. Expected on 16 idle cores: the build of ld_core + core_tests +
#                     ld_bench_kernels + loradrop ~3-4 min (nvcc dominates; measured here: ~2
#                     CPU-min for the two cuDNN files alone), tests + bench ~2 min)
#
# Env: OUT (default <repo>/out); LD_GPU_CHECK_PREFIX_ONLY=1 makes the prefix audit fatal: after
# configure, the carried libraries (OpenBLAS, fmt, GoogleTest, HDF5, ...) must resolve into
# /tmp/ldprefix, not /usr (use it to test this script on a machine that has the -dev packages);
# LD_GPU_CHECK_SKIP_BUILD=1 stops after configure + audit (a quick test of the unpack/configure);
# LD_GPU_CHECK_BUILD_TIMEOUT (s, default 300) for slower machines than the H200 host;
# LD_GPU_CHECK_E2E_BUDGET (s since the start, default 460) bounds the quickstarts,
# LD_GPU_CHECK_QS_TIMEOUT (s, default 40) each quickstart.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-$root/out}"
mkdir -p "$OUT"
log="$OUT/gpu_check.log"
exec > >(tee "$log") 2>&1
t0=$(date +%s)
stamp() { echo "[gpu_check +$(($(date +%s) - t0))s] $*"; }
failed=()

arch=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
prefix=/tmp/ldprefix
rt_prefix=/tmp/ldprefix-rt
rt_lib=""
cmake_extra=()
if compgen -G "$root/.debs/*.deb" >/dev/null; then
  stamp "unpacking $(ls "$root"/.debs/*.deb | wc -l) .debs into $prefix"
  rm -rf "$prefix"
  mkdir -p "$prefix"
  for d in "$root"/.debs/*.deb; do dpkg -x "$d" "$prefix"; done
  # HDF5's runtime closure (libcurl4, TLS, Kerberos, ...): a separate prefix that only the loradrop
  # link (-rpath-link) and its runs see (fetch_gpu_debs.sh puts those packages in .debs/runtime/).
  rm -rf "$rt_prefix"
  if compgen -G "$root/.debs/runtime/*.deb" >/dev/null; then
    mkdir -p "$rt_prefix"
    for d in "$root"/.debs/runtime/*.deb; do dpkg -x "$d" "$rt_prefix"; done
    rt_lib="$rt_prefix/usr/lib/$arch:$rt_prefix/lib/$arch"
  fi
  # .pc files name /usr: rewrite them to the prefix.
  mkdir -p "$prefix/pkgconfig"
  while IFS= read -r pc; do
    sed "s|/usr|$prefix/usr|g" "$pc" >"$prefix/pkgconfig/$(basename "$pc")"
  done < <(find "$prefix/usr" -name '*.pc')
  lib="$prefix/usr/lib/$arch"
  ob="$lib/openblas-openmp"
  h5lib="$lib/hdf5/serial"
  export PKG_CONFIG_PATH="$prefix/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export CMAKE_PREFIX_PATH="$prefix/usr:$h5lib${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export LD_LIBRARY_PATH="$ob:$lib:$h5lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export CPATH="$prefix/usr/include${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$ob:$lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
  # The root CMakeLists.txt looks for OpenBLAS's OpenMP build under /usr only: hand it the
  # prefix's (the cached results of its find_library/find_path). HDF5: the CMake config of
  # Debian's serial build (hdf5/serial on CMAKE_PREFIX_PATH), not the h5cc wrapper (names /usr).
  [ -n "$rt_lib" ] && cmake_extra+=(-DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,${rt_lib//:/ -Wl,-rpath-link,}")
  cmake_extra+=(-DLD_OPENBLAS_OPENMP_LIB="$ob/libopenblas.so"
    -DLD_OPENBLAS_OPENMP_INC="$prefix/usr/include/$arch/openblas-openmp"
    -DHDF5_C_COMPILER_EXECUTABLE=HDF5_C_COMPILER_EXECUTABLE-NOTFOUND)
else
  stamp "no .debs carried: using the system's packages"
fi

# cuDNN attention: the carried cudnn-frontend headers, and cuDNN from the CUDA toolkit or, failing
# that, from the Python wheels next to torch (nvidia-cudnn-cu*).
cfe="$root/.deps/cudnn_frontend/include"
if [ -f "$cfe/cudnn_frontend.h" ]; then
  cmake_extra+=(-DLD_CUDNN_FRONTEND_DIR="$cfe")
  cuda_root=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")" 2>/dev/null)
  if ! compgen -G "$cuda_root/lib*/libcudnn.so*" >/dev/null &&
    ! compgen -G "$cuda_root/targets/*/lib/libcudnn.so*" >/dev/null; then
    py_cudnn=$(python3 -c 'import nvidia.cudnn as m, os; print(os.path.dirname(m.__file__) if m.__file__ else list(m.__path__)[0])' 2>/dev/null || true)
    if [ -n "$py_cudnn" ] && [ -f "$py_cudnn/include/cudnn.h" ]; then
      stamp "cuDNN from the Python wheel: $py_cudnn"
      cmake_extra+=(-DLD_CUDNN_ROOT="$py_cudnn")
      export LD_LIBRARY_PATH="$py_cudnn/lib:$LD_LIBRARY_PATH"
    else
      stamp "no cuDNN found (toolkit $cuda_root, no nvidia.cudnn wheel): cuDNN attention OFF"
    fi
  fi
else
  stamp "no .deps/cudnn_frontend carried: cuDNN attention OFF"
fi

nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader || true
build="$root/build/gpu"
stamp "configure (Release, sm_90)"
if ! cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DLD_WITH_CUDA=ON "${cmake_extra[@]}"; then
  stamp "configure FAILED"
  exit 1
fi

# Prefix audit: where did the carried libraries come from?
if [ -d "$prefix" ] && compgen -G "$root/.debs/*.deb" >/dev/null; then
  outside=0
  while IFS= read -r line; do
    case "$line" in
      *"$prefix"*) echo "  prefix: $line" ;;
      *) echo "  OUTSIDE the prefix: $line"; outside=1 ;;
    esac
  done < <(grep -E '^(LD_OPENBLAS_OPENMP_(LIB|INC)|LD_SLEEF_(LIB|INC)|fmt_DIR|nlohmann_json_DIR|GTest_DIR|HDF5_DIR|hdf5_DIR|HDF5_C_LIBRARY_hdf5|tomlplusplus_DIR|CLI11_DIR|pkgcfg_lib_[A-Z_]*_[a-z]*)[:=]' "$build/CMakeCache.txt" | grep -v -- '-NOTFOUND')
  if ((outside)); then
    stamp "prefix audit: some libraries resolve outside $prefix"
    if [ "${LD_GPU_CHECK_PREFIX_ONLY:-0}" = 1 ]; then
      stamp "LD_GPU_CHECK_PREFIX_ONLY=1: stopping"
      exit 1
    fi
  else
    stamp "prefix audit: every carried library resolves into $prefix"
  fi
fi
grep -E '^LD_CUDNN_(LIBRARY|INCLUDE_DIR|FRONTEND_DIR):' "$build/CMakeCache.txt" || true
if [ "${LD_GPU_CHECK_SKIP_BUILD:-0}" = 1 ]; then
  stamp "LD_GPU_CHECK_SKIP_BUILD=1: done after configure"
  exit 0
fi

# One build of the three targets (they share ld_core; -k 0: a failure in one still builds the
# others). Without core_tests nothing else is worth running.
stamp "build core_tests, ld_bench_kernels, loradrop"
timeout "${LD_GPU_CHECK_BUILD_TIMEOUT:-300}" cmake --build "$build" -j"$(nproc)" \
  --target core_tests ld_bench_kernels loradrop -- -k 0
build_rc=$?
stamp "build exit $build_rc"
if [ ! -x "$build/tests/core_tests" ]; then
  stamp "build FAILED (or took over ${LD_GPU_CHECK_BUILD_TIMEOUT:-300} s): no core_tests"
  exit 1
fi
((build_rc == 0)) || failed+=(build)
for b in "$build/tests/core_tests" "$build/apps/bench/ld_bench_kernels" "$build/apps/loradrop/loradrop"; do
  [ -x "$b" ] && ldd "$b" | grep -E 'openblas|gfortran|fmt|hdf5|cudnn|gomp' | sed "s|^|  $(basename "$b"): |"
done

stamp "ctest -R Cuda"
(cd "$build" && timeout 90 ctest -R Cuda --output-on-failure -j4 --output-log "$OUT/ctest.log")
test_rc=$?
stamp "ctest exit $test_rc"
((test_rc == 0)) || failed+=(ctest)

stamp "benchmarks"
timeout 60 "$build/apps/bench/ld_bench_kernels" --json "$OUT/bench.json"
bench_rc=$?
stamp "bench exit $bench_rc"
((bench_rc == 0)) || failed+=(bench)
[ -f "$OUT/bench.json" ] && cat "$OUT/bench.json"

# End to end, if time is left (the whole run stays under ~8 min): `quickstart --fast` on the CPU
# and on CUDA: the full training path (encoder, LoRA, LoRA-drop, AdamW, importance) on the GPU,
# its table next to the CPU's.
qs="$build/apps/loradrop/loradrop"
left=$((${LD_GPU_CHECK_E2E_BUDGET:-460} - ($(date +%s) - t0)))
if [ ! -x "$qs" ]; then
  stamp "no loradrop binary: no end-to-end quickstart"
elif ((left < 30)); then
  stamp "skipping the end-to-end quickstart: ${left}s left of the budget"
  failed+=(quickstart-skipped)
else
  qs_libs="$rt_lib${rt_lib:+:}$LD_LIBRARY_PATH"  # the HDF5 runtime prefix first
  missing=$(LD_LIBRARY_PATH="$qs_libs" ldd "$qs" | grep 'not found' || true)
  [ -n "$missing" ] && stamp "loradrop: libraries not found: $missing"
  each=$((left / 2 < ${LD_GPU_CHECK_QS_TIMEOUT:-40} ? left / 2 : ${LD_GPU_CHECK_QS_TIMEOUT:-40}))
  for dev in cpu cuda; do
    stamp "quickstart --fast --device $dev (<= ${each} s)"
    LD_LIBRARY_PATH="$qs_libs" timeout "$each" \
      "$qs" quickstart --fast --no-plots --device "$dev" --out "$OUT/quickstart_$dev" \
      >"$OUT/quickstart_$dev.log" 2>&1
    rc=$?
    stamp "quickstart $dev exit $rc"
    tail -n 12 "$OUT/quickstart_$dev.log"
    ((rc == 0)) || failed+=("quickstart-$dev")
  done
fi
if ((${#failed[@]})); then
  stamp "done; FAILED: ${failed[*]}"
  exit 1
fi
stamp "done"
