"""Exported step graph, frame by frame: ``StreamingInterpreter`` and ``KWSStream``.

The loop every consumer runs (``docs/ARCHITECTURE.md``, "Export metadata contract")::

    audio -> frontend -> quantize frame -> set states -> invoke -> copy state outputs
          -> dequantize logits -> softmax -> smoothing -> detections

:class:`StreamingInterpreter` reads ``metadata.json`` (the typed
:class:`lmuformer_keras.contract.ExportMetadata`: every field checked on reading, a
version-1 file upgraded) and ``model.tflite`` from an export folder, checks that the
metadata describes the model (tensor counts, shapes, dtypes, scales and zero points;
a mismatch raises :class:`MetadataError` naming it), and keeps the states between
frames: the bytes of each state output are copied to its state input (the exporter
ties their scale and zero point), starting from the quantized initial value
(``initial_quantized`` when the metadata has it, else the quantized
``initial_value``).

:class:`KWSStream` glues the frontend named in the metadata (its params, the single
source of truth), the interpreter and :class:`~.smoothing.RecognizeCommands`, and
accepts audio chunks of any length.

Quantization is ``q = clip(round_half_away(x / scale) + zero_point)``
(:func:`lmuformer_keras.contract.quantize`); the C and Java ports round the same way
(C ``roundf``).
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Mapping

import numpy as np

from lmuformer_keras.console import filtered_stderr
from lmuformer_keras.contract import (
    ExportedState,
    ExportMetadata,
    MetadataError,
    QuantizedTensor,
    dequantize,
    quantize,
)

from .smoothing import (
    Detection,
    RecognizeCommands,
    smoothing_from_metadata,
    softmax,
)

__all__ = [
    "KWSStream",
    "MetadataError",
    "StreamingInterpreter",
    "check_frontend",
    "dequantize",
    "frontend_from_metadata",
    "load_interpreter_class",
    "load_metadata",
    "metadata_smoothing",
    "model_file_path",
    "quantize",
    "validate_metadata",
]

METADATA_FILE = "metadata.json"
DEFAULT_MODEL_FILE = "model.tflite"


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


def as_metadata(metadata: ExportMetadata | Mapping) -> ExportMetadata:
    """``metadata`` as the typed record (a dict is read with ``from_json``).

    Raises:
        MetadataError: naming the bad field and its value.
    """
    if isinstance(metadata, ExportMetadata):
        return metadata
    try:
        return ExportMetadata.from_json(metadata)
    except MetadataError:
        raise
    except (TypeError, KeyError, AttributeError, ValueError) as error:
        raise MetadataError(
            f"metadata is malformed ({type(error).__name__}: {error})"
        ) from error


def load_metadata(model_dir: str | os.PathLike) -> ExportMetadata:
    """Reads ``model_dir/metadata.json`` (format version 2, or 1 upgraded).

    Raises:
        MetadataError: ``model_dir`` is a file, ``metadata.json`` is a folder, not
            JSON, or has a bad field (the message names the file and the field).
        FileNotFoundError: no ``metadata.json``.
    """
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
    return ExportMetadata.load(path)


def model_file_path(
    model_dir: str | os.PathLike, metadata: ExportMetadata | Mapping
) -> str:
    """``model_dir/<metadata model_file>``, refusing a path outside ``model_dir``.

    Raises:
        MetadataError: ``model_file`` is not a string, is absolute, or leaves the
            folder (e.g. ``../../x``); it is checked on the path as written, so a
            symlink placed inside the folder is still followed.
    """
    value = as_metadata(metadata).model_file
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


def metadata_smoothing(
    metadata: ExportMetadata | Mapping,
) -> dict[str, float | int]:
    """The model's own detection smoothing (``metadata.smoothing``), if any.

    Raises:
        MetadataError: a record :func:`.smoothing.smoothing_from_metadata` refuses.
    """
    record = as_metadata(metadata).smoothing
    try:
        return smoothing_from_metadata({"smoothing": record})
    except ValueError as error:
        raise MetadataError(f"metadata: {error}") from error


def validate_metadata(
    metadata: ExportMetadata | Mapping,
    input_details: list[dict],
    output_details: list[dict],
) -> tuple[QuantizedTensor, QuantizedTensor, list[ExportedState]]:
    """Checks ``metadata`` against the interpreter's tensor details (position order).

    A thin wrapper kept for compatibility: the metadata is read with
    :meth:`ExportMetadata.from_json` and compared with
    :meth:`ExportMetadata.check_model`.

    Returns:
        ``(frame, logits, states)`` of the metadata.

    Raises:
        MetadataError: naming the first bad field or mismatch.
    """
    meta = as_metadata(metadata)
    meta.check_model(
        [QuantizedTensor.from_tensor_detail(d, p) for p, d in enumerate(input_details)],
        [
            QuantizedTensor.from_tensor_detail(d, p)
            for p, d in enumerate(output_details)
        ],
    )
    return meta.frame, meta.logits, list(meta.states)


# ------------------------------------------------------------------ interpreter
class StreamingInterpreter:
    """An exported step graph with its states, one frame per :meth:`step`.

    Args:
        model_dir: an ``lmuformer-export`` output folder (``metadata.json`` and the
            model file it names, default ``model.tflite``).
        metadata: use this (an :class:`ExportMetadata` or its JSON object) instead
            of ``model_dir/metadata.json``.
        model_path: use this model file instead of the one in ``model_dir``.
        num_threads: interpreter threads.

    Attributes:
        metadata: the :class:`ExportMetadata`.
        frame_info, logits_info: the frame input and logits output
            (:class:`QuantizedTensor`).
        state_infos: the states (:class:`ExportedState`), in metadata order.

    Raises:
        MetadataError: the metadata does not describe the model (names the mismatch).
        FileNotFoundError: missing metadata or model file.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        *,
        metadata: ExportMetadata | Mapping | None = None,
        model_path: str | os.PathLike | None = None,
        num_threads: int = 1,
    ):
        if metadata is None:
            if model_dir is None:
                raise ValueError("StreamingInterpreter: give model_dir or metadata")
            metadata = load_metadata(model_dir)
        metadata = as_metadata(metadata)
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
        # filtered_stderr: no "INFO: Created TensorFlow Lite XNNPACK delegate" line.
        try:
            with filtered_stderr():
                self._interpreter = interpreter_class(
                    model_path=model_path, num_threads=num_threads
                )
        except (ValueError, RuntimeError) as error:
            raise MetadataError(
                f"{model_path}: not a loadable TFLite model ({error})"
            ) from error
        with filtered_stderr():
            self._interpreter.allocate_tensors()
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        self.frame_info, self.logits_info, self.state_infos = validate_metadata(
            metadata, inputs, outputs
        )
        self.metadata = metadata
        self.model_path = model_path
        self._in_index = [d["index"] for d in inputs]
        self._out_index = [d["index"] for d in outputs]
        self.labels: list[str] = metadata.class_labels
        self.num_features = metadata.num_features
        self.num_classes = metadata.num_classes
        self.reset()

    def initial_states(self) -> list[np.ndarray]:
        """Quantized initial states (``initial_quantized``, else the quantized
        ``initial_value``, default 0.0)."""
        return [s.initial_array() for s in self.state_infos]

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
            s.input.dequantize(q)
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
        return self.frame_info.quantize(f).reshape(self.frame_info.shape)

    def step_quantized(self, q_frame: np.ndarray) -> np.ndarray:
        """One step on an already quantized frame; returns the raw logits ``(C,)``."""
        it = self._interpreter
        it.set_tensor(self._in_index[self.frame_info.position], q_frame)
        for q, s in zip(self._states, self.state_infos, strict=True):
            it.set_tensor(self._in_index[s.input.position], q)
        it.invoke()
        self._states = [
            it.get_tensor(self._out_index[s.output.position]).copy()
            for s in self.state_infos
        ]
        self.frames_processed += 1
        return it.get_tensor(self._out_index[self.logits_info.position]).reshape(-1)

    def step(self, frame: np.ndarray) -> np.ndarray:
        """One frame: quantize, invoke, copy states; dequantized logits ``(C,)``."""
        raw = self.step_quantized(self.quantize_frame(frame))
        return self.logits_info.dequantize(raw)

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
def frontend_from_metadata(metadata: ExportMetadata | Mapping):
    """The frontend built from the metadata's frontend record (its params).

    Raises:
        MetadataError: no frontend, or params the frontend refuses (naming the
            param and its value).
    """
    from lmuformer_keras.features import get_frontend

    record = as_metadata(metadata).frontend
    if record is None:
        raise MetadataError(
            "metadata has no 'frontend': pass frontend= explicitly (e.g. 'micro40')"
        )
    try:
        return get_frontend(dict(record.params))
    except (ValueError, KeyError, TypeError) as error:
        raise MetadataError(
            f"metadata frontend {record.name!r} is not usable: {error}"
        ) from error


def check_frontend(frontend, metadata: ExportMetadata | Mapping) -> None:
    """``MetadataError`` unless ``frontend`` gives the model's features and hop."""
    meta = as_metadata(metadata)
    if frontend.num_features != meta.num_features:
        raise MetadataError(
            f"frontend {frontend.name!r} gives {frontend.num_features} features, the "
            f"model needs {meta.num_features} (metadata frame shape "
            f"{list(meta.frame.shape)})"
        )
    hop = meta.frame_hop_ms
    if hop is not None and not math.isclose(hop, frontend.frame_hop_ms):
        raise MetadataError(
            f"metadata frontend frame_hop_ms={hop} but frontend {frontend.name!r} "
            f"hops {frontend.frame_hop_ms:g} ms"
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
