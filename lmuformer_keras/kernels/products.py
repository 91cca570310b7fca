"""Products: :func:`matmul` (float32 accumulation of bfloat16 on JAX) and the
channels-last :func:`conv1d`."""

from __future__ import annotations

import functools

import keras
from keras import ops


def matmul(x, w):
    """``x @ w`` for ``x`` of shape ``(..., k)`` and ``w`` of shape ``(k, n)``.

    ``keras.ops.matmul``, except on JAX with two bfloat16 operands: there the
    products accumulate in float32 (``preferred_element_type``) and the result is
    rounded to bfloat16 once, forward and in the custom VJP's two products
    (``dx = g @ w^T``, ``dw = x^T @ g``). XLA on CPU computes a bfloat16 x bfloat16
    -> bfloat16 product no faster than float32, but with float32 accumulation it
    uses the CPU's bfloat16 dot instructions (figures: ``docs/code_figures.md``).
    On TensorFlow and torch it is the backend's own product: their oneDNN kernels
    accumulate bfloat16 products in float32; TensorFlow's Eigen kernel (where oneDNN
    is off, e.g. ``TF_ENABLE_ONEDNN_OPTS=0``) accumulates in bfloat16, as
    ``keras.layers.Dense`` does there too.
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


def conv1d(x, kernel, pad_left: int = 0, pad_right: int = 0, bias=None):
    """Stride-1 convolution of channels-last ``x`` after zero padding in time.

        y_t = b + sum_{j=0}^{k-1} x_pad[t + j] @ W[j],   t = 0 .. T + pads - k

    with ``x_pad`` = ``pad_left`` zero frames, ``x`` ``(batch, T, C_in)``, then
    ``pad_right`` zero frames, and ``kernel`` ``W`` of shape ``(k, C_in, C_out)``:
    what ``keras.layers.Conv1D`` computes (one group, no dilation).

    - torch: ``x_pad`` viewed as a ``(batch, C_in, 1, T)`` image in channels-last
      memory order goes to ``conv2d`` as is, and its channels-last output is the
      ``(batch, T, C_out)`` result as is. Keras' torch convolution transposes its
      channels-last input to channels-first, which costs a copy in and a copy out
      that this path avoids (figures: ``docs/code_figures.md``);
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
