#!/usr/bin/env bash
# Stage 2: manifests (16 kHz FLAC), phoneme labels and the alpha = 0.5 language sampling table.
# Usage: recipes/demo/02_manifests.sh OUT LANGS [JOBS] [EXTRA_LANGS]
# Reads OUT/corpus (stage 1, or any CommonVoice release); writes OUT/data/<split>_<lang>.{tsv,wrd,ltr,phn},
# dict.phn.txt (joint) and dict.phn.<lang>.txt (what a one-language fine-tuning uses), and
# OUT/data/balance.txt (the sampling table pre-training uses).
# EXTRA_LANGS (comma-separated, e.g. en for XLSR-English) get manifests and phonemes but
# stay out of the sampling table of LANGS.
set -euo pipefail
out=$1 langs=${2//,/ } jobs=${3:-2} extra=${4:-}
extra=${extra//,/ }
source "$(dirname "$0")/paths.sh"  # sets recipes, plugin; defines show
show xlsr-manifest commonvoice "$out/corpus" "$out/data" --languages $langs $extra \
  --splits train dev test train-1h --num-jobs "$jobs"
show xlsr-manifest phonemize "$out/data" --languages $langs $extra --num-jobs "$jobs"
# --alpha 0.5 and --min-sample-size 4800 as recipes/pretraining/demo.yaml
show_to "$out/data/balance.txt" xlsr-manifest balance "$out/data" --split train --languages $langs \
  --alpha 0.5 --min-sample-size 4800
cat "$out/data/balance.txt"
show xlsr-manifest stats "$out/data"
