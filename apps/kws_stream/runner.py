"""Exported step graph, frame by frame: ``StreamingInterpreter`` and ``KWSStream``.

The loop every consumer runs (``docs/ARCHITECTURE.md``, "Export metadata contract")::

    audio -> frontend -> quantize frame -> set states -> invoke -> copy state outputs
          -> dequantize logits -> softmax -> smoothing -> detections

:class:`StreamingInterpreter` loads an export folder (:mod:`.model_dir`: the
metadata checked against the model, a mismatch raising :class:`MetadataError` naming
it) and keeps the states between frames: the bytes of each state output are copied
to its state input (the exporter ties their scale and zero point), starting from the
quantized initial value (``initial_quantized`` when the metadata has it, else the
quantized ``initial_value``).

:class:`KWSStream` glues the frontend named in the metadata (its params, the single
source of truth), the interpreter and :class:`~.smoothing.RecognizeCommands`, and
accepts audio chunks of any length.

Quantization is ``q = clip(round_half_away(x / scale) + zero_point)``
(:func:`lmuformer_keras.contract.quantize`); the C and Java ports round the same way
(C ``roundf``).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping

import numpy as np

from lmuformer_keras.console import filtered_stderr
from lmuformer_keras.contract import ExportMetadata, MetadataError

from .model_dir import (
    as_metadata,
    check_frontend,
    frontend_from_metadata,
    load_interpreter_class,
    load_metadata,
    metadata_smoothing,
    model_file_path,
    validate_metadata,
)
from .smoothing import Detection, RecognizeCommands, softmax

__all__ = ["KWSStream", "StreamingInterpreter"]


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
