package org.lmuformer.kws;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.List;
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

  @Test
  @SuppressWarnings("unchecked")
  public void refusesInconsistentMetadata() throws Exception {
    Map<String, Object> m = raw();
    m.put("num_classes", 99L);
    expectRefused(m, "num_classes=99");
    m = raw();
    m.put("frame_input_index", 7L);
    expectRefused(m, "frame_input_index=7");
    m = raw();
    List<Object> states = Json.list(m, "states");
    Map<String, Object> s1 = (Map<String, Object>) states.get(1);
    s1.put("input_index", ((Map<String, Object>) states.get(0)).get("input_index"));
    expectRefused(m, "already used");
    m = raw();
    Map<String, Object> st = (Map<String, Object>) Json.list(m, "states").get(0);
    st.put("dtype", "int4");
    expectRefused(m, "unsupported dtype");
    m = raw();
    m.put("frame_hop_ms", 10.0);
    expectRefused(m, "frame_hop_ms");
    m = raw();
    m.remove("frontend");
    expectRefused(m, "frontend");
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
