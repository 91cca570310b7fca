"""The LMU memory's chunked form: ``T / C`` sequential steps, each a GEMM.

The sequence is cut into chunks of ``C`` steps: inside a chunk the memory is a
``C``-tap Toeplitz product, and the memory entering each chunk is carried by ``A^C``;
the intra-chunk products and the carried states' responses are one matrix product
with the constant operators of :func:`chunk_operators_np` (or, for a trainable
theta, :func:`chunk_operators`). Needs a static ``T``; the chunk length is chosen by
:func:`lmuformer_keras.layers.lmu_memory.chunk_length_for`.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from lmuformer_keras import backend_utils


def chunk_operators_np(a, b, chunk: int):
    """Constant operators of :func:`causal_conv_chunked` (NumPy float64).

    For the memory ``m_{nC+i} = A^{i+1} s_n + sum_{k<=i} H[i-k] u_{nC+k}``
    (``0 <= i < C``) of chunk ``n`` with entering state ``s_n = m_{nC-1}``
    (``s_0 = 0``):

    - ``operator`` ``(C + order, C * order)``: rows ``k < C`` hold the
      intra-chunk Toeplitz taps ``G[k, i] = H[i - k]`` (0 for ``i < k``), rows
      ``C + j`` the carried responses ``P[j, i] = (A^{i+1})[:, j]``, so that the
      chunk's ``C`` memories are ``[u_chunk ; s_n] @ operator``;
    - ``h_end`` ``(C, order)``: ``H[C - 1 - k]``, the chunk's inputs' share of
      its last memory, ``e_n = u_chunk @ h_end``;
    - ``a_chunk_t`` ``(order, order)``: ``(A^C)^T``, so that
      ``s_{n+1} = s_n @ (A^C)^T + e_n``.

    Args:
        a: ``(order, order)`` discrete state matrix.
        b: ``(order,)`` discrete input vector.
        chunk: Chunk length ``C``.

    Returns:
        ``(operator, h_end, a_chunk_t)`` float64 arrays.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    order = b.shape[0]
    powers = np.empty((chunk + 1, order, order))  # A^0 .. A^C
    powers[0] = np.eye(order)
    for k in range(1, chunk + 1):
        powers[k] = a @ powers[k - 1]
    h = powers[:chunk] @ b  # (C, order): H[k] = A^k B
    lag = np.arange(chunk)[None, :] - np.arange(chunk)[:, None]  # [k, i]: i - k
    taps = np.where((lag >= 0)[..., None], h[np.maximum(lag, 0)], 0.0)
    carry = np.transpose(powers[1:], (2, 0, 1))  # [j, i, r] = A^{i+1}[r, j]
    operator = np.concatenate(
        [taps.reshape(chunk, chunk * order), carry.reshape(order, chunk * order)]
    )
    return operator, h[::-1].copy(), powers[chunk].T.copy()


def chunk_operators(a, b, chunk: int):
    """:func:`chunk_operators_np` in ``keras.ops`` (differentiable in ``A``, ``B``;
    for a trainable theta). ``A^1 .. A^C`` by doubling: log2(C) batched products."""
    order = b.shape[0]
    powers = a[None]  # A^1 .. A^n
    while powers.shape[0] < chunk:
        n = powers.shape[0]
        more = ops.matmul(powers[: min(n, chunk - n)], powers[n - 1])
        powers = ops.concatenate([powers, more], axis=0)
    eye = ops.eye(order, dtype=a.dtype)[None]
    h = ops.matmul(ops.concatenate([eye, powers[:-1]], 0), b[:, None])[..., 0]
    lag = np.arange(chunk)[None, :] - np.arange(chunk)[:, None]
    mask = ops.convert_to_tensor((lag >= 0)[..., None], dtype=a.dtype)
    taps = ops.take(h, np.maximum(lag, 0).reshape(-1), axis=0)
    taps = ops.reshape(taps, (chunk, chunk, order)) * mask
    carry = ops.transpose(powers, (2, 0, 1))
    operator = ops.concatenate(
        [
            ops.reshape(taps, (chunk, chunk * order)),
            ops.reshape(carry, (order, chunk * order)),
        ],
        axis=0,
    )
    return operator, ops.flip(h, axis=0), ops.transpose(powers[-1])


