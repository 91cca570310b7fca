package org.lmuformer.kws;

import java.util.Locale;

/** One detected keyword: label, class index, time of the triggering frame, score. */
public final class Detection {
  public final String label;
  public final int index;
  public final double timeMs;
  public final double score;

  public Detection(String label, int index, double timeMs, double score) {
    this.label = label;
    this.index = index;
    this.timeMs = timeMs;
    this.score = score;
  }

  @Override
  public String toString() {
    return String.format(Locale.ROOT, "%9.3f s  %s  (score %.3f)", timeMs / 1000.0, label, score);
  }
}
