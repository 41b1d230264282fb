"""``python -m pipeline smoke``: prove a deployed stack in minutes, without waiting for S3 Inventory.

It writes a small synthetic delivery in S3's exact format (``pipeline.synthetic``) for a reserved
source name (``pipeline.smoke_scope``) under the destination bucket's inventory prefix, data files
first and ``manifest.json`` last, as S3 does. The real S3 notification, trigger Lambda, Batch jobs
and finalize then run it. The command follows the run (``pipeline.status``), prints its run report
and removes what it wrote and what the run produced, whatever the outcome (unless ``--keep``).

Exit codes: 0 the run completed with every row delivered; 1 a job failed (with Batch's reason),
the run did not complete in ``--timeout``, or cleanup failed; 2 bad outputs or flags, or no such
bucket (nothing written); 130/143 interrupted or terminated (the run's unfinished jobs are
terminated and everything is removed).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from components.config import inventory_prefix_problem
from inventory_contract.delivery import MANIFEST_NAME
from inventory_contract.layout import RunLayout
from pipeline.arguments import add_command
from pipeline.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, PipelineError, UsageError
from pipeline.rollups_view import render_rollups
from pipeline.smoke_scope import SmokeScope, remove, smoke_policy, smoke_source
from pipeline.stack_outputs import inventory_prefix_of, read_outputs
from pipeline.status import RunStatus, run_statuses
from pipeline.synthetic import generate_delivery

OBJECTS, DATA_FILES = 400, 2
CONFIG_ID = "s3-inventory-pipeline-smoke"
DEFAULT_TIMEOUT_SECONDS = 20 * 60
DEFAULT_POLL_SECONDS = 10.0
WAITING = "delivered"
DESCRIPTION = """\
Prove a deployed stack in minutes: write a small synthetic inventory delivery (400 objects) for a
reserved source name (amzn-s3-demo-smoke-..., a name S3 never gives a bucket) under the destination
bucket's inventory prefix, follow the run that the stack's own notification, Lambda and Batch jobs
start, print its run report, and remove the delivery and everything the run wrote.

Exit codes: 0 passed; 1 a job failed (with Batch's reason), timed out, or cleanup failed; 2 bad
outputs or flags (nothing written); 130/143 interrupted or terminated (jobs stopped, cleaned up).
"""


@dataclass(frozen=True)
class Target:
    """What the smoke run needs of the deployed stack."""

    bucket: str
    inventory_prefix: str
    partition: str = "aws"
    trigger_function: str | None = None


class SmokeTimeoutError(PipelineError):
    """The run did not complete in time; the message names the state it was in."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands,
        "smoke",
        summary="prove a deployed stack: a small synthetic run, then cleanup",
        description=DESCRIPTION,
        examples=[
            "smoke --stack dev",
            "smoke --outputs outputs.json --timeout 1800",
            "smoke --destination-bucket DEST --print-policy",
        ],
    )
    parser.add_argument(
        "--outputs",
        metavar="FILE",
        help="the JSON of `pulumi stack output --json` (- for stdin); default: run that command",
    )
    parser.add_argument("--stack", help="the Pulumi stack whose outputs to read (default: the selected one)")
    parser.add_argument("--destination-bucket", help="overrides the output destinationBucket")
    parser.add_argument(
        "--inventory-prefix",
        help="overrides the output inventoryPrefix (default with --destination-bucket alone: inventory)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"give up after this long (default {DEFAULT_TIMEOUT_SECONDS}: Fargate start-up included)",
    )
    parser.add_argument(
        "--poll",
        type=_seconds,
        default=DEFAULT_POLL_SECONDS,
        metavar="SECONDS",
        help=f"seconds between looks at the run (default {DEFAULT_POLL_SECONDS:g})",
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the delivery and the run's output in place"
    )
    parser.add_argument(
        "--print-policy",
        action="store_true",
        help="print the IAM policy the smoke test needs on the stack's bucket, and exit",
    )
    parser.set_defaults(handler=run)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        msg = f"must be a number of seconds above 0, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def target_from(args: argparse.Namespace) -> Target:
    """The stack's outputs (file, stdin or ``pulumi stack output``), with the flags on top."""
    outputs: dict[str, Any] = {}
    if args.outputs is not None or not args.destination_bucket:
        outputs = read_outputs(args.outputs, stack=args.stack)
    bucket = args.destination_bucket or outputs.get("destinationBucket")
    if not isinstance(bucket, str) or not bucket.strip():
        msg = "the stack outputs have no destinationBucket; give --destination-bucket or the outputs of this stack"
        raise UsageError(msg)
    prefix = args.inventory_prefix
    if prefix is None:
        prefix = inventory_prefix_of(outputs) if outputs else "inventory"
    if prefix is None:
        msg = "the stack outputs name no inventory prefix (inventoryPrefix); give --inventory-prefix"
        raise UsageError(msg)
    problem = inventory_prefix_problem(prefix)
    if problem:
        msg = f"--inventory-prefix {problem}"
        raise UsageError(msg)
    queue = str(outputs.get("jobQueueArn", ""))
    function = outputs.get("triggerFunctionName")
    return Target(
        bucket=bucket.strip(),
        inventory_prefix=prefix,
        partition=queue.split(":")[1] if queue.startswith("arn:") else "aws",
        trigger_function=function if isinstance(function, str) else None,
    )


