"""The IAM role policies the stack deploys, as plain functions of plain strings (no Pulumi).

The components render them with the stack's ARNs (``Output.all(...).apply``); the end-to-end tests
render the same functions with the stand-in's ARNs and run the trigger and the jobs under them with
IAM enforced, so a permission missing here fails a test, as it would fail a run on AWS.

Least privilege, by what each piece of code really does:
- ``s3:ListBucket`` only for the prefixes the role works under (``s3:prefix``). Without an
  unconditional ListBucket, S3 answers a missing key with 403, not 404; the code tells the two
  apart with a listing of exactly that key (``inventory_contract.s3.is_missing``).
- The run claim (``claim.json``) and a rejection record are the trigger's alone; the jobs write
  only their own run-state files (the plan, the part stats) and can never overwrite it.
- The jobs only read the delivery: nothing is copied out of it (no ``inventory-chunks/`` grant).
- Job definitions are granted as ``job-definition/NAME:*``, so a new revision registered during
  ``pulumi up`` never fails a submission that still names the previous one.
"""

from __future__ import annotations

from typing import Any

from inventory_contract.layout import (
    PROCESSED_ROOT,
    REPORTS_ROOT,
    ROLLUPS_ROOT,
    STATE_ROOT,
    STORAGE_REPORTS_ROOT,
)
from inventory_contract.listing import LISTING_CONFIG_ID

RUN_STATE = f"{STATE_ROOT}/source_bucket=*/run_date=*"
"""Every run's state folder, as an IAM resource pattern (``*`` also matches ``/``)."""
JOB_MULTIPART_WRITES = (f"{PROCESSED_ROOT}/*", f"{RUN_STATE}/parts/*")
"""What the jobs write with ``Storage.store``, which uploads in parts above 64 MiB (checked against
the keys a run really writes so: tests/test_deployed_iam.py): split and process the first two,
finalize the rollup tables."""


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(sid: str, actions: list[str], resources: list[Any], **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def trust_policy(service: str, account_id: str, source_arn: str | None = None) -> dict[str, Any]:
    """Let ``service`` assume the role only on behalf of this account (confused-deputy guard)."""
    condition: dict[str, Any] = {"StringEquals": {"aws:SourceAccount": account_id}}
    if source_arn:
        condition["ArnLike"] = {"aws:SourceArn": source_arn}
    return document(
        {
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": condition,
        }
    )


def ecs_tasks_trust_policy(partition: str, region: str, account_id: str) -> dict[str, Any]:
    """The trust of the Batch jobs' roles: ECS tasks of this account and Region only."""
    return trust_policy("ecs-tasks.amazonaws.com", account_id, f"arn:{partition}:ecs:{region}:{account_id}:*")


def job_definition_pattern(job_definition_arn: str) -> str:
    """``arn:...:job-definition/NAME:3`` -> ``arn:...:job-definition/NAME:*`` (every revision)."""
    base, sep, revision = job_definition_arn.rpartition(":")
    if not sep or not revision.isdigit() or ":job-definition/" not in base:
        msg = f"{job_definition_arn!r} is not a job definition ARN with a revision"
        raise ValueError(msg)
    return f"{base}:*"


def objects(bucket_arn: str, *patterns: str) -> list[str]:
    return [f"{bucket_arn}/{pattern}" for pattern in patterns]


def list_prefixes(sid: str, bucket_arn: str, *prefixes: str) -> dict[str, Any]:
    """``s3:ListBucket`` on the bucket, only for listings under ``prefixes``."""
    return allow(
        sid,
        ["s3:ListBucket"],
        [bucket_arn],
        Condition={"StringLike": {"s3:prefix": [f"{prefix}/*" for prefix in prefixes]}},
    )


def trigger_policy(
    *,
    bucket_arn: str,
    inventory_prefix: str,
    queue_arns: list[str],
    job_definition_arns: list[str],
    log_group_arn: str,
    failed_events_queue_arn: str,
) -> dict[str, Any]:
    """The trigger Lambda: read deliveries, claim runs, submit and find their jobs."""
    return document(
        allow("WriteLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"]),
        list_prefixes("ListDeliveries", bucket_arn, inventory_prefix),
        allow("ReadDeliveries", ["s3:GetObject"], objects(bucket_arn, f"{inventory_prefix}/*")),
        allow(
            "ClaimRuns",
            ["s3:GetObject", "s3:PutObject"],
            objects(bucket_arn, f"{RUN_STATE}/claim.json"),
        ),
        allow("RecordRejections", ["s3:PutObject"], objects(bucket_arn, f"{RUN_STATE}/rejected.json")),
        allow(
            "SubmitRunJobs",
            ["batch:SubmitJob"],
            [*dict.fromkeys(queue_arns), *(job_definition_pattern(arn) for arn in job_definition_arns)],
        ),
        # ListJobs and DescribeJobs have no resource-level permissions: "*" is the only form.
        allow("FindSubmittedJobs", ["batch:ListJobs", "batch:DescribeJobs"], ["*"]),
        # Lambda sends events that failed every attempt to this queue with the function's role.
        allow("ReportFailedEvents", ["sqs:SendMessage"], [failed_events_queue_arn]),
    )


