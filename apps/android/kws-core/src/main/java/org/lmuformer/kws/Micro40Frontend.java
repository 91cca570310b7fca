package org.lmuformer.kws;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The micro40 log-mel frontend, rebuilt from the frontend params in metadata.json (the
 * single source of truth written by lmuformer_keras.features; nothing retyped).
 *
 * <p>Per frame of frame_length samples, in double precision like the NumPy reference
 * (lmuformer_keras/features/base.py): x = sample * input_scale; optional per-frame DC
 * removal and pre-emphasis; window (periodic or symmetric Hann); zero-pad to fft_size;
 * power spectrum; triangular mel weights (mel = 1127 ln(1 + f / 700), edges evenly spaced
 * in mel from mel_low_hz to mel_high_hz); log(E + log_eps) or log(max(E, log_eps));
 * (L - norm_mean) / norm_scale. Streaming as the Python FrontendStream: the first frame
 * once frame_length samples are buffered, then one per frame_step samples.
 */
public final class Micro40Frontend {
  private final int sampleRate;
  private final int frameLength;
  private final int frameStep;
  private final int numMel;
  private final double inputScale;
  private final boolean removeDcOffset;
  private final double preemphasis;
  private final boolean logAdd;
  private final double logEps;
  private final double normMean;
  private final double normScale;
  private final double[] window;
  private final double[][] mel; // [bin][mel]
  private final RealFft fft;

  private final short[] buffer;
  private int buffered;
  private final double[] work;
  private final double[] power;

  /** Builds the frontend from a params map (metadata.json "frontend" -> "params"). */
  public static Micro40Frontend fromParams(Map<String, Object> p) {
    return new Micro40Frontend(p);
  }

  private Micro40Frontend(Map<String, Object> p) {
    String name = p.containsKey("name") ? String.valueOf(p.get("name")) : "?";
    if (Json.bool(p, "remove_clip_mean")) {
      throw new IllegalArgumentException(
          "frontend '" + name + "': remove_clip_mean needs the whole clip; cannot stream it");
    }
    sampleRate = Json.integer(p, "sample_rate");
    frameLength = Json.integer(p, "frame_length");
    frameStep = Json.integer(p, "frame_step");
    int fftSize = Json.integer(p, "fft_size");
    numMel = Json.integer(p, "num_mel_bins");
    if (!(0 < frameStep && frameStep <= frameLength && frameLength <= fftSize)) {
      throw new IllegalArgumentException(
          "frontend '" + name + "': need 0 < frame_step <= frame_length <= fft_size");
    }
    inputScale = Json.num(p, "input_scale");
    removeDcOffset = Json.bool(p, "remove_dc_offset");
    preemphasis = Json.num(p, "preemphasis");
    String logMode = Json.str(p, "log_mode");
    if (!logMode.equals("add") && !logMode.equals("max")) {
      throw new IllegalArgumentException("frontend '" + name + "': unknown log_mode " + logMode);
    }
    logAdd = logMode.equals("add");
    logEps = Json.num(p, "log_eps");
    normMean = Json.num(p, "norm_mean");
    normScale = Json.num(p, "norm_scale");
    if (normScale == 0) throw new IllegalArgumentException("frontend: norm_scale must be != 0");
    window = window(Json.str(p, "window"), frameLength);
    mel =
        melFilterbank(
            numMel, fftSize, sampleRate, Json.num(p, "mel_low_hz"), Json.num(p, "mel_high_hz"));
    fft = new RealFft(fftSize);
    buffer = new short[frameLength];
    work = new double[frameLength];
    power = new double[fftSize / 2 + 1];
  }

  /** Analysis window: "hann_periodic" (0.5 - 0.5 cos(2 pi n / L)) or "hann_symmetric". */
  public static double[] window(String kind, int length) {
    double denom;
    if (kind.equals("hann_periodic")) {
      denom = length;
    } else if (kind.equals("hann_symmetric")) {
      denom = length - 1;
    } else {
      throw new IllegalArgumentException("unknown window '" + kind + "'");
    }
    double[] w = new double[length];
    for (int n = 0; n < length; ++n) w[n] = 0.5 - 0.5 * Math.cos(2.0 * Math.PI * n / denom);
    return w;
  }

