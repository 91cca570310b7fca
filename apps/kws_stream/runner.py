"""Exported step graph, frame by frame: ``StreamingInterpreter`` and ``KWSStream``.

The loop every consumer runs (``docs/ARCHITECTURE.md``, "Export metadata contract")::

    audio -> frontend -> quantize frame -> set states -> invoke -> copy state outputs
          -> dequantize logits -> softmax -> smoothing -> detections

:class:`StreamingInterpreter` reads ``metadata.json`` and ``model.tflite`` from an
export folder, checks that the metadata describes the model (tensor counts, positions,
shapes, dtypes, scales and zero points; a mismatch raises :class:`MetadataError`
naming it), and keeps the states between frames: the bytes of each state output are
copied to its state input (the exporter ties their scale and zero point), starting
from the quantized initial value (``initial_quantized`` when the metadata has it, else
the quantized 0.0, i.e. the zero point).

:class:`KWSStream` glues the frontend named in the metadata (its params, the single
source of truth), the interpreter and :class:`~.smoothing.RecognizeCommands`, and
accepts audio chunks of any length.

Quantization is ``q = clip(round_half_away(x / scale) + zero_point)``; the C and Java
ports round the same way (C ``roundf``).
"""

from __future__ import annotations

import json
import math
import os
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmuformer_keras.contract import dequantize, quantize

from .smoothing import (
    Detection,
    RecognizeCommands,
    smoothing_from_metadata,
    softmax,
)

METADATA_FILE = "metadata.json"
DEFAULT_MODEL_FILE = "model.tflite"

_DTYPES = {"int8": np.int8, "int16": np.int16, "uint8": np.uint8, "float32": np.float32}


class MetadataError(ValueError):
    """``metadata.json`` is malformed or does not describe the model (names why)."""


