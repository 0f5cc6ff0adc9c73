#!/usr/bin/env bash
# Stage 3: wav2vec 2.0 pre-training with the demo recipe (recipes/pretraining/demo.yaml, the tiny model).
# Usage: recipes/demo/03_pretrain.sh OUT NAME LANGS UPDATES [LR] [SEED]
#   XLSR-10:           03_pretrain.sh OUT xlsr  es,fr,...,zh 1200       (alpha = 0.5 over LANGS)
#   XLSR-Monolingual:  03_pretrain.sh OUT mono_ky ky 1200
#   no pre-training:   03_pretrain.sh OUT none es,fr,... 1 0.0  (one update at learning rate 0 only
#                      so that fairseq writes the randomly initialised model as a checkpoint)
# Writes OUT/pretrain/NAME/checkpoint_last.pt
set -euo pipefail
out=$1 name=$2 langs=$3 updates=$4 lr=${5:-0.002} seed=${6:-1}
repo=$(cd "$(dirname "$0")/../.." && pwd)
set -x
fairseq-hydra-train --config-dir "$repo/recipes/pretraining" --config-name demo \
  task.data="$out/data" common.user_dir="$repo/xlsr_plugin" "task.languages='$langs'" \
  optimization.max_update="$updates" "optimization.lr=[$lr]" \
  common.seed="$seed" hydra.run.dir="$out/pretrain/$name" checkpoint.save_dir="$out/pretrain/$name"
