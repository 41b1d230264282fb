"""``python -m pipeline status [RUN] --bucket DEST``: recent runs on AWS and their state.
(``status FOLDER``, the runs in a local output folder, is ``pipeline/local/status.py``.)

A run's state comes from its run state in S3 and its jobs in the Batch API:

| state | meaning |
| --- | --- |
| claimed | the trigger claimed the run and has not submitted its jobs (yet) |
| splitting | the splitter has not succeeded yet |
| processing | the processor children or the finalize job are running |
| complete | finalize reconciled the run and wrote the ``_COMPLETE`` marker |
| failed | a job failed, or the trigger rejected the manifest |
| unknown | jobs no longer in the Batch API (it keeps them for days), and no marker |
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from batch_jobs.run import claimed_since
from inventory_contract.delivery import BUCKET_NAME
from inventory_contract.layout import REPORTS_ROOT, STATE_ROOT, RunLayout
from inventory_contract.listing import INVENTORY, LISTING, is_listing_manifest
from inventory_contract.s3 import is_missing
from lambdas.runs import JOB_KINDS
from pipeline.arguments import add_command, positive_int
from pipeline.errors import UsageError
from pipeline.rollups_view import render_repeats, render_rollups

_KIND_ORDER = {kind: index for index, kind in enumerate(JOB_KINDS)}
_RUN = re.compile(rf"^{BUCKET_NAME}/\d{{4}}-\d{{2}}-\d{{2}}$")


@dataclass
class RunStatus:
    run: str
    state: str
    detail: str = ""
    generation: int | None = None
    chunks: int | None = None
    rows: int | None = None
    claimed_at: str | None = None
    kind: str | None = None  # s3-inventory, or listing (``snapshot``): what the run converts
    rollups: dict[str, Any] | None = None  # a complete run's, when one run was asked for
    duplicates: dict[str, Any] | None = None  # the objects it lists more than once (same)


def derive_state(
    claim: dict[str, Any] | None,
    rejected: dict[str, Any] | None,
    complete: bool,
    jobs: dict[str, dict[str, Any]],
) -> tuple[str, str]:
    """(state, detail) from what S3 and Batch say about one run; ``jobs`` maps kind -> job."""
    if complete:
        return "complete", ""
    if claim is None:
        return ("failed", f"manifest rejected: {rejected['error']}") if rejected else ("unknown", "no claim")
    if claim.get("state") != "submitted":
        return "claimed", f"lease until {claim.get('lease_expires_at')}"
    in_order = sorted(jobs.items(), key=lambda item: _KIND_ORDER.get(item[0], len(_KIND_ORDER)))
    failed = [(kind, job) for kind, job in in_order if job.get("status") == "FAILED"]
    if failed:  # the first in the run's order: the jobs after it failed only because it did
        kind, job = failed[0]
        return "failed", f"{kind} job {job.get('jobName')} failed: {job.get('statusReason', '')}"
    if not jobs:
        return "unknown", "its jobs are no longer in the Batch API"
    if jobs.get("split", {}).get("status") != "SUCCEEDED":
        return "splitting", str(jobs.get("split", {}).get("status", ""))
    return "processing", ", ".join(f"{k} {j.get('status')}" for k, j in in_order if k != "split")


def run_statuses(
    s3: Any, batch: Any, bucket: str, *, run: str | None = None, limit: int = 20
) -> list[RunStatus]:
    runs = [run] if run else _recent_runs(s3, bucket)[:limit]
    statuses = []
    for run_id in runs:
        source_bucket, _, run_date = run_id.partition("/")
        layout = RunLayout(source_bucket, run_date)
        claim = read_json(s3, bucket, layout.claim_key)
        rejected = read_json(s3, bucket, layout.failure_key)
        report = read_json(s3, bucket, layout.run_report_key)
        marker = read_json(s3, bucket, layout.complete_marker_key)
        complete = marker is not None and not claimed_since(claim, marker)
        jobs: dict[str, dict[str, Any]] = {}
        if claim and claim.get("jobs"):
            found = {j["jobId"]: j for j in batch.describe_jobs(jobs=list(claim["jobs"].values()))["jobs"]}
            jobs = {kind: found[job_id] for kind, job_id in claim["jobs"].items() if job_id in found}
        state, detail = derive_state(claim, rejected, complete, jobs)
        statuses.append(
            RunStatus(
                run=run_id,
                state=state,
                detail=detail,
                generation=(claim or {}).get("generation"),
                chunks=(claim or {}).get("chunks"),
                rows=(report or {}).get("rows_out"),
                claimed_at=(claim or {}).get("claimed_at"),
                kind=_kind((claim or {}).get("manifest")),
            )
        )
    return statuses


def _kind(manifest: str | None) -> str | None:
    if not manifest:
        return None
    return LISTING if is_listing_manifest(manifest) else INVENTORY


def _recent_runs(s3: Any, bucket: str) -> list[str]:
    """``SOURCE/YYYY-MM-DD`` of every run with state, newest first."""
    runs = set()
    for root in (STATE_ROOT, REPORTS_ROOT):  # run state expires; run reports are kept
        for source in common_prefixes(s3, bucket, f"{root}/"):
            for day in common_prefixes(s3, bucket, source):
                name = source.removeprefix(f"{root}/source_bucket=").rstrip("/")
                runs.add(f"{name}/{day.rstrip('/').rsplit('run_date=', 1)[-1]}")
    return sorted(runs, key=lambda r: (r.rsplit("/", 1)[1], r), reverse=True)


def common_prefixes(s3: Any, bucket: str, prefix: str) -> list[str]:
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        found += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return found


def read_json(s3: Any, bucket: str, key: str, *, again: bool = True) -> Any:
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read() or b"null")
    except ClientError as err:
        if is_missing(err, s3=s3, bucket=bucket, key=key):
            return None
        if again and err.response.get("Error", {}).get("Code") == "AccessDenied":
            # a 403 for a missing key, then a listing that finds it: a job wrote it in between
            return read_json(s3, bucket, key, again=False)
        raise


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands,
        "status",
        summary="runs on AWS, or in a local output folder, and their state",
        description="""\
