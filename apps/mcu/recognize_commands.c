/* Posterior smoothing and detection: see recognize_commands.h. C99. */
#include "recognize_commands.h"

#include <math.h>
#include <string.h>

int kws_rc_init(KwsRecognizer* rc, int num_classes, const uint8_t* ignored,
                uint32_t average_window_ms, float detection_threshold,
                uint32_t suppression_ms, int minimum_count) {
  int c;
  if (num_classes < 1 || num_classes > KWS_RC_MAX_CLASSES) return KWS_RC_ERROR_ARGUMENT;
  if (average_window_ms == 0) return KWS_RC_ERROR_ARGUMENT;
  if (!(detection_threshold > 0.0f && detection_threshold <= 1.0f)) {
    return KWS_RC_ERROR_ARGUMENT;
  }
  if (minimum_count < 1) return KWS_RC_ERROR_ARGUMENT;
  memset(rc, 0, sizeof(*rc));
  rc->num_classes = num_classes;
  for (c = 0; c < num_classes; ++c) rc->ignored[c] = ignored ? (ignored[c] != 0) : 0;
  rc->average_window_ms = average_window_ms;
  rc->detection_threshold = detection_threshold;
  rc->suppression_ms = suppression_ms;
  rc->minimum_count = minimum_count;
  kws_rc_reset(rc);
  return KWS_RC_OK;
}

void kws_rc_reset(KwsRecognizer* rc) {
  rc->head = 0;
  rc->count = 0;
  memset(rc->has_detection, 0, sizeof(rc->has_detection));
  rc->has_last_time = 0;
  rc->scores_valid = 0;
}

int kws_rc_process(KwsRecognizer* rc, const float* posteriors, uint32_t time_ms,
                   KwsDetection* out) {
  int c, i, top;
  float top_score;
  if (rc->has_last_time && (int32_t)(time_ms - rc->last_time_ms) < 0) {
    return KWS_RC_ERROR_TIME;
  }
  rc->last_time_ms = time_ms;
  rc->has_last_time = 1;
  if (rc->count == KWS_RC_MAX_RESULTS) { /* full: drop the oldest */
    rc->head = (rc->head + 1) % KWS_RC_MAX_RESULTS;
    --rc->count;
  }
  {
    const int slot = (rc->head + rc->count) % KWS_RC_MAX_RESULTS;
    for (c = 0; c < rc->num_classes; ++c) {
      const float p = posteriors[c];
      /* !(p >= floor) also clips NaN, like a missing posterior */
      rc->values[slot][c] =
          logf(p >= KWS_RC_POSTERIOR_FLOOR ? p : KWS_RC_POSTERIOR_FLOOR);
    }
    rc->times[slot] = time_ms;
    ++rc->count;
  }
  while (time_ms - rc->times[rc->head] >= rc->average_window_ms) {
    rc->head = (rc->head + 1) % KWS_RC_MAX_RESULTS;
    --rc->count;
  }
  if (rc->count < rc->minimum_count) {
    rc->scores_valid = 0;
    return KWS_RC_OK;
  }
  for (c = 0; c < rc->num_classes; ++c) rc->scores[c] = 0.0f;
  for (i = 0; i < rc->count; ++i) {
    const float* v = rc->values[(rc->head + i) % KWS_RC_MAX_RESULTS];
    for (c = 0; c < rc->num_classes; ++c) rc->scores[c] += v[c];
  }
  for (c = 0; c < rc->num_classes; ++c) rc->scores[c] /= (float)rc->count;
  kws_softmax(rc->scores, rc->num_classes, rc->scores);
  top = 0;
  for (c = 1; c < rc->num_classes; ++c) {
    if (rc->scores[c] > rc->scores[top]) top = c;
  }
  rc->scores_valid = 1;
  top_score = rc->scores[top];
  if (rc->ignored[top] || top_score < rc->detection_threshold) return KWS_RC_OK;
  if (rc->has_detection[top] &&
      time_ms - rc->last_detection_ms[top] < rc->suppression_ms) {
    return KWS_RC_OK;
  }
  rc->has_detection[top] = 1;
  rc->last_detection_ms[top] = time_ms;
  if (out) {
    out->index = top;
    out->time_ms = time_ms;
    out->score = top_score;
  }
  return KWS_RC_DETECTION;
}

void kws_softmax(const float* logits, int n, float* out) {
  float max_value, sum = 0.0f;
  int i;
  if (n <= 0) return;
  max_value = logits[0];
  for (i = 1; i < n; ++i) {
    if (logits[i] > max_value) max_value = logits[i];
  }
  for (i = 0; i < n; ++i) {
    out[i] = expf(logits[i] - max_value);
    sum += out[i];
  }
  for (i = 0; i < n; ++i) out[i] /= sum;
}
