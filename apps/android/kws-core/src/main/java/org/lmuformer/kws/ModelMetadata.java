package org.lmuformer.kws;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The export's metadata.json (docs/ARCHITECTURE.md, "Export metadata contract"): labels,
 * frontend params, the frame / logits / state tensors with positions, shapes, dtypes,
 * scales and zero points.
 *
 * <p>{@link #parse} checks the file on its own (counts, positions, labels, frontend);
 * {@link #validate} checks it against the model the interpreter loaded. Both throw
 * {@link IllegalArgumentException} naming the mismatch.
 */
public final class ModelMetadata {

  /** Element type of a tensor. */
  public enum DType {
    INT8(1),
    INT16(2),
    FLOAT32(4);

    public final int bytes;

    DType(int bytes) {
      this.bytes = bytes;
    }

    public static DType of(String name) {
      switch (name) {
        case "int8":
          return INT8;
        case "int16":
          return INT16;
        case "float32":
          return FLOAT32;
        default:
          throw new IllegalArgumentException("unsupported dtype '" + name + "'");
      }
    }

    public String jsonName() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }
  }

  /** One tensor: position in the model's inputs or outputs, shape, dtype, quantization. */
  public static final class Tensor {
    public final String what;
    public final int position;
    public final int[] shape; // with the batch axis, as the model has it
    final int[] altShape; // also accepted (a state "shape" that may hold the batch axis)
    public final DType dtype;
    public final double scale; // 0: not quantized
    public final int zeroPoint;
    public final int elements;

    Tensor(String what, int position, int[] shape, DType dtype, double scale, int zp, int n) {
      this(what, position, shape, null, dtype, scale, zp, n);
    }

    Tensor(
        String what,
        int position,
        int[] shape,
        int[] altShape,
        DType dtype,
        double scale,
        int zp,
        int n) {
      this.what = what;
      this.position = position;
      this.shape = shape;
      this.altShape = altShape;
      this.dtype = dtype;
      this.scale = scale;
      this.zeroPoint = zp;
      this.elements = n;
    }

    public int bytes() {
      return elements * dtype.bytes;
    }

    public boolean quantized() {
      return scale != 0 && dtype != DType.FLOAT32;
    }
  }

  /** A state: its input and output tensors share shape, dtype, scale and zero point. */
  public static final class State {
    public final String name;
    public final Tensor input;
    public final int outputPosition;
    public final int initialQuantized;

    State(String name, Tensor input, int outputPosition, int initialQuantized) {
      this.name = name;
      this.input = input;
      this.outputPosition = outputPosition;
      this.initialQuantized = initialQuantized;
    }
  }

  /** What an interpreter reports about its tensors (for {@link #validate}). */
  public interface ModelTensors {
    int inputCount();

    int outputCount();

    int[] shape(boolean input, int position);

    /** "int8", "int16", "float32", ... */
    String dtype(boolean input, int position);

    /** 0 when not quantized. */
    double scale(boolean input, int position);

    int zeroPoint(boolean input, int position);
  }

  public final List<String> labels;
  public final int numFeatures;
  public final int numClasses;
  public final Tensor frame;
  public final Tensor logits;
  public final List<State> states;
  public final Map<String, Object> frontendParams;
  public final double frameHopMs;
  public final int arenaBytes;
  /** The model's detection smoothing (tune_smoothing --write), or empty: the defaults. */
  public final Map<String, Double> smoothing;

  private ModelMetadata(
      List<String> labels,
      int numFeatures,
      int numClasses,
      Tensor frame,
      Tensor logits,
      List<State> states,
      Map<String, Object> frontendParams,
      double frameHopMs,
      int arenaBytes,
      Map<String, Double> smoothing) {
    this.labels = labels;
    this.numFeatures = numFeatures;
    this.numClasses = numClasses;
    this.frame = frame;
    this.logits = logits;
    this.states = states;
    this.frontendParams = frontendParams;
    this.frameHopMs = frameHopMs;
    this.arenaBytes = arenaBytes;
    this.smoothing = smoothing;
  }

  public static ModelMetadata parse(String json) {
    return fromMap(Json.parseObject(json));
  }

  private static int product(int[] shape) {
    int n = 1;
    for (int d : shape) n *= d;
    return n;
  }

  private static Tensor tensor(String what, Map<String, Object> m, int position, int[] shape) {
    return tensor(what, m, position, shape, null);
  }

  private static Tensor tensor(
      String what, Map<String, Object> m, int position, int[] shape, int[] altShape) {
    DType dtype = DType.of(Json.str(m, "dtype"));
    Object scale = m.get("scale");
    Object zp = m.get("zero_point");
    double s = scale == null ? 0.0 : ((Number) scale).doubleValue();
    int z = zp == null ? 0 : ((Number) zp).intValue();
    return new Tensor(what, position, shape, altShape, dtype, s, z, product(shape));
  }

  public static ModelMetadata fromMap(Map<String, Object> m) {
    int numFeatures = Json.integer(m, "num_features");
    int numClasses = Json.integer(m, "num_classes");
    List<String> labels = new ArrayList<>();
    Object rawLabels = m.get("labels");
    if (rawLabels == null) {
      for (int i = 0; i < numClasses; ++i) labels.add("class_" + i);
    } else {
      for (Object o : (List<?>) rawLabels) labels.add(String.valueOf(o));
    }
    if (labels.size() != numClasses) {
      throw new IllegalArgumentException(
          "metadata: " + labels.size() + " labels but num_classes=" + numClasses);
    }
    List<Object> rawStates = Json.list(m, "states");
    int count = 1 + rawStates.size();
    int frameIndex = Json.integer(m, "frame_input_index");
    int logitsIndex = Json.integer(m, "logits_output_index");
    checkRange("frame_input_index", frameIndex, count);
    checkRange("logits_output_index", logitsIndex, count);
    Tensor frame =
        tensor("frame input", Json.obj(m, "input"), frameIndex, new int[] {1, numFeatures});
    Tensor logits =
        tensor("logits output", Json.obj(m, "output"), logitsIndex, new int[] {1, numClasses});
    Set<Integer> usedIn = new HashSet<>(Collections.singleton(frameIndex));
    Set<Integer> usedOut = new HashSet<>(Collections.singleton(logitsIndex));
    List<State> states = new ArrayList<>();
    for (int k = 0; k < rawStates.size(); ++k) {
      @SuppressWarnings("unchecked")
      Map<String, Object> s = (Map<String, Object>) rawStates.get(k);
      String name = s.containsKey("name") ? String.valueOf(s.get("name")) : "state_" + k;
      String where = "state " + k + " ('" + name + "')";
      int in = Json.integer(s, "input_index");
      int out = Json.integer(s, "output_index");
      checkRange(where + " input_index", in, count);
      checkRange(where + " output_index", out, count);
      if (!usedIn.add(in)) {
        throw new IllegalArgumentException(where + ": input_index=" + in + " is already used");
      }
      if (!usedOut.add(out)) {
        throw new IllegalArgumentException(where + ": output_index=" + out + " is already used");
      }
      int[] shape;
      int[] alt = null;
      if (s.containsKey("tensor_shape")) {
        shape = Json.ints(s.get("tensor_shape"));
      } else {
        // the exporter's "shape" has no batch axis, the design doc's example has one
        alt = Json.ints(Json.list(s, "shape"));
        shape = new int[alt.length + 1];
        shape[0] = 1;
        System.arraycopy(alt, 0, shape, 1, alt.length);
      }
      Tensor input = tensor(where, s, in, shape, alt);
      Object init = s.get("initial_quantized");
      int initial = init != null ? ((Number) init).intValue() : input.zeroPoint;
      if (s.containsKey("bytes") && Json.integer(s, "bytes") != input.bytes()) {
        throw new IllegalArgumentException(
            where + ": bytes=" + Json.integer(s, "bytes") + " but shape "
                + Arrays.toString(shape) + " of " + input.dtype.jsonName() + " has "
                + input.bytes());
      }
      states.add(new State(name, input, out, initial));
    }
    Map<String, Object> frontend = null;
    Object fe = m.get("frontend");
    if (fe instanceof Map) {
      @SuppressWarnings("unchecked")
      Map<String, Object> feMap = (Map<String, Object>) fe;
      Object params = feMap.get("params");
      if (params instanceof Map) {
        @SuppressWarnings("unchecked")
        Map<String, Object> pm = (Map<String, Object>) params;
        frontend = pm;
      }
    }
    if (frontend == null) {
      throw new IllegalArgumentException("metadata: no frontend params (frontend.params)");
    }
    if (Json.integer(frontend, "num_mel_bins") != numFeatures) {
      throw new IllegalArgumentException(
          "metadata: frontend gives " + Json.integer(frontend, "num_mel_bins")
              + " features but num_features=" + numFeatures);
    }
    double hop = 1000.0 * Json.num(frontend, "frame_step") / Json.num(frontend, "sample_rate");
    if (m.get("frame_hop_ms") instanceof Number) {
      double metaHop = ((Number) m.get("frame_hop_ms")).doubleValue();
      if (Math.abs(metaHop - hop) > 1e-9) {
        throw new IllegalArgumentException(
            "metadata: frame_hop_ms=" + metaHop + " but the frontend hops " + hop + " ms");
      }
    }
    int arena = m.get("arena_bytes") instanceof Number ? Json.integer(m, "arena_bytes") : 0;
    return new ModelMetadata(
        Collections.unmodifiableList(labels),
        numFeatures,
        numClasses,
        frame,
        logits,
        Collections.unmodifiableList(states),
        frontend,
        hop,
        arena,
        smoothing(m));
  }

  /** The numbers of the optional "smoothing" record (checked by RecognizeCommands). */
  private static Map<String, Double> smoothing(Map<String, Object> m) {
    Map<String, Double> out = new java.util.LinkedHashMap<>();
    Object raw = m.get("smoothing");
    if (raw == null) return Collections.unmodifiableMap(out);
    if (!(raw instanceof Map)) {
      throw new IllegalArgumentException("metadata: 'smoothing' must be an object");
    }
    Map<?, ?> record = (Map<?, ?>) raw;
    for (String key :
        new String[] {
          "average_window_ms", "detection_threshold", "suppression_ms", "minimum_count"
        }) {
      Object v = record.get(key);
      if (v == null) continue;
      if (!(v instanceof Number)) {
        throw new IllegalArgumentException(
            "metadata: smoothing " + key + " must be a number, got " + v);
      }
      out.put(key, ((Number) v).doubleValue());
    }
    return Collections.unmodifiableMap(out);
  }

  private static void checkRange(String what, int value, int count) {
    if (value < 0 || value >= count) {
      throw new IllegalArgumentException(
          "metadata " + what + "=" + value + " is out of range [0, " + count + ")");
    }
  }

  public int inputCount() {
    return 1 + states.size();
  }

  private static void check(ModelTensors model, boolean input, int position, Tensor t) {
    String where = t.what + " (model " + (input ? "input " : "output ") + position + ")";
    int[] shape = model.shape(input, position);
    if (!Arrays.equals(shape, t.shape) && !Arrays.equals(shape, t.altShape)) {
      throw new IllegalArgumentException(
          where + ": the model's tensor has shape " + Arrays.toString(shape)
              + ", metadata implies " + Arrays.toString(t.shape));
    }
    String dtype = model.dtype(input, position);
    if (!dtype.equals(t.dtype.jsonName())) {
      throw new IllegalArgumentException(
          where + ": metadata dtype '" + t.dtype.jsonName() + "' but the model's tensor is '"
              + dtype + "'");
    }
    double scale = model.scale(input, position);
    boolean same =
        (scale == 0 && t.scale == 0) || Math.abs(scale - t.scale) <= 1e-6 * Math.abs(scale);
    if (!same) {
      throw new IllegalArgumentException(
          where + ": metadata scale " + t.scale + " but the model's tensor has scale " + scale);
    }
    if (scale != 0 && model.zeroPoint(input, position) != t.zeroPoint) {
      throw new IllegalArgumentException(
          where + ": metadata zero_point " + t.zeroPoint + " but the model's tensor has "
              + "zero_point " + model.zeroPoint(input, position));
    }
  }

  /** Checks this metadata against the loaded model; throws naming the first mismatch. */
  public void validate(ModelTensors model) {
    int n = inputCount();
    if (model.inputCount() != n || model.outputCount() != n) {
      throw new IllegalArgumentException(
          "metadata describes 1 frame + " + states.size() + " state(s), i.e. " + n
              + " inputs and outputs, but the model has " + model.inputCount() + " inputs and "
              + model.outputCount() + " outputs");
    }
    check(model, true, frame.position, frame);
    check(model, false, logits.position, logits);
    for (State s : states) {
      check(model, true, s.input.position, s.input);
      check(model, false, s.outputPosition, s.input);
    }
  }
}
