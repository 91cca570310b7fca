"""The few backend-specific helpers of the library (kept deliberately tiny)."""

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
      have no XLA): TensorFlow's graph executor costs tens of microseconds per
      iteration, XLA a few;
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


def fused_batch_norm_training(x, gamma, beta, epsilon: float):
    """Training-mode batch normalization of ``(rows, channels)`` in one fused kernel.

        y = gamma * (x - mean) / sqrt(var + epsilon) + beta

    with the ``mean`` and biased ``var`` of each channel over the rows: the
    math of ``keras.layers.BatchNormalization``, whose Keras ops take about ten
    elementwise passes forward and backward where these kernels take one each
    (2-4x faster on ``(4096, 1024)``; ``benchmarks/batch_norm_speed.py``):

    - torch: ``torch.nn.functional.batch_norm``;
    - TensorFlow: ``FusedBatchNormV3`` (``tf.compat.v1.nn.fused_batch_norm``), the
      rows seen as a ``(1, 1, rows, channels)`` image.

    Args:
        x: ``(rows, channels)``, float32.
        gamma: ``(channels,)`` or ``None``.
        beta: ``(channels,)`` or ``None``.
        epsilon: Added to the variance.

    Returns:
        ``(y, mean, var)`` (``mean`` and ``var`` without gradient, for the moving
        statistics), or ``None`` on JAX, whose compiler fuses the Keras ops itself,
        and for other ranks: the caller uses the Keras ops.
    """
    backend = keras.backend.backend()
    if len(x.shape) != 2:
        return None
    if backend == "torch":
        import torch

        rows, channels = x.shape
        if rows < 2:  # torch refuses to train on one value per channel; Keras does.
            return None
        # momentum 1 makes torch write this batch's mean and unbiased variance into
        # the zero buffers (0 * 0 + 1 * stat): one kernel computes the statistics.
        mean = torch.zeros(channels, dtype=x.dtype, device=x.device)
        var = torch.zeros(channels, dtype=x.dtype, device=x.device)
        y = torch.nn.functional.batch_norm(
            x, mean, var, gamma, beta, training=True, momentum=1.0, eps=epsilon
        )
        return y, mean, var * ((rows - 1) / rows)
    if backend == "tensorflow":
        import tensorflow as tf

        rows, channels = tf.shape(x)[0], x.shape[1]
        ones = tf.ones((channels,), x.dtype)
        y, mean, var = tf.compat.v1.nn.fused_batch_norm(
            tf.reshape(x, (1, 1, rows, channels)),
            ones if gamma is None else gamma,
            tf.zeros_like(ones) if beta is None else beta,
            epsilon=epsilon,
            is_training=True,
        )
        # FusedBatchNormV3 returns the unbiased variance.
        n = tf.cast(rows, x.dtype)
        var = tf.stop_gradient(var) * tf.maximum(n - 1.0, 0.0) / n
        return tf.reshape(y, tf.shape(x)), tf.stop_gradient(mean), var
    return None


def fused_batch_norm_inference(x, mean, variance, gamma, beta, epsilon: float):
    """Inference-mode batch normalization of bfloat16 ``(rows, channels)`` in one
    fused kernel.

        y = gamma * (x - mean) / sqrt(variance + epsilon) + beta

    with the moving statistics: the math of ``keras.layers.BatchNormalization`` at
    inference, which for bfloat16 inputs casts them to float32, multiplies, adds and
    casts back (four passes). These kernels read the bfloat16 ``x`` once and write
    the bfloat16 ``y`` once, with float32 statistics:

    - torch: ``torch.nn.functional.batch_norm(training=False)``;
    - TensorFlow: ``FusedBatchNormV3`` (``is_training=False``), the rows seen as a
      ``(1, 1, rows, channels)`` image.

    The paper presets' ``mixed_bfloat16`` inference is 4-13% faster with them on
    TensorFlow and torch. For float32 they were no faster than Keras' two passes
    (within noise on TensorFlow, slower on torch), so float32 keeps Keras' ops.

    Args:
        x: ``(rows, channels)``, bfloat16.
        mean, variance: ``(channels,)`` float32 moving statistics.
        gamma, beta: ``(channels,)`` float32, or ``None``.
        epsilon: Added to the variance.

    Returns:
        ``y`` (bfloat16), or ``None`` on JAX, whose compiler fuses the Keras ops
        itself, and for other ranks or dtypes: the caller uses the Keras ops.
    """
    backend = keras.backend.backend()
    dtype = keras.backend.standardize_dtype(x.dtype)
    if len(x.shape) != 2 or dtype != "bfloat16":
        return None
    if backend == "torch":
        from torch.nn import functional

        return functional.batch_norm(
            x, mean, variance, gamma, beta, training=False, eps=epsilon
        )
    if backend == "tensorflow":
        import tensorflow as tf

        channels = x.shape[1]
        ones = tf.ones((channels,), "float32")
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            tf.reshape(x, (1, 1, -1, channels)),
            ones if gamma is None else gamma,
            tf.zeros_like(ones) if beta is None else beta,
            mean=mean,
            variance=variance,
            epsilon=epsilon,
            is_training=False,
        )
        return tf.reshape(y, tf.shape(x))
    return None


