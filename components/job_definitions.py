"""Job definition properties in the Batch API's own (camelCase) shape; no Pulumi import.

The stack (``components/batch.py``) and the local runner (``pipeline/local/batch_env.py``) both
register job definitions from these functions and ``pipeline.contract.jobs.JOB_SPECS``, so the
commands and parameters that run locally are the ones deployed.
"""

from __future__ import annotations

from typing import Any

from pipeline.contract.jobs import JobSpec

# Rules are tried in order (at most 5); an attempt that matches none is retried, hence the
# catch-all EXIT at the end. Exit code 2 is the jobs' "bad input" code: never retried.
RETRY_RULES: tuple[dict[str, str], ...] = (
    {"action": "RETRY", "onStatusReason": "ResourceInitializationError*"},  # ENI, secrets, image pull setup
    {"action": "RETRY", "onStatusReason": "CannotPullContainerError*"},
    {"action": "RETRY", "onStatusReason": "Host EC2*"},  # the task's host went away
    {"action": "RETRY", "onExitCode": "1"},  # unexpected error (network, throttling past the SDK's retries)
    {"action": "EXIT", "onReason": "*"},  # everything else: bad input (exit 2), out of memory, ...
)


FINALIZE_SIZE = ("0.25", 1024)
"""vCPU and memory MiB of the finalize job: it reads a few JSON objects and lists one prefix."""


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
    ephemeral_storage_gib: int,
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
        "ephemeralStorage": {"sizeInGiB": ephemeral_storage_gib},
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
