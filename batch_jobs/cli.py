"""``python -m batch_jobs split|process|finalize``: the commands the job definitions run.

Exit codes: 0 done; 2 a permanent input error (bad manifest, data file or row: retrying will not
help, and the job definitions' retry strategy does not retry it); 3 the run does not reconcile
(finalize: not retried either); 1 anything else (may be retried).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from batch_jobs.finalize import ReconciliationError, finalize
from batch_jobs.run import load_run
from batch_jobs.storage import storage_for
from inventory_contract.errors import ContractError
from inventory_contract.jobs import ARRAY_INDEX_ENV, FROM_ARRAY
from inventory_contract.jsonlog import JsonLogger
from inventory_contract.rollups import DEFAULT_PREFIX_DEPTH, check_prefix_depth

EXIT_INPUT_ERROR = 2
EXIT_DOES_NOT_RECONCILE = 3


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "snapshot":
        return _snapshot(args)
    log = JsonLogger(job=args.command, source_bucket=args.source_bucket, run_date=args.run_date)
    try:
        store = storage_for(args.manifest)
        run = load_run(store, args.manifest, args.source_bucket, args.run_date)
        if args.command == "split":
            from batch_jobs.split import split

            split(store, run, args.chunks, target_chunk_bytes=args.target_chunk_bytes, log=log)
        elif args.command == "process":
            from batch_jobs.process import process

            process(store, run, _chunk_index(args.index), log=log, prefix_depth=args.prefix_depth)
        else:
            finalize(store, run, args.chunks, log=log)
    except ReconciliationError as err:  # the parts do not add up: say so with the numbers, no retry
        print(f"error: {err}", file=sys.stderr)
        return EXIT_DOES_NOT_RECONCILE
    except (ContractError, ValueError) as err:  # the input is wrong: a permanent failure
        log.error("job failed: bad input", error=str(err), error_type=type(err).__name__)
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except Exception as err:
        log.error("job failed", error=str(err), error_type=type(err).__name__)
        raise
    return 0


def _snapshot(args: argparse.Namespace) -> int:
    """List a source bucket into a delivery in the destination bucket; exit 2 (not retried) when
    the bucket cannot be listed as asked: no such bucket, another Region, access denied."""
    from batch_jobs.s3io import s3_client
    from batch_jobs.snapshot import (
        ListingConflictError,
        ListingRefusedError,
        ListingSource,
        check_source,
        listing_client,
        snapshot,
    )
    from batch_jobs.storage import S3Storage
    from inventory_contract.listing import parse_bucket_uri, partition_of

    log = JsonLogger(job="snapshot", source=args.source)
    current_only = args.versions == "current"
    try:
        bucket, prefix = parse_bucket_uri(args.source)
        source = ListingSource(bucket, prefix)
        client = listing_client(args.workers)
        check_source(client, source, current_only=current_only)
        listed = snapshot(
            client,
            source,
            S3Storage(args.destination_bucket, s3_client()),
            inventory_prefix=args.inventory_prefix,
            current_only=current_only,
            workers=args.workers,
            partition=partition_of(client.meta.region_name),
            progress=lambda line: log.info(line),
            processes=True,
        )
    except (ContractError, ListingRefusedError) as err:
        log.error("job failed: the bucket cannot be listed", error=str(err))
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except ListingConflictError as err:  # exit 1: Batch's retry lists again, in a minute of its own
        log.error("job failed: another listing delivered in the same minute", error=str(err))
        print(f"error: {err}", file=sys.stderr)
        return 1
    log.info(
        "listing delivered",
        manifest=f"s3://{args.destination_bucket}/{listed.manifest_key}",
        rows=listed.rows,
        data_files=listed.data_files,
        requests=listed.requests,
    )
    return 0


def _chunk_index(value: str) -> int:
    if value == FROM_ARRAY:
        raw = os.environ.get(ARRAY_INDEX_ENV)
        if raw is None:
            msg = f"--index {FROM_ARRAY} needs {ARRAY_INDEX_ENV} (set by AWS Batch for array children)"
            raise ValueError(msg)
        value = raw
    if not value.isdigit():
        msg = f"chunk index must be a non-negative integer, got {value!r}"
        raise ValueError(msg)
    return int(value)


def _prefix_depth(value: str) -> int:
    try:
        return check_prefix_depth(int(value))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m batch_jobs", description="The pipeline's batch jobs.")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{split,process,finalize,snapshot}"
    )
    run_args = argparse.ArgumentParser(add_help=False)
    run_args.add_argument("--manifest", required=True, help="s3://DEST/.../manifest.json of the delivery")
    run_args.add_argument(
        "--source-bucket", required=True, help="the run's source bucket (checked against the key)"
    )
    run_args.add_argument(
        "--run-date", required=True, help="the run's date, YYYY-MM-DD (checked against the key)"
    )

    split = commands.add_parser(
        "split", parents=[run_args], help="check the delivery and write the run's plan of N chunks"
    )
    split.add_argument("--chunks", type=int, required=True, help="how many chunks the trigger planned (N)")
    split.add_argument(
        "--target-chunk-bytes",
        type=int,
        required=True,
        help="compressed bytes per chunk the trigger planned with",
    )

    process = commands.add_parser(
        "process", parents=[run_args], help="convert one chunk of the plan to a Parquet part"
    )
    process.add_argument(
        "--index",
        default=FROM_ARRAY,
        help=f"chunk index, or '{FROM_ARRAY}' (default) to read {ARRAY_INDEX_ENV}",
    )
    process.add_argument(
        "--prefix-depth",
        type=_prefix_depth,
        default=DEFAULT_PREFIX_DEPTH,
        help=f"roll up bytes by prefix at depths 1 to this (default {DEFAULT_PREFIX_DEPTH})",
    )

    finalize = commands.add_parser(
        "finalize", parents=[run_args], help="reconcile the run's parts with its plan and mark it complete"
    )
    finalize.add_argument("--chunks", type=int, required=True, help="how many chunks the run was split into")

    listing = commands.add_parser(
        "snapshot", help="list a source bucket into an inventory delivery in the destination bucket"
    )
    listing.add_argument("--source", required=True, help="s3://BUCKET[/PREFIX] to list")
    listing.add_argument("--destination-bucket", required=True, help="where the delivery is written")
    listing.add_argument("--inventory-prefix", required=True, help="the destination's inventory prefix")
    listing.add_argument(
        "--versions", choices=("all", "current"), default="all", help="every version, or current objects"
    )
    listing.add_argument("--workers", type=int, default=16, help="parallel listing requests")
    return parser
