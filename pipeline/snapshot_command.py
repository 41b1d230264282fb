"""``python -m pipeline snapshot s3://BUCKET[/PREFIX]``: a first inventory now, by listing the bucket.

``--out OUT`` lists the bucket from this machine into ``OUT/listing/`` (laid out like a destination
bucket: ``inventory/BUCKET/s3-inventory-pipeline-listing/TIMESTAMP/...``) and converts it as
``run-local`` does, with the same jobs, outputs and run report; ``run_date`` is the listing's UTC
date. ``--stack NAME`` (or ``--outputs FILE``) runs the stack's ``snapshot`` job on AWS Batch
instead, which writes the delivery into the destination bucket, where the stack's own trigger
converts it; the command follows it to the end (``pipeline/snapshot_aws.py``).

Exit codes: 0 done; 1 AWS refused (access denied) or a job failed; 2 bad input (a malformed URI,
no such bucket, a bucket in another Region, a bad flag), with nothing written to ``--out``;
130/143 interrupted or terminated (the listing's data files are deleted, no manifest is written).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from batch_jobs.snapshot import DEFAULT_FILE_BYTES, DEFAULT_WORKERS, ListingConflictError, ListingRefusedError
from inventory_contract.listing import parse_bucket_uri
from pipeline.arguments import add_command, path, positive_int
from pipeline.errors import EXIT_OK, PipelineError, UsageError

LISTING_FOLDER = "listing"
"""Under ``--out``: the folder that stands for the destination bucket of the listing's delivery."""
LOCAL_DESTINATION = "s3-inventory-listing"
"""The destination bucket a local listing's manifest names (nothing is written to it)."""
MiB = 1024 * 1024

DESCRIPTION = """\
A first inventory in minutes instead of S3 Inventory's first 48 hours: list a bucket and write what
S3 Inventory would have delivered (gzip CSV data files, manifest.json and manifest.checksum, keys
encoded as S3 encodes them), then convert it exactly as run-local does. Every version and delete
marker is listed (ListObjectVersions) unless --current-only (ListObjectsV2).

A listing is not a point-in-time snapshot: objects written while it runs may or may not appear.
It has no replication, encryption, Object Lock, Intelligent-Tiering tier, ACL or lifecycle fields
(null in the table). It costs one LIST request per 1,000 keys (versions included): about $5 per
billion keys in us-east-1.

Exit codes: 0 done; 1 AWS refused or a job failed; 2 bad input (nothing written to --out);
130/143 interrupted or terminated (the listing's files are deleted).
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands,
        "snapshot",
        summary="list a bucket now instead of waiting for its inventory",
        description=DESCRIPTION,
        examples=[
            "snapshot s3://my-bucket --out snapshot-output",
            "snapshot s3://my-bucket/logs/ --current-only --out snapshot-output",
            "snapshot s3://my-bucket --stack dev      # on AWS Batch, by the stack's job",
        ],
    )
    parser.add_argument("source", metavar="s3://BUCKET[/PREFIX]", help="the bucket (and prefix) to list")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=path, help="list and convert on this machine, into this folder")
    where.add_argument("--stack", help="run the listing on AWS Batch with this Pulumi stack's snapshot job")
    where.add_argument(
        "--outputs",
        metavar="FILE",
        help="as --stack, from the JSON of `pulumi stack output --json` (- for stdin)",
    )
    parser.add_argument(
        "--current-only", action="store_true", help="current objects only (no versions or delete markers)"
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        help="parallel listing processes, one request in flight each (default: twice the CPU count, at "
        f"most {DEFAULT_WORKERS}, since a page costs about 40 ms of CPU and S3 about 100 ms to answer it; "
        f"with --stack: {DEFAULT_WORKERS}, on the job's 4 vCPU)",
    )
    parser.add_argument(
        "--file-mib",
        type=positive_int,
        default=DEFAULT_FILE_BYTES // MiB,
        help=f"gzip MiB per data file before a new one starts (default {DEFAULT_FILE_BYTES // MiB})",
    )
    parser.add_argument(
        "--convert-workers",
        type=positive_int,
        help="with --out: parallel processor children (default: CPU count)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60 * 60,
        metavar="SECONDS",
        help="with --stack: give up after this long",
    )
    parser.add_argument(
        "--poll", type=float, default=10.0, metavar="SECONDS", help="with --stack: seconds between looks"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    bucket, prefix = parse_bucket_uri(args.source)
    if args.out is None:
        from pipeline.snapshot_aws import run_on_aws

        return run_on_aws(args, bucket, prefix)
    try:
        return _run_here(args, bucket, prefix)
    except (ListingRefusedError, ListingConflictError) as err:
        raise PipelineError(str(err)) from err


def _run_here(args: argparse.Namespace, bucket: str, prefix: str) -> int:
    from batch_jobs.snapshot import ListingSource, check_source, listing_client, snapshot
    from batch_jobs.storage import LocalStorage
    from inventory_contract.layout import INVENTORY_PREFIX
    from pipeline.local.run_local import check_out, open_delivery, progress_printer, run_local
    from pipeline.local.summary import print_run

    if args.out.exists() and not args.out.is_dir():
        msg = f"--out {args.out} is a file; give a folder for the output"
        raise UsageError(msg)
    source = ListingSource(bucket, prefix)
    workers = args.workers or min(DEFAULT_WORKERS, 2 * (os.cpu_count() or 1))
    s3 = listing_client(workers)
    check_source(s3, source, current_only=args.current_only)  # before anything is written
    check_out(args.out)
    progress = progress_printer()
    root = args.out / LISTING_FOLDER
    listed = snapshot(
        s3,
        source,
        LocalStorage(LOCAL_DESTINATION, root),
        inventory_prefix=INVENTORY_PREFIX,
        current_only=args.current_only,
        workers=workers,
        file_bytes=args.file_mib * MiB,
        progress=progress,
        processes=True,
    )
    progress(f"wrote the listing's delivery: {root / listed.manifest_key}")
    delivery = open_delivery(Path(root / listed.manifest_key), root)
    # a listing of the same bucket on the same date replaces the earlier one, as a new run would
    run = run_local(delivery, args.out, force=True, workers=args.convert_workers or 0, progress=progress)
    print_run(run, args.out)
    return EXIT_OK
