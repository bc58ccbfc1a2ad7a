#!/usr/bin/env bash
# Every tracked C++/CUDA file is clang-formatted (.clang-format) with clang-format 14, the version
# scripts/setup installs (another version formats differently: skipped, exit 77).
set -uo pipefail
cd "$(dirname "$0")/.."
cf=$(command -v clang-format-14 || command -v clang-format || true)
[ -n "$cf" ] || { echo "check_format: no clang-format: skipped"; exit 77; }
"$cf" --version | grep -q "version 14\." || { echo "check_format: $("$cf" --version) is not 14: skipped"; exit 77; }
git rev-parse --git-dir >/dev/null 2>&1 || { echo "check_format: not a git checkout: skipped"; exit 77; }
mapfile -t files < <(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')
if ! out=$("$cf" --dry-run -Werror "${files[@]}" 2>&1); then
  grep -o '^[^:]*:[0-9]*' <<<"$out" | sort -u | head -20
  echo "check_format: files above are not clang-formatted (run: $cf -i FILE)"
  exit 1
fi
echo "check_format: ${#files[@]} files clang-formatted"
