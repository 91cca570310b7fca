package org.lmuformer.kws;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The state loop of an exported step graph, one frame per {@link #step}: quantize the
 * frame into the frame input, copy each saved state into its state input, invoke, save
 * each state output, dequantize the logits. States start from their initial quantized
 * value (initial_quantized, else the zero point: the quantized 0.0).
 *
 * <p>States are saved in buffers owned here, so an interpreter may reuse its input
 * buffers freely. Quantization: q = clamp(round_half_away(x / scale) + zero_point), as
 * the Python and C apps.
 */
public final class StreamingRunner {
  private final ModelMetadata meta;
  private final StepInterpreter interpreter;
  private final byte[][] inputs;
  private final byte[][] outputs;
  private final byte[][] states;
  private long frames;

  public StreamingRunner(ModelMetadata meta, StepInterpreter interpreter) {
    this.meta = meta;
    this.interpreter = interpreter;
    int n = meta.inputCount();
    inputs = new byte[n][];
    outputs = new byte[n][];
    inputs[meta.frame.position] = new byte[meta.frame.bytes()];
    outputs[meta.logits.position] = new byte[meta.logits.bytes()];
    states = new byte[meta.states.size()][];
    for (int s = 0; s < states.length; ++s) {
      ModelMetadata.State st = meta.states.get(s);
      inputs[st.input.position] = new byte[st.input.bytes()];
      outputs[st.outputPosition] = new byte[st.input.bytes()];
      states[s] = new byte[st.input.bytes()];
    }
    reset();
  }

  public ModelMetadata metadata() {
    return meta;
  }

  /** Back to the initial states. */
  public void reset() {
    List<ModelMetadata.State> list = meta.states;
    for (int s = 0; s < states.length; ++s) {
      ModelMetadata.State st = list.get(s);
      ByteBuffer b = ByteBuffer.wrap(states[s]).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < st.input.elements; ++i) put(b, st.input.dtype, i, st.initialQuantized);
    }
    frames = 0;
  }

  public long framesProcessed() {
    return frames;
  }

  /** A copy of the saved (quantized) bytes of state s. */
  public byte[] stateBytes(int s) {
    return states[s].clone();
  }

  /** Round half away from zero, saturating to the dtype. */
  public static double quantize(double x, ModelMetadata.Tensor t) {
    if (Double.isNaN(x)) x = 0.0;
    if (!t.quantized()) return x;
    double v = x / t.scale;
    double q = Math.signum(v) * Math.floor(Math.abs(v) + 0.5) + t.zeroPoint;
    double lo = t.dtype == ModelMetadata.DType.INT8 ? -128 : -32768;
    double hi = t.dtype == ModelMetadata.DType.INT8 ? 127 : 32767;
    return Math.max(lo, Math.min(hi, q));
  }

  private static void put(ByteBuffer b, ModelMetadata.DType dtype, int i, double value) {
    switch (dtype) {
      case INT8:
        b.put(i, (byte) value);
        break;
      case INT16:
        b.putShort(2 * i, (short) value);
        break;
      default:
        b.putFloat(4 * i, (float) value);
    }
  }

  private static double get(ByteBuffer b, ModelMetadata.DType dtype, int i) {
    switch (dtype) {
      case INT8:
        return b.get(i);
      case INT16:
        return b.getShort(2 * i);
      default:
        return b.getFloat(4 * i);
    }
  }

  /** Quantized frame bytes, as written to the frame input. */
  public byte[] quantizeFrame(float[] frame) {
    if (frame.length != meta.numFeatures) {
      throw new IllegalArgumentException(
          "frame has " + frame.length + " features, the model needs " + meta.numFeatures);
    }
    byte[] out = new byte[meta.frame.bytes()];
    ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < frame.length; ++i) {
      put(b, meta.frame.dtype, i, quantize(frame[i], meta.frame));
    }
    return out;
  }

  /** One frame: returns the dequantized logits. */
  public float[] step(float[] frame) {
    byte[] q = quantizeFrame(frame);
    System.arraycopy(q, 0, inputs[meta.frame.position], 0, q.length);
    for (int s = 0; s < states.length; ++s) {
      byte[] dst = inputs[meta.states.get(s).input.position];
      System.arraycopy(states[s], 0, dst, 0, dst.length);
    }
    interpreter.run(inputs, outputs);
    for (int s = 0; s < states.length; ++s) {
      byte[] src = outputs[meta.states.get(s).outputPosition];
      System.arraycopy(src, 0, states[s], 0, states[s].length);
    }
    ++frames;
    ModelMetadata.Tensor t = meta.logits;
    ByteBuffer b = ByteBuffer.wrap(outputs[t.position]).order(ByteOrder.LITTLE_ENDIAN);
    float[] logits = new float[meta.numClasses];
    for (int c = 0; c < logits.length; ++c) {
      double v = get(b, t.dtype, c);
      logits[c] = t.quantized() ? (float) ((v - t.zeroPoint) * t.scale) : (float) v;
    }
    return logits;
  }

  /** Numerically stable softmax in double precision. */
  public static double[] softmax(float[] logits) {
    double max = Double.NEGATIVE_INFINITY;
    for (float v : logits) max = Math.max(max, v);
    double[] out = new double[logits.length];
    double sum = 0;
    for (int i = 0; i < out.length; ++i) {
      out[i] = Math.exp(logits[i] - max);
      sum += out[i];
    }
    for (int i = 0; i < out.length; ++i) out[i] /= sum;
    return out;
  }
}