def _chunk_rows(u, h_end, a_chunk_t):
    """``[u_chunk_n ; s_n]`` for every row ``(b, d)`` and chunk ``n`` of
    :func:`causal_conv_chunked`: ``(batch * D, N, C + order)``, or the chunks
    alone ``(batch * D, 1, C)`` when there is one chunk (no state enters it)."""
    length, d = u.shape[1], u.shape[2]
    chunk = h_end.shape[0]
    n = -(-length // chunk)
    x = u if d == 1 else ops.transpose(u, (0, 2, 1))  # (B, T, 1) or (B, D, T)
    x = ops.reshape(x, (-1, length))  # rows: (b, d)
    if n * chunk > length:
        x = ops.pad(x, [[0, 0], [0, n * chunk - length]])
    x = ops.reshape(x, (-1, n, chunk))  # (B * D, N, C)
    if n == 1:
        return x
    # e_n of every chunk but the last, (B * D, order) each; one unstack (not N
    # slices, each of whose gradients would be a zero-filled (B * D, N, order)).
    ends = ops.unstack(backend_utils.matmul(x[:, :-1], h_end), axis=1)
    s = ends[0]
    states = [ops.zeros_like(s), s]
    for e in ends[1:]:  # s_{j+1} = s_j (A^C)^T + e_j
        s = ops.matmul(s, a_chunk_t) + e
        states.append(s)
    return ops.concatenate([x, ops.stack(states, axis=1)], axis=-1)


def causal_conv_chunked(u, operator, h_end, a_chunk_t):
    """Causal convolution in chunks: ``T / C`` sequential steps, each a GEMM.

    With the sequence cut into ``N = ceil(T / C)`` chunks (zeros appended), the
    state entering chunk ``n`` follows the chunk-level recurrence

        s_0 = 0,   s_{n+1} = A^C s_n + sum_{k<C} H[C-1-k] u_{nC+k},

    and the chunk's memories are, all ``N`` chunks and ``C`` steps at once,

        m_{nC+i} = sum_{k<=i} H[i-k] u_{nC+k} + A^{i+1} s_n
                 = ([u_chunk_n ; s_n] @ operator)[i],

    one ``(batch * D * N, C + order) @ (C + order, C * order)`` product. Work:
    ``(C + order) * order`` multiply-adds per step and memory (the RNN: ``order^2``
    in ``T`` dependent steps), plus ``N`` dependent ``(batch * D, order)``
    products.

    Args:
        u: ``(batch, T, D)`` encoded input, ``T`` static.
        operator, h_end, a_chunk_t: :func:`chunk_operators_np` (or
            :func:`chunk_operators`) for the chunk length ``C``, of ``u``'s dtype.

    Returns:
        ``(batch, T, D, order)``: ``m[b, t, d] = sum_{k<=t} H[t - k] u[b, k, d]``.
    """
    length, d = u.shape[1], u.shape[2]
    order = a_chunk_t.shape[0]
    batch = ops.shape(u)[0]
    z = _chunk_rows(u, h_end, a_chunk_t)
    m = backend_utils.matmul(z, operator[: z.shape[-1]])  # (B * D, N, C * order)
    m = ops.reshape(m, (-1, m.shape[1] * h_end.shape[0], order))[:, :length]
    if d == 1:
        return ops.reshape(m, (batch, length, 1, order))
    return ops.transpose(ops.reshape(m, (batch, d, length, order)), (0, 2, 1, 3))


def projected_causal_conv_chunked(u, operator, h_end, a_chunk_t, kernel):
    """``causal_conv_chunked(u) @ kernel`` without forming the memories.

    The chunk's memories are ``[u_chunk ; s_n] @ operator``, so their product with
    ``W`` (``(D * order, units)``, row blocks ``W_d``) is
    ``sum_d [u_chunk ; s_n]_d @ (operator W_d)``: one
    ``(batch * N, D * (C + order)) @ (D * (C + order), C * units)`` product, after
    ``(C + order) * C * order * units`` multiply-adds per call (independent of the
    batch) for ``operator W_d``.

    Args:
        u: ``(batch, T, D)`` encoded input, ``T`` static.
        operator, h_end, a_chunk_t: As for :func:`causal_conv_chunked`.
        kernel: ``(D * order, units)``.

    Returns:
        ``(batch, T, units)``.
    """
    length, d = u.shape[1], u.shape[2]
    chunk, order = h_end.shape[0], a_chunk_t.shape[0]
    units = kernel.shape[-1]
    z = _chunk_rows(u, h_end, a_chunk_t)  # (B * D, N, R)
    rows, n = z.shape[-1], z.shape[1]
    op = ops.reshape(operator[:rows], (rows * chunk, order))
    if d == 1:
        folded = ops.reshape(backend_utils.matmul(op, kernel), (rows, chunk * units))
    else:
        blocks = ops.reshape(kernel, (d, order, units))
        folded = ops.matmul(op[None], blocks)  # (D, R * C, units)
        folded = ops.reshape(folded, (d * rows, chunk * units))
        z = ops.reshape(z, (-1, d, n, rows))
        z = ops.reshape(ops.transpose(z, (0, 2, 1, 3)), (-1, n, d * rows))
    y = backend_utils.matmul(z, folded)  # (B, N, C * units)
    return ops.reshape(y, (-1, n * chunk, units))[:, :length]
