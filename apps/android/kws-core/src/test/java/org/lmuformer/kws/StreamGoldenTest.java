package org.lmuformer.kws;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * The state loop and smoothing on a recorded stream: a stub interpreter replays the
 * Python StreamingInterpreter's per-step outputs and checks the inputs Java gives it
 * (state inputs byte-exact; the frame within 1 LSB, as Java computes its own features).
 */
public class StreamGoldenTest {

  /** Replays recorded outputs; records how the inputs compare with Python's. */
  static final class ReplayInterpreter implements StepInterpreter {
    final List<Object> steps;
    final ModelMetadata meta;
    int t;
    int stateMismatches;
    int frameLsbDiffs;
    int frameBigDiffs;

    ReplayInterpreter(ModelMetadata meta, List<Object> steps) {
      this.meta = meta;
      this.steps = steps;
    }

    private static ModelMetadata.DType dtypeAt(ModelMetadata m, boolean input, int pos) {
      if (input && pos == m.frame.position) return m.frame.dtype;
      if (!input && pos == m.logits.position) return m.logits.dtype;
      for (ModelMetadata.State s : m.states) {
        if ((input ? s.input.position : s.outputPosition) == pos) return s.input.dtype;
      }
      throw new IllegalStateException("no tensor at " + pos);
    }

    static double get(ByteBuffer b, ModelMetadata.DType d, int i) {
      return d == ModelMetadata.DType.INT8
          ? b.get(i)
          : d == ModelMetadata.DType.INT16 ? b.getShort(2 * i) : b.getFloat(4 * i);
    }

