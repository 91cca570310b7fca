#!/usr/bin/env bash
# The spiking twin of the main job's keyword spotter, after scripts/main_job.sh:
#   1. train spiking_lmuformer_tiny_kws on the same synthetic keywords, distilled from
#      the main job's (non-spiking) model: targets = 0.5 one-hot + 0.5 teacher
#      posteriors at temperature 2 on each augmented batch, half of the batches
#      mixed up (the teacher scores the mixed clips), 350 epochs;
#   2. evaluate it (streaming too) on the held-out voices;
#   3. export it to int8 TFLite Micro and print the report.
#
# Usage: scripts/spiking_twin.sh [OUT_DIR]   (default: runs/main_job, the main job's)
# Environment: KERAS_BACKEND (default jax), EPOCHS (default 350), LEARNING_RATE
# (default 0.004), MIXUP_PROB (default 0.5), SEED (default 0), CLIPS_PER_WORD
# (default 3, as the main job).
set -euo pipefail

OUT_DIR="${1:-runs/main_job}"
source "$(dirname "${BASH_SOURCE[0]}")/kws_layout.sh"
TEACHER="${MAIN_RUN_DIR}/model.keras"
RUN_DIR="${OUT_DIR}/spiking_tiny_kws${SUFFIX}"
EXPORT_DIR="${OUT_DIR}/export_spiking${SUFFIX}"
START=$(date +%s)
if [ ! -f "${TEACHER}" ]; then
  echo "spiking_twin.sh: no teacher model ${TEACHER}; run scripts/main_job.sh ${OUT_DIR} first" >&2
  exit 1
fi

echo "== 1/2 train spiking_lmuformer_tiny_kws (distilled from ${TEACHER}), evaluate"
lmuformer-train \
  --dataset=synthetic_kws --data_dir="${DATA_DIR}" --classes=12 \
  --preset=spiking_lmuformer_tiny_kws --teacher="${TEACHER}" \
  --epochs="${EPOCHS:-350}" --learning_rate="${LEARNING_RATE:-0.004}" \
  --mixup_prob="${MIXUP_PROB:-0.5}" \
  --seed="${SEED:-0}" --out="${RUN_DIR}" --overwrite --verbose=2  # a rerun replaces the last

echo "== 2/2 export the spiking step graph to int8 TFLite Micro"
lmuformer-export --model "${RUN_DIR}/model.keras" \
  --calibration "${RUN_DIR}/calibration.npz" --test "${RUN_DIR}/test.npz" \
  --out "${EXPORT_DIR}"
echo "spiking twin finished in $(( $(date +%s) - START )) s; results in ${RUN_DIR}, ${EXPORT_DIR}"
