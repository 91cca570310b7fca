/* micro40 audio frontend: see micro40_frontend.h for the computation. C99. */
#define MICRO40_PARAMS_DEFINE_TABLES
#include "micro40_frontend.h"

#include <math.h>
#include <string.h>

#define MICRO40_HALF (MICRO40_FFT_SIZE / 2)

void micro40_reset(Micro40Frontend* fe) {
  memset(fe->samples, 0, sizeof(fe->samples));
  fe->num_buffered = 0;
}

void micro40_init(Micro40Frontend* fe) { micro40_reset(fe); }

/* In-place radix-2 decimation-in-time FFT of MICRO40_HALF complex values stored
 * interleaved (re, im) in buf; twiddles e^{-2 pi i j / N} from the tables. */
static void complex_fft_half(float* buf) {
  const int m = MICRO40_HALF;
  int i, j, bit, len;
  /* bit-reversal permutation */
  for (i = 1, j = 0; i < m; ++i) {
    for (bit = m >> 1; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      float tr = buf[2 * i], ti = buf[2 * i + 1];
      buf[2 * i] = buf[2 * j];
      buf[2 * i + 1] = buf[2 * j + 1];
      buf[2 * j] = tr;
      buf[2 * j + 1] = ti;
    }
  }
  for (len = 2; len <= m; len <<= 1) {
    const int half = len >> 1;
    const int stride = MICRO40_FFT_SIZE / len; /* W_len^k = W_N^(k * N / len) */
    int start, k;
    for (start = 0; start < m; start += len) {
      for (k = 0; k < half; ++k) {
        const float wr = kMicro40TwiddleCos[k * stride];
        const float wi = -kMicro40TwiddleSin[k * stride];
        float* a = buf + 2 * (start + k);
        float* b = buf + 2 * (start + k + half);
        const float vr = b[0] * wr - b[1] * wi;
        const float vi = b[0] * wi + b[1] * wr;
        b[0] = a[0] - vr;
        b[1] = a[1] - vi;
        a[0] += vr;
        a[1] += vi;
      }
    }
  }
}

void micro40_power_spectrum(float* buf, float* power) {
  const int m = MICRO40_HALF;
  int k;
  complex_fft_half(buf);
  /* k = 0 and k = N/2 from Z[0]: X[0] = Re + Im, X[N/2] = Re - Im */
  {
    const float r = buf[0], i = buf[1];
    power[0] = (r + i) * (r + i);
    power[m] = (r - i) * (r - i);
  }
  for (k = 1; k < m; ++k) {
    const float zr = buf[2 * k], zi = buf[2 * k + 1];
    const float cr = buf[2 * (m - k)], ci = -buf[2 * (m - k) + 1]; /* conj Z[M-k] */
    const float er = 0.5f * (zr + cr), ei = 0.5f * (zi + ci);      /* even part */
    const float or_ = 0.5f * (zi - ci), oi = -0.5f * (zr - cr);    /* odd part */
    const float c = kMicro40TwiddleCos[k], s = kMicro40TwiddleSin[k];
    /* X = E + (c - i s) O */
    const float xr = er + c * or_ + s * oi;
    const float xi = ei + c * oi - s * or_;
    power[k] = xr * xr + xi * xi;
  }
}

void micro40_compute_frame(const int16_t* samples, float* work, float* power,
                           float* out) {
  int n, m;
  for (n = 0; n < MICRO40_FRAME_LENGTH; ++n) {
    work[n] = (float)samples[n] * MICRO40_INPUT_SCALE;
  }
#if MICRO40_REMOVE_DC_OFFSET
  {
    float mean = 0.0f;
    for (n = 0; n < MICRO40_FRAME_LENGTH; ++n) mean += work[n];
    mean /= (float)MICRO40_FRAME_LENGTH;
    for (n = 0; n < MICRO40_FRAME_LENGTH; ++n) work[n] -= mean;
  }
#endif
  if (MICRO40_PREEMPHASIS != 0.0f) {
    for (n = MICRO40_FRAME_LENGTH - 1; n > 0; --n) {
      work[n] -= MICRO40_PREEMPHASIS * work[n - 1];
    }
    work[0] -= MICRO40_PREEMPHASIS * work[0];
  }
  for (n = 0; n < MICRO40_FRAME_LENGTH; ++n) work[n] *= kMicro40Window[n];
  for (n = MICRO40_FRAME_LENGTH; n < MICRO40_FFT_SIZE; ++n) work[n] = 0.0f;
  micro40_power_spectrum(work, power);
  for (m = 0; m < MICRO40_NUM_MEL_BINS; ++m) {
    const float* w = kMicro40MelWeights + kMicro40MelOffset[m];
    const float* p = power + kMicro40MelFirstBin[m];
    const int count = kMicro40MelNumBins[m];
    float energy = 0.0f, log_energy;
    int j;
    for (j = 0; j < count; ++j) energy += w[j] * p[j];
#if MICRO40_LOG_ADD
    log_energy = logf(energy + MICRO40_LOG_EPS);
#else
    log_energy = logf(energy > MICRO40_LOG_EPS ? energy : MICRO40_LOG_EPS);
#endif
    out[m] = (log_energy - MICRO40_NORM_MEAN) / MICRO40_NORM_SCALE;
  }
}

int micro40_frames_ready(const Micro40Frontend* fe, int num_samples) {
  const int total = fe->num_buffered + num_samples;
  if (total < MICRO40_FRAME_LENGTH) return 0;
  return 1 + (total - MICRO40_FRAME_LENGTH) / MICRO40_FRAME_STEP;
}

int micro40_push(Micro40Frontend* fe, const int16_t* samples, int num_samples,
                 float* frames, int max_frames) {
  int produced = 0;
  int i = 0;
  if (num_samples <= 0) return 0;
  if (micro40_frames_ready(fe, num_samples) > max_frames) return -1;
  while (i < num_samples) {
    int take = MICRO40_FRAME_LENGTH - fe->num_buffered;
    if (take > num_samples - i) take = num_samples - i;
    memcpy(fe->samples + fe->num_buffered, samples + i, (size_t)take * sizeof(int16_t));
    fe->num_buffered += take;
    i += take;
    if (fe->num_buffered == MICRO40_FRAME_LENGTH) {
      micro40_compute_frame(fe->samples, fe->work, fe->power,
                            frames + (size_t)produced * MICRO40_NUM_MEL_BINS);
      ++produced;
      /* keep the FRAME_LENGTH - FRAME_STEP samples the next frame shares */
      memmove(fe->samples, fe->samples + MICRO40_FRAME_STEP,
              (size_t)(MICRO40_FRAME_LENGTH - MICRO40_FRAME_STEP) * sizeof(int16_t));
      fe->num_buffered = MICRO40_FRAME_LENGTH - MICRO40_FRAME_STEP;
    }
  }
  return produced;
}

int micro40_push_hop(Micro40Frontend* fe, const int16_t* hop, float* frame) {
  /* one hop completes at most one frame when FRAME_STEP <= FRAME_LENGTH */
  return micro40_push(fe, hop, MICRO40_FRAME_STEP, frame, 1);
}
