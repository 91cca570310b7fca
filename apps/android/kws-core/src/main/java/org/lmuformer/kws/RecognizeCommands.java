package org.lmuformer.kws;

import java.util.ArrayDeque;
import java.util.List;
import java.util.Locale;

/**
 * Posterior smoothing and detection: the Java port of apps/kws_stream/smoothing.py
 * (RecognizeCommands), step for step:
 *
 * <ol>
 *   <li>keep the results whose time lies in (now - averageWindowMs, now];
 *   <li>fewer than minimumCount of them: no decision;
 *   <li>average their log-posteriors per label (posteriors clipped below at {@link
 *       #POSTERIOR_FLOOR}) and take the softmax of the mean: the scores, i.e. the softmax
 *       of the mean logits (the model's clip decision rule); the top label is the argmax
 *       of the scores (the first on ties);
 *   <li>report it when it is not ignored (silence / unknown), its score is &gt;=
 *       detectionThreshold, and it was not reported during the last suppressionMs.
 * </ol>
 *
 * <p>The defaults and the ignored-label rule equal the Python module's (the golden test
 * checks it): see smoothing.py for their justification at a 20 ms hop.
 */
public final class RecognizeCommands {
  public static final double DEFAULT_AVERAGE_WINDOW_MS = 700.0;
  public static final double DEFAULT_DETECTION_THRESHOLD = 0.95;
  public static final double DEFAULT_SUPPRESSION_MS = 1000.0;
  public static final int DEFAULT_MINIMUM_COUNT = 10;
  /** Posteriors are clipped below at this value before their log is averaged. */
  public static final double POSTERIOR_FLOOR = 1e-30;

  private final List<String> labels;
  private final boolean[] ignored;
  private final double averageWindowMs;
  private final double detectionThreshold;
  private final double suppressionMs;
  private final int minimumCount;

  private final ArrayDeque<double[]> values = new ArrayDeque<>();
  private final ArrayDeque<Double> times = new ArrayDeque<>();
  private final double[] lastDetectionMs;
  private final boolean[] hasDetection;
  private double lastTime;
  private boolean hasLastTime;
  private double[] scores; // null before minimumCount results

  /** Silence / unknown style labels: "_x_", or silence, unknown, background(_noise). */
  public static boolean isIgnoredLabel(String label) {
    if (label.length() > 1 && label.startsWith("_") && label.endsWith("_")) return true;
    int a = 0;
    int b = label.length();
    while (a < b && label.charAt(a) == '_') ++a;
    while (b > a && label.charAt(b - 1) == '_') --b;
    String core = label.substring(a, b).toLowerCase(Locale.ROOT);
    return core.equals("silence")
        || core.equals("unknown")
        || core.equals("background")
        || core.equals("background_noise");
  }

  /**
   * The smoother a model asks for: its metadata's "smoothing" record, the defaults for
   * what the record lacks (as the Python and C apps).
   */
  public static RecognizeCommands forModel(ModelMetadata meta) {
    java.util.Map<String, Double> s = meta.smoothing;
    return new RecognizeCommands(
        meta.labels,
        s.getOrDefault("average_window_ms", DEFAULT_AVERAGE_WINDOW_MS),
        s.getOrDefault("detection_threshold", DEFAULT_DETECTION_THRESHOLD),
        s.getOrDefault("suppression_ms", DEFAULT_SUPPRESSION_MS),
        (int) Math.round(s.getOrDefault("minimum_count", (double) DEFAULT_MINIMUM_COUNT)));
  }

  public RecognizeCommands(List<String> labels) {
    this(
        labels,
        DEFAULT_AVERAGE_WINDOW_MS,
        DEFAULT_DETECTION_THRESHOLD,
        DEFAULT_SUPPRESSION_MS,
        DEFAULT_MINIMUM_COUNT);
  }

