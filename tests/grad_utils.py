"""Backend-agnostic gradients for tests: ``grad(fn, *inputs) -> list of numpy grads``.

Works under ``KERAS_BACKEND=tensorflow|jax|torch``. ``fn`` takes backend tensors (one
per input) and returns a tensor; the gradient of ``sum(fn(*inputs))`` with respect to
every input is returned as NumPy arrays (zeros where an input does not contribute).
"""

from __future__ import annotations

import keras
import numpy as np


def _as_float_arrays(inputs):
    return [np.asarray(x, dtype=np.float32) if not _is_float(x) else x for x in inputs]


def _is_float(x):
    return isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)


def grad(fn, *inputs, argnums=None, jit=False):
    """Gradient of ``sum(fn(*inputs))`` with respect to ``inputs``.

    Args:
        fn: Callable on backend tensors returning a tensor (it is summed).
        *inputs: Array-likes (converted to float tensors of their own dtype, float32
            for non-float inputs).
        argnums: Optional indices of the inputs to differentiate; default all.
        jit: Compile the gradient computation (``tf.function`` / ``jax.jit``; ignored
            on torch).

    Returns:
        List of NumPy arrays: the gradients, in the order of ``argnums``.
    """
    arrays = _as_float_arrays(inputs)
    argnums = list(range(len(arrays))) if argnums is None else list(argnums)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        def tf_grads(*xs):
            with tf.GradientTape() as tape:
                for i in argnums:
                    tape.watch(xs[i])
                out = tf.reduce_sum(fn(*xs))
            return tape.gradient(
                out,
                [xs[i] for i in argnums],
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )

        if jit:
            tf_grads = tf.function(tf_grads)
        grads = tf_grads(*[tf.convert_to_tensor(a) for a in arrays])
        return [np.asarray(g) for g in grads]
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        xs = [jnp.asarray(a) for a in arrays]

        def total(*args):
            return jnp.sum(fn(*args))

        grad_fn = jax.grad(total, argnums=tuple(argnums))
        if jit:
            grad_fn = jax.jit(grad_fn)
        grads = grad_fn(*xs)
        return [np.asarray(g) for g in grads]
    if backend == "torch":
        import torch

        xs = [torch.tensor(a) for a in arrays]
        for i in argnums:
            xs[i].requires_grad_(True)
        out = fn(*xs).sum()
        grads = torch.autograd.grad(out, [xs[i] for i in argnums], allow_unused=True)
        return [
            np.zeros_like(arrays[i]) if g is None else g.detach().cpu().numpy()
            for i, g in zip(argnums, grads, strict=True)
        ]
    raise NotImplementedError(f"grad: unsupported backend {backend!r}")
