"""``python -m pipeline trigger s3://DEST/.../manifest.json [--force]``: start a run by hand.

The same logic as the Lambda (``lambdas.runs.start_run``), for backfills and reruns. Settings come
from the same environment variables as the Lambda's, or from flags.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from typing import Any

import boto3

from inventory_contract.delivery import parse_delivery_key
from inventory_contract.jsonlog import JsonLogger
from inventory_contract.layout import parse_s3_uri
from lambdas.runs import RunInProgressError, start_run
from lambdas.settings import Settings
from pipeline.arguments import add_command, positive_int
from pipeline.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, PipelineError, UsageError


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands,
        "trigger",
        summary="start the run of one delivery on AWS now, or --force a rerun",
        description="""\
Claim and submit the Batch run of one inventory delivery, exactly as the stack's Lambda does when
the manifest lands: for a delivery whose event was lost, or with --force to run a delivery again
under new job names. The queues and job definitions are the stack's outputs (flags or environment
variables); follow the run with `status`.""",
        examples=[
            "trigger s3://DEST/inventory/SOURCE/CONFIG/2026-11-24T01-00Z/manifest.json",
            "trigger s3://DEST/inventory/SOURCE/CONFIG/2026-11-24T01-00Z/manifest.json --force",
        ],
    )
    parser.add_argument(
        "manifest", help="s3://DEST-BUCKET/PREFIX/SOURCE/CONFIG/YYYY-MM-DDTHH-MMZ/manifest.json"
    )
    parser.add_argument(
        "--force", action="store_true", help="rerun a delivery that already ran (new job names)"
    )
    parser.add_argument("--job-queue", help="Batch job queue (default: $JOB_QUEUE)")
    parser.add_argument(
        "--process-job-queue",
        help="the processor children's queue (default: $PROCESS_JOB_QUEUE, else the job queue; the "
        "stack's output processJobQueueArn)",
    )
    parser.add_argument("--split-job-definition", help="default: $SPLIT_JOB_DEFINITION")
    parser.add_argument("--process-job-definition", help="default: $PROCESS_JOB_DEFINITION")
    parser.add_argument("--finalize-job-definition", help="default: $FINALIZE_JOB_DEFINITION")
    parser.add_argument(
        "--target-chunk-mib",
        type=positive_int,
        help="compressed inventory MiB per chunk (default: $TARGET_CHUNK_MIB or 1024, the stack's targetChunkMib)",
    )
    parser.set_defaults(handler=run)


FLAGS = (
    ("job_queue", "JOB_QUEUE"),
    ("split_job_definition", "SPLIT_JOB_DEFINITION"),
    ("process_job_definition", "PROCESS_JOB_DEFINITION"),
    ("finalize_job_definition", "FINALIZE_JOB_DEFINITION"),
)


def settings_from(args: argparse.Namespace, environ: dict[str, str]) -> Settings:
    """The Lambda's settings from the flags, falling back on its environment variables."""
    env = dict(environ)
    for flag, name in FLAGS:
        if getattr(args, flag):
            env[name] = getattr(args, flag)
        if not env.get(name, "").strip():
            msg = f"give --{flag.replace('_', '-')} or set {name} (the stack's outputs name it)"
            raise UsageError(msg)
    if args.target_chunk_mib:
        env["TARGET_CHUNK_MIB"] = str(args.target_chunk_mib)
    if args.process_job_queue:
        env["PROCESS_JOB_QUEUE"] = args.process_job_queue
    return Settings.from_env(env)


def run(args: argparse.Namespace) -> int:
    try:
        bucket, key = parse_s3_uri(args.manifest)
    except ValueError as err:
        msg = f"MANIFEST {args.manifest!r} is not an S3 object URI like s3://BUCKET/PREFIX/.../manifest.json"
        raise UsageError(msg) from err
    delivery = parse_delivery_key(key)
    settings = settings_from(args, dict(os.environ))
    session = boto3.Session()  # this command's AWS configuration, read now
    batch = session.client("batch")
    try:
        result = start_run(
            bucket,
            delivery,
            settings=settings,
            s3=session.client("s3"),
            batch=batch,
            log=JsonLogger(component="pipeline trigger"),
            force=args.force,
        )
    except RunInProgressError as err:
        raise PipelineError(str(err)) from err
    print(json.dumps(asdict(result), indent=2))
    if result.status == "duplicate":
        failed = _failed_jobs(batch, result.jobs)
        if failed:
            print(
                f"{result.run_id} ran for this delivery and failed ({'; '.join(failed)}). Rerun it with --force."
            )
            return EXIT_FAILED
        print(f"{result.run_id} already ran for this delivery; nothing submitted. Use --force to rerun it.")
    if result.status == "rejected":
        return EXIT_BAD_INPUT
    return EXIT_OK if result.status in {"submitted", "duplicate"} else EXIT_FAILED


def _failed_jobs(batch: Any, jobs: dict[str, str]) -> list[str]:
    if not jobs:
        return []
    found = batch.describe_jobs(jobs=list(jobs.values()))["jobs"]
    return [
        f"{job['jobName']} FAILED: {job.get('statusReason', '')}"
        for job in found
        if job["status"] == "FAILED"
    ]
