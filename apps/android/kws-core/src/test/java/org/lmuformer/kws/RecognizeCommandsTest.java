package org.lmuformer.kws;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/** The Java smoothing against the Python one (defaults, label rule, random streams). */
public class RecognizeCommandsTest {
  @Test
  public void defaultsAndIgnoredLabelsEqualPython() throws Exception {
    Map<String, Object> s = Json.obj(Golden.data(), "smoothing");
    Map<String, Object> d = Json.obj(s, "defaults");
    assertEquals(Json.num(d, "average_window_ms"), RecognizeCommands.DEFAULT_AVERAGE_WINDOW_MS, 0);
    assertEquals(
        Json.num(d, "detection_threshold"), RecognizeCommands.DEFAULT_DETECTION_THRESHOLD, 0);
    assertEquals(Json.num(d, "suppression_ms"), RecognizeCommands.DEFAULT_SUPPRESSION_MS, 0);
    assertEquals(Json.integer(d, "minimum_count"), RecognizeCommands.DEFAULT_MINIMUM_COUNT);
    for (Map.Entry<String, Object> e : Json.obj(s, "ignored").entrySet()) {
      assertEquals(e.getKey(), e.getValue(), RecognizeCommands.isIgnoredLabel(e.getKey()));
    }
  }

  @Test
  public void randomStreamsGivePythonDetections() throws Exception {
    Map<String, Object> s = Json.obj(Golden.data(), "smoothing");
    for (Object item : Json.list(s, "streams")) {
      Map<String, Object> stream = Golden.map(item);
      List<String> labels = new ArrayList<>();
      for (Object o : Json.list(stream, "labels")) labels.add((String) o);
      Map<String, Object> cfg = Json.obj(stream, "settings");
      RecognizeCommands rc =
          new RecognizeCommands(
              labels,
              Json.num(cfg, "average_window_ms"),
              Json.num(cfg, "detection_threshold"),
              Json.num(cfg, "suppression_ms"),
              Json.integer(cfg, "minimum_count"));
      double[] times = Json.doubles(Json.list(stream, "times_ms"));
      List<Object> posteriors = Json.list(stream, "posteriors");
      List<Detection> found = new ArrayList<>();
      for (int t = 0; t < times.length; ++t) {
        Detection det = rc.process(Json.doubles(posteriors.get(t)), times[t]);
        if (det != null) found.add(det);
      }
      List<Object> expected = Json.list(stream, "detections");
      assertEquals(expected.size(), found.size());
      for (int i = 0; i < found.size(); ++i) {
        Map<String, Object> e = Golden.map(expected.get(i));
        assertEquals(Json.str(e, "label"), found.get(i).label);
        assertEquals(Json.num(e, "time_ms"), found.get(i).timeMs, 0.0);
        assertEquals(Json.num(e, "score"), found.get(i).score, 1e-9);
      }
    }
  }

  @Test
  public void silenceNeverDetectedAndTimeMustNotGoBack() {
    RecognizeCommands rc = new RecognizeCommands(Arrays.asList("_silence_", "_unknown_", "yes"));
    for (int t = 0; t < 100; ++t) {
      assertNull(rc.process(new double[] {0.98, 0.01, 0.01}, 20.0 * t));
    }
    try {
      rc.process(new double[] {1, 0, 0}, 0.0);
      org.junit.Assert.fail("time going back must throw");
    } catch (IllegalArgumentException expected) {
      // ok
    }
  }

  @Test(expected = IllegalArgumentException.class)
  public void badThreshold() {
    new RecognizeCommands(Arrays.asList("a", "b"), 500, 1.5, 1000, 10);
  }
}
