package org.lmuformer.kws;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Map;
import org.junit.Test;

/** metadata.json parsing and its own consistency checks. */
public class MetadataTest {
  private static Map<String, Object> raw() throws Exception {
    return Json.parseObject(Golden.read(Golden.dir().resolve("metadata.json")));
  }

  @Test
  public void parsesTheExport() throws Exception {
    ModelMetadata m = Golden.metadata();
    assertEquals(m.labels.size(), m.numClasses);
    assertEquals(40, m.numFeatures);
    assertEquals(20.0, m.frameHopMs, 1e-12);
    assertEquals(1 + m.states.size(), m.inputCount());
    assertTrue(m.frame.quantized());
  }

  private static void expectRefused(Map<String, Object> m, String words) {
    try {
      ModelMetadata.fromMap(m);
      fail("accepted metadata that should fail with: " + words);
    } catch (IllegalArgumentException e) {
      assertTrue(e.getMessage() + " lacks " + words, e.getMessage().contains(words));
    }
  }

  private static Map<String, Object> state(Map<String, Object> m, int k, String tensor) {
    Map<String, Object> s = Golden.map(Json.list(m, "states").get(k));
    return tensor == null ? s : Json.obj(s, tensor);
  }

  @Test
  public void refusesInconsistentMetadata() throws Exception {
    Map<String, Object> m = raw();
    m.put("labels", java.util.Arrays.asList("a", "b"));
    expectRefused(m, "2 labels but the logits have num_classes=4");
    m = raw();
    Json.obj(m, "frame").put("position", 7L);
    expectRefused(m, "frame position=7 is out of range");
    m = raw();
    state(m, 1, "input").put("position", state(m, 0, "input").get("position"));
    expectRefused(m, "already used");
    m = raw();
    state(m, 0, "input").put("dtype", "int4");
    expectRefused(m, "unsupported dtype");
    m = raw();
    state(m, 0, "output").put("zero_point", 99L);
    expectRefused(m, "state 0 ('leaky'): the input");
    m = raw();
    state(m, 0, "input").put("shape", java.util.Arrays.asList(4L));
    expectRefused(m, "shape must be a list starting with the batch axis 1");
    m = raw();
    state(m, 0, null).put("initial_quantized", 300L);
    expectRefused(m, "initial_quantized=300");
    m = raw();
    Json.obj(m, "frontend").put("frame_hop_ms", 10.0);
    expectRefused(m, "frame_hop_ms");
    m = raw();
    m.remove("frontend");
    expectRefused(m, "missing key 'frontend'");
    m = raw();
    m.put("frame_input_index", 0L);
    expectRefused(m, "unknown key 'frame_input_index'");
    m = raw();
    Json.obj(m, "frame").put("scale", "big");
    expectRefused(m, "frame scale must be a number, got big");
  }

  @Test
  public void refusesVersion1WithTheUpgradeCommand() throws Exception {
    Map<String, Object> m = raw();
    m.put("format_version", 1L);
    expectRefused(m, "python -m lmuformer_keras.contract upgrade");
    m.put("format_version", 3L);
    expectRefused(m, "format_version=3 is not supported");
  }

  @Test
  public void smoothingRecordIsTheDefault() throws Exception {
    Map<String, Object> m = raw();
    m.remove("smoothing");
    RecognizeCommands plain = RecognizeCommands.forModel(ModelMetadata.fromMap(m));
    assertEquals(RecognizeCommands.DEFAULT_AVERAGE_WINDOW_MS, plain.averageWindowMs(), 0);
    Map<String, Object> record = new java.util.HashMap<>();
    record.put("average_window_ms", 300L);
    record.put("detection_threshold", 0.7);
    m.put("smoothing", record);
    RecognizeCommands tuned = RecognizeCommands.forModel(ModelMetadata.fromMap(m));
    assertEquals(300.0, tuned.averageWindowMs(), 0);
    assertEquals(0.7, tuned.detectionThreshold(), 0);
    assertEquals(RecognizeCommands.DEFAULT_SUPPRESSION_MS, tuned.suppressionMs(), 0);
    record.put("detection_threshold", "high");
    expectRefused(m, "smoothing detection_threshold must be a number");
    m.put("smoothing", "fast");
    expectRefused(m, "'smoothing' must be an object");
  }
}