def run(args: argparse.Namespace) -> int:
    target = target_from(args)
    if args.print_policy:
        bucket_arn = f"arn:{target.partition}:s3:::{target.bucket}"
        policy = smoke_policy(
            bucket_arn=bucket_arn, inventory_prefix=target.inventory_prefix, partition=target.partition
        )
        print(json.dumps(policy, indent=2))
        return EXIT_OK
    session = boto3.Session()  # this command's AWS configuration, read now
    s3, batch = session.client("s3"), session.client("batch")
    started = datetime.now(UTC)
    source = smoke_source(started)
    scope = SmokeScope(target.bucket, target.inventory_prefix, source, started.strftime("%Y-%m-%d"))
    _check_destination(s3, scope)
    clock = time.monotonic()

    def progress(text: str) -> None:
        elapsed = int(time.monotonic() - clock)
        print(f"smoke [{elapsed // 60:3d}:{elapsed % 60:02d}] {text}", file=sys.stderr, flush=True)

    with _terminate_as_interrupt():
        try:
            rows = _deliver(s3, scope, started, progress)
            run_id = f"{scope.source_bucket}/{scope.run_date}"
            status = follow_run(s3, batch, scope.bucket, run_id, args.timeout, args.poll, progress, target)
            report = run_report(s3, scope.bucket, run_id)
            # finalize writes the storage report after the marker: let it end before the cleanup
            _wait_for_jobs(s3, batch, scope, clock + args.timeout, args.poll, progress)
        except BaseException as err:
            if isinstance(err, SmokeTimeoutError | KeyboardInterrupt):
                _stop_jobs(s3, batch, scope, f"smoke test stopped ({_why(err)})", progress)
            problems = _clean_up(s3, scope, args.keep, progress)
            for problem in problems:  # the run's own error below is what matters most
                print(f"error: {problem}", file=sys.stderr)
            if isinstance(err, KeyboardInterrupt):
                print(f"{_why(err)}: stopped following the smoke run of {source}", file=sys.stderr)
                return EXIT_TERMINATED if isinstance(err, _Terminated) else EXIT_INTERRUPTED
            raise
    problems = _clean_up(s3, scope, args.keep, progress)
    print(_render(scope, status, report, rows, time.monotonic() - clock))
    if report.get("rows_out") != rows:
        msg = f"the run completed but wrote {report.get('rows_out')} rows for the {rows} delivered"
        raise PipelineError(msg)
    if problems:
        msg = "could not remove everything the smoke test wrote: " + "; ".join(problems)
        raise PipelineError(msg)
    return EXIT_OK


