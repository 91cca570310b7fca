"""Frontend registry: ``get_frontend(name)`` and ``list_frontends()``."""

from __future__ import annotations

from typing import Any

from lmuformer_keras.features.base import Frontend
from lmuformer_keras.features.fbank128 import FBANK128_PARAMS
from lmuformer_keras.features.micro40 import MICRO40_PARAMS

_PARAMS: dict[str, dict[str, Any]] = {
    FBANK128_PARAMS["name"]: FBANK128_PARAMS,
    MICRO40_PARAMS["name"]: MICRO40_PARAMS,
}
_CACHE: dict[str, Frontend] = {}


def list_frontends() -> list[str]:
    """Names of the registered frontends."""
    return sorted(_PARAMS)


def get_frontend(name: str | dict[str, Any] | Frontend) -> Frontend:
    """Returns the frontend called ``name``.

    Args:
        name: a registered name, a params dict (e.g. read back from exported metadata)
            or a :class:`Frontend` (returned as is).

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    if isinstance(name, Frontend):
        return name
    if isinstance(name, dict):
        return Frontend.from_params(name)
    if name not in _PARAMS:
        raise ValueError(
            f"Unknown frontend name={name!r}; known frontends: {list_frontends()}"
        )
    if name not in _CACHE:
        _CACHE[name] = Frontend(_PARAMS[name])
    return _CACHE[name]


def compute_features(
    frontend: str | Frontend,
    waveforms: Any,
    sample_rate: int = 16000,
    lengths: Any = None,
    progress: bool = False,
    chunk_size: int = 64,
) -> Any:
    """Batch helper: ``get_frontend(frontend).batch(...)`` -> ``(N, T, F)`` float32."""
    return get_frontend(frontend).batch(
        waveforms,
        sample_rate=sample_rate,
        lengths=lengths,
        progress=progress,
        chunk_size=chunk_size,
    )