    @Override
    public void run(byte[][] inputs, byte[][] outputs) {
      if (t >= steps.size()) fail("more steps than recorded: " + t);
      Map<String, Object> step = Golden.map(steps.get(t));
      List<Object> ins = Json.list(step, "inputs");
      for (int pos = 0; pos < inputs.length; ++pos) {
        double[] want = Json.doubles(ins.get(pos));
        ModelMetadata.DType d = dtypeAt(meta, true, pos);
        ByteBuffer b = ByteBuffer.wrap(inputs[pos]).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < want.length; ++i) {
          double diff = Math.abs(get(b, d, i) - want[i]);
          if (pos == meta.frame.position) {
            if (diff > 0) ++frameLsbDiffs;
            if (diff > 1) ++frameBigDiffs;
          } else if (diff != 0) {
            ++stateMismatches;
          }
        }
        java.util.Arrays.fill(inputs[pos], (byte) 0x55); // the runtime may reuse inputs
      }
      List<Object> outs = Json.list(step, "outputs");
      for (int pos = 0; pos < outputs.length; ++pos) {
        double[] v = Json.doubles(outs.get(pos));
        ModelMetadata.DType d = dtypeAt(meta, false, pos);
        ByteBuffer b = ByteBuffer.wrap(outputs[pos]).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < v.length; ++i) {
          if (d == ModelMetadata.DType.INT8) {
            b.put(i, (byte) v[i]);
          } else if (d == ModelMetadata.DType.INT16) {
            b.putShort(2 * i, (short) v[i]);
          } else {
            b.putFloat(4 * i, (float) v[i]);
          }
        }
      }
      ++t;
    }
  }

  @Test
  public void replayedStreamGivesPythonDetections() throws Exception {
    Map<String, Object> golden = Golden.data();
    Map<String, Object> stream = Json.obj(golden, "stream");
    ModelMetadata meta = Golden.metadata();
    List<Object> steps = Json.list(stream, "steps");
    ReplayInterpreter replay = new ReplayInterpreter(meta, steps);
    KwsPipeline pipeline = new KwsPipeline(meta, replay);
    final double[] worstPosterior = {0};
    final int[] smoothedMismatch = {0};
    pipeline.setFrameListener(
        (t, time, posteriors, smoothed) -> {
          Map<String, Object> step = Golden.map(steps.get((int) t));
          double[] p = Json.doubles(step.get("posteriors"));
          for (int c = 0; c < p.length; ++c) {
            worstPosterior[0] = Math.max(worstPosterior[0], Math.abs(p[c] - posteriors[c]));
          }
          Object s = step.get("smoothed");
          if ((s == null) != (smoothed == null)) ++smoothedMismatch[0];
        });
    short[] x = WavReader.read(Golden.dir().resolve(Json.str(stream, "wav")), null);
    List<Detection> found = new ArrayList<>();
    for (int pos = 0; pos < x.length; pos += 333) {
      found.addAll(pipeline.push(x, pos, Math.min(333, x.length - pos)));
    }
    assertEquals(steps.size(), replay.t);
    assertEquals("state inputs differ from Python's", 0, replay.stateMismatches);
    assertEquals("frame input off by more than 1 LSB", 0, replay.frameBigDiffs);
    assertTrue("frame LSB diffs " + replay.frameLsbDiffs, replay.frameLsbDiffs <= steps.size());
    assertTrue("posteriors differ by " + worstPosterior[0], worstPosterior[0] < 1e-6);
    assertEquals(0, smoothedMismatch[0]);
    List<Object> expected = Json.list(stream, "detections");
    assertEquals(expected.size(), found.size());
    assertTrue("the stand-in stream has detections", found.size() > 0);
    for (int i = 0; i < found.size(); ++i) {
      Map<String, Object> e = Golden.map(expected.get(i));
      assertEquals(Json.str(e, "label"), found.get(i).label);
      assertEquals(Json.num(e, "time_ms"), found.get(i).timeMs, 0.0);
      assertEquals(Json.num(e, "score"), found.get(i).score, 1e-6);
    }
    System.out.println(
        "replayed " + replay.t + " steps, " + found.size() + " detections, frame LSB diffs "
            + replay.frameLsbDiffs);
  }

  @Test
  public void statesStartAtInitialValueAndResetRestores() throws Exception {
    ModelMetadata meta = Golden.metadata();
    List<Object> steps = Json.list(Json.obj(Golden.data(), "stream"), "steps");
    StreamingRunner runner = new StreamingRunner(meta, new ReplayInterpreter(meta, steps));
    for (int s = 0; s < meta.states.size(); ++s) {
      for (byte b : runner.stateBytes(s)) {
        assertEquals(meta.states.get(s).initialQuantized, b);
      }
    }
    runner.step(new float[meta.numFeatures]);
    assertEquals(1, runner.framesProcessed());
    runner.reset();
    assertEquals(0, runner.framesProcessed());
    assertEquals(meta.states.get(0).initialQuantized, runner.stateBytes(0)[0]);
  }

  @Test
  public void quantizationRoundsHalfAwayAndSaturates() throws Exception {
    ModelMetadata meta = Golden.metadata();
    ModelMetadata.Tensor t = meta.frame;
    assertEquals(t.zeroPoint, StreamingRunner.quantize(0.0, t), 0.0);
    assertEquals(t.zeroPoint, StreamingRunner.quantize(Double.NaN, t), 0.0);
    assertEquals(127, StreamingRunner.quantize(1e9, t), 0.0);
    assertEquals(-128, StreamingRunner.quantize(-1e9, t), 0.0);
    assertEquals(t.zeroPoint + 1, StreamingRunner.quantize(0.5 * t.scale, t), 0.0);
    assertEquals(t.zeroPoint - 1, StreamingRunner.quantize(-0.5 * t.scale, t), 0.0);
  }

  @Test
  public void metadataMatchesTheModelTensors() throws Exception {
    ModelMetadata meta = Golden.metadata();
    meta.validate(tensors(Json.obj(Golden.data(), "model_tensors"), 1.0, 0));
    try {
      meta.validate(tensors(Json.obj(Golden.data(), "model_tensors"), 1.5, 0));
      fail("a scale mismatch must be refused");
    } catch (IllegalArgumentException e) {
      assertTrue(e.getMessage(), e.getMessage().contains("scale"));
    }
    try {
      meta.validate(tensors(Json.obj(Golden.data(), "model_tensors"), 1.0, 3));
      fail("a zero point mismatch must be refused");
    } catch (IllegalArgumentException e) {
      assertTrue(e.getMessage(), e.getMessage().contains("zero_point"));
    }
    assertNotNull(meta.frontendParams);
  }

  /** Model tensors from golden, with every scale times scaleFactor, zero points + shift. */
  static ModelMetadata.ModelTensors tensors(
      Map<String, Object> golden, double scaleFactor, int zpShift) {
    final List<Object> ins = Json.list(golden, "inputs");
    final List<Object> outs = Json.list(golden, "outputs");
    return new ModelMetadata.ModelTensors() {
      Map<String, Object> at(boolean input, int pos) {
        return Golden.map((input ? ins : outs).get(pos));
      }

      @Override
      public int inputCount() {
        return ins.size();
      }

      @Override
      public int outputCount() {
        return outs.size();
      }

      @Override
      public int[] shape(boolean input, int pos) {
        return Json.ints(at(input, pos).get("shape"));
      }

      @Override
      public String dtype(boolean input, int pos) {
        return Json.str(at(input, pos), "dtype");
      }

      @Override
      public double scale(boolean input, int pos) {
        return Json.num(at(input, pos), "scale") * scaleFactor;
      }

      @Override
      public int zeroPoint(boolean input, int pos) {
        return Json.integer(at(input, pos), "zero_point") + zpShift;
      }
    };
  }
}