def load_interpreter_class():
    """``Interpreter`` from ai-edge-litert, else from tflite-runtime.

    Raises:
        ImportError: when neither package is installed.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as error:
            raise ImportError(
                "lmuformer_apps.kws_stream needs a TFLite runtime: pip install "
                "ai-edge-litert (or tflite-runtime)"
            ) from error
    return Interpreter


def load_metadata(model_dir: str | os.PathLike) -> dict[str, Any]:
    """Reads ``model_dir/metadata.json``; ``MetadataError`` naming the file if bad."""
    folder = os.fspath(model_dir)
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise MetadataError(
            f"model folder {folder!r} is a file, not a folder: expected an "
            "lmuformer-export output folder"
        )
    path = os.path.join(folder, METADATA_FILE)
    if os.path.isdir(path):
        raise MetadataError(f"{path!r} is a directory, not a {METADATA_FILE} file")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No {METADATA_FILE} in {os.fspath(model_dir)!r}: expected an "
            "lmuformer-export output folder"
        )
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as error:
        raise MetadataError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise MetadataError(f"{path}: expected a JSON object at top level")
    return data


# ----------------------------------------------------------------------- quantization
def _dtype(name: str, where: str) -> np.dtype:
    if name not in _DTYPES:
        raise MetadataError(
            f"{where}: dtype {name!r} is not supported (one of {sorted(_DTYPES)})"
        )
    return np.dtype(_DTYPES[name])


def _dtype_name(dtype) -> str:
    return np.dtype(dtype).name


# ------------------------------------------------------------------- validation
@dataclass(frozen=True)
class TensorInfo:
    """What the metadata says about one tensor, after validation."""

    position: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float | None
    zero_point: int


@dataclass(frozen=True)
class StateInfo(TensorInfo):
    name: str = ""
    output_position: int = 0
    initial_quantized: int | None = None


def _require(meta: dict, key: str, where: str = "metadata"):
    if key not in meta:
        raise MetadataError(f"{where}: missing key '{key}'")
    return meta[key]


def _int(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MetadataError(f"{where} must be an integer, got {value!r}")
    if int(value) != value:
        raise MetadataError(f"{where} must be an integer, got {value!r}")
    return int(value)


def _dict(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise MetadataError(
            f"{where} must be a JSON object, got {type(value).__name__} {value!r:.80}"
        )
    return value


def _shape(value, where: str) -> tuple[int, ...]:
    if not isinstance(value, list | tuple):
        raise MetadataError(f"{where} must be a list of integers, got {value!r:.80}")
    return tuple(_int(d, f"{where} entry") for d in value)


def _number(value, where: str) -> float | None:
    """A finite number or ``None`` (an unquantized tensor's scale)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MetadataError(f"{where} must be a number, got {value!r:.80}")
    if not math.isfinite(value):
        raise MetadataError(f"{where} must be finite, got {value!r}")
    return float(value)


def _check_entry_types(entry: dict, where: str) -> None:
    """Types of the optional keys of a tensor entry (``MetadataError`` naming one)."""
    if "dtype" in entry and not isinstance(entry["dtype"], str):
        raise MetadataError(f"{where} dtype must be a string, got {entry['dtype']!r}")
    _number(entry.get("scale"), f"{where} scale")
    if entry.get("zero_point") is not None:
        _int(entry["zero_point"], f"{where} zero_point")
    for key in ("shape", "tensor_shape"):
        if key in entry:
            _shape(entry[key], f"{where} {key}")


def model_file_path(model_dir: str | os.PathLike, metadata: dict) -> str:
    """``model_dir/<metadata model_file>``, refusing a path outside ``model_dir``.

    Raises:
        MetadataError: ``model_file`` is not a string, is absolute, or leaves the
            folder (e.g. ``../../x``); it is checked on the path as written, so a
            symlink placed inside the folder is still followed.
    """
    value = metadata.get("model_file")
    if value is None or value == "":
        value = DEFAULT_MODEL_FILE
    if not isinstance(value, str):
        raise MetadataError(
            f"metadata model_file must be a file name inside the model folder, got "
            f"{type(value).__name__} {value!r:.80}"
        )
    folder = os.path.abspath(os.fspath(model_dir))
    path = os.path.normpath(os.path.join(folder, value))
    if (
        os.path.isabs(value)
        or os.path.commonpath([folder, path]) != folder
        or (path == folder)
    ):
        raise MetadataError(
            f"metadata model_file={value!r} is outside the model folder {folder!r}: "
            "refused (it must name a file inside the folder, e.g. 'model.tflite')"
        )
    return path


def _same_scale(a: float | None, b: float | None) -> bool:
    if not a and not b:
        return True
    if not a or not b:
        return False
    return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=0.0)


def _detail_quant(detail: dict) -> tuple[float | None, int]:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return (float(scale) if scale else None), int(zero_point)


def _check_tensor(
    what: str, meta_entry: dict, detail: dict, expected_shape: tuple[int, ...] | None
) -> None:
    """Compare one metadata tensor entry with an interpreter tensor detail."""
    shape = tuple(int(d) for d in detail["shape"])
    if expected_shape is not None and shape != expected_shape:
        raise MetadataError(
            f"{what}: the model's tensor has shape {list(shape)}, metadata implies "
            f"{list(expected_shape)}"
        )
    dtype = _dtype_name(detail["dtype"])
    if "dtype" in meta_entry and meta_entry["dtype"] != dtype:
        raise MetadataError(
            f"{what}: metadata dtype {meta_entry['dtype']!r} but the model's tensor "
            f"is {dtype!r}"
        )
    scale, zero_point = _detail_quant(detail)
    meta_scale = meta_entry.get("scale")
    meta_zp = meta_entry.get("zero_point")
    if not _same_scale(meta_scale, scale):
        raise MetadataError(
            f"{what}: metadata scale {meta_scale} but the model's tensor has scale "
            f"{scale}"
        )
    if scale and meta_zp is not None and int(meta_zp) != zero_point:
        raise MetadataError(
            f"{what}: metadata zero_point {meta_zp} but the model's tensor has "
            f"zero_point {zero_point}"
        )


