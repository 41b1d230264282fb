"""Argument parsing for ``python -m pipeline``; each command lives in its own module."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from lambdas.settings import SettingsError
from pipeline.contract.delivery import parse_delivery_key
from pipeline.contract.errors import ContractError, DeliveryKeyError
from pipeline.contract.layout import RunLayout
from pipeline.contract.manifest import parse_manifest
from pipeline.contract.schema import columns_for


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    inspect = commands.add_parser(
        "inspect", help="validate a local manifest.json and show its run, columns and keys"
    )
    inspect.add_argument("manifest", type=Path, help="path to a manifest.json on local disk")
    inspect.add_argument("--checksum", type=Path, help="manifest.checksum to verify it against")
    inspect.set_defaults(run=_inspect)

    from pipeline import trigger  # imported here: only the commands that need boto3 load it

    trigger.add_parser(commands)

    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except (ContractError, SettingsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return code


def _inspect(args: argparse.Namespace) -> int:
    checksum = args.checksum.read_bytes() if args.checksum else None
    manifest = parse_manifest(args.manifest.read_bytes(), source=str(args.manifest), checksum=checksum)
    summary: dict[str, object] = {
        "source_bucket": manifest.source_bucket,
        "destination_bucket": manifest.destination_bucket,
        "created_at": manifest.created_at.isoformat(),
        "data_files": len(manifest.files),
        "compressed_bytes": manifest.total_size,
        "columns": {c.name: c.type.value for c in columns_for(manifest.file_schema)},
        "checksum_verified": checksum is not None,
    }
    try:  # a manifest kept in its delivery layout also tells the run it starts
        delivery = parse_delivery_key(args.manifest.resolve().as_posix().lstrip("/"))
    except DeliveryKeyError:
        pass
    else:
        summary["run_date"] = delivery.run_date
        summary["processed_prefix"] = RunLayout.of(delivery).processed_prefix
    print(json.dumps(summary, indent=2))
    return 0