def job_policy(*, bucket_arn: str, inventory_prefix: str) -> dict[str, Any]:
    """The split and process jobs: read a delivery, write the run's plan, parts and part stats, and
    retire an earlier run of the same partition (finalize has a role of its own)."""
    return document(
        list_prefixes(
            "ListRunPrefixes",
            bucket_arn,
            inventory_prefix,
            PROCESSED_ROOT,
            STATE_ROOT,
            REPORTS_ROOT,
            ROLLUPS_ROOT,
            STORAGE_REPORTS_ROOT,
        ),
        allow("ReadDeliveries", ["s3:GetObject"], objects(bucket_arn, f"{inventory_prefix}/*")),
        allow("ParquetParts", ["s3:PutObject"], objects(bucket_arn, f"{PROCESSED_ROOT}/*")),
        allow("RunPlan", ["s3:GetObject", "s3:PutObject"], objects(bucket_arn, f"{RUN_STATE}/plan.json")),
        allow("PartStats", ["s3:PutObject"], objects(bucket_arn, f"{RUN_STATE}/parts/*")),
        # Every key a job may write in parts (a stored file above the multipart threshold): a failed
        # upload is aborted, and a retry must be able to abort its own.
        allow(
            "AbortMultipartUploads",
            ["s3:AbortMultipartUpload"],
            objects(bucket_arn, *JOB_MULTIPART_WRITES),
        ),
        # A rerun first retires the earlier run: its marker, report, rollup tables and page, and the
        # parts, part stats and partials it wrote beyond the rerun's chunk count (batch_jobs/split.py).
        allow(
            "RetireEarlierRuns",
            ["s3:DeleteObject"],
            objects(
                bucket_arn,
                f"{REPORTS_ROOT}/*",
                f"{PROCESSED_ROOT}/*",
                f"{RUN_STATE}/parts/*",
                f"{ROLLUPS_ROOT}/*",
                f"{STORAGE_REPORTS_ROOT}/*",
            ),
        ),
    )


def finalize_policy(*, bucket_arn: str, inventory_prefix: str) -> dict[str, Any]:
    """The finalize job: read the run's manifest, plan and part stats, write its rollup tables, run
    report and marker; then the storage report, which reads every kept run (its marker, run report,
    rollup tables and claim) and the last two runs' parts (batch_jobs/report_figures.py). A role of
    its own: no processor child can read the table or write a page."""
    return document(
        # a key gone (a claim or plan the lifecycle rule expired, a manifest expired before finalize
        # ran) answers 403; a listing of exactly that key tells "gone" from "refused"
        # (inventory_contract/s3.py)
        list_prefixes(
            "ListRunPrefixes", bucket_arn, inventory_prefix, PROCESSED_ROOT, STATE_ROOT, REPORTS_ROOT
        ),
        allow("ReadManifests", ["s3:GetObject"], objects(bucket_arn, f"{inventory_prefix}/*")),
        allow(
            "ReadRunState",
            ["s3:GetObject"],
            objects(bucket_arn, f"{RUN_STATE}/plan.json", f"{RUN_STATE}/parts/*", f"{RUN_STATE}/claim.json"),
        ),
        allow("RunReports", ["s3:PutObject"], objects(bucket_arn, f"{REPORTS_ROOT}/*")),
        allow("RollupTables", ["s3:PutObject"], objects(bucket_arn, f"{ROLLUPS_ROOT}/*")),
        allow("AbortMultipartUploads", ["s3:AbortMultipartUpload"], objects(bucket_arn, f"{ROLLUPS_ROOT}/*")),
        allow(
            "ReadRunsForTheStorageReport",
            ["s3:GetObject"],
            objects(bucket_arn, f"{REPORTS_ROOT}/*", f"{ROLLUPS_ROOT}/*", f"{PROCESSED_ROOT}/*"),
        ),
        allow("StorageReports", ["s3:PutObject"], objects(bucket_arn, f"{STORAGE_REPORTS_ROOT}/*")),
    )


def snapshot_policy(
    *, bucket_arn: str, inventory_prefix: str, source_bucket_arns: list[str]
) -> dict[str, Any]:
    """The ``snapshot`` job: list the stack's source buckets (their keys and versions, no object
    read), write a listing's delivery under the destination's inventory prefix, and delete the data
    files (and checksum) of a listing that failed. Nothing else of the destination: the trigger converts it."""
    listings = objects(bucket_arn, f"{inventory_prefix}/*/{LISTING_CONFIG_ID}/*")
    return document(
        allow("ListSourceBuckets", ["s3:ListBucket", "s3:ListBucketVersions"], list(source_bucket_arns)),
        allow("WriteListings", ["s3:PutObject", "s3:AbortMultipartUpload"], listings),
        allow(
            "DeleteFailedListings",
            ["s3:DeleteObject"],
            objects(
                bucket_arn,
                f"{inventory_prefix}/*/{LISTING_CONFIG_ID}/data/*",
                f"{inventory_prefix}/*/{LISTING_CONFIG_ID}/*/manifest.checksum",
            ),
        ),
    )


def execution_policy(*, repository_arn: str, log_group_arn: str) -> dict[str, Any]:
    """What Fargate needs to start a job: pull the image, write the job's logs."""
    return document(
        # GetAuthorizationToken has no resource-level permissions: "*" is the only form.
        allow("EcrToken", ["ecr:GetAuthorizationToken"], ["*"]),
        allow(
            "PullJobImage",
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            [repository_arn],
        ),
        allow("WriteJobLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"]),
    )
