/* Posterior smoothing and detection: the C99 port of apps/kws_stream/smoothing.py
 * (RecognizeCommands), step for step:
 *
 *   1. keep the results whose time lies in (now - average_window_ms, now];
 *   2. fewer than minimum_count of them: no decision;
 *   3. average their log-posteriors per class (posteriors clipped below at
 *      KWS_RC_POSTERIOR_FLOOR) and take the softmax of the mean: the scores, the
 *      softmax of the mean logits (the model's clip decision rule); the top class
 *      is the argmax of the scores (first on ties);
 *   4. report it when it is not ignored (silence / unknown), its score is
 *      >= detection_threshold, and it was not reported during the last
 *      suppression_ms (per class).
 *
 * The settings main_loop.cc uses are smoothing.py's defaults, written by
 * gen_params.py (KWS_AVERAGE_WINDOW_MS etc.).
 *
 * Times are uint32 milliseconds compared by wrap-safe differences. The window holds
 * at most KWS_RC_MAX_RESULTS results (the oldest is dropped beyond that): at a 20 ms
 * hop the default 64 covers windows up to 1280 ms. Memory: about
 * KWS_RC_MAX_RESULTS * KWS_RC_MAX_CLASSES * 4 bytes (4 KB with the defaults).
 */
#ifndef LMUFORMER_RECOGNIZE_COMMANDS_H_
#define LMUFORMER_RECOGNIZE_COMMANDS_H_

#include <stdint.h>

#ifndef KWS_RC_MAX_CLASSES
#define KWS_RC_MAX_CLASSES 16
#endif
#ifndef KWS_RC_MAX_RESULTS
#define KWS_RC_MAX_RESULTS 64
#endif

/* Posteriors are clipped below at this value before their log is averaged
 * (smoothing.POSTERIOR_FLOOR; a normal float). */
#define KWS_RC_POSTERIOR_FLOOR 1e-30f

#define KWS_RC_OK 0
#define KWS_RC_DETECTION 1
#define KWS_RC_ERROR_ARGUMENT (-1)
#define KWS_RC_ERROR_TIME (-2)

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int index;        /* class index */
  uint32_t time_ms; /* time of the frame that triggered it */
  float score;      /* its score (averaged posterior) */
} KwsDetection;

typedef struct {
  int num_classes;
  uint8_t ignored[KWS_RC_MAX_CLASSES];
  uint32_t average_window_ms;
  float detection_threshold;
  uint32_t suppression_ms;
  int minimum_count;
  /* ring buffer of log-posteriors, oldest at head */
  float values[KWS_RC_MAX_RESULTS][KWS_RC_MAX_CLASSES];
  uint32_t times[KWS_RC_MAX_RESULTS];
  int head, count;
  uint32_t last_detection_ms[KWS_RC_MAX_CLASSES];
  uint8_t has_detection[KWS_RC_MAX_CLASSES];
  uint32_t last_time_ms;
  int has_last_time;
  float scores[KWS_RC_MAX_CLASSES]; /* scores of the last call (sum to 1) */
  int scores_valid;                 /* 0 before minimum_count results */
} KwsRecognizer;

/* Returns KWS_RC_OK, or KWS_RC_ERROR_ARGUMENT for num_classes outside
 * [1, KWS_RC_MAX_CLASSES], average_window_ms == 0, a threshold outside (0, 1] or
 * minimum_count < 1. ignored[c] != 0 marks classes never reported (may be NULL). */
int kws_rc_init(KwsRecognizer* rc, int num_classes, const uint8_t* ignored,
                uint32_t average_window_ms, float detection_threshold,
                uint32_t suppression_ms, int minimum_count);

/* Forgets results and detection times (keeps the settings). */
void kws_rc_reset(KwsRecognizer* rc);

/* Adds the posteriors (num_classes floats) of the frame at time_ms. Returns
 * KWS_RC_DETECTION (and fills *out) for a new detection, KWS_RC_OK for none, or
 * KWS_RC_ERROR_TIME when time_ms is before the previous call's. */
int kws_rc_process(KwsRecognizer* rc, const float* posteriors, uint32_t time_ms,
                   KwsDetection* out);

/* Numerically stable softmax of n logits into out (may alias logits). */
void kws_softmax(const float* logits, int n, float* out);

#ifdef __cplusplus
}
#endif

#endif /* LMUFORMER_RECOGNIZE_COMMANDS_H_ */
