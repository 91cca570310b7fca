"""Leaky integrate-and-fire (LIF) neurons, multi-step and single-step."""

from __future__ import annotations

import functools
import math

import keras
from keras import ops

from lmuformer_keras.backend_utils import lif_scan_without_autograd, time_scan
from lmuformer_keras.spiking import _spike, validate_spike_args


def _finite(value, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = math.nan
    if not math.isfinite(out):
        raise ValueError(f"LIF: {name} must be a finite number, got {name}={value!r}")
    return out


@keras.saving.register_keras_serializable(package="lmuformer_keras")
class LIF(keras.layers.Layer):
    """Multi-step leaky integrate-and-fire neurons with hard reset.

    For inputs ``X`` of shape ``(batch, time, ...)`` and membranes ``V_{-1}`` (zeros,
    or ``initial_state``), for ``t = 0 .. time - 1``:

        H_t = V_{t-1} + (X_t - (V_{t-1} - v_reset)) / tau
        S_t = Heaviside(H_t - v_threshold)              (Heaviside(0) = 1)
        V_t = H_t * (1 - S_t) + v_reset * S_t

    The spike uses the surrogate gradient of :func:`lmuformer_keras.spiking.spike`;
    with ``detach_reset=True`` no gradient flows through ``S_t`` in the reset. Gradients
    flow back through time (BPTT). ``1 / tau`` is applied as a multiplication, so one
    step is only ``mul``, ``add``, ``sub`` and a comparison (see :meth:`step`).

    The multi-step form scans :meth:`step` over the time axis, so running
    :meth:`step` frame by frame gives bit-identical spikes and membranes.

    Under a 16-bit compute dtype (``mixed_bfloat16``, ``mixed_float16``) the
    membranes integrate in float32, as Keras' BatchNormalization computes its
    statistics in float32: a bfloat16 membrane (8 significant bits) would round away
    most of ``X_t / tau`` near the threshold, and on CPUs, which emulate bfloat16
    arithmetic, the float32 loop is also the faster one. The spikes (exactly 0 or
    1) are returned in the compute dtype, the membranes in float32
    (:attr:`state_dtype`).

    Args:
        tau: Membrane time constant, ``> 0``.
        v_threshold: Firing threshold.
        v_reset: Reset potential (hard reset).
        detach_reset: Stop the gradient through ``S_t`` in the reset.
        surrogate: ``"sigmoid"`` (default), ``"atan"`` or ``"ste"``.
        alpha: Sharpness of the ``"sigmoid"`` / ``"atan"`` surrogates, ``> 0``.
        clip_value: Half-width of the ``"ste"`` window, ``> 0``.
        return_state: Also return the final membrane ``V_{time-1}``.
        **kwargs: Base ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: ``(batch, time, ...)`` tensor, rank >= 3; ``time`` may be unknown.
        initial_state: Optional ``(batch, ...)`` membranes ``V_{-1}`` (default zeros).

    Returns:
        Spikes ``(batch, time, ...)`` in the compute dtype; with
        ``return_state=True``, ``(spikes, final_membrane)`` with ``final_membrane``
        of shape ``(batch, ...)`` in :attr:`state_dtype`.

    Raises:
        ValueError: ``tau <= 0``, unknown ``surrogate``, ``alpha <= 0``,
            ``clip_value <= 0``, non-finite ``v_threshold`` / ``v_reset``, or inputs of
            rank < 3.
    """

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        detach_reset: bool = True,
        surrogate: str = "sigmoid",
        alpha: float = 4.0,
        clip_value: float = 1.0,
        return_state: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        tau_f = _finite(tau, "tau")
        if tau_f <= 0.0:
            raise ValueError(f"LIF: tau must be > 0, got tau={tau!r}")
        self.tau = tau_f
        self.v_threshold = _finite(v_threshold, "v_threshold")
        self.v_reset = _finite(v_reset, "v_reset")
        self.detach_reset = bool(detach_reset)
        self.surrogate, self.alpha, self.clip_value = validate_spike_args(
            surrogate, alpha, clip_value, owner="LIF"
        )
        self.return_state = bool(return_state)
        self._decay = 1.0 / self.tau
        # With 1 / tau a power of two (the reference's tau = 2) every product of a
        # step is exact, so XLA's fused multiply-adds round as separate ops do; with
        # v_reset = 0 (the reference's) the step has no constant additions, which
        # TensorFlow's graph optimizer reassociates in the step graph (constant
        # folding) and XLA does not. Then an XLA-compiled multi-step loop gives the
        # step graph's bits (backend_utils.time_scan).
        self._compiles_exactly = (
            math.frexp(self._decay)[0] == 0.5 and self.v_reset == 0.0
        )

    @property
    def state_dtype(self) -> str:
        """The dtype the membranes integrate in: the compute dtype, or float32 where
        that is a 16-bit float."""
        dtype = self.compute_dtype
        return "float32" if dtype in ("bfloat16", "float16") else dtype

    # ------------------------------------------------------------------ math
    def _step(self, x_t, v_prev, differentiable=True):
        """One LIF step on tensors of :attr:`state_dtype`: ``(s_t, v_t)``."""
        if self.v_reset == 0.0:
            h = v_prev + (x_t - v_prev) * self._decay
        else:
            h = v_prev + (x_t - v_prev + self.v_reset) * self._decay
        z = h - self.v_threshold
        if differentiable:
            s = _spike(z, self.surrogate, self.alpha, self.clip_value)
        else:  # The same values (the surrogate term is exactly 0), fewer ops.
            s = ops.cast(z >= 0.0, z.dtype)
        s_reset = ops.stop_gradient(s) if self.detach_reset else s
        v = h * (1.0 - s_reset)
        if self.v_reset != 0.0:
            v = v + s_reset * self.v_reset
        return s, v

    def step(self, x_t, v_prev=None, differentiable=True):
        """Single LIF step for streaming: ``(x_t, v_prev) -> (s_t, v_t)``.

        Loop-free; the multi-step call scans this same function, so streaming
        reproduces it bit for bit. Works on tensors and on symbolic ``keras.Input``s
        (to build a step graph).

        Args:
            x_t: Input frame ``(batch, ...)``.
            v_prev: Membranes ``V_{t-1}`` ``(batch, ...)``; zeros when ``None``.
            differentiable: ``False`` drops the surrogate-gradient term from the
                graph (it is exactly ``0.0`` in the forward pass, so the outputs are
                bit-identical): the step is then only mul, add, sub, a ``>=``
                comparison and a bool-to-float cast, for export.

        Returns:
            ``(s_t, v_t)``: spikes (compute dtype) and new membranes
            (:attr:`state_dtype`), both shaped like ``x_t``.
        """
        x_t = ops.cast(ops.convert_to_tensor(x_t), self.state_dtype)
        if v_prev is None:
            v_prev = ops.zeros_like(x_t)
        else:
            v_prev = ops.cast(ops.convert_to_tensor(v_prev), self.state_dtype)
        s, v = self._step(x_t, v_prev, differentiable)
        return ops.cast(s, self.compute_dtype), v

    # ----------------------------------------------------------------- layer
    def _check_rank(self, shape):
        if shape is None or len(shape) < 3:
            raise ValueError(
                f"LIF '{self.name}': inputs must have rank >= 3 "
                f"(batch, time, ...), got shape={tuple(shape or ())}"
            )

    def build(self, input_shape):
        self._check_rank(input_shape)
        self.built = True

    def call(self, inputs, initial_state=None):
        x = ops.cast(ops.convert_to_tensor(inputs), self.state_dtype)
        self._check_rank(tuple(x.shape))
        if initial_state is None:
            v0 = ops.zeros_like(x[:, 0])
        else:
            v0 = ops.cast(ops.convert_to_tensor(initial_state), self.state_dtype)
        fast = lif_scan_without_autograd(
            x, v0, self._decay, self.v_threshold, self.v_reset
        )
        if fast is None:
            fast = time_scan(
                self._step,
                x,
                v0,
                forward_step=functools.partial(self._step, differentiable=False),
                xla_exact=self._compiles_exactly,
            )
        spikes, v_last = fast
        spikes = ops.cast(spikes, self.compute_dtype)
        if self.return_state:
            return spikes, v_last
        return spikes

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if self.return_state:
            return input_shape, (input_shape[0],) + input_shape[2:]
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "tau": self.tau,
                "v_threshold": self.v_threshold,
                "v_reset": self.v_reset,
                "detach_reset": self.detach_reset,
                "surrogate": self.surrogate,
                "alpha": self.alpha,
                "clip_value": self.clip_value,
                "return_state": self.return_state,
            }
        )
        return config
