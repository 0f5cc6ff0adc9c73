#!/usr/bin/env bash
# Stage 4: CTC fine-tuning on phonemes of one language's train-1h split (recipes/finetuning/demo.yaml).
# Usage: recipes/demo/04_finetune.sh OUT PRETRAINED LANG UPDATES [SEED] [OVERRIDE...]
#   PRETRAINED: a folder name under OUT/pretrain (xlsr, xlsr_a1, mono_ky, english, none)
#   SEED: common.seed of the fine-tuning (CTC head initialisation, masks, batch order); xlsr-demo
#   repeats the low-resource fine-tunings with several seeds
#   OVERRIDE: extra hydra overrides; xlsr-demo passes model.feature_grad_mult=1.0 for "none"
#   (no pre-trained feature encoder to keep frozen: it is trained like the rest)
# Writes OUT/finetune/PRETRAINED_LANG_sSEED/checkpoint_best.pt (best dev PER, checked every 100 updates).
set -euo pipefail
out=$1 pre=$2 lang=$3 updates=$4 seed=${5:-1}
shift $(( $# < 5 ? $# : 5 ))
source "$(dirname "$0")/paths.sh"  # sets recipes, plugin; defines show
run="$out/finetune/${pre}_${lang}_s$seed"
show fairseq-hydra-train --config-dir "$recipes/finetuning" --config-name demo \
  task.data="$out/data" common.user_dir="$plugin" "task.languages='$lang'" \
  model.w2v_path="$out/pretrain/$pre/checkpoint_last.pt" \
  optimization.max_update="$updates" \
  common.seed="$seed" hydra.run.dir="$run" checkpoint.save_dir="$run" "$@"
