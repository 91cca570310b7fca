"""Converter tensor names as the error messages show them.

:func:`layer_name_from_tensor` names the Keras layer a tensor came from;
:func:`short_tensor_name` keeps the first of a fused tensor's names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["layer_name_from_tensor", "short_tensor_name"]

_SUFFIX = re.compile(r"_\d+$")


def layer_name_from_tensor(tensor_name: str, layer_names: Iterable[str]) -> str | None:
    """Best guess of the Keras layer a converter tensor name came from.

    The converter joins fused tensor names with ``;`` and scopes them as
    ``<model>/<layer>[_k]/<op>``; TensorFlow adds ``_k`` suffixes to repeated name
    scopes. The longest scope component that matches a layer name (after stripping
    such suffixes) wins.
    """
    names = set(layer_names)
    best: str | None = None
    for part in tensor_name.split(";"):
        for component in part.split("/")[:-1] or part.split("/"):
            candidate = component
            while True:
                if candidate in names:
                    if best is None or len(candidate) > len(best):
                        best = candidate
                    break
                stripped = _SUFFIX.sub("", candidate)
                if stripped == candidate:
                    break
                candidate = stripped
    return best


def short_tensor_name(name: str) -> str:
    """First of the ``;``-joined names the converter gives a fused tensor."""
    head, _, rest = name.partition(";")
    return head + ("; ..." if rest else "")
