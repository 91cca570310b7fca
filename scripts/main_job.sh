#!/usr/bin/env bash
# The README's main job, end to end on a CPU laptop (2 cores: about 3 minutes):
#   1. generate the synthetic keyword set (espeak-ng voices, default size);
#   2. train the tiny keyword-spotting LMUFormer on 12 classes;
#   3. evaluate it on held-out voices, including accuracy versus frames seen measured
#      with the streaming (frame-by-frame) model;
#   4. export the step graph to int8 TFLite Micro and print its report (export/)
# and print where the results are.
#
# Usage: scripts/main_job.sh [OUT_DIR]        (default: runs/main_job)
# Environment: KERAS_BACKEND (default jax, the fastest on CPU here), EPOCHS (default
# 100), BATCH_SIZE (default 32), SEED (default 0), CLIPS_PER_WORD (clips per word and
# voice, default 3: 3x the generator's default size), ENGINES (text-to-speech engines,
# default espeak; "auto" renders with every installed one), DATA_DIR (default
# OUT_DIR/synthetic_kws_x3, OUT_DIR/synthetic_kws for CLIPS_PER_WORD=1, ...).
set -euo pipefail

OUT_DIR="${1:-runs/main_job}"
source "$(dirname "${BASH_SOURCE[0]}")/kws_layout.sh"
RUN_DIR="${MAIN_RUN_DIR}"
EXPORT_DIR="${OUT_DIR}/export${SUFFIX}"
EPOCHS="${EPOCHS:-100}"
BATCH_SIZE="${BATCH_SIZE:-32}"
SEED="${SEED:-0}"
ENGINES="${ENGINES:-espeak}"
START=$(date +%s)
mkdir -p "${OUT_DIR}"

echo "== 1/4 synthetic keywords -> ${DATA_DIR}"
python - "${DATA_DIR}" "${CLIPS_PER_WORD}" "${ENGINES}" <<'EOF'
import sys

from lmuformer_keras.data import generate_synthetic_kws

m = generate_synthetic_kws(
    sys.argv[1],
    clips_per_word_per_voice=int(sys.argv[2]),
    engines=sys.argv[3],
    negative_words=0,
    negative_sentences=0,
)
print(f"synthetic_kws: engines {m['params']['engines']}")
state = "reused (cached)" if m["cached"] else f"generated in {m['seconds']} s"
print(f"synthetic_kws: {m['total_clips']} clips {m['counts']}, {state}")
EOF

echo "== 2/4 + 3/4 train lmuformer_tiny_kws (12 classes), evaluate, stream-evaluate"
lmuformer-train \
  --dataset=synthetic_kws --data_dir="${DATA_DIR}" --classes=12 \
  --preset=lmuformer_tiny_kws --recipe=default \
  --epochs="${EPOCHS}" --batch_size="${BATCH_SIZE}" --seed="${SEED}" \
  --out="${RUN_DIR}" --overwrite --verbose=2  # a rerun replaces the last run

echo "== 4/4 export the streaming step graph to int8 TFLite Micro (calibrated on training"
echo "   clips, verified in LiteRT and the TFLite Micro interpreter on the test clips)"
lmuformer-export --model "${RUN_DIR}/model.keras" \
  --calibration "${RUN_DIR}/calibration.npz" --test "${RUN_DIR}/test.npz" \
  --out "${EXPORT_DIR}"

python - "${RUN_DIR}" <<'EOF'
import json
import os
import sys

run = sys.argv[1]
with open(os.path.join(run, "metrics.json")) as fh:
    m = json.load(fh)
s = m["streaming"]
n = m["config"]["dataset"]["input_shape"][0]
print(
    f"test accuracy (held-out voices): {100 * m['test_accuracy']:.2f}% "
    f"({m['test_clips']} clips), {m['trainable_params']:,} parameters, "
    f"backend {m['config']['backend']}"
)
print(
    f"streaming: within 1 point of full accuracy after {s['frames_within_1_point']}"
    f"/{n} frames; {100 * s['accuracy_at_paper_fraction']:.2f}% after "
    f"{s['frames_at_paper_fraction']}/{n} frames"
)
print("results:")
for name in sorted(os.listdir(run)):
    print("  " + os.path.join(run, name))
EOF
echo "export: ${EXPORT_DIR} (report.json, model.tflite, model_data.cc/.h, op_resolver.h, metadata.json)"
echo "main job finished in $(( $(date +%s) - START )) s; results in ${RUN_DIR}"
