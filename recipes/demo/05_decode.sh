#!/usr/bin/env bash
# Stage 5: greedy CTC decoding of one language's test set, scored as phone error rate.
# Usage: recipes/demo/05_decode.sh OUT RUN LANG     (RUN: a folder under OUT/finetune, e.g. xlsr_ky_s1)
# Writes OUT/decode/RUN/generate-test_LANG.txt (hypotheses, references, the PER line)
set -euo pipefail
out=$1 run=$2 lang=$3
source "$(dirname "$0")/paths.sh"  # sets recipes, plugin; defines show
show fairseq-generate "$out/data" --user-dir "$plugin" --task xlsr_finetuning \
  --path "$out/finetune/$run/checkpoint_best.pt" --languages "$lang" --labels phn \
  --gen-subset "test_$lang" --scoring per --max-tokens 160000 --required-batch-size-multiple 1 \
  --results-path "$out/decode/$run"