def _position(value, count: int, where: str) -> int:
    pos = _int(value, where)
    if not 0 <= pos < count:
        raise MetadataError(f"{where}={pos} is out of range: the model has {count}")
    return pos


def metadata_smoothing(metadata: dict) -> dict[str, float | int]:
    """The model's own detection smoothing (``metadata["smoothing"]``), if any.

    Raises:
        MetadataError: a record :func:`.smoothing.smoothing_from_metadata` refuses.
    """
    try:
        return smoothing_from_metadata(metadata)
    except ValueError as error:
        raise MetadataError(f"metadata: {error}") from error


def validate_metadata(
    metadata: dict, input_details: list[dict], output_details: list[dict]
) -> tuple[TensorInfo, TensorInfo, list[StateInfo]]:
    """Checks ``metadata`` against the interpreter's tensor details (in position order).

    Returns:
        ``(frame, logits, states)`` as validated :class:`TensorInfo` records.

    Raises:
        MetadataError: naming the first mismatch (counts, positions, shapes, dtypes,
            scales, zero points, labels).
    """
    num_features = _int(_require(metadata, "num_features"), "metadata num_features")
    num_classes = _int(_require(metadata, "num_classes"), "metadata num_classes")
    labels = metadata.get("labels")
    if labels is not None and not isinstance(labels, list):
        raise MetadataError(f"metadata labels must be a list, got {labels!r:.80}")
    if labels is not None and len(labels) != num_classes:
        raise MetadataError(
            f"metadata: {len(labels)} labels but num_classes={num_classes}"
        )
    states = _require(metadata, "states")
    if not isinstance(states, list):
        raise MetadataError(
            f"metadata: 'states' must be a list, got {type(states).__name__} "
            f"{states!r:.80}"
        )
    for k, entry in enumerate(states):
        _dict(entry, f"metadata states[{k}]")
    n_in, n_out = len(input_details), len(output_details)
    if n_in != 1 + len(states) or n_out != 1 + len(states):
        raise MetadataError(
            f"metadata describes 1 frame + {len(states)} state(s), i.e. "
            f"{1 + len(states)} inputs and outputs, but the model has {n_in} inputs "
            f"and {n_out} outputs"
        )
    frame_pos = _position(
        _require(metadata, "frame_input_index"), n_in, "metadata frame_input_index"
    )
    logits_pos = _position(
        _require(metadata, "logits_output_index"), n_out, "metadata logits_output_index"
    )
    frame_meta = _dict(_require(metadata, "input"), "metadata input")
    logits_meta = _dict(_require(metadata, "output"), "metadata output")
    _check_entry_types(frame_meta, "metadata input")
    _check_entry_types(logits_meta, "metadata output")
    for what, entry, pos in (
        ("metadata input", frame_meta, frame_pos),
        ("metadata output", logits_meta, logits_pos),
    ):
        if "position" in entry and _int(entry["position"], what) != pos:
            raise MetadataError(
                f"{what}: position {entry['position']} differs from the top-level "
                f"index {pos}"
            )
    _check_tensor(
        f"frame input (model input {frame_pos})",
        frame_meta,
        input_details[frame_pos],
        (1, num_features),
    )
    _check_tensor(
        f"logits output (model output {logits_pos})",
        logits_meta,
        output_details[logits_pos],
        (1, num_classes),
    )
    for what, entry, detail in (
        ("metadata input", frame_meta, input_details[frame_pos]),
        ("metadata output", logits_meta, output_details[logits_pos]),
    ):
        if "shape" in entry and tuple(entry["shape"]) != tuple(detail["shape"]):
            raise MetadataError(
                f"{what}: shape {list(entry['shape'])} but the model's tensor has "
                f"shape {list(detail['shape'])}"
            )

    used_in, used_out = {frame_pos}, {logits_pos}
    infos: list[StateInfo] = []
    for k, entry in enumerate(states):
        name = str(entry.get("name", f"state_{k}"))
        where = f"state {k} ('{name}')"
        _check_entry_types(entry, where)
        pos_in = _position(
            _require(entry, "input_index", where), n_in, f"{where} input_index"
        )
        pos_out = _position(
            _require(entry, "output_index", where), n_out, f"{where} output_index"
        )
        if pos_in in used_in:
            raise MetadataError(
                f"{where}: input_index={pos_in} is already used by the frame or "
                "another state"
            )
        if pos_out in used_out:
            raise MetadataError(
                f"{where}: output_index={pos_out} is already used by the logits or "
                "another state"
            )
        used_in.add(pos_in)
        used_out.add(pos_out)
        d_in, d_out = input_details[pos_in], output_details[pos_out]
        model_shape = tuple(int(d) for d in d_in["shape"])
        if "tensor_shape" in entry:
            expected = _shape(entry["tensor_shape"], f"{where} tensor_shape")
        else:
            meta_shape = _shape(_require(entry, "shape", where), f"{where} shape")
            # "shape" is given without (exporter) or with (design doc) the batch axis.
            expected = (
                meta_shape
                if meta_shape == model_shape or len(meta_shape) == len(model_shape)
                else (1, *meta_shape)
            )
        _check_tensor(f"{where} input (model input {pos_in})", entry, d_in, expected)
        _check_tensor(
            f"{where} output (model output {pos_out})", entry, d_out, expected
        )
        scale, zero_point = _detail_quant(d_in)
        dtype = _dtype(_dtype_name(d_in["dtype"]), where)
        initial = entry.get("initial_quantized")
        if initial is not None:
            initial = _int(initial, f"{where} initial_quantized")
            if dtype.kind in "iu" and not (
                np.iinfo(dtype).min <= initial <= np.iinfo(dtype).max
            ):
                raise MetadataError(
                    f"{where} initial_quantized={initial} is out of the {dtype.name} "
                    f"range [{np.iinfo(dtype).min}, {np.iinfo(dtype).max}]"
                )
        infos.append(
            StateInfo(
                position=pos_in,
                shape=model_shape,
                dtype=dtype,
                scale=scale,
                zero_point=zero_point,
                name=name,
                output_position=pos_out,
                initial_quantized=initial,
            )
        )

    def info(detail, pos, what):
        scale, zero_point = _detail_quant(detail)
        return TensorInfo(
            position=pos,
            shape=tuple(int(d) for d in detail["shape"]),
            dtype=_dtype(_dtype_name(detail["dtype"]), what),
            scale=scale,
            zero_point=zero_point,
        )

    quantization = metadata.get("quantization")
    frame_info = info(input_details[frame_pos], frame_pos, "frame input")
    if quantization in ("int8", "int16x8"):
        want = "int8" if quantization == "int8" else "int16"
        if frame_info.dtype.name != want or frame_info.scale is None:
            raise MetadataError(
                f"metadata quantization={quantization!r} but the model's frame input "
                f"is {frame_info.dtype.name} with scale {frame_info.scale}"
            )
    return (
        frame_info,
        info(output_details[logits_pos], logits_pos, "logits output"),
        infos,
    )