  /** mel(f) = 1127 ln(1 + f / 700). */
  public static double hzToMel(double hz) {
    return 1127.0 * Math.log1p(hz / 700.0);
  }

  /**
   * Triangular mel weights [fft_size / 2 + 1][numMel]: filter m has edges e[m], e[m+1],
   * e[m+2] evenly spaced in mel; w = max(0, min(up, down)) linear in mel, peak 1.
   */
  public static double[][] melFilterbank(
      int numMel, int fftSize, int sampleRate, double lowHz, double highHz) {
    if (!(0 <= lowHz && lowHz < highHz && highHz <= sampleRate / 2.0)) {
      throw new IllegalArgumentException(
          "mel filterbank: need 0 <= low_hz < high_hz <= sample_rate / 2");
    }
    int count = numMel + 2;
    double start = hzToMel(lowHz);
    double stop = hzToMel(highHz);
    double step = (stop - start) / (count - 1);
    double[] edges = new double[count];
    for (int i = 0; i < count; ++i) edges[i] = i * step + start;
    edges[count - 1] = stop;
    int bins = fftSize / 2 + 1;
    double[][] w = new double[bins][numMel];
    double binHz = (double) sampleRate / fftSize;
    for (int k = 0; k < bins; ++k) {
      double m = hzToMel(k * binHz);
      for (int j = 0; j < numMel; ++j) {
        double up = (m - edges[j]) / (edges[j + 1] - edges[j]);
        double down = (edges[j + 2] - m) / (edges[j + 2] - edges[j + 1]);
        w[k][j] = Math.max(0.0, Math.min(up, down));
      }
    }
    return w;
  }

  public int numFeatures() {
    return numMel;
  }

  public int sampleRate() {
    return sampleRate;
  }

  public int frameLength() {
    return frameLength;
  }

  public int frameStep() {
    return frameStep;
  }

  public double frameHopMs() {
    return 1000.0 * frameStep / sampleRate;
  }

  /** Drops buffered samples. */
  public void reset() {
    buffered = 0;
  }

  /** Features of one frame of frameLength int16 samples (does not touch the stream). */
  public float[] computeFrame(short[] samples, int offset) {
    for (int n = 0; n < frameLength; ++n) work[n] = samples[offset + n] * inputScale;
    if (removeDcOffset) {
      double mean = 0;
      for (int n = 0; n < frameLength; ++n) mean += work[n];
      mean /= frameLength;
      for (int n = 0; n < frameLength; ++n) work[n] -= mean;
    }
    if (preemphasis != 0) {
      for (int n = frameLength - 1; n > 0; --n) work[n] -= preemphasis * work[n - 1];
      work[0] -= preemphasis * work[0];
    }
    for (int n = 0; n < frameLength; ++n) work[n] *= window[n];
    fft.powerSpectrum(work, frameLength, power);
    float[] out = new float[numMel];
    for (int j = 0; j < numMel; ++j) {
      double e = 0;
      for (int k = 0; k < power.length; ++k) e += power[k] * mel[k][j];
      double l = logAdd ? Math.log(e + logEps) : Math.log(Math.max(e, logEps));
      out[j] = (float) ((l - normMean) / normScale);
    }
    return out;
  }

  /** Pushes samples (any count); returns the frames they completed, in order. */
  public List<float[]> push(short[] samples, int offset, int length) {
    List<float[]> frames = new ArrayList<>();
    int i = 0;
    while (i < length) {
      int take = Math.min(frameLength - buffered, length - i);
      System.arraycopy(samples, offset + i, buffer, buffered, take);
      buffered += take;
      i += take;
      if (buffered == frameLength) {
        frames.add(computeFrame(buffer, 0));
        System.arraycopy(buffer, frameStep, buffer, 0, frameLength - frameStep);
        buffered = frameLength - frameStep;
      }
    }
    return frames;
  }
}