def _why(err: BaseException) -> str:
    if isinstance(err, _Terminated):
        return "terminated"
    return "interrupted" if isinstance(err, KeyboardInterrupt) else "timed out"


def _check_destination(s3: Any, scope: SmokeScope) -> None:
    """A listing of the smoke run's own delivery prefix (all its IAM allows): a bucket that does not
    exist is bad input, and nothing has been written."""
    try:
        s3.list_objects_v2(Bucket=scope.bucket, Prefix=scope.delivery_prefix, MaxKeys=1)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in {"NoSuchBucket", "InvalidBucketName"}:
            msg = f"destination bucket {scope.bucket!r} does not exist; check destinationBucket and the AWS account"
            raise UsageError(msg) from err
        raise


def _deliver(s3: Any, scope: SmokeScope, started: datetime, progress: Callable[[str], None]) -> int:
    """Upload the delivery, ``manifest.json`` last; returns the rows it holds."""
    with tempfile.TemporaryDirectory(prefix="s3inv-smoke-") as tmp:
        generated = generate_delivery(
            Path(tmp),
            objects=OBJECTS,
            files=DATA_FILES,
            source_bucket=scope.source_bucket,
            destination_bucket=scope.bucket,
            config_id=CONFIG_ID,
            timestamp=started.replace(second=0, microsecond=0),
            prefix=scope.inventory_prefix,
        )
        manifest = generated.delivery.manifest_key
        files = sorted(p.relative_to(tmp).as_posix() for p in Path(tmp).rglob("*") if p.is_file())
        # data files first, then the checksum and the hive symlink, and the manifest that starts the run
        for key in sorted(files, key=lambda k: (k == manifest, "/data/" not in k, k)):
            s3.upload_file(str(Path(tmp) / key), scope.bucket, key)
    progress(
        f"delivered {generated.truth.rows} objects in {DATA_FILES} data files to "
        f"s3://{scope.bucket}/{manifest.removesuffix(MANIFEST_NAME)}"
    )
    return generated.truth.rows


def follow_run(
    s3: Any,
    batch: Any,
    bucket: str,
    run_id: str,
    timeout: float,
    poll: float,
    progress: Callable[[str], None],
    target: Target,
    what: str = "the smoke run",
) -> RunStatus:
    """Poll the run ``SOURCE/DATE`` in ``bucket`` until it is complete or failed; a progress line
    at every change of state."""
    deadline = time.monotonic() + timeout
    seen: tuple[str, str] | None = None
    while True:
        [status] = run_statuses(s3, batch, bucket, run=run_id)
        state, detail = _readable(status)
        if (state, detail) != seen:
            progress(f"{state}" + (f": {detail}" if detail else ""))
            seen = (state, detail)
        if state == "failed":
            msg = f"{what} failed: {detail}"
            raise PipelineError(msg)
        if state == "complete":
            return status
        left = deadline - time.monotonic()
        if left <= 0:
            hint = ""
            if state == WAITING:
                function = (
                    f"the trigger function {target.trigger_function}"
                    if target.trigger_function
                    else "the trigger"
                )
                hint = (
                    f"; nothing claimed the run: check the logs of {function} and its failed-events queue "
                    "(stack output failedEventsQueueArn)"
                )
            msg = (
                f"{what} did not complete in {timeout:g} s; it was {state}"
                + (f" ({detail})" if detail else "")
                + hint
            )
            raise SmokeTimeoutError(msg)
        time.sleep(min(poll, left))


def _readable(status: RunStatus) -> tuple[str, str]:
    if status.state == "unknown" and status.detail == "no claim":
        return WAITING, "waiting for the trigger to claim the run"
    if status.state == "claimed":  # its detail is the lease's epoch time
        return status.state, "the trigger is submitting the jobs"
    return status.state, status.detail