# ------------------------------------------------------------------ interpreter
class StreamingInterpreter:
    """An exported step graph with its states, one frame per :meth:`step`.

    Args:
        model_dir: an ``lmuformer-export`` output folder (``metadata.json`` and the
            model file it names, default ``model.tflite``).
        metadata: use this dict instead of ``model_dir/metadata.json``.
        model_path: use this model file instead of the one in ``model_dir``.
        num_threads: interpreter threads.

    Raises:
        MetadataError: the metadata does not describe the model (names the mismatch).
        FileNotFoundError: missing metadata or model file.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        *,
        metadata: dict | None = None,
        model_path: str | os.PathLike | None = None,
        num_threads: int = 1,
    ):
        if metadata is None:
            if model_dir is None:
                raise ValueError("StreamingInterpreter: give model_dir or metadata")
            metadata = load_metadata(model_dir)
        if model_path is None:
            if model_dir is None:
                raise ValueError("StreamingInterpreter: give model_dir or model_path")
            model_path = model_file_path(model_dir, metadata)
        model_path = os.fspath(model_path)
        if os.path.isdir(model_path):
            raise MetadataError(f"model file {model_path!r} is a directory")
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"No model file {model_path!r}")
        interpreter_class = load_interpreter_class()
        try:
            self._interpreter = interpreter_class(
                model_path=model_path, num_threads=num_threads
            )
        except (ValueError, RuntimeError) as error:
            raise MetadataError(
                f"{model_path}: not a loadable TFLite model ({error})"
            ) from error
        self._interpreter.allocate_tensors()
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        try:
            self.frame_info, self.logits_info, self.state_infos = validate_metadata(
                metadata, inputs, outputs
            )
        except MetadataError:
            raise
        except (TypeError, KeyError, AttributeError, ValueError) as error:
            raise MetadataError(
                f"metadata for {model_path!r} is malformed ({type(error).__name__}: "
                f"{error})"
            ) from error
        self.metadata = metadata
        self.model_path = model_path
        self._in_index = [d["index"] for d in inputs]
        self._out_index = [d["index"] for d in outputs]
        labels = metadata.get("labels")
        self.labels: list[str] = (
            [str(x) for x in labels]
            if labels is not None
            else [f"class_{i}" for i in range(int(metadata["num_classes"]))]
        )
        self.num_features = int(metadata["num_features"])
        self.num_classes = int(metadata["num_classes"])
        self.reset()

    def initial_states(self) -> list[np.ndarray]:
        """Quantized initial states (``initial_quantized`` or the quantized 0.0)."""
        out = []
        for s in self.state_infos:
            if s.initial_quantized is not None:
                value = np.array(s.initial_quantized, dtype=s.dtype)
            else:
                value = quantize(0.0, s.scale, s.zero_point, s.dtype)
            out.append(np.full(s.shape, value, dtype=s.dtype))
        return out

    def reset(self) -> None:
        """Back to the initial states."""
        self._states = self.initial_states()
        self.frames_processed = 0

    @property
    def states(self) -> list[np.ndarray]:
        """Copies of the current (quantized) states, in metadata order."""
        return [s.copy() for s in self._states]

    def dequantized_states(self) -> list[np.ndarray]:
        """The current states as float32."""
        return [
            dequantize(q, s.scale, s.zero_point)
            for q, s in zip(self._states, self.state_infos, strict=True)
        ]

    def quantize_frame(self, frame: np.ndarray) -> np.ndarray:
        """Float frame ``(F,)`` or ``(1, F)`` -> the model's input ``(1, F)``."""
        f = np.asarray(frame, dtype=np.float32).reshape(-1)
        if f.shape[0] != self.num_features:
            raise ValueError(
                f"StreamingInterpreter: frame has {f.shape[0]} features, the model "
                f"needs {self.num_features}"
            )
        fi = self.frame_info
        return quantize(f, fi.scale, fi.zero_point, fi.dtype).reshape(fi.shape)

    def step_quantized(self, q_frame: np.ndarray) -> np.ndarray:
        """One step on an already quantized frame; returns the raw logits ``(C,)``."""
        it = self._interpreter
        it.set_tensor(self._in_index[self.frame_info.position], q_frame)
        for q, s in zip(self._states, self.state_infos, strict=True):
            it.set_tensor(self._in_index[s.position], q)
        it.invoke()
        self._states = [
            it.get_tensor(self._out_index[s.output_position]).copy()
            for s in self.state_infos
        ]
        self.frames_processed += 1
        return it.get_tensor(self._out_index[self.logits_info.position]).reshape(-1)

    def step(self, frame: np.ndarray) -> np.ndarray:
        """One frame: quantize, invoke, copy states; dequantized logits ``(C,)``."""
        raw = self.step_quantized(self.quantize_frame(frame))
        li = self.logits_info
        return dequantize(raw, li.scale, li.zero_point)

    def run(self, frames: np.ndarray) -> np.ndarray:
        """Steps over ``(T, F)`` frames (continuing the states); logits ``(T, C)``."""
        frames = np.asarray(frames, dtype=np.float32)
        out = np.zeros((frames.shape[0], self.num_classes), dtype=np.float32)
        for t in range(frames.shape[0]):
            out[t] = self.step(frames[t])
        return out

    def posteriors(self, frames: np.ndarray) -> np.ndarray:
        """``softmax(run(frames))``, ``(T, C)`` float64."""
        return softmax(self.run(frames))


