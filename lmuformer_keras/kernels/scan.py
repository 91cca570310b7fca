"""Loops over time: :func:`time_scan` (any backend, BPTT-able) and the torch
inference loop of the LIF (:func:`lif_scan_without_autograd`)."""

from __future__ import annotations

import functools

import keras
from keras import ops


def time_scan(step, x, v0, forward_step=None, xla_exact: bool = False):
    """Runs ``s_t, v_t = step(x_t, v_{t-1})`` over axis 1 of ``x`` (BPTT-able).

    The fastest loop each backend has for a nonlinear recurrence:

    - JAX: ``jax.lax.scan`` (compiled once for all steps), with a custom VJP: the
      forward loop runs ``forward_step`` and keeps ``V_{t-1}``, the backward loop
      runs the VJP of ``step`` at each ``(x_t, V_{t-1})`` in reverse;
    - TensorFlow: a ``tf.while_loop`` over ``TensorArray``s with
      ``maximum_iterations`` set, which XLA (``jit_compile=True``, the ``fit``
      default on GPU) needs to differentiate the loop (``keras.ops.scan`` omits it),
      with the same custom gradient. Inside a traced graph (Keras' compiled train
      and predict functions) and with ``xla_exact``, the loops are compiled
      with XLA (a ``jit_compile=True`` function; not on Apple-silicon GPUs, which
      have no XLA): XLA's per-iteration cost is far below that of TensorFlow's
      graph executor (figures: ``docs/code_figures.md``);
    - torch: a plain Python loop over ``unbind`` views (torch has no compiled scan;
      ``keras.ops.scan`` is the same loop with more per-step overhead).

    Args:
        step: ``(x_t, v_prev) -> (s_t, v_t)``, elementwise on ``(batch, ...)`` tensors;
            its gradient is the loop's.
        x: Inputs ``(batch, time, ...)``; ``time`` may be unknown (symbolic).
        v0: Initial state ``(batch, ...)``.
        forward_step: The same values as ``step`` without its gradient machinery
            (the LIF without the surrogate term, which is exactly ``0.0`` forward
            but costs a sigmoid per value): JAX and TensorFlow run it in the
            forward loop. Default ``step``.
        xla_exact: XLA computes ``forward_step`` with the bits it has in a
            TensorFlow graph (the streaming step graph): XLA contracts ``a * b + c``
            into fused multiply-adds and TensorFlow's graph optimizer reassociates
            constant additions, so this holds when every product is exact and there
            are no constant additions (the LIF with ``tau = 2``, ``v_reset = 0``).
            Only then does TensorFlow compile the loop with XLA. JAX compiles its
            loop in any case (its step graph too).

    Returns:
        ``(s, v_last)``: outputs ``(batch, time, ...)`` and the final state.
    """
    forward_step = step if forward_step is None else forward_step
    backend = keras.backend.backend()
    if backend == "torch":
        v, outs = v0, []
        for x_t in ops.unstack(x, axis=1):
            s, v = step(x_t, v)
            outs.append(s)
        return ops.stack(outs, axis=1), v
    if backend == "tensorflow":
        return _tf_time_scan(step, forward_step, x, v0, xla_exact)
    if backend == "jax":
        return _jax_time_scan(step, forward_step, x, v0)

    def body(v, x_t):
        s, v = step(x_t, v)
        return v, s

    v_last, s = ops.scan(body, v0, ops.moveaxis(x, 1, 0))
    return ops.moveaxis(s, 0, 1), v_last


def lif_scan_without_autograd(x, v0, decay: float, v_threshold: float, v_reset: float):
    """The LIF recurrence on torch with autograd off, in plain torch ops; else ``None``.

    Keras-op dispatch costs more than the arithmetic of one LIF step on torch (the
    Python loop of :func:`time_scan` turns each scalar into a tensor at every step),
    so inference (``predict``, ``torch.no_grad``) runs this loop instead: per step

        H_t = V_{t-1} + (X_t - V_{t-1} + v_reset) * decay
        S_t = (H_t - v_threshold) >= 0;   V_t = v_reset where S_t else H_t

    the same float operations, in the same order, as ``LIF.step(...,
    differentiable=False)`` (whose ``H * (1 - S) + S * v_reset`` is ``v_reset`` or
    ``H``), so spikes and membranes are bit-identical to it.

    Returns:
        ``(spikes, v_last)``, or ``None`` on other backends or while torch records
        gradients (training keeps :func:`time_scan` and the surrogate gradient).
    """
    if keras.backend.backend() != "torch":
        return None
    import torch

    if torch.is_grad_enabled():
        return None
    # Python-float scalars, as Keras passes them to torch (the LIF's membranes are
    # float32 under every policy, LIF.state_dtype; for bfloat16 inputs torch would
    # compute in float32 and round once, like the Keras ops).
    decay, v_threshold, v_reset = float(decay), float(v_threshold), float(v_reset)
    spikes = torch.empty_like(x)
    v = v0
    for t in range(x.shape[1]):
        d = x[:, t] - v
        if v_reset != 0.0:
            d = d + v_reset
        h = v + d * decay
        s = (h - v_threshold) >= 0.0
        spikes[:, t] = s
        v = h.masked_fill_(s, v_reset)
    return spikes, v


