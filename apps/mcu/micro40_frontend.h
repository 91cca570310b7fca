/* micro40 audio frontend for microcontrollers: portable C99, float arithmetic.
 *
 * Computes exactly what lmuformer_keras.features "micro40" computes (the NumPy
 * reference in lmuformer_keras/features/base.py), from the constants and tables that
 * apps/mcu/gen_params.py writes into micro40_params.h from the frontend params (the
 * single source of truth; nothing is retyped here). Per frame of FRAME_LENGTH int16
 * samples:
 *
 *   x[n] = sample[n] * INPUT_SCALE                     (int16 / 32768)
 *   [REMOVE_DC_OFFSET: x -= mean(x)] [PREEMPHASIS p: x[n] -= p x[n-1], x[0] *= 1 - p]
 *   x[n] *= window[n]                                  (periodic Hann, from the table)
 *   X = FFT_SIZE-point real FFT of x zero-padded       (radix-2, below)
 *   P[k] = |X[k]|^2, k = 0 .. FFT_SIZE / 2             (unscaled power)
 *   E[m] = sum_k w[k, m] P[k]                          (sparse triangular mel weights)
 *   L[m] = log(E[m] + LOG_EPS)                         (LOG_ADD; else log(max(E, eps)))
 *   out[m] = (L[m] - NORM_MEAN) / NORM_SCALE
 *
 * Real FFT: the FFT_SIZE real samples are read as FFT_SIZE / 2 complex values
 * z[n] = x[2n] + i x[2n+1]; an in-place iterative radix-2 complex FFT gives Z, and
 * X[k] = (Z[k] + conj Z[M-k]) / 2 - i e^{-2 pi i k / N} (Z[k] - conj Z[M-k]) / 2
 * (M = N / 2) splits it into the spectrum of x. All arithmetic is float32; against
 * the float64 NumPy reference the normalised features agree within 1e-3 absolute
 * (measured by tests/test_apps_mcu.py on tones, chirps, noise, clipping and speech).
 *
 * Streaming: framing has no edge padding, as the Python FrontendStream: the first
 * frame once FRAME_LENGTH samples are buffered, then one per FRAME_STEP samples
 * (with 480 / 320: no frame after the first hop, then one per hop).
 *
 * Memory: one Micro40Frontend (about 3 KB for micro40), tables in flash.
 */
#ifndef LMUFORMER_MICRO40_FRONTEND_H_
#define LMUFORMER_MICRO40_FRONTEND_H_

#include <stdint.h>

#include "micro40_params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int16_t samples[MICRO40_FRAME_LENGTH]; /* the frame being filled */
  int num_buffered;                      /* valid samples in samples[] */
  float work[MICRO40_FFT_SIZE];          /* FFT buffer */
  float power[MICRO40_NUM_BINS];         /* power spectrum */
} Micro40Frontend;

/* Empties the buffer (same as micro40_reset). */
void micro40_init(Micro40Frontend* fe);
void micro40_reset(Micro40Frontend* fe);

/* Frames that pushing num_samples more samples would complete. */
int micro40_frames_ready(const Micro40Frontend* fe, int num_samples);

/* Pushes num_samples samples (any count, >= 0). Writes each completed frame's
 * MICRO40_NUM_MEL_BINS features to frames (frame after frame) and returns how many.
 * Returns -1 and consumes nothing when more than max_frames frames would complete
 * (see micro40_frames_ready). */
int micro40_push(Micro40Frontend* fe, const int16_t* samples, int num_samples,
                 float* frames, int max_frames);

/* Pushes one hop of MICRO40_FRAME_STEP samples; returns 1 when it completed a frame
 * (written to frame[MICRO40_NUM_MEL_BINS]), else 0. With micro40 every hop after
 * the first completes one frame. */
int micro40_push_hop(Micro40Frontend* fe, const int16_t* hop, float* frame);

/* Features of one frame of MICRO40_FRAME_LENGTH samples (stateless; work must hold
 * MICRO40_FFT_SIZE floats and power MICRO40_NUM_BINS floats). */
void micro40_compute_frame(const int16_t* samples, float* work, float* power,
                           float* out);

/* Power spectrum |X[k]|^2, k = 0 .. FFT_SIZE / 2, of the FFT_SIZE real values in
 * buf (destroyed). */
void micro40_power_spectrum(float* buf, float* power);

#ifdef __cplusplus
}
#endif

#endif /* LMUFORMER_MICRO40_FRONTEND_H_ */
