"""Deployment artifacts: ``model.tflite``, C array, op resolver, ``metadata.json``.

Apps read ``metadata.json`` (positions, scales, zero points, state layout, labels,
frontend, arena size): nothing is retyped by hand. It is the contract's
:class:`lmuformer_keras.contract.ExportMetadata` (format version 2).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence

import numpy as np

from lmuformer_keras.contract import (
    FORMAT_VERSION,
    ExportedState,
    ExportMetadata,
    Frontend,
    MetadataError,
)

from .errors import ExportError, OutputDirError
from .model_io import ModelIO
from .tflm_ops import resolver_methods

METADATA_VERSION = FORMAT_VERSION
ARRAY_NAME = "g_model_data"
EXPORT_FILES = (
    "model.tflite",
    "model_data.h",
    "model_data.cc",
    "op_resolver.h",
    "metadata.json",
    "report.json",
)
"""Every file an export folder holds (nothing else is replaced with it)."""


def check_out_dir(out_dir: str | os.PathLike) -> str:
    """The real path of ``out_dir`` if an export may be written there.

    ``out_dir`` may be missing, an empty folder or a previous export (only
    :data:`EXPORT_FILES`); a symlink to such a folder is followed.

    Raises:
        OutputDirError: ``out_dir`` is not a folder (e.g. a regular file), or holds
            entries that are not export files (they would be lost in the swap).
    """
    given = os.fspath(out_dir)
    if not given:
        raise OutputDirError("--out: empty path; give a folder for the export")
    path = os.path.realpath(given)
    if os.path.lexists(path) and not os.path.isdir(path):
        kind = "a regular file" if os.path.isfile(path) else "not a folder"
        raise OutputDirError(
            f"--out {given!r} exists and is {kind}: give a new folder, an empty one or "
            "a previous export folder"
        )
    if os.path.isdir(path):
        foreign = sorted(set(os.listdir(path)) - set(EXPORT_FILES))
        if foreign:
            shown = ", ".join(foreign[:8]) + (", ..." if len(foreign) > 8 else "")
            raise OutputDirError(
                f"--out {given!r} holds {len(foreign)} entr"
                f"{'y' if len(foreign) == 1 else 'ies'} that an export does not write "
                f"({shown}); the export replaces the whole folder, so give a new "
                "folder, an empty one or a previous export folder"
            )
    return path


def _replace_dir(stage: str, final: str) -> None:
    """Renames ``stage`` to ``final``; a previous ``final`` is moved aside first."""
    if not os.path.lexists(final):
        os.rename(stage, final)
        return
    old = f"{final}.old-{os.getpid()}"
    if os.path.lexists(old):
        shutil.rmtree(old)
    os.rename(final, old)
    try:
        os.rename(stage, final)
    except BaseException:
        os.rename(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_output(out_dir: str | os.PathLike) -> Iterator[str]:
    """A temporary sibling folder that replaces ``out_dir`` when the block succeeds.

    Yields ``<out_dir>.tmp-<pid>`` (created empty). When the block returns, the
    folder is renamed to ``out_dir`` (a previous export there is moved to
    ``<out_dir>.old-<pid>``, replaced, then deleted); when it raises, the temporary
    folder is removed and ``out_dir`` is left as it was.

    Raises:
        OutputDirError: from :func:`check_out_dir`, before and again just before the
            swap (something else may have written there meanwhile).
    """
    final = check_out_dir(out_dir)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    stage = f"{final}.tmp-{os.getpid()}"
    if os.path.lexists(stage):  # left by a killed run of this process id
        shutil.rmtree(stage)
    os.mkdir(stage)
    try:
        yield stage
        check_out_dir(final)
        _replace_dir(stage, final)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def check_written(folder: str, paths: Sequence[str], model_bytes: bytes) -> None:
    """Checks that ``folder`` holds exactly ``paths``, the model and readable JSON.

    Raises:
        ExportError: naming the missing, unexpected or unreadable file.
    """
    names = sorted(os.path.basename(p) for p in paths)
    found = sorted(os.listdir(folder))
    if found != names:
        raise ExportError(
            f"export folder {folder}: holds {found}, expected exactly {names}"
        )
    with open(os.path.join(folder, "model.tflite"), "rb") as f:
        if f.read() != model_bytes:
            raise ExportError(f"{folder}/model.tflite: written bytes differ")
    for name in names:
        if name.endswith(".json"):
            try:
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    json.load(f)
            except (OSError, ValueError) as error:
                raise ExportError(f"{folder}/{name}: unreadable ({error})") from error
    if "metadata.json" in names:  # what the apps will read, read as they do
        try:
            ExportMetadata.load(os.path.join(folder, "metadata.json"))
        except (OSError, MetadataError) as error:
            raise ExportError(f"{folder}/metadata.json: {error}") from error


def write_model(model_bytes: bytes, out_dir: str) -> str:
    path = os.path.join(out_dir, "model.tflite")
    with open(path, "wb") as f:
        f.write(model_bytes)
    return path


def c_array_source(model_bytes: bytes, name: str = ARRAY_NAME) -> tuple[str, str]:
    """``(header, source)`` of a 16-byte aligned ``const unsigned char`` array."""
    guard = f"LMUFORMER_EXPORT_{name.upper()}_H_"
    header = (
        "// Generated by lmuformer-export. Do not edit.\n"
        f"#ifndef {guard}\n#define {guard}\n\n"
        f"extern const unsigned char {name}[];\n"
        f"extern const unsigned int {name}_len;\n\n"
        f"#endif  // {guard}\n"
    )
    lines = []
    for start in range(0, len(model_bytes), 12):
        chunk = model_bytes[start : start + 12]
        lines.append("    " + ", ".join(f"0x{b:02x}" for b in chunk) + ",")
    source = (
        "// Generated by lmuformer-export. Do not edit.\n"
        '#include "model_data.h"\n\n'
        f"alignas(16) const unsigned char {name}[] = {{\n" + "\n".join(lines) + "\n};\n"
        f"const unsigned int {name}_len = {len(model_bytes)};\n"
    )
    return header, source


def write_c_array(model_bytes: bytes, out_dir: str) -> list[str]:
    header, source = c_array_source(model_bytes)
    paths = [
        os.path.join(out_dir, "model_data.h"),
        os.path.join(out_dir, "model_data.cc"),
    ]
    for path, text in zip(paths, (header, source), strict=True):
        with open(path, "w") as f:
            f.write(text)
    return paths


def op_resolver_source(op_names) -> str:
    """``op_resolver.h``: a ``MicroMutableOpResolver<N>`` for exactly ``op_names``."""
    methods = resolver_methods(op_names)
    count = len(methods)
    calls = "\n".join(
        f"  if (resolver.{m}() != kTfLiteOk) return kTfLiteError;" for m in methods
    )
    ops = ", ".join(sorted(op_names))
    return (
        "// Generated by lmuformer-export. Do not edit.\n"
        f"// Ops used by model.tflite: {ops}\n"
        "#ifndef LMUFORMER_EXPORT_OP_RESOLVER_H_\n"
        "#define LMUFORMER_EXPORT_OP_RESOLVER_H_\n\n"
        '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n\n'
        "namespace lmuformer_export {\n\n"
        f"constexpr unsigned int kNumOps = {count};\n"
        "using OpResolver = tflite::MicroMutableOpResolver<kNumOps>;\n\n"
        "// Registers every op of model.tflite in `resolver`.\n"
        "inline TfLiteStatus RegisterOps(OpResolver& resolver) {\n"
        f"{calls}\n"
        "  return kTfLiteOk;\n"
        "}\n\n"
        "// Factory: a resolver with every op registered (built once).\n"
        "inline OpResolver& GetOpResolver() {\n"
        "  static OpResolver resolver;\n"
        "  static const TfLiteStatus status = RegisterOps(resolver);\n"
        "  (void)status;\n"
        "  return resolver;\n"
        "}\n\n"
        "}  // namespace lmuformer_export\n\n"
        "#endif  // LMUFORMER_EXPORT_OP_RESOLVER_H_\n"
    )


def write_op_resolver(op_names, out_dir: str) -> str:
    path = os.path.join(out_dir, "op_resolver.h")
    with open(path, "w") as f:
        f.write(op_resolver_source(op_names))
    return path


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(data: dict, path: str) -> str:
    with open(path, "w") as f:
        json.dump(data, f, indent=2, default=_json_default)
        f.write("\n")
    return path


def build_metadata(
    *,
    io: ModelIO,
    initial_states,
    labels,
    frontend: Frontend | None,
    quantization: str,
    arena_bytes: int,
    arena_bytes_min: int,
    model_bytes: int,
    op_names,
    macs: dict,
) -> ExportMetadata:
    """Everything an app needs to run ``model.tflite`` on a frame stream.

    Args:
        io: Where the frame, logits and states sit in the written model.
        initial_states: The float initial state of each state (batch 1).
        labels: Class names, or ``None``.
        frontend: The frontend record, or ``None``.
        quantization: The export's quantization mode.
        arena_bytes: The arena to allocate (with the margin).
        arena_bytes_min: The smallest arena that works.
        model_bytes: Size of ``model.tflite``.
        op_names: The model's builtin ops.
        macs: :func:`lmuformer_export.macs.count_macs` of the model.

    Returns:
        The validated :class:`~lmuformer_keras.contract.ExportMetadata`.
    """
    states = []
    for name, t_in, t_out, init in zip(
        io.state_names, io.states_in, io.states_out, initial_states, strict=True
    ):
        init = np.asarray(init, np.float32).reshape(-1)
        constant = bool(init.size) and bool(np.all(init == init[0]))
        states.append(
            ExportedState(
                name=name,
                input=t_in,
                output=t_out,
                initial_value=float(init[0]) if constant else None,
                initial_quantized=(
                    int(t_in.quantize(init[:1])[0])
                    if constant and t_in.quantized
                    else None
                ),
            )
        )
    metadata = ExportMetadata(
        frame=io.frame,
        logits=io.logits,
        states=tuple(states),
        quantization=quantization,
        labels=None if labels is None else tuple(labels),
        frontend=frontend,
        model_file="model.tflite",
        c_array=ARRAY_NAME,
        arena_bytes=int(arena_bytes),
        arena_bytes_min=int(arena_bytes_min),
        model_bytes=int(model_bytes),
        ops=tuple(sorted(op_names)),
        macs_per_frame=int(macs["total"]),
    )
    try:
        return metadata.validate()
    except MetadataError as error:
        raise ExportError(f"the export's metadata is inconsistent: {error}") from error


def write_metadata(metadata: ExportMetadata, out_dir: str) -> str:
    """Writes ``out_dir/metadata.json`` (format version 2)."""
    return metadata.save(os.path.join(out_dir, "metadata.json"))
