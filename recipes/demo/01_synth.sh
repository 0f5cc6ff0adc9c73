#!/usr/bin/env bash
# Stage 1 of the toy XLSR-10 experiment: speak a CommonVoice-shaped release with espeak-ng.
# Usage: recipes/demo/01_synth.sh OUT LANGS MINUTES LOW_RESOURCE [SEED] [JOBS]
#   LANGS comma-separated (es,fr,ky); LOW_RESOURCE "ky:0.5,tt:0.5" (train minutes overrides)
# Writes OUT/corpus/<lang>/{clips/*.mp3,train,dev,test,train-1h,validated}.tsv
set -euo pipefail
out=$1 langs=$2 minutes=$3 low=$4 seed=${5:-1} jobs=${6:-2}
set -x
xlsr-synth --out "$out/corpus" --languages "$langs" --minutes "$minutes" \
  --low-resource "$low" --seed "$seed" --jobs "$jobs" --no-progress
