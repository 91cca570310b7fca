"""LMU memory math in ``keras.ops``: discretization, impulse response, causal conv.

The LMU memory is a linear time-invariant system, so over a whole sequence it is the
causal convolution of the encoded input ``u`` with the impulse response
``H[k] = A^k B``:

    m_t = sum_{k=0}^{t} H[t - k] u_k.

Two loop-free ways to compute it are provided: ``causal_conv_fft`` (O(T log T), via
``keras.ops.rfft`` / ``irfft`` zero-padded to at least ``2T - 1`` so that the circular
convolution equals the linear one) and ``causal_conv_direct`` (a lower-triangular
Toeplitz matrix product, O(T^2), the form an int8 runtime can take).

``causal_conv_convolution`` computes the direct form's sum with the backend's
convolution op (``resolve_conv_mode`` picks it at inference where it is faster).

``causal_conv_chunked`` splits the sequence into chunks of ``C`` steps: inside a
chunk the memory is a ``C``-tap Toeplitz product, and the memory entering each chunk
is carried by ``A^C`` (``T / C`` sequential steps instead of ``T``); the intra-chunk
products and the carried states' responses are one matrix product (see
:func:`chunk_operators_np`).

When the memories only feed a product ``m_t @ W``, the product folds into the impulse
response (``projected_impulse_response``) and ``projected_causal_conv_fft`` /
``_direct`` / ``_convolution`` give ``m_t @ W`` without forming ``m_t``.
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

from lmuformer_keras import backend_utils

CONV_MODES = ("auto", "fft", "direct", "chunked")

# Crossover lengths for conv_mode="auto": the direct (Toeplitz) form is used up to and
# including this sequence length, the FFT form above it. Measured on the project's
# 2-core CPU machine with `python benchmarks/lmu_speed.py --crossover` (forward +
# backward, batch 32, order 256, memory_d 1); see BUILD.md.
AUTO_DIRECT_MAX_LENGTH = {"tensorflow": 512, "jax": 896, "torch": 640}

# conv_mode="auto" for the memory itself (LMUParallel.memory): per backend, the
# first (max length, form) entry with T <= max length (None: any length). Measured
# with `python benchmarks/lmu_speed.py --crossover` (forward + backward, batch 32,
# order 256, memory_d 1); see docs/benchmarks.md.
# The direct form costs about T multiply-adds per step and memory, the chunked one
# C + order, the FFT form O(log T), but FFT ran slower than the faster of the other
# two at every length measured on these CPUs (32-4096).
AUTO_MEMORY_FORMS = {
    "tensorflow": ((256, "direct"), (None, "chunked")),
    "jax": ((192, "direct"), (None, "chunked")),
    "torch": ((256, "direct"), (None, "chunked")),
    "default": ((256, "direct"), (None, "chunked")),
}

# Target chunk length of conv_mode="chunked" per backend (chunk_length_for spreads
# T over ceil(T / target) chunks). `benchmarks/lmu_speed.py --chunks` did not
# separate 16-128 consistently on the loaded machine (docs/benchmarks.md).
CHUNK_LENGTH = {"tensorflow": 32, "jax": 32, "torch": 32}

# Backends on which, at inference, the direct form runs as the backend's convolution
# op (kernel: the flipped impulse response, T taps) instead of gathering the Toeplitz
# matrix and multiplying: there it is 1.1-1.2x faster at T = 32 and 1.3-2.7x at
# T = 128 and 512 (batch 32, 256 outputs, float32; `benchmarks/lmu_memory_forms.py`).
# Not on JAX (XLA's convolution is 1.1-1.7x slower than the gather form there), and
# not in training: forward + backward through the convolution, with its one-channel
# weight gradient, is 1.8-3.7x slower than through the Toeplitz product.
DIRECT_AS_CONVOLUTION_AT_INFERENCE = ("tensorflow", "torch")


def expm_taylor(x, num_squarings: int, num_terms: int = 10):
    """Matrix exponential by scaling and squaring of a Taylor series (keras.ops).

    ``expm(x) = (sum_{k<=K} (x / 2^s)^k / k!)^(2^s)``. Differentiable; ``s`` is
    static so the graph is loop-free. Accurate when ``||x||_1 / 2^s <= 0.5``.
    """
    n = x.shape[-1]
    y = x / (2.0**num_squarings)
    eye = ops.eye(n, dtype=x.dtype)
    term = eye
    result = eye
    for k in range(1, num_terms + 1):
        term = ops.matmul(term, y) / float(k)
        result = result + term
    for _ in range(num_squarings):
        result = ops.matmul(result, result)
    return result


def discretize(a0, b0, theta, discretizer: str, num_squarings: int):
    """In-graph discretization of ``(A0 / theta, B0 / theta)`` for a trainable theta.

    Returns ``(A, B)`` tensors; see :func:`lmuformer_keras.lmu.lmu_matrices`.
    """
    order = a0.shape[0]
    a_c = a0 / theta
    b_c = b0 / theta
    if discretizer == "euler":
        return ops.eye(order, dtype=a_c.dtype) + a_c, b_c
    # expm([[A_c, B_c], [0, 0]]) = [[A, B], [0, 1]] (zero-order hold).
    top = ops.concatenate([a_c, b_c[:, None]], axis=1)
    block = ops.concatenate([top, ops.zeros((1, order + 1), dtype=a_c.dtype)], axis=0)
    e = expm_taylor(block, num_squarings)
    return e[:order, :order], e[:order, order]


def num_squarings_for(a0_norm1: float, theta_min: float) -> int:
    """Static number of squarings so that ``||A0 / theta||_1 / 2^s <= 0.5``."""
    return max(0, math.ceil(math.log2(max(a0_norm1 / theta_min / 0.5, 1.0))))


def impulse_response_static(a, b, length: int):
    """``H[k] = A^k B`` for ``k < length`` with a static length (log2(T) matmuls)."""
    h = b[None, :]
    a_pow = a
    n = 1
    while n < length:
        h = ops.concatenate([h, ops.matmul(h, ops.transpose(a_pow))], axis=0)
        n *= 2
        if n < length:
            a_pow = ops.matmul(a_pow, a_pow)
    return h[:length]


def impulse_response_dynamic(a, b, length):
    """``H[k] = A^k B`` for a length only known at run time (a scan over steps)."""

    def step(h, _):
        return ops.matmul(a, h), h

    _, hs = ops.scan(step, b, xs=ops.zeros((length,), dtype=b.dtype))
    return hs


def _fft_operands(u, h):
    """``u`` as ``(batch, D, n)`` and ``h`` as ``(n, ...)``, zero-padded to an FFT
    length ``n >= 2T - 1`` (no circular wrap-around), with ``T`` and ``n``."""
    ut = ops.transpose(u, (0, 2, 1))  # (B, D, T)
    length = u.shape[1]
    if isinstance(length, int):
        # Next power of two >= 2T - 1: no circular wrap-around, fastest FFT size.
        n = 1 << max(0, (2 * length - 2).bit_length())
        ut = ops.pad(ut, [[0, 0], [0, 0], [0, n - length]])
        h = ops.pad(h, [[0, n - length]] + [[0, 0]] * (len(h.shape) - 1))
    else:  # Unknown at trace time (TensorFlow graph): pad to exactly 2T.
        length = ops.shape(u)[1]
        n = 2 * length
        ut = ops.concatenate([ut, ops.zeros_like(ut)], axis=-1)
        h = ops.concatenate([h, ops.zeros_like(h)], axis=0)
    return ut, h, length, n


def causal_conv_fft(u, h):
    """Causal convolution by FFT.

    Args:
        u: ``(batch, T, D)`` encoded input.
        h: ``(T, order)`` impulse response.

    Returns:
        ``(batch, T, D, order)``: ``m[b, t, d] = sum_{k<=t} h[t - k] u[b, k, d]``.
    """
    ut, h, length, n = _fft_operands(u, h)
    ur, ui = ops.rfft(ut)  # (B, D, F)
    hr, hi = ops.rfft(ops.transpose(h))  # (order, F)
    ur, ui = ur[:, :, None, :], ui[:, :, None, :]
    pr = ur * hr - ui * hi
    pi = ur * hi + ui * hr
    m = ops.irfft((pr, pi), fft_length=n)  # (B, D, order, n)
    m = m[..., :length]
    return ops.transpose(m, (0, 3, 1, 2))


def projected_causal_conv_fft(u, g):
    """Causal convolution with a projected impulse response, by FFT.

    Args:
        u: ``(batch, T, D)`` encoded input.
        g: ``(D, T, units)``: ``g[d, k] = H[k] @ W_d`` (see
            :func:`projected_impulse_response`).

    Returns:
        ``(batch, T, units)``: ``y[b, t] = sum_d sum_{k<=t} g[d, t - k] u[b, k, d]``.
    """
    ut, g, length, n = _fft_operands(u, ops.transpose(g, (1, 0, 2)))  # g: (n, D, U)
    ur, ui = ops.rfft(ut)  # (B, D, F)
    gr, gi = ops.rfft(ops.transpose(g, (1, 2, 0)))  # (D, U, F)
    pr = ops.einsum("bdf,duf->buf", ur, gr) - ops.einsum("bdf,duf->buf", ui, gi)
    pi = ops.einsum("bdf,duf->buf", ur, gi) + ops.einsum("bdf,duf->buf", ui, gr)
    y = ops.irfft((pr, pi), fft_length=n)[..., :length]  # (B, U, T)
    return ops.transpose(y, (0, 2, 1))


def lower_toeplitz(u):
    """``U[b, d, t, k] = u[b, t - k, d]`` (0 for ``k > t``): ``(batch, D, T, T)``."""
    length = u.shape[1] if isinstance(u.shape[1], int) else ops.shape(u)[1]
    t = ops.arange(length)
    lag = t[:, None] - t[None, :]  # (T, T): t - k
    mask = ops.cast(lag >= 0, u.dtype)
    ut = ops.transpose(u, (0, 2, 1))  # (B, D, T)
    return ops.take(ut, ops.maximum(lag, 0), axis=2) * mask


def causal_conv_direct(u, h):
    """Causal convolution as a lower-triangular Toeplitz matrix product.

    Builds ``U[b, d, t, k] = u[b, t - k, d]`` (0 for ``k > t``) and returns
    ``U @ h`` rearranged to ``(batch, T, D, order)``. Loop-free; O(T^2) work.
    """
    m = ops.matmul(lower_toeplitz(u), h)  # (B, D, T, order)
    return ops.transpose(m, (0, 2, 1, 3))


def projected_causal_conv_direct(u, g):
    """:func:`projected_causal_conv_fft` as one Toeplitz matrix product.

    ``y[b, t] = sum_{d, k} U[b, d, t, k] g[d, k]``: the ``(batch, T, D * T)``
    Toeplitz rows times ``g`` flattened to ``(D * T, units)``.
    """
    toeplitz = lower_toeplitz(u)  # (B, D, T, T)
    shape = ops.shape(toeplitz)
    d, units = g.shape[0], g.shape[-1]
    if d > 1:
        toeplitz = ops.transpose(toeplitz, (0, 2, 1, 3))  # (B, T, D, T)
    rows = ops.reshape(toeplitz, (shape[0], shape[2], d * shape[3]))
    return backend_utils.matmul(rows, ops.reshape(g, (-1, units)))


def projected_impulse_response(h, kernel, memory_d: int):
    """``g[d, k] = H[k] @ W_d``, ``(memory_d, T, units)``.

    For memories ``m_t`` flattened to ``(memory_d * order,)`` and ``W`` of shape
    ``(memory_d * order, units)`` in ``memory_d`` row blocks ``W_d``, linearity
    gives ``m_t @ W = sum_d sum_{k<=t} u[k, d] g[d, t - k]``: the projection is a
    causal convolution of ``u`` itself (:meth:`LMUParallel.projected_memory`).
    """
    order = h.shape[-1]
    units = kernel.shape[-1]
    if memory_d == 1:
        return backend_utils.matmul(h, kernel)[None]
    blocks = ops.reshape(kernel, (memory_d, order, units))
    return ops.matmul(h[None], blocks)


def last_memory(u, h):
    """Only the final memory ``m_{T-1} = sum_k H[T-1-k] u_k``: ``(batch, D, order)``."""
    return ops.einsum("bkd,ko->bdo", u, ops.flip(h, axis=0))


def causal_conv_convolution(u, h):
    """:func:`causal_conv_direct` as the backend's convolution op.

    Each of the ``D`` inputs is convolved, as a one-channel signal left-padded
    with ``T - 1`` zeros, with the ``T``-tap kernel ``flip(h)`` (``order`` output
    channels). Needs a static ``T``.
    """
    batch, length, d = ops.shape(u)[0], u.shape[1], u.shape[2]
    x = ops.reshape(ops.transpose(u, (0, 2, 1)), (-1, length, 1))  # (B * D, T, 1)
    m = backend_utils.conv1d(x, ops.flip(h, axis=0)[:, None, :], length - 1)
    m = ops.reshape(m, (batch, d, length, h.shape[-1]))
    return ops.transpose(m, (0, 2, 1, 3))


def projected_causal_conv_convolution(u, g_reversed):
    """:func:`projected_causal_conv_fft` as the backend's convolution op: ``u``
    left-padded with ``T - 1`` zeros, convolved with the ``T``-tap kernel
    ``g_reversed`` (``g`` flipped in time, ``(D, T, units)``; flipping ``H``
    before :func:`projected_impulse_response` gives it with no flip of ``g``).
    Needs a static ``T``."""
    length = u.shape[1]
    d, _, units = g_reversed.shape
    if d == 1:
        kernel = ops.reshape(g_reversed, (length, 1, units))
    else:
        kernel = ops.transpose(g_reversed, (1, 0, 2))
    return backend_utils.conv1d(u, kernel, length - 1)


def chunk_length_for(length: int, target: int) -> int:
    """Chunk length for ``conv_mode="chunked"``: ``ceil(T / ceil(T / target))``.

    As many chunks as chunks of ``target`` steps would need, spread evenly, so the
    zero padding at the end is under one step per chunk (``T <= target``: one
    chunk, the whole sequence).
    """
    chunks = -(-length // max(1, target))
    return -(-length // chunks)


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


def resolve_conv_mode(
    conv_mode: str,
    length,
    backend: str,
    training: bool | None = False,
    projected: bool = False,
) -> str:
    """The form that computes the memory: ``"fft"``, ``"direct"``, ``"chunked"`` or
    ``"convolution"``.

    ``conv_mode="auto"`` picks by length from the measured table
    ``AUTO_MEMORY_FORMS`` for the memory itself, and between ``"direct"`` and
    ``"fft"`` (``AUTO_DIRECT_MAX_LENGTH``) for its projection
    (``projected=True``, :meth:`LMUParallel.projected_memory`). The forms that
    need a static ``T`` (``"chunked"``, ``"convolution"``) give way to ``"fft"``
    (also when ``"chunked"`` is asked for) when ``T``
    is unknown at trace time. ``"direct"`` runs as ``"convolution"`` (the same
    O(T^2) sum by the backend's convolution op) at inference on the backends in
    ``DIRECT_AS_CONVOLUTION_AT_INFERENCE`` when ``T`` is static.
    """
    if conv_mode == "auto":
        if not isinstance(length, int):
            return "fft"
        if projected:
            direct = length <= AUTO_DIRECT_MAX_LENGTH.get(backend, 64)
            conv_mode = "direct" if direct else "fft"
        else:
            table = AUTO_MEMORY_FORMS.get(backend, AUTO_MEMORY_FORMS["default"])
            conv_mode = next(f for t, f in table if t is None or length <= t)
    if conv_mode == "chunked" and not isinstance(length, int):
        return "fft"
    if (
        conv_mode == "direct"
        and not training
        and isinstance(length, int)
        and backend in DIRECT_AS_CONVOLUTION_AT_INFERENCE
    ):
        return "convolution"
    return conv_mode
