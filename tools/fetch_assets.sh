#!/usr/bin/env bash
# Downloads what a full (paper-preset) reproduction needs into one assets folder: roberta-base,
# roberta-large and Llama-2-7b-hf (gated: HF_TOKEN from the environment) safetensors + tokenizer
# files from the Hugging Face hub, the GLUE tasks (official archives), E2E, DART and DialogSum.
# Every file's sha256 goes into ASSETS/SHA256SUMS on first download and is verified on later runs.
#   tools/fetch_assets.sh [ASSETS_DIR] [--only models|llama|glue|nlg]...   (default: assets)
# Offline it fails at once (network check with a 5 s timeout). Exit: 0 ok, 1 download or checksum
# failure, 2 usage, 4 no network.
set -euo pipefail
assets=assets
only=()
while [ $# -gt 0 ]; do
  case $1 in
    --only) only+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fetch_assets.sh: unknown option $1" >&2; exit 2 ;;
    *) assets=$1; shift ;;
  esac
done
want() { [ ${#only[@]} -eq 0 ] && return 0; local x; for x in "${only[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }
command -v curl >/dev/null || { echo "fetch_assets.sh: needs curl" >&2; exit 1; }
HF=${HF_ENDPOINT:-https://huggingface.co}
if ! curl -sS -o /dev/null --max-time 5 -I "$HF" 2>/dev/null; then
  echo "fetch_assets.sh: no network: cannot reach $HF within 5 s. This script downloads the" \
       "paper's models and datasets; run it on a machine with internet access and copy the" \
       "'$assets' folder here (the smoke and cpu-real presets need no download)." >&2
  exit 4
fi
mkdir -p "$assets"
sums="$assets/SHA256SUMS"
touch "$sums"

# fetch URL DEST [auth header]: downloads once (to DEST.part, then renamed); records or verifies
# the sha256 of DEST in SHA256SUMS.
fetch() {
  local url=$1 dest=$2 rel
  rel=${dest#"$assets"/}
  mkdir -p "$(dirname "$dest")"
  if [ ! -f "$dest" ]; then
    echo "  $rel"
    local auth=()
    [ $# -ge 3 ] && auth=(-H "$3")
    curl -fL --retry 3 --connect-timeout 10 "${auth[@]}" -o "$dest.part" "$url" ||
      { echo "fetch_assets.sh: download failed: $url" >&2; rm -f "$dest.part"; return 1; }
    mv "$dest.part" "$dest"
  fi
  local sum
  sum=$(sha256sum "$dest" | cut -d' ' -f1)
  if grep -q "  $rel\$" "$sums"; then
    grep -q "^$sum  $rel\$" "$sums" ||
      { echo "fetch_assets.sh: checksum mismatch for $rel (recorded in $sums); delete it to refetch" >&2; return 1; }
  else
    echo "$sum  $rel" >>"$sums"
  fi
}

hf_model() {  # repo local-name files...
  local repo=$1 name=$2; shift 2
  echo "$repo -> $assets/$name"
  local f
  for f in "$@"; do
    if [ -n "${HF_TOKEN:-}" ]; then
      fetch "$HF/$repo/resolve/main/$f" "$assets/$name/$f" "Authorization: Bearer $HF_TOKEN"
    else
      fetch "$HF/$repo/resolve/main/$f" "$assets/$name/$f"
    fi
  done
}

if want models; then
  hf_model FacebookAI/roberta-base roberta-base config.json model.safetensors vocab.json merges.txt tokenizer.json
  hf_model FacebookAI/roberta-large roberta-large config.json model.safetensors vocab.json merges.txt tokenizer.json
fi
if want llama; then
  if [ -z "${HF_TOKEN:-}" ]; then
    echo "fetch_assets.sh: skipping Llama-2-7b-hf: it is gated; accept its licence on the hub and" \
         "export HF_TOKEN=<your token>, then rerun" >&2
    want llama && [ ${#only[@]} -gt 0 ] && exit 1
  else
    hf_model meta-llama/Llama-2-7b-hf Llama-2-7b-hf config.json generation_config.json \
      model.safetensors.index.json model-00001-of-00002.safetensors model-00002-of-00002.safetensors \
      tokenizer.model tokenizer.json tokenizer_config.json special_tokens_map.json
  fi
fi
if want glue; then
  echo "GLUE -> $assets/glue"
  g=https://dl.fbaipublicfiles.com/glue/data
  for t in CoLA SST-2 STS-B QQP-clean MNLI QNLIv2 RTE; do
    fetch "$g/$t.zip" "$assets/glue/zips/$t.zip"
    [ -d "$assets/glue/${t%%-clean}" ] || [ -d "$assets/glue/${t%%v2}" ] ||
      python3 -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" \
        "$assets/glue/zips/$t.zip" "$assets/glue"
  done
  # MRPC: built from the MSR paraphrase corpus and GLUE's dev ids, as GLUE's download script does.
  fetch https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_train.txt "$assets/glue/zips/msr_paraphrase_train.txt"
  fetch https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_test.txt "$assets/glue/zips/msr_paraphrase_test.txt"
  fetch "$g/mrpc_dev_ids.tsv" "$assets/glue/zips/mrpc_dev_ids.tsv"
  python3 - "$assets/glue" <<'PY'
import os, sys
root = sys.argv[1]; z = os.path.join(root, "zips"); d = os.path.join(root, "MRPC")
os.makedirs(d, exist_ok=True)
dev_ids = {tuple(l.strip().split("\t")) for l in open(os.path.join(z, "mrpc_dev_ids.tsv"), encoding="utf-8-sig")}
rows = open(os.path.join(z, "msr_paraphrase_train.txt"), encoding="utf-8-sig").read().splitlines()
header = rows[0]
with open(os.path.join(d, "train.tsv"), "w", encoding="utf-8") as tr, open(os.path.join(d, "dev.tsv"), "w", encoding="utf-8") as dv:
    tr.write(header + "\n"); dv.write(header + "\n")
    for r in rows[1:]:
        f = r.split("\t")
        (dv if (f[1], f[2]) in dev_ids else tr).write(r + "\n")
test = open(os.path.join(z, "msr_paraphrase_test.txt"), encoding="utf-8-sig").read().splitlines()
with open(os.path.join(d, "test.tsv"), "w", encoding="utf-8") as te:
    te.write("index\t#1 ID\t#2 ID\t#1 String\t#2 String\n")
    for i, r in enumerate(test[1:]):
        f = r.split("\t"); te.write("\t".join([str(i), f[1], f[2], f[3], f[4]]) + "\n")
PY
  [ -d "$assets/glue/QQP-clean" ] && mv "$assets/glue/QQP-clean" "$assets/glue/QQP"
  [ -d "$assets/glue/QNLIv2" ] && mv "$assets/glue/QNLIv2" "$assets/glue/QNLI"
fi
if want nlg; then
  echo "E2E, DART, DialogSum -> $assets/{e2e_nlg,dart,dialogsum}"
  fetch https://github.com/tuetschek/e2e-dataset/releases/download/v1.0.0/e2e-dataset.zip "$assets/e2e_nlg/e2e-dataset.zip"
  python3 -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$assets/e2e_nlg/e2e-dataset.zip" "$assets/e2e_nlg"
  for s in train dev test; do
    fetch "https://raw.githubusercontent.com/Yale-LILY/dart/master/data/v1.1.1/dart-v1.1.1-full-$s.json" "$assets/dart/dart-v1.1.1-full-$s.json"
    fetch "https://raw.githubusercontent.com/cylnlp/dialogsum/main/DialogSum_Data/dialogsum.$s.jsonl" "$assets/dialogsum/dialogsum.$s.jsonl"
  done
fi
echo "fetch_assets.sh: done; checksums in $sums"