def _jax_time_scan(step, forward_step, x, v0):
    import jax
    import jax.numpy as jnp

    def forward(x_tm, v0, keep_v_prev: bool):
        def body(v, x_t):
            s, v_next = forward_step(x_t, v)
            return v_next, ((s, v) if keep_v_prev else s)

        return jax.lax.scan(body, v0, x_tm)

    @jax.custom_vjp
    def scan(x_tm, v0):
        v, s = forward(x_tm, v0, False)
        return s, v

    def scan_fwd(x_tm, v0):
        v, (s, v_prev) = forward(x_tm, v0, True)
        return (s, v), (x_tm, v_prev)

    def scan_bwd(residuals, cotangents):
        # BPTT as a reverse loop of per-step VJPs, each recomputed from
        # (x_t, V_{t-1}), as on TensorFlow.
        x_tm, v_prev = residuals
        g_s, g_v = cotangents

        def body(g_v, inputs):
            x_t, v_t, g_s_t = inputs
            _, vjp = jax.vjp(step, x_t, v_t)
            g_x, g_v = vjp((g_s_t, g_v))
            return g_v, g_x

        g_v0, g_x = jax.lax.scan(body, g_v, (x_tm, v_prev, g_s), reverse=True)
        return g_x, g_v0

    scan.defvjp(scan_fwd, scan_bwd)
    s, v = scan(jnp.moveaxis(x, 1, 0), v0)
    return jnp.moveaxis(s, 0, 1), v


@functools.cache
def _tf_has_xla() -> bool:
    """Whether TensorFlow can XLA-compile here: not on Apple-silicon GPUs
    (tensorflow-metal), where Keras turns ``jit_compile`` off for the same reason."""
    import platform

    import tensorflow as tf

    apple_gpu = platform.system() == "Darwin" and "arm" in platform.processor().lower()
    return not (apple_gpu and tf.config.list_physical_devices("GPU"))


def _tf_time_scan(step, forward_step, x, v0, xla: bool):
    import tensorflow as tf

    if xla and not tf.executing_eagerly() and _tf_has_xla():
        loop = functools.partial(_tf_time_scan, step, forward_step, xla=False)
        return tf.function(loop, jit_compile=True, autograph=False)(x, v0)
    x_tm = ops.moveaxis(x, 1, 0)
    n = x_tm.shape[0]
    if n is None:
        n = tf.shape(x_tm)[0]
    shape = x_tm.shape[1:]

    def loop(body, state):
        # ``maximum_iterations`` lets XLA size the loop buffers.
        return tf.while_loop(
            lambda t, *_: t < n, body, (0, *state), maximum_iterations=n
        )[1:]

    def array():
        return tf.TensorArray(x.dtype, size=n, element_shape=shape)

    @tf.custom_gradient
    def scan(x_tm, v0):
        xs = array().unstack(x_tm)

        def body(t, v, ys, vs):
            s, v_next = forward_step(xs.read(t), v)
            return t + 1, v_next, ys.write(t, s), vs.write(t, v)

        v, ys, vs = loop(body, (v0, array(), array()))
        v_prev = vs.stack()  # V_{t-1} of every step: all the backward pass needs.

        def grad(g_s, g_v):
            # BPTT as a reverse loop of per-step VJPs, each step recomputed from
            # (x_t, V_{t-1}). Differentiating a while loop directly makes TF keep
            # every intermediate in accumulators, which XLA copies at every step
            # (time grows as T^2); this loop is linear in T.
            xs_b, vs_b = array().unstack(x_tm), array().unstack(v_prev)
            gs_b = array().unstack(g_s)
            g_v = tf.zeros_like(v0) if g_v is None else g_v

            def body_b(i, g_v, gxs):
                t = n - 1 - i
                x_t, v_t = xs_b.read(t), vs_b.read(t)
                with tf.GradientTape() as tape:
                    tape.watch([x_t, v_t])
                    outs = step(x_t, v_t)
                g_x, g_v = tape.gradient(
                    outs,
                    [x_t, v_t],
                    output_gradients=[gs_b.read(t), g_v],
                    unconnected_gradients=tf.UnconnectedGradients.ZERO,
                )
                return i + 1, g_v, gxs.write(t, g_x)

            g_v0, gxs = loop(body_b, (g_v, array()))
            return gxs.stack(), g_v0

        s = ys.stack()
        s.set_shape(x_tm.shape)
        return (s, v), grad

    s, v = scan(x_tm, v0)
    return ops.moveaxis(s, 0, 1), v
