#!/usr/bin/env bash
# Leave-one-engine-out evaluation of the keyword spotter (docs/kws_robustness.md):
# for each held-out text-to-speech engine E and each training mode M,
#   1. train lmuformer_tiny_kws on the synthetic set without E (and without the
#      speakers E shares with other engines; festival's English and non-English
#      voices together): --dataset=kws_M --exclude_engines=E;
#   2. export the int8 streaming step graph;
#   3. choose its detection smoothing on validation voices of a trained-on engine
#      (tune_smoothing --write);
#   4. judge the int8 model on E's voices: isolated keywords, keywords in phrases,
#      non-keyword sentences, noise, confusion matrix (evaluate --engine E), with
#      95 % intervals;
#   5. separability: the smoothing chosen on E's own voices (other renderings, seed
#      SEED + 1; tune_smoothing without --write, 0.2 false detections per minute
#      allowed): the best the model could do on E if its threshold were set for E.
#      A diagnostic, not a deployable figure (it looks at the held-out engine);
# then print the Markdown table of every report.
#
# Usage: scripts/leave_one_engine_out.sh [OUT_DIR]      (default: runs/loeo)
# Environment: DATA_DIR (a set of generate_synthetic_kws with every engine; default
# OUT_DIR/synthetic_kws_x${CLIPS_PER_WORD}, generated if missing), CLIPS_PER_WORD
# (clips per word and espeak-ng voice, the other engines' multiplied; default 3),
# NEGATIVE_WORDS / NEGATIVE_SENTENCES (non-keyword words / sentences each engine
# speaks; default 4000 / 1500),
# HELD_OUT (engines to hold out, default "espeak flite festival festival_accented
# piper"; festival and festival_accented are held out together), MODES
# (default "streams mined clips": streaming-aware windows; the same plus the hard
# negatives the streams model still fires on, --hard_negatives_from; the clip-mean
# baseline on the same utterances), PRESET (default lmuformer_tiny_kws), EPOCHS (default 60),
# SEED (default 0), TRAIN_FLAGS (more lmuformer-train flags, e.g. "--freq_shift=2
# --equalizer=0.2"; default none), KEYWORDS (at least this many keywords in each
# keyword stream, default 250), SPEECH_MINUTES (non-keyword speech, default 20), NOISE_MINUTES
# (default 60), KERAS_BACKEND (default jax).
set -euo pipefail

OUT_DIR="${1:-runs/loeo}"
CLIPS_PER_WORD="${CLIPS_PER_WORD:-3}"
NEGATIVE_WORDS="${NEGATIVE_WORDS:-4000}"
NEGATIVE_SENTENCES="${NEGATIVE_SENTENCES:-1500}"
DATA_DIR="${DATA_DIR:-${OUT_DIR}/synthetic_kws_x${CLIPS_PER_WORD}}"
HELD_OUT="${HELD_OUT:-espeak flite festival festival_accented piper}"
MODES="${MODES:-streams mined clips}"
PRESET="${PRESET:-lmuformer_tiny_kws}"
EPOCHS="${EPOCHS:-60}"
SEED="${SEED:-0}"
read -r -a TRAIN_EXTRA <<< "${TRAIN_FLAGS:-}"
KEYWORDS="${KEYWORDS:-250}"
SPEECH_MINUTES="${SPEECH_MINUTES:-20}"
NOISE_MINUTES="${NOISE_MINUTES:-60}"
export KERAS_BACKEND="${KERAS_BACKEND:-jax}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
START=$(date +%s)
mkdir -p "${OUT_DIR}"

echo "== synthetic keyword set with every installed engine -> ${DATA_DIR}"
python - "${DATA_DIR}" "${SEED}" "${CLIPS_PER_WORD}" "${NEGATIVE_WORDS}" \
  "${NEGATIVE_SENTENCES}" <<'EOF'
import sys

from lmuformer_keras.data import generate_synthetic_kws

m = generate_synthetic_kws(
    sys.argv[1], seed=int(sys.argv[2]), clips_per_word_per_voice=int(sys.argv[3]),
    negative_words=int(sys.argv[4]), negative_sentences=int(sys.argv[5]),
    progress=False,
)
state = "reused (cached)" if m["cached"] else f"generated in {m['seconds']} s"
print(f"engines {m['params']['engines']}, {m['total_clips']} clips, {state}")
if m.get("engines_not_installed"):
    print(f"not installed (not held out, not trained on): {m['engines_not_installed']}")
EOF

