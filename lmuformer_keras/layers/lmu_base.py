"""Arguments, weights and configuration shared by ``LMUCell`` and ``LMUParallel``.

Both layers own the same weights, created in the same order, so the weights of one
load into the other (``other.set_weights(layer.get_weights())``):

1. ``encoder_kernel`` ``(features, memory_d)`` and ``encoder_bias`` ``(memory_d,)``:
   ``u_t = encoder_activation(x_t @ W_u + b_u)`` (absent when
   ``kernel_initializer=None``: then ``u_t = x_t``);
2. ``theta`` (only with ``trainable_theta=True``);
3. the weights of ``hidden_cell``, which maps ``[m_t ; x_t]`` (or ``m_t``) to ``h_t``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from lmuformer_keras import lmu
from lmuformer_keras.layers import lmu_response

# With trainable_theta, theta is kept >= THETA_FLOOR_FRACTION * its initial value, so
# that the static scaling-and-squaring of the in-graph ZOH discretization stays exact.
THETA_FLOOR_FRACTION = 0.25


def is_rnn_cell(layer: keras.layers.Layer | None) -> bool:
    """True for a recurrent cell (it has a ``state_size``)."""
    return layer is not None and hasattr(layer, "state_size")


class LMUBase(keras.layers.Layer):
    """Base of the LMU layers: see ``LMUCell`` for the arguments."""

    def __init__(
        self,
        memory_d: int,
        order: int,
        theta: float,
        hidden_cell: keras.layers.Layer | None = None,
        input_to_hidden: bool = False,
        discretizer: str = "zoh",
        trainable_theta: bool = False,
        kernel_initializer: Any = "glorot_uniform",
        use_bias: bool = False,
        bias_initializer: Any = "zeros",
        encoder_activation: Any = None,
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        name = type(self).__name__
        if (
            isinstance(memory_d, bool)
            or not isinstance(memory_d, (int, np.integer))
            or memory_d < 1
        ):
            raise ValueError(
                f"{name}: memory_d must be an integer >= 1, got memory_d={memory_d!r}"
            )
        try:
            lmu.validate_lmu_args(order, theta, discretizer)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        if isinstance(hidden_cell, dict):
            hidden_cell = keras.saving.deserialize_keras_object(hidden_cell)
        if hidden_cell is not None and not isinstance(hidden_cell, keras.layers.Layer):
            raise ValueError(
                f"{name}: hidden_cell must be a Keras layer, an RNN cell or None, "
                f"got hidden_cell={hidden_cell!r}"
            )
        if input_to_hidden and hidden_cell is None:
            raise ValueError(
                f"{name}: input_to_hidden=True needs a hidden_cell, "
                "got hidden_cell=None"
            )
        if kernel_initializer is None and use_bias:
            raise ValueError(
                f"{name}: use_bias=True needs an input encoder, got "
                "kernel_initializer=None (no encoder: u_t = x_t)"
            )
        self.memory_d = int(memory_d)
        self.order = int(order)
        self.theta = float(theta)
        self.hidden_cell = hidden_cell
        self.input_to_hidden = bool(input_to_hidden)
        self.discretizer = discretizer
        self.trainable_theta = bool(trainable_theta)
        self.kernel_initializer = (
            None
            if kernel_initializer is None
            else keras.initializers.get(kernel_initializer)
        )
        self.use_bias = bool(use_bias)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.encoder_activation = keras.activations.get(encoder_activation)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)

        self._a_np, self._b_np = lmu.lmu_matrices(self.order, self.theta, discretizer)
        a0, b0 = lmu.legendre_delay_system(self.order)
        self._a0_np, self._b0_np = a0, b0
        self._theta_min = THETA_FLOOR_FRACTION * self.theta
        self._num_squarings = lmu_response.num_squarings_for(
            float(np.abs(a0).sum(axis=0).max()), self._theta_min
        )

    @property
    def memory_size(self) -> int:
        """Size of the flattened memory ``memory_d * order``."""
        return self.memory_d * self.order

    def _check_features(self, input_shape: tuple) -> int:
        name = self.name
        features = input_shape[-1]
        if features is None:
            raise ValueError(
                f"{name}: the last input dimension (features) must be known, "
                f"got input shape {tuple(input_shape)}"
            )
        if self.kernel_initializer is None and features != self.memory_d:
            raise ValueError(
                f"{name}: without an input encoder (kernel_initializer=None) the "
                f"input's last dimension must equal memory_d={self.memory_d}, got "
                f"input shape {tuple(input_shape)}"
            )
        return int(features)

    def _build_lmu(self, features: int) -> None:
        """Creates the weights in the shared order (see the module docstring)."""
        self.features = features
        if self.kernel_initializer is not None:
            self.encoder_kernel = self.add_weight(
                name="encoder_kernel",
                shape=(features, self.memory_d),
                initializer=self.kernel_initializer,
                regularizer=self.kernel_regularizer,
                constraint=self.kernel_constraint,
            )
            self.encoder_bias = (
                self.add_weight(
                    name="encoder_bias",
                    shape=(self.memory_d,),
                    initializer=self.bias_initializer,
                    regularizer=self.bias_regularizer,
                    constraint=self.bias_constraint,
                )
                if self.use_bias
                else None
            )
        if self.trainable_theta:
            self.theta_weight = self.add_weight(
                name="theta",
                shape=(),
                initializer=keras.initializers.Constant(self.theta),
            )
        if self.hidden_cell is not None:
            hidden_in = self.memory_size + (features if self.input_to_hidden else 0)
            if not self.hidden_cell.built:
                self.hidden_cell.build((None, hidden_in))

    def _hidden_output_size(self) -> int:
        if self.hidden_cell is None:
            return self.memory_size
        if is_rnn_cell(self.hidden_cell):
            size = self.hidden_cell.output_size
            return int(size if isinstance(size, (int, np.integer)) else size[-1])
        hidden_in = self.memory_size + (self.features if self.input_to_hidden else 0)
        return int(self.hidden_cell.compute_output_shape((None, hidden_in))[-1])

    def encode(self, x):
        """``u = encoder_activation(x @ W_u + b_u)``, or ``x`` without an encoder."""
        if self.kernel_initializer is None:
            return x
        u = ops.matmul(x, ops.cast(self.encoder_kernel, x.dtype))
        if self.encoder_bias is not None:
            u = u + ops.cast(self.encoder_bias, x.dtype)
        return self.encoder_activation(u)

    def discrete_matrices(self, dtype: str):
        """``(A, B)`` as tensors: constants, or functions of the trainable theta."""
        if not self.trainable_theta:
            return (
                ops.convert_to_tensor(self._a_np, dtype=dtype),
                ops.convert_to_tensor(self._b_np, dtype=dtype),
            )
        theta = ops.maximum(ops.cast(self.theta_weight, dtype), self._theta_min)
        return lmu_response.discretize(
            ops.convert_to_tensor(self._a0_np, dtype=dtype),
            ops.convert_to_tensor(self._b0_np, dtype=dtype),
            theta,
            self.discretizer,
            self._num_squarings,
        )

    def memory_step(self, u_t, m_prev):
        """One memory update ``m_t = A @ m_{t-1} + B * u_t`` on flat memories.

        Args:
            u_t: ``(batch, memory_d)`` encoded input.
            m_prev: ``(batch, memory_d * order)`` previous memory (row-major), cast
                to the dtype of ``u_t``.

        Returns:
            ``(batch, memory_d * order)``.
        """
        dtype = keras.backend.standardize_dtype(u_t.dtype)
        a, b = self.discrete_matrices(dtype)
        m = ops.reshape(ops.cast(m_prev, dtype), (-1, self.memory_d, self.order))
        m = ops.matmul(m, ops.transpose(a)) + u_t[:, :, None] * b
        return ops.reshape(m, (-1, self.memory_size))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "memory_d": self.memory_d,
                "order": self.order,
                "theta": self.theta,
                "hidden_cell": (
                    None
                    if self.hidden_cell is None
                    else keras.saving.serialize_keras_object(self.hidden_cell)
                ),
                "input_to_hidden": self.input_to_hidden,
                "discretizer": self.discretizer,
                "trainable_theta": self.trainable_theta,
                "kernel_initializer": (
                    None
                    if self.kernel_initializer is None
                    else keras.initializers.serialize(self.kernel_initializer)
                ),
                "use_bias": self.use_bias,
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "encoder_activation": keras.activations.serialize(
                    self.encoder_activation
                ),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer
                ),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": keras.constraints.serialize(
                    self.kernel_constraint
                ),
                "bias_constraint": keras.constraints.serialize(self.bias_constraint),
            }
        )
        return config
