#!/usr/bin/env bash
# Fetches NVIDIA's header-only cudnn-frontend C++ API (cudnn_frontend::graph::Graph, sdpa,
# sdpa_backward) for the cuDNN attention path (core/cuda/attention_cudnn.cpp). It is not a Debian
# package; NVIDIA ships the headers inside the PyPI wheel nvidia-cudnn-frontend. This downloads
# one pinned wheel (pip download --no-deps, no install), checks its sha256 and unpacks its
# include/ into the git-ignored <repo>/.deps/cudnn_frontend/include, which CMake finds by default
# (LD_CUDNN_FRONTEND_DIR). Reconfigure after running it. Idempotent: does nothing when the pinned
# version is already unpacked.
# Usage: tools/fetch_cudnn_frontend.sh [dest]   (default: <repo>/.deps/cudnn_frontend)
# Env: LD_CFE_WHEEL=/path/to/the.whl uses a wheel already downloaded (its sha256 is still checked).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$root/.deps/cudnn_frontend}"

version=1.32.0
# The headers are the same in every wheel of a version, but pip picks the wheel by interpreter and
# platform: asking for one fixed tag makes the download (and so the hash) the same everywhere.
wheel="nvidia_cudnn_frontend-${version}-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"
sha256=c6006556017a4d1c914c52a556c71b1267f2d6a0500f742e7b4edef539878df0

stampf="$dest/VERSION"
if [ -f "$stampf" ] && [ "$(cat "$stampf")" = "$version" ] &&
   [ -f "$dest/include/cudnn_frontend.h" ]; then
  echo "fetch_cudnn_frontend: cudnn-frontend $version already in $dest/include"
  exit 0
fi

py=$(command -v python3 || command -v python || true)
[ -n "$py" ] || { echo "fetch_cudnn_frontend: needs python3 (pip download, zipfile)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ -n "${LD_CFE_WHEEL:-}" ]; then
  cp "$LD_CFE_WHEEL" "$tmp/$wheel"
else
  echo "fetch_cudnn_frontend: pip download nvidia-cudnn-frontend==$version" >&2
  "$py" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --implementation cp --abi cp311 --platform manylinux_2_28_x86_64 --dest "$tmp" \
    "nvidia-cudnn-frontend==$version" || {
    echo "fetch_cudnn_frontend: download failed (offline?); the cuDNN attention path stays" \
         "unbuilt" >&2
    exit 1
  }
fi
[ -f "$tmp/$wheel" ] || { echo "fetch_cudnn_frontend: expected $wheel, got: $(ls "$tmp")" >&2; exit 1; }
got=$(sha256sum "$tmp/$wheel" | cut -d' ' -f1)
if [ "$got" != "$sha256" ]; then
  echo "fetch_cudnn_frontend: sha256 mismatch for $wheel: expected $sha256, got $got" >&2
  exit 1
fi

# Unpack only include/ (a wheel is a zip), then swap it in whole so a failure leaves no half tree.
"$py" - "$tmp/$wheel" "$tmp/x" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    names = [n for n in z.namelist() if n.startswith("include/") and not n.endswith("/")]
    if not any(n == "include/cudnn_frontend.h" for n in names):
        sys.exit("fetch_cudnn_frontend: no include/cudnn_frontend.h in the wheel")
    z.extractall(sys.argv[2], names)
PY
mkdir -p "$dest"
rm -rf "$dest/include.new" && mv "$tmp/x/include" "$dest/include.new"
rm -rf "$dest/include" && mv "$dest/include.new" "$dest/include"
echo "$version" > "$stampf"
echo "fetch_cudnn_frontend: cudnn-frontend $version ($(du -sh "$dest/include" | cut -f1)) in" \
     "$dest/include"