def conv1d(x, kernel, pad_left: int = 0, pad_right: int = 0, bias=None):
    """Stride-1 convolution of channels-last ``x`` after zero padding in time.

        y_t = b + sum_{j=0}^{k-1} x_pad[t + j] @ W[j],   t = 0 .. T + pads - k

    with ``x_pad`` = ``pad_left`` zero frames, ``x`` ``(batch, T, C_in)``, then
    ``pad_right`` zero frames, and ``kernel`` ``W`` of shape ``(k, C_in, C_out)``:
    what ``keras.layers.Conv1D`` computes (one group, no dilation).

    - torch: ``x_pad`` viewed as a ``(batch, C_in, 1, T)`` image in channels-last
      memory order goes to ``conv2d`` as is, and its channels-last output is the
      ``(batch, T, C_out)`` result as is. Keras' torch convolution transposes its
      channels-last input to channels-first, which costs a copy in and a copy out:
      the paper presets' kernel-3 convolutions run 1.1-1.4x faster forward and
      1.1-1.3x forward + backward, their training and inference 1.07-1.12x
      (``benchmarks/conv1d_speed.py``);
    - elsewhere: ``keras.ops.pad`` and ``keras.ops.conv`` (TensorFlow and JAX
      convolve channels-last natively).

    Args:
        x: ``(batch, T, C_in)``.
        kernel: ``(k, C_in, C_out)``, of ``x``'s dtype.
        pad_left: Zero frames before ``x``.
        pad_right: Zero frames after ``x``.
        bias: Optional ``(C_out,)``, of ``x``'s dtype.

    Returns:
        ``(batch, T + pad_left + pad_right - k + 1, C_out)``.
    """
    x, kernel = ops.convert_to_tensor(x), ops.convert_to_tensor(kernel, x.dtype)
    if bias is not None:
        bias = ops.convert_to_tensor(bias, x.dtype)
    if keras.backend.backend() == "torch":
        from torch.nn import functional

        if pad_left or pad_right:
            x = functional.pad(x, (0, 0, pad_left, pad_right))
        image = x.permute(0, 2, 1).unsqueeze(2)  # (B, C_in, 1, T): NHWC strides
        weights = kernel.permute(2, 1, 0).unsqueeze(2)  # (C_out, C_in, 1, k)
        y = functional.conv2d(image, weights, bias)
        return y.squeeze(2).permute(0, 2, 1)
    if pad_left or pad_right:
        x = ops.pad(x, ((0, 0), (pad_left, pad_right), (0, 0)))
    y = ops.conv(x, kernel, padding="valid")
    return y if bias is None else ops.add(y, bias)


def matmul(x, w):
    """``x @ w`` for ``x`` of shape ``(..., k)`` and ``w`` of shape ``(k, n)``.

    ``keras.ops.matmul``, except on JAX with two bfloat16 operands: there the
    products accumulate in float32 (``preferred_element_type``) and the result is
    rounded to bfloat16 once, forward and in the custom VJP's two products
    (``dx = g @ w^T``, ``dw = x^T @ g``). XLA on CPU computes a bfloat16 x bfloat16
    -> bfloat16 product no faster than float32, but with float32 accumulation it
    uses the CPU's bfloat16 dot instructions: a ``(4096, 256) @ (256, 1024)``
    takes 6.4 against 12.1 ms (float32) and 14.1 ms (bfloat16 output) here, and
    the paper presets' Dense layers run about 2x faster under ``mixed_bfloat16``.
    TensorFlow and torch already run bfloat16 products that way (oneDNN).
    """
    if len(w.shape) == 2 and matmul_accumulates_in_float32(x.dtype, w.dtype):
        return _jax_matmul_float32_accumulation()(x, w)
    return ops.matmul(x, w)


def matmul_accumulates_in_float32(*dtypes) -> bool:
    """Whether :func:`matmul` of operands of these dtypes takes its float32-accumulation
    path (JAX, bfloat16), where it is faster than the backend's own bfloat16 products
    and convolutions."""
    return keras.backend.backend() == "jax" and {
        keras.backend.standardize_dtype(d) for d in dtypes
    } == {"bfloat16"}


@functools.cache
def _jax_matmul_float32_accumulation():
    import jax
    import jax.numpy as jnp

    def dot(a, b, contract_a: int, contract_b: int):
        dims = (((contract_a,), (contract_b,)), ((), ()))
        return jax.lax.dot_general(a, b, dims, preferred_element_type=jnp.float32)

    @jax.custom_vjp
    def product(x, w):
        return dot(x, w, x.ndim - 1, 0).astype(x.dtype)

    def product_fwd(x, w):
        return product(x, w), (x, w)

    def product_bwd(residuals, g):
        x, w = residuals
        g = g.astype(x.dtype)
        g_x = dot(g, w, g.ndim - 1, 1).astype(x.dtype)
        rows = (-1, x.shape[-1])
        g_w = dot(x.reshape(rows), g.reshape((-1, g.shape[-1])), 0, 0)
        return g_x, g_w.astype(w.dtype)

    product.defvjp(product_fwd, product_bwd)
    return product


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
