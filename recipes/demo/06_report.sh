#!/usr/bin/env bash
# Stage 6: the paper-shaped PER table (OUT/table.md) and bar chart (OUT/per.png); with
# --codebook PRETRAINED, first the paper's codebook analysis of OUT/pretrain/PRETRAINED
# (xlsr-analyze codes on a sample of each language's train audio, into OUT/codebook/),
# whose findings and pictures table.md then shows; with --probe LANG=PRETRAINED,..., first
# the linear phone probe of those frozen pre-trained models on LANG (xlsr-analyze probe:
# per layer, trained on the train speakers' frames, scored on the dev and test speakers,
# labels from the corpus' espeak-ng alignments; into OUT/probe/LANG/), whose table
# (--probe-model NAME=PRETRAINED,...: the folders of a table row) table.md then shows.
# Usage: recipes/demo/06_report.sh OUT LANGS LOW_RESOURCE MULTILINGUAL NAME=DECODE_DIR[,DIR...] ...
#          [--unbalanced NAME] [--codebook PRETRAINED] [--probe LANG=PRETRAINED[,...]]...
#          [--probe-model NAME=PRETRAINED[,...]]...
#   A language decoded in several DIRs of one NAME (fine-tuning seeds) shows mean ± sd; --unbalanced
#   names the alpha = 1 model, compared with MULTILINGUAL on LOW_RESOURCE with 95% intervals.
#   e.g. 06_report.sh results es,fr,ky ky XLSR-3 XLSR-3=results/decode/xlsr_es_s1,... "No pre-training=..." \
#          --codebook xlsr --probe ky=xlsr,mono_ky,none --probe-model XLSR-3=xlsr ...
set -euo pipefail
source "$(dirname "$0")/paths.sh"  # sets recipes, plugin; defines show
out=$1 langs=$2 low=$3 multi=$4
shift 4
models=() codebook=() probes=() probe_tables=()
while (( $# )); do
  case $1 in
    --codebook) codebook=(--codebook "$out/codebook"); pre=$2; shift 2 ;;
    --unbalanced) models+=(--unbalanced "$2"); shift 2 ;;
    --probe) probes+=("$2"); shift 2 ;;
    --probe-model) models+=(--probe-model "$2"); shift 2 ;;
    *) models+=(--model "$1"); shift ;;
  esac
done
if (( ${#codebook[@]} )); then
  # 60 utterances per language (a seeded sample; ky and tt have fewer: all): ~8 s for XLSR-10
  show xlsr-analyze codes "$out/pretrain/$pre/checkpoint_last.pt" "$out/data" --split train --languages "$langs" \
    --max-utterances 60 --num-workers 0 --no-progress --out "$out/codebook"
fi
# one probe per language, all at once (one thread each); each exit status is checked
pids=()
for spec in ${probes[@]+"${probes[@]}"}; do
  lang=${spec%%=*} ckpts=()
  IFS=, read -ra folders <<< "${spec#*=}"
  for f in "${folders[@]}"; do ckpts+=("$f=$out/pretrain/$f/checkpoint_last.pt"); done
  show xlsr-analyze probe "${ckpts[@]}" --data "$out/data" --alignments "$out/corpus" --languages "$lang" \
    --out "$out/probe/$lang" &
  pids+=($!)
  probe_tables+=(--probe "$out/probe/$lang/probe.tsv")
done
for pid in ${pids[@]+"${pids[@]}"}; do wait "$pid"; done
show python -m xlsr_demo.report --out "$out" --languages "$langs" --low-resource "$low" \
  --multilingual "$multi" --baseline XLSR-Monolingual "${models[@]}" "${codebook[@]}" \
  ${probe_tables[@]+"${probe_tables[@]}"}
