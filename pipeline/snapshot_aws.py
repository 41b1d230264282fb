"""``python -m pipeline snapshot s3://SOURCE --stack NAME``: the stack's snapshot job, followed.

It submits the stack's ``snapshot`` job (``inventory_contract.jobs.SNAPSHOT``), which lists the
source bucket with the snapshot role and writes the delivery under the destination's inventory
prefix, manifest last. The stack's own notification and trigger then start a run like any other;
this command follows the job, then the run (``pipeline.smoke.follow_run``), and prints the run
report. Ctrl-C terminates the snapshot job if it is still listing (a run already started goes on).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from batch_jobs.snapshot import DEFAULT_WORKERS
from inventory_contract.delivery import MANIFEST_NAME, parse_delivery_key
from inventory_contract.jobs import snapshot_parameters
from inventory_contract.listing import LISTING_CONFIG_ID, is_listing_manifest
from pipeline.errors import EXIT_OK, PipelineError, UsageError
from pipeline.smoke import Target, follow_run, report_lines, run_report
from pipeline.stack_outputs import inventory_prefix_of, read_outputs

CLOCK_SKEW = timedelta(minutes=10)
_JOB_DONE = {"SUCCEEDED", "FAILED"}


def run_on_aws(args: argparse.Namespace, bucket: str, prefix: str) -> int:
    outputs = read_outputs(args.outputs, stack=args.stack, instead="")
    destination, queue, definition = (
        _output(outputs, name) for name in ("destinationBucket", "jobQueueArn", "snapshotJobDefinitionArn")
    )
    inventory_prefix = inventory_prefix_of(outputs)
    if inventory_prefix is None:
        msg = (
            "the stack outputs name no inventory prefix (inventoryPrefix); update the stack with `pulumi up`"
        )
        raise UsageError(msg)
    sources = outputs.get("sourceBuckets") or []
    if bucket not in sources:
        msg = (
            f"s3://{bucket} is not a source bucket of this stack (sourceBuckets: {', '.join(sources) or 'none'}); "
            "its snapshot job may list only those: add it to existingSourceBuckets and run `pulumi up`, "
            "or list it from this machine with --out"
        )
        raise UsageError(msg)
    session = boto3.Session()
    s3, batch = session.client("s3"), session.client("batch")
    clock = time.monotonic()
    poll = args.poll

    def progress(text: str) -> None:
        elapsed = int(time.monotonic() - clock)
        print(f"snapshot [{elapsed // 60:3d}:{elapsed % 60:02d}] {text}", file=sys.stderr, flush=True)

    # this machine's clock may be off from AWS's: look back CLOCK_SKEW, and skip what was there before
    submitted = datetime.now(UTC).replace(second=0, microsecond=0) - CLOCK_SKEW
    folder = f"{inventory_prefix}/{bucket}/{LISTING_CONFIG_ID}/"
    earlier = set(_manifests_since(s3, destination, folder, submitted))
    parameters = snapshot_parameters(
        f"s3://{bucket}/{prefix}",
        destination,
        inventory_prefix,
        current_only=args.current_only,
        workers=args.workers or DEFAULT_WORKERS,
    )
    job_id = batch.submit_job(
        jobName=f"s3inv-snapshot-{bucket[:60]}-{submitted:%Y%m%dT%H%M}".replace(".", "-"),
        jobQueue=queue,
        jobDefinition=definition,
        parameters=parameters,
    )["jobId"]
    progress(f"submitted the snapshot job {job_id} listing s3://{bucket}/{prefix}")
    deadline = time.monotonic() + args.timeout
    try:
        manifest_key = _wait_for_delivery(
            s3, batch, job_id, destination, folder, (submitted, earlier), deadline, poll, progress
        )
    except KeyboardInterrupt:
        batch.terminate_job(jobId=job_id, reason="snapshot command interrupted")
        progress(f"terminated the snapshot job {job_id}")
        raise
    delivery = parse_delivery_key(manifest_key)
    run_id = f"{delivery.source_bucket}/{delivery.run_date}"
    progress(f"delivered s3://{destination}/{manifest_key}; following run {run_id}")
    target = Target(destination, inventory_prefix, trigger_function=outputs.get("triggerFunctionName"))
    status = follow_run(
        s3,
        batch,
        destination,
        run_id,
        max(deadline - time.monotonic(), 0.0),
        poll,
        progress,
        target,
        what=f"the run of the listing of s3://{bucket}",
    )
    report = run_report(s3, destination, status.run)
    if report.get("manifest") != f"s3://{destination}/{manifest_key}":
        kept = str(report.get("manifest"))
        why = (
            "a later listing of the same date replaced it"
            if is_listing_manifest(kept)
            else "S3 Inventory delivered that date, and a listing does not replace an inventory's run"
        )
        msg = f"run {run_id} holds {kept}, not this listing: {why}"
        raise PipelineError(msg)
    print(_render(run_id, report, time.monotonic() - clock))
    return EXIT_OK


def _output(outputs: dict[str, Any], name: str) -> str:
    value = outputs.get(name)
    if not isinstance(value, str) or not value:
        msg = f"the stack outputs have no {name}; update the stack with `pulumi up` (the snapshot job is new)"
        raise UsageError(msg)
    return value


def _wait_for_delivery(
    s3: Any,
    batch: Any,
    job_id: str,
    destination: str,
    folder: str,
    after: tuple[datetime, set[str]],
    deadline: float,
    poll: float,
    progress: Callable[[str], None],
) -> str:
    """The key of the manifest the job delivered; the job's failure, with Batch's reason, raises."""
    seen = None
    while True:
        [job] = batch.describe_jobs(jobs=[job_id])["jobs"]
        if job["status"] != seen:
            progress(f"snapshot job {job['status'].lower()}")
            seen = job["status"]
        if job["status"] == "FAILED":
            msg = f"the snapshot job {job_id} failed: {job.get('statusReason', 'no reason given')}"
            raise PipelineError(msg)
        found = [key for key in _manifests_since(s3, destination, folder, after[0]) if key not in after[1]]
        if found:
            return found[-1]
        if time.monotonic() > deadline:
            msg = f"the snapshot job {job_id} delivered no manifest in time; it was {job['status']}"
            raise PipelineError(msg)
        time.sleep(poll)


def _manifests_since(s3: Any, bucket: str, folder: str, since: datetime) -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=folder, Delimiter="/")
    keys = []
    for common in listed.get("CommonPrefixes", []):
        key = f"{common['Prefix']}{MANIFEST_NAME}"
        try:
            delivery = parse_delivery_key(key)
        except ValueError:
            continue  # data/, not a delivery's folder
        if delivery.timestamp >= since and _exists(s3, bucket, key):
            keys.append(key)
    return sorted(keys)


def _exists(s3: Any, bucket: str, key: str) -> bool:
    return bool(s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount"))


def _render(run_id: str, report: dict[str, Any], seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    lines = [
        f"snapshot done in {minutes}m{secs:02d}s: {run_id} is complete (a listing, not an S3 Inventory)",
        f"rows:             {report.get('rows_in', 0):,} in, {report.get('rows_out', 0):,} out",
    ]
    return "\n".join([*lines, *report_lines(report)])
