#!/usr/bin/env bash
# The shipped keyword spotter (apps/pretrained/, docs/kws_robustness.md): trained on
# every installed text-to-speech engine with the recipe the leave-one-engine-out runs
# judge (scripts/leave_one_engine_out.sh), exported to int8, its detection smoothing
# chosen on validation voices, judged on each engine, and copied into apps/pretrained.
#   1. the multi-engine synthetic set (generated if missing; 12 min on 2 cores);
#   2. lmuformer-train --dataset=kws_clips (no engine held out);
#   3. lmuformer-export (int8, verified in LiteRT and TFLite Micro);
#   4. tune_smoothing --write on espeak-ng's validation voices;
#   5. evaluate --engine E for every engine (only espeak-ng's test voices are unheard:
#      the other engines' voices are all trained on, so those rows are not a
#      held-out figure; the leave-one-engine-out table is);
#   6. copy model.tflite, metadata.json, report.json and the training metrics into
#      SHIP_DIR.
#
# Usage: scripts/shipped_model.sh [OUT_DIR]   (default runs/shipped)
# Environment: DATA_DIR (default runs/kws_all_x3_neg), PRESET (lmuformer_tiny_kws),
# EPOCHS (60), SEED (0), TRAIN_FLAGS (more lmuformer-train flags; default none),
# SHIP_DIR (apps/pretrained/tiny_kws_synthetic; empty: do not
# copy), KERAS_BACKEND (jax).
set -euo pipefail

OUT_DIR="${1:-runs/shipped}"
DATA_DIR="${DATA_DIR:-runs/kws_all_x3_neg}"
PRESET="${PRESET:-lmuformer_tiny_kws}"
EPOCHS="${EPOCHS:-60}"
SEED="${SEED:-0}"
read -r -a TRAIN_EXTRA <<< "${TRAIN_FLAGS:-}"
SHIP_DIR="${SHIP_DIR-apps/pretrained/tiny_kws_synthetic}"
export KERAS_BACKEND="${KERAS_BACKEND:-jax}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
START=$(date +%s)
mkdir -p "${OUT_DIR}"

echo "== 1/6 synthetic keyword set with every installed engine -> ${DATA_DIR}"
python - "${DATA_DIR}" "${SEED}" <<'EOF'
import sys

from lmuformer_keras.data import generate_synthetic_kws

m = generate_synthetic_kws(
    sys.argv[1], seed=int(sys.argv[2]), clips_per_word_per_voice=3,
    negative_words=4000, negative_sentences=1500, progress=False,
)
state = "reused (cached)" if m["cached"] else f"generated in {m['seconds']} s"
print(f"engines {m['params']['engines']}, {m['total_clips']} clips, {state}")
EOF

echo "== 2/6 train ${PRESET} on every engine (--dataset=kws_clips)"
lmuformer-train --dataset=kws_clips --data_dir="${DATA_DIR}" --classes=12 \
  --preset="${PRESET}" --recipe=default --epochs="${EPOCHS}" --seed="${SEED}" \
  "${TRAIN_EXTRA[@]}" --out="${OUT_DIR}/train" --overwrite --verbose=2

echo "== 3/6 export int8"
lmuformer-export --model "${OUT_DIR}/train/model.keras" \
  --calibration "${OUT_DIR}/train/calibration.npz" --test "${OUT_DIR}/train/test.npz" \
  --out "${OUT_DIR}/export"

echo "== 4/6 detection smoothing on espeak-ng's validation voices"
python -m lmuformer_apps.kws_stream.tune_smoothing --model_dir "${OUT_DIR}/export" \
  --engine espeak --write --out "${OUT_DIR}/smoothing_grid.json"

echo "== 5/6 judge on each engine (trained-on voices except espeak-ng's test voices)"
for engine in espeak flite festival festival_accented piper; do
  python -m lmuformer_apps.kws_stream.evaluate --model_dir "${OUT_DIR}/export" \
    --engine "${engine}" --seed "${SEED}" --speech_minutes 5 --minutes 60 \
    --out "${OUT_DIR}/engine_${engine}.json"
done

if [ -n "${SHIP_DIR}" ]; then
  echo "== 6/6 copy into ${SHIP_DIR}"
  mkdir -p "${SHIP_DIR}"
  cp "${OUT_DIR}/export/model.tflite" "${OUT_DIR}/export/metadata.json" \
    "${OUT_DIR}/export/report.json" "${SHIP_DIR}/"
  cp "${OUT_DIR}/train/metrics.json" "${SHIP_DIR}/train_metrics.json"
fi
echo "shipped model finished in $(( $(date +%s) - START )) s; results in ${OUT_DIR}"