On AWS: the most recent runs of the stack (from the run state in the destination bucket and the
jobs in the Batch API), one per line: claimed, splitting, processing, complete, failed (with the
job and Batch's reason) or unknown; for one run, its rollups too. Exit 1 when a run shown failed.

Given a local folder (the --out of run-local, demo or snapshot): every run in it, with its source
bucket, date, whether it is complete (and why not), rows, bytes, Parquet bytes and where most of
its bytes are. No AWS is needed.""",
        examples=[
            "status --bucket DEST",
            "status SOURCE/2026-11-24 --bucket DEST --json",
            "status demo-output",
        ],
    )
    parser.add_argument(
        "run",
        nargs="?",
        metavar="RUN | FOLDER",
        help="one run on AWS, SOURCE-BUCKET/YYYY-MM-DD (default: the most recent runs), or a local "
        "output folder",
    )
    parser.add_argument(
        "--bucket",
        default=os.environ.get("DESTINATION_BUCKET"),
        help="destination bucket (default: $DESTINATION_BUCKET)",
    )
    parser.add_argument("--limit", type=positive_int, default=20, help="how many runs (default 20)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.run and Path(args.run).is_dir() and not (_RUN.match(args.run) and args.bucket):
        return _local(Path(args.run), as_json=args.json)  # a run, SOURCE/DATE, wins when a bucket is given
    if args.run and not _RUN.match(args.run):
        msg = f"{args.run!r} is neither a run, SOURCE-BUCKET/YYYY-MM-DD, nor a folder on this machine"
        raise UsageError(msg)
    if not args.bucket:
        msg = "give --bucket or set DESTINATION_BUCKET (the stack output destinationBucket)"
        raise UsageError(msg)
    session = boto3.Session()  # this command's AWS configuration, read now
    statuses = run_statuses(
        session.client("s3"), session.client("batch"), args.bucket, run=args.run, limit=args.limit
    )
    if args.run:
        for s in statuses:
            if s.state == "complete":
                report = read_json(
                    session.client("s3"), args.bucket, RunLayout(*s.run.split("/")).run_report_key
                )
                s.rollups = (report or {}).get("rollups")
                s.duplicates = (report or {}).get("duplicates")
    if args.json:
        print(json.dumps([asdict(s) for s in statuses], indent=2))
        return 0
    print(f"{'run':<50} {'state':<11} {'kind':<12} {'gen':>3} {'chunks':>6} {'rows':>14}  detail")
    for s in statuses:
        rows = f"{s.rows:,}" if s.rows is not None else "-"
        print(
            f"{s.run:<50} {s.state:<11} {s.kind or '-':<12} {s.generation or '-':>3} {s.chunks or '-':>6} "
            f"{rows:>14}  {s.detail}"
        )
    for s in statuses:
        if s.rollups:
            print(render_rollups(s.rollups))
        if repeats := render_repeats(s.duplicates or {}):
            print(repeats)
    return 0 if all(s.state != "failed" for s in statuses) else 1


def _local(out: Path, *, as_json: bool) -> int:
    from pipeline.local.status import local_runs, render

    runs = local_runs(out)
    print(json.dumps([asdict(r) for r in runs], indent=2) if as_json else render(out, runs))
    return 0
