#!/usr/bin/env bash
# Stage 3: wav2vec 2.0 pre-training with the demo recipe (recipes/pretraining/demo.yaml, the tiny model).
# Usage: recipes/demo/03_pretrain.sh OUT NAME LANGS UPDATES [SEED] [OVERRIDE...]
#   XLSR-10:           03_pretrain.sh OUT xlsr  es,fr,...,zh 1200       (alpha = 0.5 over LANGS)
#   XLSR-Monolingual:  03_pretrain.sh OUT mono_ky ky 1200
#   no pre-training:   03_pretrain.sh OUT none es,fr,... 1 1 'optimization.lr=[0.0]'  (one update
#                      at learning rate 0 only, so that fairseq writes the randomly initialised
#                      model as a checkpoint)
#   OVERRIDE: extra hydra overrides; the learning rate and everything else come from the recipe
# Writes OUT/pretrain/NAME/checkpoint_last.pt
set -euo pipefail
out=$1 name=$2 langs=$3 updates=$4 seed=${5:-1}
shift $(( $# < 5 ? $# : 5 ))
source "$(dirname "$0")/paths.sh"  # sets recipes, plugin; defines show
show fairseq-hydra-train --config-dir "$recipes/pretraining" --config-name demo \
  task.data="$out/data" common.user_dir="$plugin" "task.languages='$langs'" \
  optimization.max_update="$updates" \
  common.seed="$seed" hydra.run.dir="$out/pretrain/$name" checkpoint.save_dir="$out/pretrain/$name" "$@"
