#!/usr/bin/env bash
# Stage 4: CTC fine-tuning on phonemes of one language's train-1h split (recipes/finetuning/tiny.yaml).
# Usage: recipes/demo/04_finetune.sh OUT PRETRAINED LANG UPDATES [SEED]
#   PRETRAINED: a folder name under OUT/pretrain (xlsr, mono_ky, none)
# Writes OUT/finetune/PRETRAINED_LANG/checkpoint_best.pt (best dev PER). max_tokens 160000 (10 s):
# fine-tuning never crops, so a batch must hold the longest train-1h utterance whole
set -euo pipefail
out=$1 pre=$2 lang=$3 updates=$4 seed=${5:-1}
repo=$(cd "$(dirname "$0")/../.." && pwd)
run="$out/finetune/${pre}_$lang"
set -x
fairseq-hydra-train --config-dir "$repo/recipes/finetuning" --config-name tiny \
  task.data="$out/data" common.user_dir="$repo/xlsr_plugin" "++task.languages='$lang'" \
  model.w2v_path="$out/pretrain/$pre/checkpoint_last.pt" \
  dataset.train_subset=train-1h dataset.valid_subset=dev dataset.max_tokens=160000 \
  optimization.max_update="$updates" \
  common.seed="$seed" hydra.run.dir="$run" checkpoint.save_dir="$run"