# ------------------------------------------------------------------ KWS stream
def frontend_from_metadata(metadata: dict):
    """The frontend of ``metadata["frontend"]`` (its params, else its name).

    Raises:
        MetadataError: no frontend, or one that does not fit ``num_features`` /
            ``frame_hop_ms``.
    """
    from lmuformer_keras.features import get_frontend

    entry = metadata.get("frontend")
    if not entry:
        raise MetadataError(
            "metadata has no 'frontend': pass frontend= explicitly (e.g. 'micro40')"
        )
    if not isinstance(entry, dict):
        raise MetadataError(
            "metadata frontend must be a JSON object with 'name' and 'params', got "
            f"{type(entry).__name__} {entry!r:.80}"
        )
    spec = entry.get("params") or entry.get("name")
    if not isinstance(spec, dict | str):
        raise MetadataError(
            "metadata frontend: 'params' must be a JSON object (or 'name' a string), "
            f"got {spec!r:.80}"
        )
    try:
        frontend = get_frontend(spec)
    except (ValueError, KeyError, TypeError) as error:
        raise MetadataError(
            f"metadata frontend {entry.get('name')!r} is not usable: {error}"
        ) from error
    return frontend


def check_frontend(frontend, metadata: dict) -> None:
    """``MetadataError`` unless ``frontend`` gives the model's features and hop."""
    if frontend.num_features != int(metadata["num_features"]):
        raise MetadataError(
            f"frontend {frontend.name!r} gives {frontend.num_features} features, the "
            f"model needs num_features={metadata['num_features']}"
        )
    hop = _number(metadata.get("frame_hop_ms"), "metadata frame_hop_ms")
    if hop is not None and not math.isclose(float(hop), frontend.frame_hop_ms):
        raise MetadataError(
            f"metadata frame_hop_ms={hop} but frontend {frontend.name!r} hops "
            f"{frontend.frame_hop_ms:g} ms"
        )


