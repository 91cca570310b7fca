"""A log-mel audio frontend driven entirely by a JSON-serialisable params dict.

Every frontend of this package is one :class:`Frontend` with its own params (see
``fbank128.py`` and ``micro40.py``). The params are the single source of truth: they are
written into exported metadata, and C / Java apps re-implement the same steps from them.

Per clip, in order (each step switched by a param):

1. ``x = waveform * input_scale`` for int16 input (``input_scale = 1 / 32768``); float
   input is taken as already in ``[-1, 1]``.
2. ``remove_clip_mean``: ``x = x - mean(x)`` over the whole clip.
3. ``pad_mode == "samples"``: zero-pad ``x`` at the end to the length that gives
   ``target_frames`` frames.
4. Framing without edge padding (Kaldi ``snip_edges=true``): frame ``t`` is
   ``x[t * frame_step : t * frame_step + frame_length]``; a frame exists only when all
   its samples do, so ``num_frames(N) = 0 if N < frame_length else
   1 + (N - frame_length) // frame_step``.
5. Per frame: ``remove_dc_offset`` subtracts the frame mean; ``preemphasis`` ``p > 0``
   replaces ``y[i] = y[i] - p * y[i-1]`` for ``i >= 1`` and ``y[0] = y[0] - p * y[0]``
   (Kaldi's in-frame pre-emphasis).
6. Window: ``"hann_symmetric"`` ``w[n] = 0.5 - 0.5 cos(2 pi n / (L - 1))`` (Kaldi's
   "hanning") or ``"hann_periodic"`` ``w[n] = 0.5 - 0.5 cos(2 pi n / L)``.
7. Zero-pad the frame to ``fft_size``, real FFT, power spectrum ``|X_k|^2``
   (``k = 0 .. fft_size / 2``), no scaling.
8. Mel energies ``E = P @ W`` with ``W`` from :func:`..mel.mel_filterbank`.
9. Log: ``log_mode == "max"``: ``log(max(E, log_eps))``; ``"add"``:
   ``log(E + log_eps)``.
10. ``pad_mode == "frames"``: append rows of ``pad_value`` (raw log units) up to
    ``target_frames``; any mode crops to ``target_frames``.
11. Normalise: ``(L - norm_mean) / norm_scale``.

The NumPy reference computes in float64 and returns float32. The params' keys and
bounds are in :mod:`.params`, the streaming form in :mod:`.stream`.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from lmuformer_keras.features.mel import mel_filterbank
from lmuformer_keras.features.params import validate_params
from lmuformer_keras.features.progress import Progress
from lmuformer_keras.features.stream import FrontendStream


class Frontend:
    """A log-mel frontend defined by ``params`` (see the module docstring).

    Attributes:
        name: registry name.
        params: JSON-serialisable dict, the single source of truth (a deep copy is
            returned, so callers cannot change the frontend).
        num_features: mel bins per frame.
        frame_hop_ms: hop between frames in milliseconds.
        frame_length_ms: window length in milliseconds.
        sample_rate: the only accepted sampling rate in Hz.
        num_frames_target: frames per clip after padding / cropping.
    """

    def __init__(self, params: dict[str, Any]):
        validate_params(params)
        self._params = copy.deepcopy(params)
        p = self._params
        self._window = self._make_window(p["window"], p["frame_length"])
        self._mel = mel_filterbank(
            p["num_mel_bins"],
            p["fft_size"],
            p["sample_rate"],
            p["mel_low_hz"],
            p["mel_high_hz"],
        )

    # ----------------------------------------------------------------- properties
    @property
    def name(self) -> str:
        return self._params["name"]

    @property
    def params(self) -> dict[str, Any]:
        return copy.deepcopy(self._params)

    @property
    def num_features(self) -> int:
        return int(self._params["num_mel_bins"])

    @property
    def sample_rate(self) -> int:
        return int(self._params["sample_rate"])

    @property
    def frame_hop_ms(self) -> float:
        return 1000.0 * self._params["frame_step"] / self._params["sample_rate"]

    @property
    def frame_length_ms(self) -> float:
        return 1000.0 * self._params["frame_length"] / self._params["sample_rate"]

    @property
    def num_frames_target(self) -> int:
        return int(self._params["target_frames"])

    def __repr__(self) -> str:
        return (
            f"Frontend(name={self.name!r}, num_features={self.num_features}, "
            f"frames={self.num_frames_target}, hop={self.frame_hop_ms:g} ms)"
        )

    def record(self) -> dict[str, Any]:
        """The frontend record ``{"name", "params", "frame_hop_ms"}`` that models,
        training results and ``metadata.json`` carry
        (:class:`lmuformer_keras.contract.Frontend`)."""
        from lmuformer_keras.contract import Frontend as FrontendRecord

        return FrontendRecord.from_frontend(self).record()

    def to_json(self) -> str:
        """The params as a JSON string (sorted keys)."""
        return json.dumps(self._params, sort_keys=True)

    @classmethod
    def from_params(cls, params: dict[str, Any] | str) -> Frontend:
        """Rebuilds a frontend from its params (a dict or a JSON string)."""
        if isinstance(params, str):
            params = json.loads(params)
        return cls(params)

    def mel_weights(self) -> np.ndarray:
        """Mel weights ``(fft_size // 2 + 1, num_mel_bins)`` float32 (for apps)."""
        return self._mel.astype(np.float32)

    def window(self) -> np.ndarray:
        """Analysis window, shape ``(frame_length,)`` float32."""
        return self._window.astype(np.float32)

    def num_frames(self, num_samples: int, pad: bool = True) -> int:
        """Frames produced for ``num_samples`` samples.

        With ``pad=False``: ``0 if N < frame_length else 1 + (N - frame_length) //
        frame_step`` (streaming: the first frame once ``frame_length`` samples are
        buffered, then one per ``frame_step`` samples). With ``pad=True``:
        ``target_frames``.
        """
        if pad:
            return self.num_frames_target
        length, step = self._params["frame_length"], self._params["frame_step"]
        if num_samples < length:
            return 0
        return 1 + (num_samples - length) // step

    def streamer(self) -> FrontendStream:
        """A :class:`FrontendStream` for chunked (streaming) input."""
        p = self._params
        if p["remove_clip_mean"] and not p["remove_dc_offset"]:
            raise ValueError(
                f"Frontend {self.name!r}: remove_clip_mean without remove_dc_offset "
                "cannot be computed causally"
            )
        return FrontendStream(self)

    # ------------------------------------------------------------------ compute
    @staticmethod
    def _make_window(kind: str, length: int) -> np.ndarray:
        n = np.arange(length, dtype=np.float64)
        denom = length - 1 if kind == "hann_symmetric" else length
        return 0.5 - 0.5 * np.cos(2.0 * math.pi * n / denom)

    def _check_rate(self, sample_rate: int) -> None:
        if sample_rate != self.sample_rate:
            raise ValueError(
                f"Frontend {self.name!r} needs sample_rate={self.sample_rate} Hz, got "
                f"sample_rate={sample_rate}; resample the audio first"
            )

    def _to_float(self, waveform: np.ndarray, source: str = "waveform") -> np.ndarray:
        x = np.asarray(waveform)
        if x.ndim != 1:
            raise ValueError(
                f"Frontend {self.name!r}: expected a mono 1-D waveform, got shape "
                f"{x.shape}"
            )
        if x.dtype == np.int16:
            return x.astype(np.float64) * self._params["input_scale"]
        if np.issubdtype(x.dtype, np.floating):
            finite = np.isfinite(x)
            if not finite.all():
                first = int(np.argmin(finite))
                raise ValueError(
                    f"Frontend {self.name!r}: {source} has "
                    f"{int(x.size - finite.sum())} non-finite sample(s) (NaN or "
                    f"inf; the first at index {first}); clean the audio first"
                )
            return x.astype(np.float64)
        raise ValueError(
            f"Frontend {self.name!r}: waveform dtype must be int16 or float, got "
            f"{x.dtype}"
        )

    def _log_mel(self, x: np.ndarray) -> np.ndarray:
        """Raw log-mel, unpadded: ``(..., samples)`` -> ``(..., frames, num_mel_bins)``.

        A leading batch axis is allowed (clips of equal length), for speed.
        """
        p = self._params
        length, step = p["frame_length"], p["frame_step"]
        n = self.num_frames(x.shape[-1], pad=False)
        if n == 0:
            return np.zeros((*x.shape[:-1], 0, self.num_features), dtype=np.float64)
        frames = np.lib.stride_tricks.sliding_window_view(x, length, axis=-1)
        frames = np.array(frames[..., ::step, :][..., :n, :], dtype=np.float64)
        if p["remove_dc_offset"]:
            frames -= frames.mean(axis=-1, keepdims=True)
        coeff = p["preemphasis"]
        if coeff:
            first = frames[..., :1] * (1.0 - coeff)
            frames[..., 1:] -= coeff * frames[..., :-1]
            frames[..., :1] = first
        frames *= self._window
        spec = np.fft.rfft(frames, n=p["fft_size"], axis=-1)
        power = spec.real**2 + spec.imag**2
        energies = power @ self._mel
        if p["log_mode"] == "max":
            return np.log(np.maximum(energies, p["log_eps"]))
        return np.log(energies + p["log_eps"])

    def _prepare(
        self, waveform: np.ndarray, pad: bool, source: str = "waveform"
    ) -> np.ndarray:
        """Steps 1-3: float64 signal, clip mean removed, zero-padded in samples."""
        p = self._params
        x = self._to_float(waveform, source)
        if p["remove_clip_mean"] and x.size:
            x = x - x.mean()
        if pad and p["pad_mode"] == "samples":
            need = (p["target_frames"] - 1) * p["frame_step"] + p["frame_length"]
            if x.shape[0] < need:
                x = np.pad(x, (0, need - x.shape[0]))
        return x

    def _finish(self, log_mel: np.ndarray, pad: bool) -> np.ndarray:
        """Steps 10-11: pad / crop frames (``pad``), normalise, float32."""
        p = self._params
        if pad:
            target = p["target_frames"]
            log_mel = log_mel[..., :target, :]
            missing = target - log_mel.shape[-2]
            if missing > 0:
                widths = [(0, 0)] * log_mel.ndim
                widths[-2] = (0, missing)
                log_mel = np.pad(log_mel, widths, constant_values=p["pad_value"])
        return self._normalise(log_mel).astype(np.float32)

    def _normalise(self, log_mel: np.ndarray) -> np.ndarray:
        p = self._params
        return (log_mel - p["norm_mean"]) / p["norm_scale"]

    def __call__(
        self, waveform: np.ndarray, sample_rate: int = 16000, pad: bool = True
    ) -> np.ndarray:
        """Features of one clip.

        Args:
            waveform: mono 1-D int16 (scaled by ``input_scale``) or float in [-1, 1].
            sample_rate: must equal ``self.sample_rate`` (no resampling here).
            pad: pad / crop to ``target_frames`` (``False``: natural frame count).

        Returns:
            ``(frames, num_features)`` float32.

        Raises:
            ValueError: wrong sample rate, not 1-D, an unsupported dtype, or
                non-finite (NaN / inf) float samples.
        """
        self._check_rate(sample_rate)
        return self._finish(self._log_mel(self._prepare(waveform, pad)), pad)

    def batch(
        self,
        waveforms: np.ndarray | Sequence[np.ndarray] | Iterable[np.ndarray],
        sample_rate: int = 16000,
        lengths: Sequence[int] | np.ndarray | None = None,
        progress: bool = False,
        chunk_size: int = 64,
    ) -> np.ndarray:
        """Features of many clips: ``(N, target_frames, num_features)`` float32.

        Args:
            waveforms: a 2-D array ``(N, samples)`` or a sequence of 1-D arrays.
            sample_rate: must equal ``self.sample_rate``.
            lengths: optional true lengths of zero-padded rows; row ``i`` is cut to
                ``waveforms[i][:lengths[i]]`` first (so padding is done the
                frontend's way, e.g. on frames for fbank128).
            progress: show a progress bar on stderr.
            chunk_size: clips of equal length are computed together in chunks of
                this size (same result as one at a time, faster).
        """
        self._check_rate(sample_rate)
        items = list(waveforms)
        if lengths is not None and len(lengths) != len(items):
            raise ValueError(
                f"Frontend.batch: len(lengths)={len(lengths)} != number of "
                f"waveforms={len(items)}"
            )
        out = np.empty(
            (len(items), self.num_frames_target, self.num_features), dtype=np.float32
        )
        bar = Progress(len(items), f"features[{self.name}]") if progress else None
        done = 0
        for start in range(0, len(items), chunk_size):
            chunk = []
            for i in range(start, min(start + chunk_size, len(items))):
                w = np.asarray(items[i])
                if lengths is not None:
                    w = w[: int(lengths[i])]
                chunk.append(self._prepare(w, pad=True, source=f"waveform {i}"))
            by_length: dict[int, list[int]] = {}
            for j, x in enumerate(chunk):
                by_length.setdefault(x.shape[0], []).append(j)
            for idx in by_length.values():
                stacked = np.stack([chunk[j] for j in idx])
                feats = self._finish(self._log_mel(stacked), pad=True)
                out[[start + j for j in idx]] = feats
            done += len(chunk)
            if bar is not None:
                bar.update(done)
        return out
