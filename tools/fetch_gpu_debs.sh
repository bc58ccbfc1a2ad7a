#!/usr/bin/env bash
# Downloads (apt-get download, no install) the Debian packages a bare GPU machine needs to build
# and test loradrop into the git-ignored folder .debs/; tools/gpu_check.sh unpacks them there.
# Usage: tools/fetch_gpu_debs.sh [dest]   (default: <repo>/.debs)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$root/.debs}"
mkdir -p "$dest"
cd "$dest"
# Runtime + dev packages: OpenBLAS, HDF5, fmt, GoogleTest, nlohmann-json, sentencepiece, CLI11,
# toml++, and the libraries they link that a minimal CUDA image lacks. OpenBLAS is Debian's OpenMP
# build, the one the root CMakeLists.txt links (/usr/lib/<arch>/openblas-openmp): the pthread
# build's pool would contend with our OpenMP loops.
pkgs=(
  libopenblas0-openmp libopenblas-openmp-dev libgfortran5
  libhdf5-dev libhdf5-103-1 libhdf5-cpp-103-1 libhdf5-hl-100 libhdf5-hl-cpp-100 libsz2 libaec0
  libcurl3-gnutls
  libfmt-dev libfmt9
  libgtest-dev libgmock-dev googletest
  nlohmann-json3-dev
  libsentencepiece-dev libsentencepiece0 libprotobuf-lite32
  libcli11-dev
  libtomlplusplus-dev libtomlplusplus3
  libgomp1
)
failed=()
for p in "${pkgs[@]}"; do
  if ! ls "${p}"_*.deb >/dev/null 2>&1; then
    apt-get download "$p" >/dev/null 2>&1 || failed+=("$p")
  fi
done
# Earlier versions of this script fetched the pthread build; the prefix must hold one variant.
rm -f libopenblas0-pthread_*.deb libopenblas-pthread-dev_*.deb libopenblas-dev_*.deb libopenblas0_*.deb
echo "fetch_gpu_debs: $(ls ./*.deb 2>/dev/null | wc -l) packages, $(du -sh . | cut -f1) in $dest"
# The GPU check also carries the cudnn-frontend headers (.deps/) for the cuDNN attention path.
if [ -z "${1:-}" ]; then
  "$root/tools/fetch_cudnn_frontend.sh" ||
    echo "fetch_gpu_debs: no cudnn-frontend headers: the GPU check builds without cuDNN attention" >&2
fi
if ((${#failed[@]})); then
  echo "fetch_gpu_debs: not available here (skipped): ${failed[*]}" >&2
fi
