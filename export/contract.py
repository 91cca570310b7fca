"""The streaming contract the exporter relies on (duck-typed).

A streaming model is any object with:

- ``step_model``: ``keras.Model``, inputs ``[frame (batch, F), *states]``, outputs
  ``[frame_logits (batch, C), *new_states]``, loop-free;
- ``state_specs``: objects with ``name``, ``shape`` (no batch axis) and ``dtype``
  (:class:`lmuformer_keras.contract.StateSpec`), in the order of the step model's
  state inputs and outputs;
- ``initial_states(batch_size) -> list[np.ndarray]``;
- ``labels`` (``list[str]`` or ``None``) and ``frontend`` (the frontend record
  ``{name, params, frame_hop_ms}``, :class:`lmuformer_keras.contract.Frontend`, or
  ``None``).

``lmuformer_keras.streaming.StreamingModel`` is the real one; tests use a toy one.
"""

from __future__ import annotations

from typing import Any, Protocol

from lmuformer_keras.contract import StateSpec

from .errors import NotStreamableError


class StreamingLike(Protocol):
    step_model: Any
    state_specs: list
    labels: list[str] | None
    frontend: dict | None

    def initial_states(self, batch_size: int) -> list: ...


def _shape(tensor) -> tuple:
    return tuple(tensor.shape)


def state_specs(streaming_model: StreamingLike) -> list[StateSpec]:
    """The state specs of ``streaming_model`` as the contract's :class:`StateSpec`
    (any object with ``name``, ``shape`` and ``dtype`` is accepted)."""
    return [
        StateSpec(str(s.name), tuple(int(d) for d in s.shape), str(s.dtype))
        for s in streaming_model.state_specs
    ]


def num_features(streaming_model: StreamingLike) -> int:
    """``F``: the last axis of the step model's frame input."""
    return int(_shape(streaming_model.step_model.inputs[0])[-1])


def num_classes(streaming_model: StreamingLike) -> int:
    """``C``: the last axis of the step model's logits output."""
    return int(_shape(streaming_model.step_model.outputs[0])[-1])


def layer_names(model) -> list[str]:
    """Names of every layer of ``model``, nested layers and models included.

    Uses Keras' layer tracking (``_flatten_layers``), so layers held by a custom
    layer (``StreamingStep`` holds the whole ``LMUFormer``) are found too.
    """
    names: list[str] = []
    stack = list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        names.append(layer.name)
        stack.extend(getattr(layer, "layers", []) or [])
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is not None:
        names.extend(layer.name for layer in flatten(include_self=False))
    return list(dict.fromkeys(names))


def layer_modules(model) -> list[str]:
    """Modules defining the (non-Keras) layer classes of ``model``."""
    modules = set()
    stack = [model, *getattr(model, "layers", [])]
    while stack:
        layer = stack.pop()
        module = type(layer).__module__
        if not module.startswith("keras"):
            modules.add(module)
        if layer is not model:
            stack.extend(getattr(layer, "layers", []) or [])
    return sorted(modules)


DEFAULT_FACTORY = "lmuformer_keras.streaming:StreamingModel"


def as_streaming_model(model, factory=None):
    """``model`` itself when it meets the contract, else its streaming form.

    A Keras model (no ``step_model``) is wrapped with ``factory`` (default
    ``lmuformer_keras.streaming.StreamingModel``); a model without a streaming form
    (not an LMUFormer, ``causal=False``, ...) raises :class:`NotStreamableError`
    carrying the factory's reason.
    """
    if hasattr(model, "step_model") or not hasattr(model, "layers"):
        return model
    if factory is None:
        try:
            from lmuformer_keras.streaming import StreamingModel
        except ImportError as error:
            raise NotStreamableError(
                f"{type(model).__name__} '{getattr(model, 'name', '?')}' is not a "
                "streaming model and lmuformer_keras.streaming is not importable to "
                f"build one ({error})"
            ) from error
        factory = StreamingModel
    try:
        return factory(model)
    except Exception as error:  # the factory's own validation errors
        raise NotStreamableError(
            f"{type(model).__name__} '{getattr(model, 'name', '?')}' has no "
            f"streaming form: {error}"
        ) from error


def check_streaming_model(streaming_model) -> list[StateSpec]:
    """Check ``streaming_model`` meets the contract; return its state specs.

    Raises:
        NotStreamableError: naming the missing attribute or the mismatch.
    """
    kind = type(streaming_model).__name__
    for attribute in ("step_model", "state_specs", "initial_states"):
        if not hasattr(streaming_model, attribute):
            raise NotStreamableError(
                f"{kind} has no attribute '{attribute}': the exporter needs a "
                "streaming model (step_model, state_specs, initial_states, labels, "
                "frontend), e.g. lmuformer_keras.streaming.StreamingModel(model)"
            )
    step = streaming_model.step_model
    infos = state_specs(streaming_model)
    inputs, outputs = list(step.inputs), list(step.outputs)
    if len(inputs) != 1 + len(infos) or len(outputs) != 1 + len(infos):
        raise NotStreamableError(
            f"{kind}.step_model has {len(inputs)} inputs and {len(outputs)} outputs; "
            f"the contract needs 1 + {len(infos)} of each ([frame, *states] -> "
            "[frame_logits, *new_states])"
        )
    if len(_shape(inputs[0])) != 2 or len(_shape(outputs[0])) != 2:
        raise NotStreamableError(
            f"{kind}.step_model: frame input {_shape(inputs[0])} and logits output "
            f"{_shape(outputs[0])} must both be (batch, n)"
        )
    for i, info in enumerate(infos):
        for role, tensor in (("input", inputs[1 + i]), ("output", outputs[1 + i])):
            if _shape(tensor)[1:] != info.shape:
                raise NotStreamableError(
                    f"{kind}: state '{info.name}' has shape {info.shape} in "
                    f"state_specs but the step model's state {role} {i} has "
                    f"shape {_shape(tensor)[1:]}"
                )
    return infos
