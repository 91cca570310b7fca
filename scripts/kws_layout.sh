# Sourced by scripts/main_job.sh and scripts/spiking_twin.sh: the one definition of
# the keyword runs' folder layout and shared environment, so the spiking twin finds
# the main job's data and model. Expects OUT_DIR; sets CLIPS_PER_WORD, SUFFIX,
# DATA_DIR, MAIN_RUN_DIR (the main job's training run) and exports KERAS_BACKEND and
# TF_CPP_MIN_LOG_LEVEL.
CLIPS_PER_WORD="${CLIPS_PER_WORD:-3}"
if [ "${CLIPS_PER_WORD}" = 1 ]; then SUFFIX=""; else SUFFIX="_x${CLIPS_PER_WORD}"; fi
DATA_DIR="${DATA_DIR:-${OUT_DIR}/synthetic_kws${SUFFIX}}"
MAIN_RUN_DIR="${OUT_DIR}/tiny_kws${SUFFIX}"
export KERAS_BACKEND="${KERAS_BACKEND:-jax}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
