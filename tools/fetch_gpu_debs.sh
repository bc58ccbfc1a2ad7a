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
# toml++, SLEEF, and the libraries they link that a minimal CUDA image lacks. OpenBLAS is Debian's OpenMP
# build, the one the root CMakeLists.txt links (/usr/lib/<arch>/openblas-openmp): the pthread
# build's pool would contend with our OpenMP loops.
pkgs=(
  libopenblas0-openmp libopenblas-openmp-dev libgfortran5
  libhdf5-dev libhdf5-103-1 libhdf5-cpp-103-1 libhdf5-hl-100 libhdf5-hl-cpp-100 libsz2 libaec0
  libfmt-dev libfmt9
  libgtest-dev libgmock-dev googletest
  nlohmann-json3-dev
  libsentencepiece-dev libsentencepiece0 libprotobuf-lite32
  libcli11-dev
  libtomlplusplus-dev libtomlplusplus3
  libsleef-dev libsleef3
  libgomp1
)
# The runtime closure of Debian's libhdf5_serial (it links libcurl.so.4 and, through it, TLS,
# Kerberos, LDAP, ...), needed to link and run the loradrop program (the HDF5 results), and
# libquadmath (OpenBLAS). They go to runtime/: gpu_check.sh unpacks them into a separate prefix that
# only the loradrop link (-rpath-link) and its runs see, so cmake, nvcc and Python on the GPU
# machine keep their own copies. glibc, libstdc++ and libgcc are never carried.
# (List from `ldd` of the unpacked HDF5/OpenBLAS libraries against this Debian 12 machine.)
rt_pkgs=(
  libcurl4 libssl3 zlib1g libnghttp2-14 libidn2-0 librtmp1 libssh2-1 libpsl5 libgssapi-krb5-2
  libldap-2.5-0 libzstd1 libbrotli1 libunistring2 libgnutls30 libnettle8 libhogweed6 libgmp10
  libkrb5-3 libk5crypto3 libcom-err2 libkrb5support0 libkeyutils1 libsasl2-2 libp11-kit0
  libtasn1-6 libffi8 libquadmath0
)
failed=()
for p in "${pkgs[@]}"; do
  if ! ls "${p}"_*.deb >/dev/null 2>&1; then
    apt-get download "$p" >/dev/null 2>&1 || failed+=("$p")
  fi
done
mkdir -p runtime
for p in "${rt_pkgs[@]}"; do
  if ! ls runtime/"${p}"_*.deb >/dev/null 2>&1; then
    (cd runtime && apt-get download "$p" >/dev/null 2>&1) || failed+=("$p")
  fi
done
# Earlier versions of this script fetched the pthread build (the prefix must hold one variant)
# and libcurl3-gnutls (HDF5 links the OpenSSL libcurl4 instead).
rm -f libopenblas0-pthread_*.deb libopenblas-pthread-dev_*.deb libopenblas-dev_*.deb libopenblas0_*.deb
rm -f libcurl3-gnutls_*.deb
echo "fetch_gpu_debs: $(ls ./*.deb 2>/dev/null | wc -l) packages + $(ls runtime/*.deb 2>/dev/null | wc -l) runtime, $(du -sh . | cut -f1) in $dest"
# The GPU check also carries the cudnn-frontend headers (.deps/) for the cuDNN attention path.
if [ -z "${1:-}" ]; then
  "$root/tools/fetch_cudnn_frontend.sh" ||
    echo "fetch_gpu_debs: no cudnn-frontend headers: the GPU check builds without cuDNN attention" >&2
fi
if ((${#failed[@]})); then
  echo "fetch_gpu_debs: not available here (skipped): ${failed[*]}" >&2
fi
