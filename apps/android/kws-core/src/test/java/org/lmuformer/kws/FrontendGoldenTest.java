package org.lmuformer.kws;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/** The Java micro40 frontend against the NumPy reference on real WAVs. */
public class FrontendGoldenTest {
  @Test
  public void featuresMatchPython() throws Exception {
    Map<String, Object> golden = Golden.data();
    double tolerance = Json.num(golden, "feature_tolerance");
    ModelMetadata meta = Golden.metadata();
    double worst = 0;
    int clips = 0;
    for (Object item : Json.list(golden, "features")) {
      Map<String, Object> clip = Golden.map(item);
      int[] rate = new int[1];
      short[] x = WavReader.read(Golden.dir().resolve(Json.str(clip, "wav")), rate);
      assertEquals(16000, rate[0]);
      List<Object> expected = Json.list(clip, "frames");
      // whole clip, and the same clip in uneven chunks: identical frames
      Micro40Frontend fe = Micro40Frontend.fromParams(meta.frontendParams);
      List<float[]> whole = fe.push(x, 0, x.length);
      Micro40Frontend fe2 = Micro40Frontend.fromParams(meta.frontendParams);
      List<float[]> chunked = new ArrayList<>();
      int pos = 0;
      int step = 1;
      while (pos < x.length) {
        int n = Math.min(step, x.length - pos);
        chunked.addAll(fe2.push(x, pos, n));
        pos += n;
        step = step * 3 % 1031 + 1;
      }
      assertEquals(Json.str(clip, "wav"), expected.size(), whole.size());
      assertEquals(whole.size(), chunked.size());
      for (int t = 0; t < whole.size(); ++t) {
        double[] ref = Json.doubles(expected.get(t));
        for (int m = 0; m < ref.length; ++m) {
          worst = Math.max(worst, Math.abs(whole.get(t)[m] - ref[m]));
          assertEquals(whole.get(t)[m], chunked.get(t)[m], 0.0);
        }
      }
      ++clips;
    }
    System.out.println("Java vs NumPy features: max abs diff " + worst + " over " + clips + " WAVs");
    assertTrue(clips >= 3);
    assertTrue("max abs diff " + worst + " > " + tolerance, worst <= tolerance);
  }

  @Test
  public void melFilterbankShape() {
    double[][] w = Micro40Frontend.melFilterbank(40, 512, 16000, 20.0, 7600.0);
    assertEquals(257, w.length);
    assertEquals(40, w[0].length);
    double peak = 0;
    for (double[] row : w) for (double v : row) peak = Math.max(peak, v);
    assertTrue(peak <= 1.0 && peak > 0.9);
  }

  @Test(expected = IllegalArgumentException.class)
  public void refusesClipMeanRemoval() throws Exception {
    Map<String, Object> params = new java.util.LinkedHashMap<>(Golden.metadata().frontendParams);
    params.put("remove_clip_mean", Boolean.TRUE);
    Micro40Frontend.fromParams(params);
  }
}
