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
    inspect.set_defaults(handler=_inspect)

    from pipeline import trigger  # imported here: only the commands that need boto3 load it

    trigger.add_parser(commands)

    from pipeline import status

    status.add_parser(commands)

    demo = commands.add_parser("demo", help="run the whole pipeline locally on a synthetic inventory")
    demo.add_argument(
        "--objects", type=int, default=1_000_000, help="inventory rows to generate (default 1,000,000)"
    )
    demo.add_argument("--files", type=int, default=4, help="gzip data files in the delivery (default 4)")
    demo.add_argument(
        "--out", type=Path, default=Path("demo-output"), help="output folder (default demo-output)"
    )
    demo.add_argument("--target-chunk-mib", type=int, default=8, help="compressed MiB per chunk (default 8)")
    demo.add_argument("--workers", type=int, default=0, help="parallel array children (default: CPU count)")
    demo.set_defaults(handler=_demo)

    local = commands.add_parser("run-local", help="convert a downloaded delivery locally, as the stack would")
    local.add_argument("manifest", type=Path, help="a manifest.json inside a folder laid out like the bucket")
    local.add_argument("--out", type=Path, required=True, help="where processed/ and run-state/ are written")
    local.add_argument("--bucket-root", type=Path, help="the folder that stands for the destination bucket")
    local.add_argument("--force", action="store_true", help="rerun a delivery that already ran into --out")
    local.add_argument(
        "--target-chunk-mib", type=int, default=32, help="compressed MiB per chunk (default 32)"
    )
    local.add_argument("--workers", type=int, default=0, help="parallel array children (default: CPU count)")
    local.set_defaults(handler=_run_local)

    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except (ContractError, SettingsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: stopped the stand-in and every job", file=sys.stderr)
        return 130
    except RuntimeError as err:  # a job failed, or the trigger did not start the run
        print(f"error: {err}", file=sys.stderr)
        return 1
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


def _demo(args: argparse.Namespace) -> int:
    from pipeline.local.demo import demo

    demo(
        args.out,
        objects=args.objects,
        files=args.files,
        target_chunk_mib=args.target_chunk_mib,
        workers=args.workers,
    )
    return 0


def _run_local(args: argparse.Namespace) -> int:
    from pipeline.local.run_local import run_local
    from pipeline.local.summary import render, render_reconciliation, summarize

    run = run_local(
        args.manifest,
        args.out,
        bucket_root=args.bucket_root,
        force=args.force,
        target_chunk_mib=args.target_chunk_mib,
        workers=args.workers,
    )
    if run.result.status == "duplicate":
        print(
            f"{run.result.run_id} already ran into {args.out} (see {args.out / run.layout.claim_key}); "
            "nothing was run. Use --force to run it again."
        )
        return 0
    print(render(summarize(run.parts_dir)))
    print(render_reconciliation(run.run_report()))
    return 0
