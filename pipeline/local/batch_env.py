"""A Batch queue and the pipeline's job definitions in a Batch API stand-in (moto).

The job definitions are registered from ``inventory_contract.jobs.ALL_JOB_SPECS`` and
``components.job_definitions``, the same source the Pulumi stack registers them from, so what runs
locally is what runs on AWS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from components.job_definitions import container_properties, retry_strategy
from inventory_contract.jobs import ALL_JOB_SPECS


@dataclass(frozen=True)
class LocalBatch:
    queue: str
    job_definitions: dict[str, str]  # spec name -> ARN


def create_local_batch(
    session: Any, image: str = "s3-inventory-pipeline:local", name_prefix: str = "s3inv-local"
) -> LocalBatch:
    """The queue and job definitions; ``name_prefix`` keeps several in one stand-in apart."""
    iam, batch = session.client("iam"), session.client("batch")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=f"{name_prefix}-batch", AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]
    # Unmanaged: nothing runs on the stand-in's compute (the local executor runs the jobs), and a
    # managed one makes moto build its whole EC2 backend first (about a second of every local run)
    environment = batch.create_compute_environment(
        computeEnvironmentName=f"{name_prefix}-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
    )
    queue = batch.create_job_queue(
        jobQueueName=f"{name_prefix}-queue",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}],
    )
    definitions = {}
    for spec in ALL_JOB_SPECS:
        registered = batch.register_job_definition(
            jobDefinitionName=f"{name_prefix}-{spec.name}",
            type="container",
            platformCapabilities=["FARGATE"],
            parameters=dict(spec.default_parameters),
            retryStrategy=retry_strategy(1),
            containerProperties=container_properties(
                spec,
                image=image,
                job_role_arn=role,
                execution_role_arn=role,
                vcpu="1",
                memory_mib=2048,
                ephemeral_storage_gib=21,
                assign_public_ip=True,
                cpu_architecture="X86_64",
                log_group="/local/s3inv-jobs",
                region=session.region_name,
            ),
        )
        definitions[spec.name] = registered["jobDefinitionArn"]
    return LocalBatch(queue=queue["jobQueueArn"], job_definitions=definitions)
