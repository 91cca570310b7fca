package org.lmuformer.kws;

/**
 * One invocation of the exported step graph, behind an interface so the state loop runs
 * on any runtime: LiteRT on Android (the app's LiteRtStepInterpreter), a replay stub in
 * the host unit tests.
 *
 * <p>Tensors travel as raw little-endian bytes, exactly as the model stores them
 * (int8, int16 or float32): {@code inputs[i]} is model input i, {@code outputs[j]}
 * receives model output j. The caller sizes every array from the metadata.
 */
public interface StepInterpreter extends AutoCloseable {
  void run(byte[][] inputs, byte[][] outputs);

  @Override
  default void close() {}
}
