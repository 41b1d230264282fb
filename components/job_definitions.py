"""Job definition properties in the Batch API's own (camelCase) shape; no Pulumi import.

The stack (``components/batch.py``) and the local runner (``pipeline/local/batch_env.py``) both
register job definitions from these functions and ``inventory_contract.jobs.JOB_SPECS``, so the
commands and parameters that run locally are the ones deployed.
"""

from __future__ import annotations

from typing import Any

from inventory_contract.jobs import JobSpec

# Batch's retry rules (evaluateOnExit), as its documentation states them: tried in order, at most
# 5; a rule applies when all its patterns match (onStatusReason: the attempt's status reason,
# onReason: the container's reason, onExitCode: its exit code; exact, or a prefix ending in '*');
# an attempt that matches no rule is RETRIED.
# - A Fargate task that could not start fails with status reason "Task failed to start", and the
#   container's reason says why ("CannotPullContainerError: ...", "ResourceInitializationError:
#   ..."). Nothing ran, so a retry is safe, however the reason is worded. Start failures have no
#   exit code.
# - A job that ran exits 1 on an unexpected error (retried), 2 on bad input and 3 when the run
#   does not reconcile (never retried: the same input fails the same way). 137 is a kill, out of
#   memory: the same task size would fail again, so it ends the job.
# - A Fargate Spot task about to be reclaimed gets SIGTERM and exits 143 (the job's Python stops at
#   once): retried, so an interruption costs a retry, never the run. A job stopped by TerminateJob,
#   CancelJob or its timeout also exits 143, but Batch never retries those, whatever the rules.
# So the rules name what must not be retried and retry the rest, start failures included.
# tests/components/test_retry_rules.py evaluates these rules on Batch's documented failures.
RETRY_RULES: tuple[dict[str, str], ...] = (
    {"action": "EXIT", "onExitCode": "2"},  # bad input
    {"action": "EXIT", "onExitCode": "3"},  # the run does not reconcile
    {"action": "EXIT", "onExitCode": "137"},  # killed: out of memory
    {"action": "EXIT", "onStatusReason": "OutOfMemoryError*"},  # out of memory, without an exit code
    {"action": "RETRY", "onStatusReason": "*"},  # the rest: 1, 143 (Spot), start failures, ...
)


FINALIZE_SIZE = ("1", 8192)
"""vCPU and memory MiB of the finalize job: it reads the part stats, lists one prefix, merges the
children's partial rollups in bounded memory (about 0.5 GiB at most: batch_jobs/rollups.py), and
sorts the children's identity hashes in buckets of 25 million (about 0.4 GiB: batch_jobs/duplicates.py),
about 0.1 CPU-second per million objects (bench/results-model.md): one vCPU halves it at a billion.
The storage report after it compares the last two runs in memory up to 25 million rows, about
6.5 GiB (batch_jobs/storage_report.py): the most one vCPU may have, for minutes a day."""


SNAPSHOT_SIZE = ("4", 8192)
"""vCPU and memory MiB of the snapshot job: 16 listing processes (about 90 MiB each, flat with the
bucket's size: bench/results-listing.md), each streaming pages of 1,000 keys into its gzip data
file. Parsing a page costs about 40 µs of CPU an object, so the vCPUs bound the rate: 4 vCPUs list
about 100,000 objects a second when S3 answers 16 pages at a time fast enough (bench/results-listing.md)."""


def retry_strategy(attempts: int) -> dict[str, Any]:
    return {"attempts": attempts, "evaluateOnExit": [dict(rule) for rule in RETRY_RULES]}


def container_properties(
    spec: JobSpec,
    *,
    image: str,
    job_role_arn: str,
    execution_role_arn: str,
    vcpu: str,
    memory_mib: int,
    ephemeral_storage_gib: int,  # 0: Fargate's default (20 GiB)
    assign_public_ip: bool,
    cpu_architecture: str,
    log_group: str,
    region: str,
) -> dict[str, Any]:
    return {
        "image": image,
        "command": list(spec.command),
        "jobRoleArn": job_role_arn,
        "executionRoleArn": execution_role_arn,
        "resourceRequirements": [
            {"type": "VCPU", "value": vcpu},
            {"type": "MEMORY", "value": str(memory_mib)},
        ],
        **({"ephemeralStorage": {"sizeInGiB": ephemeral_storage_gib}} if ephemeral_storage_gib else {}),
        "networkConfiguration": {"assignPublicIp": "ENABLED" if assign_public_ip else "DISABLED"},
        "fargatePlatformConfiguration": {"platformVersion": "LATEST"},
        "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": cpu_architecture},
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group,
                "awslogs-region": region,
                "awslogs-stream-prefix": spec.name,
            },
        },
    }