def run_report(s3: Any, bucket: str, run_id: str) -> dict[str, Any]:
    """The run report of the complete run ``SOURCE/DATE`` in ``bucket``."""
    source, _, date = run_id.partition("/")
    key = RunLayout(source, date).run_report_key
    report: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return report


def _wait_for_jobs(
    s3: Any, batch: Any, scope: SmokeScope, deadline: float, poll: float, progress: Callable[[str], None]
) -> None:
    """Wait (until ``deadline``, a monotonic time) for the run's jobs, as its claim names them, to
    end: a page written after the cleanup would be left behind."""
    claim_key = RunLayout(scope.source_bucket, scope.run_date).claim_key
    jobs = json.loads(s3.get_object(Bucket=scope.bucket, Key=claim_key)["Body"].read()).get("jobs") or {}
    said = False
    while jobs and time.monotonic() < deadline:
        found = batch.describe_jobs(jobs=list(jobs.values()))["jobs"]
        if all(job["status"] in {"SUCCEEDED", "FAILED"} for job in found):
            return
        if not said:
            progress("waiting for finalize to write the storage report")
            said = True
        time.sleep(poll)


def _stop_jobs(s3: Any, batch: Any, scope: SmokeScope, reason: str, progress: Callable[[str], None]) -> None:
    """Terminate the run's jobs that have not finished, so that none writes after the cleanup."""
    claim_key = RunLayout(scope.source_bucket, scope.run_date).claim_key
    try:
        claim = json.loads(s3.get_object(Bucket=scope.bucket, Key=claim_key)["Body"].read())
        jobs: dict[str, str] = claim.get("jobs") or {}
        found = batch.describe_jobs(jobs=list(jobs.values()))["jobs"] if jobs else []
        stopped = []
        for job in found:
            if job["status"] not in {"SUCCEEDED", "FAILED"}:
                batch.terminate_job(jobId=job["jobId"], reason=reason)
                stopped.append(job["jobName"])
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in {"NoSuchKey", "AccessDenied", "404", "403"}:
            return  # nothing claimed the run yet: no jobs to stop
        progress(f"could not stop the run's jobs: {err}")
        return
    except BotoCoreError as err:  # unreachable, say: the cleanup is still worth trying
        progress(f"could not stop the run's jobs: {err}")
        return
    if stopped:
        progress(f"terminated the run's unfinished jobs: {', '.join(stopped)}")


def _clean_up(s3: Any, scope: SmokeScope, keep: bool, progress: Callable[[str], None]) -> list[str]:
    """Remove the delivery and the run's output (unless ``keep``); returns what could not be removed."""
    if keep:
        progress("kept (--keep): " + ", ".join(f"s3://{scope.bucket}/{p}" for p in scope.prefixes[:3]))
        return []
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not stop the cleanup
    try:
        return remove(s3, scope, progress)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _render(scope: SmokeScope, status: RunStatus, report: dict[str, Any], rows: int, seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    lines = [
        f"smoke test passed in {minutes}m{secs:02d}s: {scope.source_bucket}/{scope.run_date} is complete",
        f"rows:             {rows:,} delivered, {report.get('rows_in', 0):,} in, {report.get('rows_out', 0):,} out",
    ]
    return "\n".join([*lines, *report_lines(report, f" (generation {status.generation})")])


def report_lines(report: dict[str, Any], chunks_note: str = "") -> list[str]:
    """A run report's chunks, Parquet bytes and rollups, as the smoke and snapshot commands print them."""
    lines = [
        f"chunks:           {report.get('chunks')}{chunks_note}",
        f"parquet bytes:    {report.get('parquet_bytes', 0):,}",
    ]
    if report.get("rollups"):
        lines.append(render_rollups(report["rollups"]))
    return lines


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, so it stops following and still cleans up."""


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    def terminated(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
