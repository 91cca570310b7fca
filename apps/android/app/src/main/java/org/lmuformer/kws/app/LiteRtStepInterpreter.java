package org.lmuformer.kws.app;

import android.content.Context;
import android.content.res.AssetFileDescriptor;
import java.io.FileInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import org.lmuformer.kws.ModelMetadata;
import org.lmuformer.kws.StepInterpreter;
import org.tensorflow.lite.Interpreter;
import org.tensorflow.lite.Tensor;

/**
 * {@link StepInterpreter} over the LiteRT {@link Interpreter}: copies the state loop's
 * raw tensor bytes into direct buffers, runs, copies the outputs back. On construction
 * the metadata is validated against the loaded model ({@link ModelMetadata#validate});
 * a mismatch throws IllegalArgumentException naming it.
 *
 * <p>The state loop's byte arrays are little-endian, as TFLite stores tensors on every
 * Android ABI (all little-endian).
 */
public final class LiteRtStepInterpreter implements StepInterpreter, ModelMetadata.ModelTensors {
  private final Interpreter interpreter;
  private final ByteBuffer[] in;
  private final ByteBuffer[] out;
  private final Object[] inputs;
  private final Map<Integer, Object> outputs = new HashMap<>();

  /** Memory-maps an (uncompressed) asset, e.g. "model.tflite". */
  public static MappedByteBuffer mapAsset(Context context, String name) throws IOException {
    try (AssetFileDescriptor fd = context.getAssets().openFd(name);
        FileInputStream stream = new FileInputStream(fd.getFileDescriptor())) {
      FileChannel channel = stream.getChannel();
      return channel.map(
          FileChannel.MapMode.READ_ONLY, fd.getStartOffset(), fd.getDeclaredLength());
    }
  }

  public LiteRtStepInterpreter(ByteBuffer model, ModelMetadata meta) {
    interpreter = new Interpreter(model, new Interpreter.Options().setNumThreads(1));
    try {
      meta.validate(this);
    } catch (IllegalArgumentException e) {
      interpreter.close();
      throw e;
    }
    in = new ByteBuffer[interpreter.getInputTensorCount()];
    inputs = new Object[in.length];
    for (int i = 0; i < in.length; ++i) {
      in[i] = direct(interpreter.getInputTensor(i).numBytes());
      inputs[i] = in[i];
    }
    out = new ByteBuffer[interpreter.getOutputTensorCount()];
    for (int j = 0; j < out.length; ++j) {
      out[j] = direct(interpreter.getOutputTensor(j).numBytes());
      outputs.put(j, out[j]);
    }
  }

  private static ByteBuffer direct(int bytes) {
    return ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
  }

  @Override
  public void run(byte[][] inputBytes, byte[][] outputBytes) {
    for (int i = 0; i < in.length; ++i) {
      in[i].clear();
      in[i].put(inputBytes[i]);
      in[i].rewind();
    }
    for (ByteBuffer b : out) b.clear();
    interpreter.runForMultipleInputsOutputs(inputs, outputs);
    for (int j = 0; j < out.length; ++j) {
      out[j].rewind();
      out[j].get(outputBytes[j]);
    }
  }

  private Tensor tensor(boolean input, int position) {
    return input ? interpreter.getInputTensor(position) : interpreter.getOutputTensor(position);
  }

  @Override
  public int inputCount() {
    return interpreter.getInputTensorCount();
  }

  @Override
  public int outputCount() {
    return interpreter.getOutputTensorCount();
  }

  @Override
  public int[] shape(boolean input, int position) {
    return tensor(input, position).shape();
  }

  @Override
  public String dtype(boolean input, int position) {
    return tensor(input, position).dataType().name().toLowerCase(Locale.ROOT);
  }

  @Override
  public double scale(boolean input, int position) {
    return tensor(input, position).quantizationParams().getScale();
  }

  @Override
  public int zeroPoint(boolean input, int position) {
    return tensor(input, position).quantizationParams().getZeroPoint();
  }

  @Override
  public void close() {
    interpreter.close();
  }
}
