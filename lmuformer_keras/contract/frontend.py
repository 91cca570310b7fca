"""``Frontend``: the frontend record ``{name, params, frame_hop_ms}``.

The record a model carries (``LMUFormer(frontend=...)``), the trainer stores and the
exporter writes into ``metadata.json``: the frontend's name, its full params (the
single source of truth of :mod:`lmuformer_keras.features`; the C and Java apps rebuild
the frontend from them) and its hop in milliseconds. Build it with
:meth:`Frontend.named` or :meth:`Frontend.from_frontend`; write it with
:meth:`Frontend.record`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from .fields import MetadataError, as_dict, as_number, as_str, only_keys, shown

FRONTEND_KEYS = ("name", "params", "frame_hop_ms")


@dataclasses.dataclass(frozen=True)
class Frontend:
    """The frontend record of a model or an export.

    Attributes:
        name: The frontend's name (``"micro40"``, ``"fbank128"``, ...).
        params: Its params dict (JSON-serialisable; ``frame_step`` and
            ``sample_rate`` give the hop).
        frame_hop_ms: Milliseconds between frames, ``1000 * frame_step /
            sample_rate``.
    """

    name: str
    params: dict[str, Any]
    frame_hop_ms: float

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, where: str = "frontend") -> None:
        """Checks the types (the params themselves are checked by the frontend that
        is built from them, :func:`lmuformer_keras.features.validate_params`, and the
        apps compare its hop with ``frame_hop_ms``).

        Raises:
            MetadataError: naming the field and its value.
        """
        as_str(self.name, f"{where} name")
        if not isinstance(self.params, Mapping):
            raise MetadataError(
                f"{where}: 'params' must be a JSON object, got "
                f"{type(self.params).__name__} {shown(self.params)}"
            )
        hop = as_number(self.frame_hop_ms, f"{where} frame_hop_ms")
        if hop <= 0:
            raise MetadataError(f"{where} frame_hop_ms must be > 0, got {hop!r}")

    @classmethod
    def from_frontend(cls, frontend: Any) -> Frontend:
        """The record of a frontend object (``name``, ``params``, ``frame_hop_ms``),
        e.g. ``lmuformer_keras.features.get_frontend("micro40")``."""
        return cls(
            name=frontend.name,
            params=copy.deepcopy(dict(frontend.params)),
            frame_hop_ms=float(frontend.frame_hop_ms),
        )

    @classmethod
    def named(cls, name: str) -> Frontend:
        """The record of the registered frontend ``name`` (its params in full)."""
        from lmuformer_keras.features import get_frontend

        return cls.from_frontend(get_frontend(name))

    @classmethod
    def from_record(
        cls, record: Any, where: str = "frontend", resolve_name: bool = True
    ) -> Frontend:
        """Reads a record written by :meth:`record`.

        Args:
            record: ``{"name", "params", "frame_hop_ms"}``.
            where: The field's name in error messages.
            resolve_name: Complete a record without ``params`` (``{"name":
                "micro40"}``, as presets spell it) from the registered frontend of
                that name; ``False`` (``metadata.json``, which must be
                self-contained) refuses it.

        Raises:
            MetadataError: naming the field and its value.
        """
        if isinstance(record, Frontend):
            return record
        if not isinstance(record, Mapping):
            raise MetadataError(
                f"{where} must be a JSON object with 'name' and 'params', got "
                f"{type(record).__name__} {shown(record)}"
            )
        only_keys(record, FRONTEND_KEYS, where)
        params = record.get("params")
        if params is None:
            name = record.get("name")
            if not resolve_name:
                raise MetadataError(
                    f"{where}: 'params' must be a JSON object (the frontend's full "
                    f"params), got params={shown(params)}"
                )
            if not isinstance(name, str):
                raise MetadataError(
                    f"{where}: 'params' must be a JSON object (or 'name' a registered "
                    f"frontend), got params={shown(params)}, name={shown(name)}"
                )
            try:
                named = cls.named(name)
            except (ValueError, KeyError) as error:
                raise MetadataError(f"{where} {name!r}: {error}") from error
            if record.get("frame_hop_ms") is not None:
                cls(named.name, named.params, record["frame_hop_ms"])  # same hop?
            return named
        params = as_dict(params, f"{where} params")
        if record.get("name") is None and isinstance(params.get("name"), str):
            record = {**record, "name": params["name"]}
        hop = record.get("frame_hop_ms")
        if hop is None:
            step, rate = params.get("frame_step"), params.get("sample_rate")
            if not (_is_number(step) and _is_number(rate) and rate > 0):
                raise MetadataError(
                    f"{where}: missing key 'frame_hop_ms' (and no frame_step / "
                    "sample_rate in its params to compute it)"
                )
            hop = 1000.0 * step / rate
        return cls(record.get("name"), copy.deepcopy(params), hop)

    def record(self) -> dict[str, Any]:
        """``{"name", "params", "frame_hop_ms"}``: a JSON-ready copy."""
        return {
            "name": self.name,
            "params": copy.deepcopy(dict(self.params)),
            "frame_hop_ms": float(self.frame_hop_ms),
        }


def _is_number(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
    )
