#!/usr/bin/env bash
# Stage 6: the paper-shaped PER table (OUT/table.md) and bar chart (OUT/per.png).
# Usage: recipes/demo/06_report.sh OUT LANGS LOW_RESOURCE MULTILINGUAL NAME=DECODE_DIR[,DIR...] ...
#   e.g. 06_report.sh results es,fr,ky ky XLSR-3 XLSR-3=results/decode/xlsr_es,... "No pre-training=..."
set -euo pipefail
out=$1 langs=$2 low=$3 multi=$4
shift 4
models=()
for spec in "$@"; do models+=(--model "$spec"); done
set -x
python -m xlsr_demo.report --out "$out" --languages "$langs" --low-resource "$low" \
  --multilingual "$multi" --baseline XLSR-Monolingual "${models[@]}"
