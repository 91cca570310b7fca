package org.lmuformer.kws;

import java.util.ArrayList;
import java.util.List;

/**
 * Audio in, detections out: micro40 frontend (from the metadata's params) -> state loop
 * ({@link StreamingRunner} over a {@link StepInterpreter}) -> softmax ->
 * {@link RecognizeCommands}. Accepts audio chunks of any length (16 kHz mono int16).
 *
 * <p>Frame t is stamped (t * frame_step + frame_length) / sample_rate seconds: the time its
 * last sample arrived (as the Python and C apps).
 */
public final class KwsPipeline {
  /** Called once per frame (e.g. to draw posteriors); may be null. */
  public interface FrameListener {
    void onFrame(long frameIndex, double timeMs, double[] posteriors, double[] smoothed);
  }

  private final ModelMetadata meta;
  private final Micro40Frontend frontend;
  private final StreamingRunner runner;
  private final RecognizeCommands smoother;
  private FrameListener listener;
  private long frames;

  public KwsPipeline(ModelMetadata meta, StepInterpreter interpreter) {
    this(meta, interpreter, RecognizeCommands.forModel(meta));
  }

  public KwsPipeline(ModelMetadata meta, StepInterpreter interpreter, RecognizeCommands rc) {
    this.meta = meta;
    this.frontend = Micro40Frontend.fromParams(meta.frontendParams);
    this.runner = new StreamingRunner(meta, interpreter);
    this.smoother = rc;
  }

  public void setFrameListener(FrameListener listener) {
    this.listener = listener;
  }

  public ModelMetadata metadata() {
    return meta;
  }

  public Micro40Frontend frontend() {
    return frontend;
  }

  public StreamingRunner runner() {
    return runner;
  }

  public long frames() {
    return frames;
  }

  public double frameTimeMs(long t) {
    return 1000.0 * ((double) t * frontend.frameStep() + frontend.frameLength())
        / frontend.sampleRate();
  }

  /** Restarts the stream: frontend buffer, states, smoothing. */
  public void reset() {
    frontend.reset();
    runner.reset();
    smoother.reset();
    frames = 0;
  }

  /** Feeds samples; returns the detections of the frames they completed. */
  public List<Detection> push(short[] samples, int offset, int length) {
    List<Detection> found = new ArrayList<>();
    for (float[] frame : frontend.push(samples, offset, length)) {
      Detection d = pushFrame(frame);
      if (d != null) found.add(d);
    }
    return found;
  }

  /** Feeds one frontend frame; returns its detection or null. */
  public Detection pushFrame(float[] frame) {
    double time = frameTimeMs(frames);
    double[] posteriors = StreamingRunner.softmax(runner.step(frame));
    Detection d = smoother.process(posteriors, time);
    if (listener != null) listener.onFrame(frames, time, posteriors, smoother.scores());
    ++frames;
    return d;
  }
}
