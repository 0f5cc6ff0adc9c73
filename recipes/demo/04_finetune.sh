#!/usr/bin/env bash
# Stage 4: CTC fine-tuning on phonemes of one language's train-1h split (recipes/finetuning/demo.yaml).
# Usage: recipes/demo/04_finetune.sh OUT PRETRAINED LANG UPDATES [SEED]
#   PRETRAINED: a folder name under OUT/pretrain (xlsr, mono_ky, none)
# Writes OUT/finetune/PRETRAINED_LANG/checkpoint_best.pt (best dev PER, checked every 100 updates).
# Every model and language gets the same settings; demo.yaml says why they are what they are.
set -euo pipefail
out=$1 pre=$2 lang=$3 updates=$4 seed=${5:-1}
repo=$(cd "$(dirname "$0")/../.." && pwd)
run="$out/finetune/${pre}_$lang"
set -x
fairseq-hydra-train --config-dir "$repo/recipes/finetuning" --config-name demo \
  task.data="$out/data" common.user_dir="$repo/xlsr_plugin" "task.languages='$lang'" \
  model.w2v_path="$out/pretrain/$pre/checkpoint_last.pt" \
  optimization.max_update="$updates" \
  common.seed="$seed" hydra.run.dir="$run" checkpoint.save_dir="$run"
