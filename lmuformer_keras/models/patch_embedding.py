"""Convolutional patch embedding of LMUFormer (kernel-3 Conv1D stack)."""

from __future__ import annotations

from typing import Any

import keras

from lmuformer_keras.layers.conv1d import Conv1D
from lmuformer_keras.layers.conv_step import conv1d_buffer_shape, conv1d_step
from lmuformer_keras.models.blocks import (
    batch_norm,
    bn_after,
    bn_step,
    lif_step,
    make_lif,
    per_frame,
    relu,
    spec,
)


@keras.saving.register_keras_serializable(package="lmuformer_keras")
class PatchEmbedding(keras.layers.Layer):
    """Kernel-3 Conv1D stack plus a relative-position conv, frame rate unchanged.

    Non-spiking (``n = num_layers``)::

        x_i = BN_i(ReLU(Conv_i(x_{i-1})))        i = 1..n,  channels F -> dim
        y = x_n + Conv_rpe(x_n)

    Spiking::

        x_1 = Conv_1(x_0);  x_i = Conv_i(LIF(BN(x_{i-1})))   i = 2..n
        y = x_n + Conv_rpe(LIF(BN(x_n)))

    The convolutions have no bias. ``causal=True`` pads on the left only, so frame
    ``t`` sees frames ``t-2 .. t`` (streamable); ``causal=False`` pads symmetrically
    as the reference does and looks one frame ahead per conv.

    Args:
        dim: Output channels.
        num_layers: Convolutions before the relative-position conv (>= 1).
        spiking: Spiking variant.
        causal: Left padding (streamable) or symmetric padding (reference).
        kernel_size: Convolution width (3 in the paper).
        lif_config: LIF arguments of the spiking variant.
        **kwargs: Base layer arguments.
    """

    def __init__(
        self,
        dim: int,
        num_layers: int = 4,
        spiking: bool = False,
        causal: bool = True,
        kernel_size: int = 3,
        lif_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_layers < 1:
            raise ValueError(
                f"PatchEmbedding: num_layers must be >= 1, got num_layers={num_layers}"
            )
        self.dim = int(dim)
        self.num_layers = int(num_layers)
        self.spiking = bool(spiking)
        self.causal = bool(causal)
        self.kernel_size = int(kernel_size)
        self.lif_config = dict(lif_config or {})
        padding = "causal" if causal else "same"

        def conv(name):
            return Conv1D(
                self.dim,
                self.kernel_size,
                padding=padding,
                use_bias=False,
                name=name,
                dtype=self.dtype_policy,
            )

        self.convs = [conv(f"conv{i}") for i in range(self.num_layers)]
        self.rpe_conv = conv("rpe_conv")
        self.bns = [
            batch_norm(f"bn{i}", self.dtype_policy) for i in range(self.num_layers)
        ]
        # Spiking: BN -> LIF before conv_1 .. conv_{n-1} and before the rpe conv.
        self.lifs = (
            [
                make_lif(f"lif{i}", self.lif_config, self.dtype_policy)
                for i in range(self.num_layers)
            ]
            if self.spiking
            else []
        )

    def build(self, input_shape: tuple) -> None:
        channels = input_shape[-1]
        for i, conv in enumerate(self.convs):
            conv.build((None, None, channels))
            channels = self.dim
            self.bns[i].build((None, self.dim))  # applied per frame (rows)
        self.rpe_conv.build((None, None, self.dim))
        self.in_channels = int(input_shape[-1])

    def call(self, x, training: bool | None = None):
        if self.spiking:

            def bn_lif(i, x):
                return self.lifs[i](per_frame(bn_after(self.bns[i], training), x))

            x = self.convs[0](x)
            for i in range(1, self.num_layers):
                x = self.convs[i](bn_lif(i - 1, x))
            return x + self.rpe_conv(bn_lif(self.num_layers - 1, x))
        for conv, bn in zip(self.convs, self.bns, strict=True):
            x = per_frame(bn_after(bn, training, relu), conv(x))
        return x + self.rpe_conv(x)

    def state_specs(self) -> list:
        specs = []
        channels = self.in_channels
        for conv in self.convs:
            specs.append(spec(conv, "buffer", conv1d_buffer_shape(conv, channels)))
            channels = self.dim
        specs.append(
            spec(self.rpe_conv, "buffer", conv1d_buffer_shape(self.rpe_conv, self.dim))
        )
        specs += [spec(lif, "membrane", (self.dim,)) for lif in self.lifs]
        return specs

    def step(self, x_t, states: list):
        """One frame: ``(x_t, states) -> (y_t, new_states)`` (inference mode)."""
        n = self.num_layers
        buffers, membranes = list(states[: n + 1]), list(states[n + 1 :])
        new_buffers, new_membranes = [], []
        if self.spiking:
            x_t, buf = conv1d_step(self.convs[0], x_t, buffers[0])
            new_buffers.append(buf)
            for i in range(1, n):
                s, v = lif_step(
                    self.lifs[i - 1], bn_step(self.bns[i - 1], x_t), membranes[i - 1]
                )
                new_membranes.append(v)
                x_t, buf = conv1d_step(self.convs[i], s, buffers[i])
                new_buffers.append(buf)
            s, v = lif_step(
                self.lifs[n - 1], bn_step(self.bns[n - 1], x_t), membranes[n - 1]
            )
            new_membranes.append(v)
            r, buf = conv1d_step(self.rpe_conv, s, buffers[n])
        else:
            for i in range(n):
                y, buf = conv1d_step(self.convs[i], x_t, buffers[i])
                x_t = bn_step(self.bns[i], relu(y))
                new_buffers.append(buf)
            r, buf = conv1d_step(self.rpe_conv, x_t, buffers[n])
        new_buffers.append(buf)
        return x_t + r, new_buffers + new_membranes

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], self.dim)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            dim=self.dim,
            num_layers=self.num_layers,
            spiking=self.spiking,
            causal=self.causal,
            kernel_size=self.kernel_size,
            lif_config=self.lif_config,
        )
        return config
