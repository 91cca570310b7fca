"""LMUFormer and spiking LMUFormer (Liu et al., ICLR 2024) as a Keras 3 model."""

from __future__ import annotations

import inspect
from typing import Any

import keras

from lmuformer_keras.models.blocks import StateSpec
from lmuformer_keras.models.channel_mixer import ChannelMixer
from lmuformer_keras.models.classifier_head import ClassifierHead
from lmuformer_keras.models.patch_embedding import PatchEmbedding
from lmuformer_keras.models.presets import preset_config
from lmuformer_keras.models.token_mixer import LMUTokenMixer


def _check_arguments(
    num_features: int,
    num_classes: int,
    dim: int,
    num_blocks: int,
    num_patch_layers: int,
    mlp_ratio: float,
    labels: list[str] | None,
) -> None:
    """Raises ``ValueError``, naming the argument and its value, on a bad size."""
    for arg, value, low in (
        ("num_features", num_features, 1),
        ("num_classes", num_classes, 1),
        ("dim", dim, 1),
        ("num_blocks", num_blocks, 0),
        ("num_patch_layers", num_patch_layers, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(
                f"LMUFormer: {arg} must be an integer >= {low}, got {arg}={value!r}"
            )
    if mlp_ratio <= 0:
        raise ValueError(
            f"LMUFormer: mlp_ratio must be > 0, got mlp_ratio={mlp_ratio!r}"
        )
    if labels is not None and len(labels) != num_classes:
        raise ValueError(
            f"LMUFormer: labels has {len(labels)} names but num_classes={num_classes}"
        )


@keras.saving.register_keras_serializable(package="lmuformer_keras")
class LMUFormer(keras.Model):
    """LMUFormer: conv patch embedding, LMU token mixer, conv channel mixer.

    For an input ``x`` of shape ``(batch, time, num_features)``::

        z = PatchEmbedding(x)                                  (time unchanged)
        for each of num_blocks blocks:
            z = z + LMUTokenMixer(z)
            z = z + ChannelMixer(z)
        frame_logits_t = ClassifierHead(z_t)                   (every frame)
        logits = mean_t frame_logits_t

    With ``causal=True`` (default) every layer only looks at past and present
    frames, so :class:`lmuformer_keras.streaming.StreamingModel` runs the same model
    one frame at a time with explicit states, giving the same ``frame_logits``.
    ``causal=False`` pads the patch-embedding convolutions symmetrically as the
    reference code does (it then looks ``num_patch_layers + 1`` frames ahead and
    cannot stream). Activations are all TensorFlow Lite Micro ops: where the
    reference uses GELU (non-spiking channel mixer) this model uses ReLU.

    Args:
        num_features: Input features per frame (e.g. 128 mel bins).
        num_classes: Output classes.
        dim: Channels of the blocks.
        num_blocks: LMUFormer blocks.
        mlp_ratio: Channel-mixer expansion (hidden = ``mlp_ratio * dim``).
        order: Legendre coefficients per LMU memory.
        theta: LMU window in frames.
        memory_d: Scalar LMU memories.
        num_patch_layers: Convolutions of the patch embedding before the
            relative-position conv.
        spiking: Spiking LMUFormer (LIF neurons carry state along frames).
        causal: Left padding (streamable) or the reference's symmetric padding.
        conv_mode: ``LMUParallel`` mode (``"auto"``, ``"fft"``, ``"direct"``).
        lif_tau, lif_v_threshold, lif_v_reset, lif_surrogate, lif_alpha,
        lif_detach_reset: LIF neuron arguments (spiking variant).
        lmu_v_threshold: Threshold of the LIF before the LMU cell (0.5 in the paper).
        labels: Optional class names, saved with the model for export and apps.
        frontend: Optional frontend description (``{"name", "params"}``), saved
            with the model for export and apps.
        num_frames: Nominal frames per clip (for documentation, presets and
            benchmarks; any length is accepted).
        **kwargs: ``keras.Model`` arguments (``name``, ``dtype``, ...). A dtype
            policy such as ``dtype="mixed_bfloat16"`` applies to every layer of the
            model (bfloat16 compute, float32 variables); streaming export needs
            float32 (:meth:`with_dtype_policy`).
    """

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        dim: int = 256,
        num_blocks: int = 1,
        mlp_ratio: float = 4,
        order: int = 256,
        theta: float = 128.0,
        memory_d: int = 1,
        num_patch_layers: int = 4,
        spiking: bool = False,
        causal: bool = True,
        conv_mode: str = "auto",
        lif_tau: float = 2.0,
        lif_v_threshold: float = 1.0,
        lif_v_reset: float = 0.0,
        lif_surrogate: str = "sigmoid",
        lif_alpha: float = 4.0,
        lif_detach_reset: bool = True,
        lmu_v_threshold: float = 0.5,
        labels: list[str] | None = None,
        frontend: dict[str, Any] | None = None,
        num_frames: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_arguments(
            num_features,
            num_classes,
            dim,
            num_blocks,
            num_patch_layers,
            mlp_ratio,
            labels,
        )
        self.num_features = num_features
        self.num_classes = num_classes
        self.dim = dim
        self.num_blocks = num_blocks
        self.mlp_ratio = mlp_ratio
        self.order = order
        self.theta = float(theta)
        self.memory_d = memory_d
        self.num_patch_layers = num_patch_layers
        self.spiking = bool(spiking)
        self.causal = bool(causal)
        self.conv_mode = conv_mode
        self.lif_tau = float(lif_tau)
        self.lif_v_threshold = float(lif_v_threshold)
        self.lif_v_reset = float(lif_v_reset)
        self.lif_surrogate = lif_surrogate
        self.lif_alpha = float(lif_alpha)
        self.lif_detach_reset = bool(lif_detach_reset)
        self.lmu_v_threshold = float(lmu_v_threshold)
        self.labels = None if labels is None else [str(label) for label in labels]
        self.frontend = None if frontend is None else dict(frontend)
        self.num_frames = num_frames

        self._create_layers()

    def _create_layers(self) -> None:
        """Patch embedding, ``num_blocks`` token and channel mixers, and the head."""
        lif_config = dict(
            tau=self.lif_tau,
            v_threshold=self.lif_v_threshold,
            v_reset=self.lif_v_reset,
            surrogate=self.lif_surrogate,
            alpha=self.lif_alpha,
            detach_reset=self.lif_detach_reset,
        )
        self.patch_embedding = PatchEmbedding(
            self.dim,
            num_layers=self.num_patch_layers,
            spiking=self.spiking,
            causal=self.causal,
            lif_config=lif_config,
            name="patch_embedding",
            dtype=self.dtype_policy,
        )
        self.token_mixers = [
            LMUTokenMixer(
                self.dim,
                self.order,
                self.theta,
                memory_d=self.memory_d,
                spiking=self.spiking,
                conv_mode=self.conv_mode,
                lif_config=lif_config,
                input_v_threshold=self.lmu_v_threshold,
                name=f"block{i}_token_mixer",
                dtype=self.dtype_policy,
            )
            for i in range(self.num_blocks)
        ]
        self.channel_mixers = [
            ChannelMixer(
                self.dim,
                int(round(self.mlp_ratio * self.dim)),
                spiking=self.spiking,
                lif_config=lif_config,
                name=f"block{i}_channel_mixer",
                dtype=self.dtype_policy,
            )
            for i in range(self.num_blocks)
        ]
        self.head = ClassifierHead(
            self.num_classes,
            spiking=self.spiking,
            lif_config=lif_config,
            name="head",
            dtype=self.dtype_policy,
        )

    @property
    def expected_input_shape(self) -> tuple:
        return (None, self.num_frames, self.num_features)

    def _check_input(self, shape: tuple) -> None:
        if len(shape) != 3 or shape[-1] != self.num_features:
            raise ValueError(
                f"LMUFormer '{self.name}' expects inputs of shape (batch, time, "
                f"{self.num_features}) (frames x {self.num_features} features), got "
                f"shape {tuple(shape)}"
            )

    def build(self, input_shape: tuple) -> None:
        self._check_input(tuple(input_shape))
        self.patch_embedding.build(input_shape)
        block_shape = (None, None, self.dim)
        for token_mixer, channel_mixer in zip(
            self.token_mixers, self.channel_mixers, strict=True
        ):
            token_mixer.build(block_shape)
            channel_mixer.build(block_shape)
        self.head.build(block_shape)
        self.built = True

    def _features(self, x, training: bool | None):
        """The last block's output ``(batch, time, dim)``, the head's input."""
        self._check_input(tuple(x.shape))
        z = self.patch_embedding(x, training=training)
        for token_mixer, channel_mixer in zip(
            self.token_mixers, self.channel_mixers, strict=True
        ):
            z = z + token_mixer(z, training=training)
            z = z + channel_mixer(z, training=training)
        return z

    def frame_logits(self, x, training: bool | None = None):
        """Per-frame logits ``(batch, time, num_classes)`` of the parallel model."""
        return self.head(self._features(x, training), training=training)

    def call(self, x, training: bool | None = None):
        """Clip logits: the mean over frames of :meth:`frame_logits`."""
        return self.head.mean_logits(self._features(x, training), training=training)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], self.num_classes)

    # ------------------------------------------------------------------ streaming
    def _blocks(self) -> list:
        blocks: list = [self.patch_embedding]
        for token_mixer, channel_mixer in zip(
            self.token_mixers, self.channel_mixers, strict=True
        ):
            blocks += [token_mixer, channel_mixer]
        return [*blocks, self.head]

    def state_specs(self) -> list[StateSpec]:
        """Every streaming state, in the order ``step`` takes and returns them."""
        if not self.built:
            self.build((None, None, self.num_features))
        return [
            StateSpec(f"{block.name}/{s.name}", s.shape, s.dtype)
            for block in self._blocks()
            for s in block.state_specs()
        ]

    def step(self, frame, states: list):
        """One frame of the causal model: ``(frame_logits_t, new_states)``.

        Args:
            frame: ``(batch, num_features)``.
            states: Tensors shaped as :meth:`state_specs` (with batch axis).

        Raises:
            ValueError: If the model is not causal, or ``states`` has the wrong count.
        """
        if not self.causal:
            raise ValueError(
                f"LMUFormer '{self.name}' has causal=False: its patch embedding looks "
                "ahead, so it has no exact streaming form; build it with causal=True"
            )
        specs = self.state_specs()
        if len(states) != len(specs):
            raise ValueError(
                f"LMUFormer.step: expected {len(specs)} states, got {len(states)}"
            )
        new_states: list = []
        i = 0
        z = frame
        for n, block in enumerate(self._blocks()):
            count = len(block.state_specs())
            y, block_states = block.step(z, list(states[i : i + count]))
            i += count
            new_states += block_states
            is_mixer = 0 < n < len(self._blocks()) - 1
            z = z + y if is_mixer else y
        return z, new_states

    def macs_per_frame(self) -> int:
        """Multiply-accumulates of one streamed frame (matrix products only).

        Counts the convolutions (``k * C_in * C_out`` each), the LMU memory update
        (``memory_d * order^2`` for ``A m`` plus ``memory_d * order`` for ``B u``),
        and every Dense; BatchNorm, LIF and residual adds (a few per channel) are
        elementwise and not counted.
        """
        pe = self.patch_embedding
        k = pe.kernel_size
        macs = k * self.num_features * self.dim
        macs += (pe.num_layers - 1) * k * self.dim * self.dim + k * self.dim * self.dim
        m_size = self.memory_d * self.order
        hidden = int(round(self.mlp_ratio * self.dim))
        per_block = (
            self.dim * self.memory_d  # encoder
            + self.memory_d * self.order * self.order  # A m
            + m_size  # B u
            + (m_size + self.dim) * self.dim  # hidden
            + self.dim * self.dim  # 1x1 projection
            + 2 * self.dim * hidden  # channel mixer
        )
        return int(macs + self.num_blocks * per_block + self.dim * self.num_classes)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_features=self.num_features,
            num_classes=self.num_classes,
            dim=self.dim,
            num_blocks=self.num_blocks,
            mlp_ratio=self.mlp_ratio,
            order=self.order,
            theta=self.theta,
            memory_d=self.memory_d,
            num_patch_layers=self.num_patch_layers,
            spiking=self.spiking,
            causal=self.causal,
            conv_mode=self.conv_mode,
            lif_tau=self.lif_tau,
            lif_v_threshold=self.lif_v_threshold,
            lif_v_reset=self.lif_v_reset,
            lif_surrogate=self.lif_surrogate,
            lif_alpha=self.lif_alpha,
            lif_detach_reset=self.lif_detach_reset,
            lmu_v_threshold=self.lmu_v_threshold,
            labels=self.labels,
            frontend=self.frontend,
            num_frames=self.num_frames,
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LMUFormer:
        return cls(**config)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> LMUFormer:
        """A model from a named preset; ``overrides`` replace any preset argument.

        The presets are plain data (:data:`lmuformer_keras.models.presets.PRESETS`,
        completed by :func:`~lmuformer_keras.models.presets.preset_config`).

        Raises:
            ValueError: Unknown preset name, or an override that is not an
                argument of the constructor.
        """
        config = preset_config(name, **overrides)
        allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
        allowed |= {"name", "dtype"}
        unknown = sorted(set(overrides) - allowed)
        if unknown:
            raise ValueError(
                f"Unknown override(s) {unknown} for preset {name!r}; LMUFormer "
                f"arguments are: {sorted(allowed)}"
            )
        model = cls(**config)
        model.build((None, model.num_frames, model.num_features))
        return model

    def with_dtype_policy(self, dtype_policy: Any = "float32") -> LMUFormer:
        """This model computing under ``dtype_policy``: the model itself if it does
        already, else a new model with its configuration and weights (e.g. the
        float32 model of one trained under ``"mixed_bfloat16"``: its variables are
        float32 already, so the weights are copied exactly).

        Raises:
            ValueError: If ``dtype_policy`` is not a Keras dtype policy.
        """
        try:
            policy = keras.dtype_policies.get(dtype_policy)
        except ValueError as error:
            raise ValueError(
                f"LMUFormer.with_dtype_policy: dtype_policy={dtype_policy!r} is not a "
                f"Keras dtype policy: {error}"
            ) from error
        if policy.name == self.dtype_policy.name:
            return self
        if not self.built:
            self.build((None, self.num_frames, self.num_features))
        config = self.get_config()
        config["dtype"] = policy
        model = type(self).from_config(config)
        model.build((None, self.num_frames, self.num_features))
        model.set_weights(self.get_weights())
        return model