class KWSStream:
    """Audio chunks in, detections out: frontend -> interpreter -> smoothing.

    Args:
        interpreter: a :class:`StreamingInterpreter`.
        frontend: a frontend name, params dict or object; default: the metadata's.
        smoother: a :class:`RecognizeCommands`; default: one built from
            ``smoothing`` keyword arguments over the model's labels.
        history_frames: keep the last this many frames' posteriors and smoothed scores
            (for plots); ``None`` keeps all, 0 none.
        **smoothing: ``average_window_ms``, ``detection_threshold``,
            ``suppression_ms``, ``minimum_count``, ``ignored_labels``.

    Frame ``t`` is stamped ``(t * frame_step + frame_length) / sample_rate`` seconds:
    the time its last sample arrived.
    """

    def __init__(
        self,
        interpreter: StreamingInterpreter,
        frontend=None,
        smoother: RecognizeCommands | None = None,
        history_frames: int | None = None,
        **smoothing,
    ):
        from lmuformer_keras.features import get_frontend

        self.interpreter = interpreter
        self.frontend = (
            frontend_from_metadata(interpreter.metadata)
            if frontend is None
            else get_frontend(frontend)
        )
        check_frontend(self.frontend, interpreter.metadata)
        if smoother is not None and smoothing:
            raise ValueError("KWSStream: give smoother or smoothing options, not both")
        if smoother is None:
            smoothing = {**metadata_smoothing(interpreter.metadata), **smoothing}
        self.smoother = smoother or RecognizeCommands(interpreter.labels, **smoothing)
        if list(self.smoother.labels) != list(interpreter.labels):
            raise ValueError(
                f"KWSStream: smoother labels {self.smoother.labels} differ from the "
                f"model's {interpreter.labels}"
            )
        p = self.frontend.params
        self._step_ms = 1000.0 * p["frame_step"] / p["sample_rate"]
        self._first_ms = 1000.0 * p["frame_length"] / p["sample_rate"]
        self.history_frames = history_frames
        self.reset()

    @classmethod
    def from_dir(
        cls, model_dir: str | os.PathLike, num_threads: int = 1, **kwargs
    ) -> KWSStream:
        """A stream over the export folder ``model_dir``."""
        return cls(StreamingInterpreter(model_dir, num_threads=num_threads), **kwargs)

    @property
    def labels(self) -> list[str]:
        return self.interpreter.labels

    @property
    def sample_rate(self) -> int:
        return self.frontend.sample_rate

    def reset(self) -> None:
        """Restarts the stream: frontend buffer, model states, smoothing, history."""
        self._streamer = self.frontend.streamer()
        self.interpreter.reset()
        self.smoother.reset()
        self.frames = 0
        self.samples = 0
        self.detections: list[Detection] = []
        maxlen = self.history_frames
        self._times: deque[float] = deque(maxlen=maxlen)
        self._posteriors: deque[np.ndarray] = deque(maxlen=maxlen)
        self._scores: deque[np.ndarray] = deque(maxlen=maxlen)

    def frame_time_ms(self, t: int) -> float:
        """Time of frame ``t`` in ms (when its last sample arrived)."""
        return t * self._step_ms + self._first_ms

    def push(self, samples: np.ndarray) -> list[Detection]:
        """Feeds mono audio at the frontend's rate (int16, or float in [-1, 1]).

        Any length works, including 0; float NaN becomes 0 and values are clipped to
        [-1, 1]. Returns the detections of the frames this chunk completed.
        """
        x = np.asarray(samples)
        if x.ndim != 1:
            raise ValueError(
                f"KWSStream.push: expected mono 1-D audio, got shape {x.shape}"
            )
        if x.size == 0:
            return []
        if x.dtype != np.int16:
            if not np.issubdtype(x.dtype, np.floating):
                raise ValueError(
                    f"KWSStream.push: audio dtype must be int16 or float, got {x.dtype}"
                )
            x = np.clip(np.nan_to_num(x.astype(np.float64), nan=0.0), -1.0, 1.0)
        self.samples += x.shape[0]
        found = []
        for frame in self._streamer.push(x):
            found.extend(self.push_frame(frame))
        return found

    def push_frame(self, frame: np.ndarray) -> list[Detection]:
        """Feeds one frontend frame (features); returns its detection, if any."""
        time_ms = self.frame_time_ms(self.frames)
        self.frames += 1
        posteriors = softmax(self.interpreter.step(frame))
        detection = self.smoother.process(posteriors, time_ms)
        if self.history_frames != 0:
            self._times.append(time_ms)
            self._posteriors.append(posteriors.astype(np.float32))
            scores = self.smoother.scores
            self._scores.append(
                np.full(len(self.labels), np.nan, np.float32)
                if scores is None
                else scores.astype(np.float32)
            )
        if detection is None:
            return []
        self.detections.append(detection)
        return [detection]

    def history(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(times_ms (T,), posteriors (T, C), smoothed (T, C))`` of kept frames.

        ``smoothed`` is NaN where the smoother had fewer than ``minimum_count``
        results.
        """
        c = len(self.labels)
        if not self._times:
            empty = np.zeros((0, c), np.float32)
            return np.zeros(0, np.float64), empty, empty.copy()
        return (
            np.asarray(self._times, dtype=np.float64),
            np.stack(self._posteriors),
            np.stack(self._scores),
        )
