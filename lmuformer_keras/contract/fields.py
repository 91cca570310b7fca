"""Typed readers of JSON values: each error names the field and the value.

Every reader takes the value and ``where`` (the field as a reader would look for it,
e.g. ``"metadata states[0] ('leaky') input scale"``) and raises
:class:`MetadataError` with ``"<where> must be ..., got <value>"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class MetadataError(ValueError):
    """``metadata.json`` is malformed or does not describe the model (names why)."""


def shown(value: Any) -> str:
    """``value`` as an error shows it: its repr, cut at 80 characters."""
    return f"{value!r:.80}"


def require(mapping: Mapping, key: str, where: str) -> Any:
    """``mapping[key]``; ``MetadataError("<where>: missing key '<key>'")``."""
    if key not in mapping:
        raise MetadataError(f"{where}: missing key '{key}'")
    return mapping[key]


def as_int(value: Any, where: str) -> int:
    """An integer (a float with an integral value is accepted; bools are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MetadataError(f"{where} must be an integer, got {shown(value)}")
    if not math.isfinite(value) or int(value) != value:
        raise MetadataError(f"{where} must be an integer, got {shown(value)}")
    return int(value)


def as_count(value: Any, where: str) -> int:
    """An integer ``>= 0``."""
    number = as_int(value, where)
    if number < 0:
        raise MetadataError(f"{where} must be >= 0, got {number}")
    return number


def as_number(value: Any, where: str) -> float:
    """A finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MetadataError(f"{where} must be a number, got {shown(value)}")
    if not math.isfinite(value):
        raise MetadataError(f"{where} must be finite, got {value!r}")
    return float(value)


def as_optional_number(value: Any, where: str) -> float | None:
    """A finite number or ``None``."""
    return None if value is None else as_number(value, where)


def as_str(value: Any, where: str) -> str:
    """A string."""
    if not isinstance(value, str):
        raise MetadataError(
            f"{where} must be a string, got {type(value).__name__} {shown(value)}"
        )
    return value


def as_dict(value: Any, where: str) -> dict:
    """A JSON object."""
    if not isinstance(value, Mapping):
        raise MetadataError(
            f"{where} must be a JSON object, got {type(value).__name__} {shown(value)}"
        )
    return dict(value)


def as_list(value: Any, where: str) -> list:
    """A JSON array."""
    if not isinstance(value, list | tuple):
        raise MetadataError(
            f"{where} must be a list, got {type(value).__name__} {shown(value)}"
        )
    return list(value)


def as_shape(value: Any, where: str) -> tuple[int, ...]:
    """A list of integers ``>= 1``."""
    if not isinstance(value, list | tuple):
        raise MetadataError(f"{where} must be a list of integers, got {shown(value)}")
    dims = tuple(as_int(d, f"{where} entry") for d in value)
    if any(d < 1 for d in dims):
        raise MetadataError(f"{where} entries must be >= 1, got {list(dims)}")
    return dims


def only_keys(mapping: Mapping, allowed, where: str) -> None:
    """Refuses keys outside ``allowed`` (a misspelt key would be ignored silently)."""
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise MetadataError(
            f"{where}: unknown key(s) {unknown}; the known keys are {sorted(allowed)}"
        )
