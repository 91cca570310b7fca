"""Products: :func:`matmul` (float32 accumulation of bfloat16 on JAX), the
channels-last :func:`conv1d`, and :func:`conv1d_as_window_product` (the same
convolution as one product of its input windows, JAX's bfloat16 training form)."""

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


def _jax_dot_float32(a, b, contract_a: int, contract_b: int):
    """JAX: ``a`` and ``b`` contracted over one axis each, accumulated in float32."""
    import jax
    import jax.numpy as jnp

    dims = (((contract_a,), (contract_b,)), ((), ()))
    return jax.lax.dot_general(a, b, dims, preferred_element_type=jnp.float32)


def _jax_row_major_transpose(a):
    """JAX: the transpose of the matrix ``a``, materialized in row-major order.

    A weight gradient ``x^T @ g`` contracts the rows of ``x`` and ``g``. XLA on CPU
    takes its fast bfloat16 kernel for that product only when ``x^T`` is an operand
    laid out row-major: as a rows-contracting dot, or with a plain transpose (which
    layout assignment folds back into the dot), it takes about twice as long
    (figures: ``docs/code_figures.md``). Flattening the transpose behind an
    optimization barrier pins that layout.
    """
    import jax
    import jax.numpy as jnp

    rows, cols = a.shape
    flat = jax.lax.optimization_barrier(jnp.transpose(a).reshape(-1))
    return flat.reshape((cols, rows))


def _jax_weight_gradient(x, g):
    """JAX: ``x^T @ g`` for ``x`` ``(rows, k)`` and ``g`` ``(rows, n)``, float32
    accumulation, on XLA's fast bfloat16 kernel: ``x^T`` materialized row-major
    (:func:`_jax_row_major_transpose`), then a plain product. (Transposing the
    narrower operand instead, ``(g^T @ x)^T`` when ``n < k``, measured no faster in
    the paper preset's training step.)"""
    return _jax_dot_float32(_jax_row_major_transpose(x), g, 1, 0)


@functools.cache
def _jax_matmul_float32_accumulation():
    import jax

    dot = _jax_dot_float32

    @jax.custom_vjp
    def product(x, w):
        return dot(x, w, x.ndim - 1, 0).astype(x.dtype)

    def product_fwd(x, w):
        return product(x, w), (x, w)

    def product_bwd(residuals, g):
        x, w = residuals
        g = g.astype(x.dtype)
        g_x = dot(g, w, g.ndim - 1, 1).astype(x.dtype)
        x_rows, g_rows = x.reshape((-1, x.shape[-1])), g.reshape((-1, g.shape[-1]))
        g_w = _jax_weight_gradient(x_rows, g_rows)
        return g_x, g_w.astype(w.dtype)

    product.defvjp(product_fwd, product_bwd)
    return product


def conv1d_as_window_product(
    x, kernel, pad_left: int = 0, pad_right: int = 0, bias=None
):
    """:func:`conv1d` as one product of the input's windows (im2col)::

        y_t = b + [x_pad[t] | ... | x_pad[t + k - 1]] @ [W[0]; ...; W[k-1]]

    the ``k`` frames of each window side by side (``k * C_in`` values) times the
    taps stacked (``(k * C_in, C_out)``).

    On JAX with bfloat16 operands the product accumulates in float32 and rounds to
    bfloat16 once, and its custom VJP is two products of the same kind:
    ``dWindows = g @ W^T`` (its ``k`` slices summed, shifted, into ``dx``) and
    ``dW = Windows^T @ g`` (:func:`_jax_weight_gradient`). That is JAX's bfloat16
    training form of the library's ``Conv1D``, faster than XLA's bfloat16
    convolution forward and backward (figures: ``docs/code_figures.md``). Elsewhere
    it is ``keras.ops.concatenate`` and :func:`matmul`.

    Args:
        x: ``(batch, T, C_in)``, with a static ``T``.
        kernel: ``(k, C_in, C_out)``, of ``x``'s dtype.
        pad_left: Zero frames before ``x``.
        pad_right: Zero frames after ``x``.
        bias: Optional ``(C_out,)``, of ``x``'s dtype.

    Returns:
        ``(batch, T + pad_left + pad_right - k + 1, C_out)``.
    """
    x, kernel = ops.convert_to_tensor(x), ops.convert_to_tensor(kernel, x.dtype)
    k, c_in, c_out = kernel.shape
    if x.shape[1] is None:
        raise ValueError(
            "conv1d_as_window_product: x needs a static number of frames, got "
            f"shape {tuple(x.shape)}"
        )
    frames = x.shape[1] + pad_left + pad_right - k + 1
    if frames < 1:
        raise ValueError(
            f"conv1d_as_window_product: {x.shape[1]} frames padded by "
            f"({pad_left}, {pad_right}) are fewer than the kernel's {k} taps"
        )
    if matmul_accumulates_in_float32(x.dtype, kernel.dtype):
        y = _jax_conv1d_window_product(k, pad_left, pad_right)(x, kernel)
    else:
        windows = _windows(x, k, pad_left, pad_right)
        y = matmul(windows, ops.reshape(kernel, (k * c_in, c_out)))
    return y if bias is None else ops.add(y, ops.convert_to_tensor(bias, x.dtype))


def _windows(x, k: int, pad_left: int, pad_right: int):
    """``(batch, frames, k * C_in)``: each output frame's ``k`` input frames."""
    if pad_left or pad_right:
        x = ops.pad(x, ((0, 0), (pad_left, pad_right), (0, 0)))
    frames = x.shape[1] - k + 1
    return ops.concatenate([x[:, j : j + frames] for j in range(k)], axis=-1)


@functools.cache
def _jax_conv1d_window_product(k: int, pad_left: int, pad_right: int):
    import jax
    import jax.numpy as jnp

    dot = _jax_dot_float32

    def forward(x, kernel):
        c_in, c_out = kernel.shape[1:]
        windows = _windows(x, k, pad_left, pad_right)
        rows = windows.reshape((-1, k * c_in))
        y = dot(rows, kernel.reshape((k * c_in, c_out)), 1, 0).astype(x.dtype)
        return y.reshape((*windows.shape[:2], c_out)), (rows, kernel)

    @jax.custom_vjp
    def product(x, kernel):
        return forward(x, kernel)[0]

    def backward(residuals, g):
        rows, kernel = residuals
        c_in, c_out = kernel.shape[1:]
        batch, frames = g.shape[:2]
        length = frames + k - 1 - pad_left - pad_right  # x's frames
        g_rows = g.astype(rows.dtype).reshape((-1, c_out))
        taps = kernel.reshape((k * c_in, c_out))
        d_windows = dot(g_rows, taps, 1, 1).reshape((batch, frames, k, c_in))
        # Frame j of window t is padded frame t + j: shift slice j by j and sum.
        d_padded = sum(
            jnp.pad(d_windows[:, :, j], ((0, 0), (j, k - 1 - j), (0, 0)))
            for j in range(k)
        )
        g_x = d_padded[:, pad_left : pad_left + length].astype(rows.dtype)
        g_kernel = _jax_weight_gradient(rows, g_rows)
        return g_x, g_kernel.reshape(kernel.shape).astype(kernel.dtype)

    product.defvjp(forward, backward)
    return product
