"""``python -m lmuformer_keras.contract``: upgrade a metadata.json, write the schema.

Usage::

    python -m lmuformer_keras.contract upgrade DIR/metadata.json [--out OUT]
    python -m lmuformer_keras.contract check DIR/metadata.json
    python -m lmuformer_keras.contract schema OUT

``upgrade`` reads a version-1 (or 2) file and writes it as version 2 (over the file
unless ``--out`` is given); ``check`` validates a file; ``schema`` writes
``metadata.schema.json``. Exit status 0 on success, 1 on a bad file, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .fields import MetadataError
from .metadata import ExportMetadata
from .schema import write_schema


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lmuformer_keras.contract",
        description="Upgrade or check an lmuformer-export metadata.json, or write "
        "its JSON Schema.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    upgrade = commands.add_parser("upgrade", help="write a metadata.json as version 2")
    upgrade.add_argument("path")
    upgrade.add_argument("--out", help="where to write (default: over PATH)")
    check = commands.add_parser("check", help="validate a metadata.json")
    check.add_argument("path")
    schema = commands.add_parser("schema", help="write metadata.schema.json")
    schema.add_argument("out")
    args = parser.parse_args(argv)
    try:
        if args.command == "schema":
            print(f"wrote {write_schema(args.out)}")
            return 0
        metadata = ExportMetadata.load(args.path)
        if args.command == "upgrade":
            print(f"wrote {metadata.save(args.out or args.path)} (format_version 2)")
        else:
            m = metadata
            print(f"{args.path}: ok ({m.num_features} features, {m.num_classes} "
                  f"classes, {len(m.states)} states)")  # fmt: skip
    except (MetadataError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