reports=()
for engine in ${HELD_OUT}; do
  for mode in ${MODES}; do
    run="${OUT_DIR}/${mode}_without_${engine}"
    echo "== ${mode}, ${engine} held out -> ${run}"
    extra=()
    dataset="kws_${mode}"
    # festival's English and non-English voices come from one program: held out together
    exclude="${engine}"
    case "${engine}" in festival|festival_accented) exclude=festival,festival_accented;; esac
    if [ "${mode}" = mined ]; then  # streams + the streams model's false alarms
      dataset=kws_streams
      extra=(--hard_negatives_from="${OUT_DIR}/streams_without_${engine}/train/model.keras")
    fi
    # metrics.json is written when training ends; a run stopped before that (its
    # model.keras is the best epoch so far) is continued from its checkpoint
    if [ ! -f "${run}/train/metrics.json" ]; then
      resume=()
      [ -d "${run}/train/resume" ] && resume=(--resume)
      lmuformer-train --dataset="${dataset}" --data_dir="${DATA_DIR}" \
        --exclude_engines="${exclude}" --classes=12 --preset="${PRESET}" \
        --recipe=default --epochs="${EPOCHS}" --seed="${SEED}" "${extra[@]}" \
        "${TRAIN_EXTRA[@]}" "${resume[@]}" --out="${run}/train" --verbose=2
    fi
    if [ ! -f "${run}/export/metadata.json" ]; then
      lmuformer-export --model "${run}/train/model.keras" \
        --calibration "${run}/train/calibration.npz" --test "${run}/train/test.npz" \
        --out "${run}/export"
    fi
    # smoothing chosen on validation speech of an engine the model was trained on
    # (espeak-ng's validation voices; flite's voices when espeak-ng is held out)
    tune_engine=espeak; [ "${engine}" = espeak ] && tune_engine=flite
    python -m lmuformer_apps.kws_stream.tune_smoothing --model_dir "${run}/export" \
      --engine "${tune_engine}" --write --out "${run}/smoothing_grid.json"
    python -m lmuformer_apps.kws_stream.evaluate --model_dir "${run}/export" \
      --engine "${engine}" --seed "${SEED}" --speech_minutes "${SPEECH_MINUTES}" \
      --minutes "${NOISE_MINUTES}" --keywords "${KEYWORDS}" \
      --out "${run}/held_out_${engine}.json"
    # the same model at the apps' default smoothing (700 ms, 0.95), for comparison
    python -m lmuformer_apps.kws_stream.evaluate --model_dir "${run}/export" \
      --engine "${engine}" --seed "${SEED}" --speech_minutes "${SPEECH_MINUTES}" \
      --minutes "${NOISE_MINUTES}" --keywords "${KEYWORDS}" \
      --average_window_ms 700 --threshold 0.95 \
      --out "${run}/held_out_${engine}_default_smoothing.json" > /dev/null
    # separability: the smoothing the model would need on E itself (not written)
    python -m lmuformer_apps.kws_stream.tune_smoothing --model_dir "${run}/export" \
      --engine "${engine}" --seed "$(( SEED + 1 ))" --max_false_per_minute 0.2 \
      --speech_minutes 10 --out "${run}/separability_${engine}.json"
    reports+=("${run}/held_out_${engine}.json")
  done
done

echo "== leave-one-engine-out table (int8 models; each row: trained without that engine)"
python - "${reports[@]}" <<'EOF'
import json
import os
import sys

from lmuformer_apps.kws_stream.held_out import (
    SEPARABILITY_BUDGETS,
    best_recall_within,
    leave_one_out_table,
)

reports, models = [], []
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as fh:
        reports.append(json.load(fh))
    # OUT_DIR/<mode>_without_<engine>/held_out_<engine>.json
    models.append(path.replace("\\", "/").split("/")[-2].split("_without_")[0])
print(leave_one_out_table(reports, models))
print()
print("separability (smoothing chosen on the held-out engine itself; the best mean")
print("keyword recall within each budget of false detections per minute of its")
print("non-keyword speech; a diagnostic, not a deployable figure):")
budgets = SEPARABILITY_BUDGETS
print("| held-out engine | model | " + " | ".join(f"<= {b:g} / min" for b in budgets)
      + " |")
print("|---|---|" + "---|" * len(budgets))
for path, model in zip(sys.argv[1:], models):
    folder, name = os.path.split(path)
    engine = name[len("held_out_"):-len(".json")]
    grid = os.path.join(folder, f"separability_{engine}.json")
    if not os.path.isfile(grid):
        continue
    with open(grid, encoding="utf-8") as fh:
        best = best_recall_within(json.load(fh)["grid"], budgets)
    cells = ["none" if r is None else f"{r:.0%}" for r in best]
    print(f"| {engine} | {model} | " + " | ".join(cells) + " |")
EOF
echo "leave-one-engine-out finished in $(( $(date +%s) - START )) s; reports in ${OUT_DIR}"
