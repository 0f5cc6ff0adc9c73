#!/usr/bin/env bash
# Stage 1 of the toy XLSR-10 experiment: speak a CommonVoice-shaped release with espeak-ng.
# Usage: recipes/demo/01_synth.sh OUT LANGS MINUTES LOW_RESOURCE FINETUNE_MINUTES [SEED] [JOBS]
#   LANGS comma-separated (es,fr,ky); LOW_RESOURCE "ky:1,tt:1" (train minutes overrides);
#   FINETUNE_MINUTES: minutes of train-1h (a subset of train) in every language
# Writes OUT/corpus/<lang>/{clips/*.mp3,train,dev,test,train-1h,validated}.tsv
set -euo pipefail
out=$1 langs=$2 minutes=$3 low=$4 ft_minutes=$5 seed=${6:-1} jobs=${7:-2}
source "$(dirname "$0")/paths.sh"  # sets recipes, plugin; defines show
show xlsr-synth --out "$out/corpus" --languages "$langs" --minutes "$minutes" \
  --low-resource "$low" --finetune-minutes "$ft_minutes" --seed "$seed" --jobs "$jobs" --no-progress