  public RecognizeCommands(
      List<String> labels,
      double averageWindowMs,
      double detectionThreshold,
      double suppressionMs,
      int minimumCount) {
    if (labels.isEmpty()) throw new IllegalArgumentException("labels must not be empty");
    if (!(averageWindowMs > 0)) {
      throw new IllegalArgumentException("averageWindowMs must be > 0, got " + averageWindowMs);
    }
    if (!(detectionThreshold > 0 && detectionThreshold <= 1)) {
      throw new IllegalArgumentException(
          "detectionThreshold must be in (0, 1], got " + detectionThreshold);
    }
    if (!(suppressionMs >= 0)) {
      throw new IllegalArgumentException("suppressionMs must be >= 0, got " + suppressionMs);
    }
    if (minimumCount < 1) {
      throw new IllegalArgumentException("minimumCount must be >= 1, got " + minimumCount);
    }
    this.labels = labels;
    this.averageWindowMs = averageWindowMs;
    this.detectionThreshold = detectionThreshold;
    this.suppressionMs = suppressionMs;
    this.minimumCount = minimumCount;
    ignored = new boolean[labels.size()];
    for (int i = 0; i < ignored.length; ++i) ignored[i] = isIgnoredLabel(labels.get(i));
    lastDetectionMs = new double[labels.size()];
    hasDetection = new boolean[labels.size()];
  }

  public void reset() {
    values.clear();
    times.clear();
    java.util.Arrays.fill(hasDetection, false);
    hasLastTime = false;
    scores = null;
  }

  public double averageWindowMs() {
    return averageWindowMs;
  }

  public double detectionThreshold() {
    return detectionThreshold;
  }

  public double suppressionMs() {
    return suppressionMs;
  }

  public int minimumCount() {
    return minimumCount;
  }

  /** The scores (summing to 1) of the last call (null before minimumCount results). */
  public double[] scores() {
    return scores == null ? null : scores.clone();
  }

  /** Adds the posteriors of the frame at timeMs; returns a new detection or null. */
  public Detection process(double[] posteriors, double timeMs) {
    if (posteriors.length != labels.size()) {
      throw new IllegalArgumentException(
          "expected " + labels.size() + " posteriors, got " + posteriors.length);
    }
    if (hasLastTime && timeMs < lastTime) {
      throw new IllegalArgumentException(
          "timeMs=" + timeMs + " is before the previous result's time " + lastTime);
    }
    lastTime = timeMs;
    hasLastTime = true;
    double[] logs = new double[posteriors.length];
    for (int c = 0; c < logs.length; ++c) {
      double p = posteriors[c];
      logs[c] = Math.log(p >= POSTERIOR_FLOOR ? p : POSTERIOR_FLOOR); // NaN: the floor
    }
    values.addLast(logs);
    times.addLast(timeMs);
    while (timeMs - times.peekFirst() >= averageWindowMs) {
      times.pollFirst();
      values.pollFirst();
    }
    if (values.size() < minimumCount) {
      scores = null;
      return null;
    }
    double[] acc = new double[labels.size()];
    for (double[] v : values) {
      for (int c = 0; c < acc.length; ++c) acc[c] += v[c];
    }
    double max = Double.NEGATIVE_INFINITY;
    for (int c = 0; c < acc.length; ++c) {
      acc[c] /= values.size();
      max = Math.max(max, acc[c]);
    }
    double sum = 0;
    for (int c = 0; c < acc.length; ++c) {
      acc[c] = Math.exp(acc[c] - max);
      sum += acc[c];
    }
    int top = 0;
    for (int c = 0; c < acc.length; ++c) {
      acc[c] /= sum;
      if (acc[c] > acc[top]) top = c;
    }
    scores = acc;
    double score = acc[top];
    if (ignored[top] || score < detectionThreshold) return null;
    if (hasDetection[top] && timeMs - lastDetectionMs[top] < suppressionMs) return null;
    hasDetection[top] = true;
    lastDetectionMs[top] = timeMs;
    return new Detection(labels.get(top), top, timeMs, score);
  }
}
