#!/usr/bin/env bash
# Stage 6: the paper-shaped PER table (OUT/table.md) and bar chart (OUT/per.png); with
# --codebook PRETRAINED, first the paper's codebook analysis of OUT/pretrain/PRETRAINED
# (xlsr-analyze codes on a sample of each language's train audio, into OUT/codebook/),
# whose findings and pictures table.md then shows.
# Usage: recipes/demo/06_report.sh OUT LANGS LOW_RESOURCE MULTILINGUAL NAME=DECODE_DIR[,DIR...] ...
#          [--unbalanced NAME] [--codebook PRETRAINED]
#   A language decoded in several DIRs of one NAME (fine-tuning seeds) shows mean ± sd; --unbalanced
#   names the alpha = 1 model, compared with MULTILINGUAL on LOW_RESOURCE with 95% intervals.
#   e.g. 06_report.sh results es,fr,ky ky XLSR-3 XLSR-3=results/decode/xlsr_es_s1,... "No pre-training=..." --codebook xlsr
set -euo pipefail
source "$(dirname "$0")/paths.sh"  # sets recipes, plugin; defines show
out=$1 langs=$2 low=$3 multi=$4
shift 4
models=() codebook=()
while (( $# )); do
  case $1 in
    --codebook) codebook=(--codebook "$out/codebook"); pre=$2; shift 2 ;;
    --unbalanced) models+=(--unbalanced "$2"); shift 2 ;;
    *) models+=(--model "$1"); shift ;;
  esac
done
if (( ${#codebook[@]} )); then
  # 60 utterances per language (a seeded sample; ky and tt have fewer: all): ~8 s for XLSR-10
  show xlsr-analyze codes "$out/pretrain/$pre/checkpoint_last.pt" "$out/data" --split train --languages "$langs" \
    --max-utterances 60 --num-workers 0 --no-progress --out "$out/codebook"
fi
show python -m xlsr_demo.report --out "$out" --languages "$langs" --low-resource "$low" \
  --multilingual "$multi" --baseline XLSR-Monolingual "${models[@]}" "${codebook[@]}"
