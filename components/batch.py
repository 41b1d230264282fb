"""AWS Batch on Fargate: compute environment, queue, the job definitions, and their IAM."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.config import CAPACITIES, ON_DEMAND, PROJECT, ConfigError, StackSettings
from components.job_definitions import FINALIZE_SIZE, SNAPSHOT_SIZE, container_properties, retry_strategy
from components.role_policies import (
    ecs_tasks_trust_policy,
    execution_policy,
    finalize_policy,
    job_policy,
    snapshot_policy,
)
from inventory_contract.jobs import ALL_JOB_SPECS, FINALIZE, PROCESS, SNAPSHOT, SPLIT, JobSpec


@dataclass(frozen=True)
class BatchPipelineArgs:
    settings: StackSettings
    image_uri: pulumi.Input[str]
    repository_arn: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    source_bucket_arns: pulumi.Input[list[str]] | None = None  # what the snapshot job may list
    private_vpc_id: pulumi.Input[str] | None = None  # private networking: the jobs' VPC and subnets
    private_subnet_ids: pulumi.Input[list[str]] | None = None


class BatchPipeline(pulumi.ComponentResource):
    queue_arn: pulumi.Output[str]
    process_queue_arn: pulumi.Output[str]  # the queue of the processor children (Spot, or queue_arn)
    queue_arns: list[pulumi.Output[str]]  # every queue of the stack
    job_definition_arns: dict[str, pulumi.Output[str]]
    job_role_arn: pulumi.Output[str]
    snapshot_role_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: BatchPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("s3inventory:index:BatchPipeline", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-jobs", retention_in_days=s.log_retention_days, opts=child
        )

        trust = pulumi.Output.all(args.partition, args.account_id).apply(
            lambda v: json.dumps(ecs_tasks_trust_policy(v[0], s.region, v[1]))
        )

        def task_role(kind: str, policy: pulumi.Output[str]) -> aws.iam.Role:
            """A role ECS tasks of this account assume, holding one inline policy."""
            created = aws.iam.Role(f"{name}-{kind}-role", assume_role_policy=trust, opts=child)
            aws.iam.RolePolicy(f"{name}-{kind}-policy", role=created.id, policy=policy, opts=child)
            return created

        bucket_arn = pulumi.Output.from_input(args.bucket_arn)
        execution_role = task_role(
            "execution",
            pulumi.Output.all(args.repository_arn, log_group.arn).apply(
                lambda v: json.dumps(execution_policy(repository_arn=v[0], log_group_arn=v[1]))
            ),
        )
        job_role = task_role(
            "job",
            bucket_arn.apply(
                lambda arn: json.dumps(job_policy(bucket_arn=arn, inventory_prefix=s.inventory_prefix))
            ),
        )
        # finalize reads every kept run for the storage report: a role of its own, so no child can
        finalize_role = task_role(
            "finalize",
            bucket_arn.apply(
                lambda arn: json.dumps(finalize_policy(bucket_arn=arn, inventory_prefix=s.inventory_prefix))
            ),
        )
        # the snapshot job lists the source buckets: a role of its own, so the run jobs never can
        snapshot_role = task_role(
            "snapshot",
            pulumi.Output.all(args.bucket_arn, args.source_bucket_arns or []).apply(
                lambda v: json.dumps(
                    snapshot_policy(
                        bucket_arn=v[0], inventory_prefix=s.inventory_prefix, source_bucket_arns=list(v[1])
                    )
                )
            ),
        )

        subnets: Any = list(s.subnet_ids)
        security_groups: Any = list(s.security_group_ids)
        public_ip = s.assign_public_ip
        vpc_id: Any
        if args.private_subnet_ids is not None:  # endpoints instead of the internet
            subnets, vpc_id, public_ip = args.private_subnet_ids, args.private_vpc_id, False
        elif not subnets:  # the default VPC's default subnets; tasks get a public IP to reach ECR and S3
            default_vpcs: Any = [{"name": "is-default", "values": ["true"]}]
            vpc_id = aws.ec2.get_vpcs_output(filters=default_vpcs).ids.apply(
                lambda ids: the_default_vpc(ids, s.region)
            )
            filters: Any = [
                {"name": "vpc-id", "values": [vpc_id]},
                {"name": "default-for-az", "values": ["true"]},
            ]
            subnets = aws.ec2.get_subnets_output(filters=filters).ids.apply(
                lambda ids: the_default_subnets(ids, s.region)
            )
        else:
            vpc_id = aws.ec2.get_subnet_output(id=s.subnet_ids[0]).vpc_id
        if not security_groups:
            group = aws.ec2.SecurityGroup(
                f"{name}-jobs",
                description="s3-inventory-pipeline Batch jobs: outbound only",
                vpc_id=vpc_id,
                egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"]}],
                opts=child,
            )
            security_groups = [group.id]

        def compute_environment(suffix: str, capacity: str) -> aws.batch.ComputeEnvironment:
            return aws.batch.ComputeEnvironment(
                f"{name}-{suffix}",
                type="MANAGED",
                state="ENABLED",
                compute_resources={
                    "type": capacity,
                    "max_vcpus": s.max_vcpus,
                    "subnets": subnets,
                    "security_group_ids": security_groups,
                },
                opts=child,
            )

        compute = compute_environment("compute", CAPACITIES[ON_DEMAND])
        queue = aws.batch.JobQueue(
            f"{name}-queue",
            state="ENABLED",
            priority=1,
            compute_environment_orders=[{"order": 1, "compute_environment": compute.arn}],
            opts=child,
        )
        process_queue = queue
        if s.process_capacity != ON_DEMAND:
            # Fargate Spot first; the on-demand environment takes children only once the Spot one is
            # at its maxVcpus (Batch does not fall back when Spot capacity is short: they wait)
            spot = compute_environment("spot-compute", CAPACITIES[s.process_capacity])
            process_queue = aws.batch.JobQueue(
                f"{name}-process-queue",
                state="ENABLED",
                priority=1,
                compute_environment_orders=[
                    {"order": 1, "compute_environment": spot.arn},
                    {"order": 2, "compute_environment": compute.arn},
                ],
                opts=child,
            )
        retry = retry_strategy(s.job_attempts)
        retry_args: Any = {
            "attempts": retry["attempts"],
            "evaluate_on_exits": [_snake(rule) for rule in retry["evaluateOnExit"]],
        }
        sizes = {
            SPLIT.name: (s.split_vcpu, s.split_memory_mib),
            PROCESS.name: (s.process_vcpu, s.process_memory_mib),
            FINALIZE.name: FINALIZE_SIZE,
            SNAPSHOT.name: SNAPSHOT_SIZE,
        }
        parameters = {PROCESS.name: {"prefix_depth": str(s.rollup_prefix_depth)}}
        self.job_definition_arns = {}
        for spec in ALL_JOB_SPECS:
            vcpu, memory = sizes[spec.name]
            role = {SNAPSHOT.name: snapshot_role, FINALIZE.name: finalize_role}.get(spec.name, job_role)

            def properties(
                o: dict[str, str], spec: JobSpec = spec, vcpu: str = vcpu, memory: int = memory
            ) -> str:
                return json.dumps(
                    container_properties(
                        spec,
                        image=o["image"],
                        job_role_arn=o["job_role"],
                        execution_role_arn=o["execution_role"],
                        vcpu=vcpu,
                        memory_mib=memory,
                        ephemeral_storage_gib=s.ephemeral_storage_gib,
                        assign_public_ip=public_ip,
                        cpu_architecture=s.cpu_architecture,
                        log_group=o["log_group"],
                        region=s.region,
                    )
                )

            inputs = pulumi.Output.all(
                image=args.image_uri,
                job_role=role.arn,
                execution_role=execution_role.arn,
                log_group=log_group.name,
            )
            definition = aws.batch.JobDefinition(
                f"{name}-{spec.name}",
                type="container",
                platform_capabilities=["FARGATE"],
                parameters={**spec.default_parameters, **parameters.get(spec.name, {})},
                container_properties=inputs.apply(properties),
                retry_strategy=retry_args,
                timeout={"attempt_duration_seconds": s.job_timeout_minutes * 60},
                propagate_tags=True,
                opts=child,
            )
            self.job_definition_arns[spec.name] = definition.arn
        self.queue_arn = queue.arn
        self.process_queue_arn = process_queue.arn
        self.queue_arns = [queue.arn] if process_queue is queue else [queue.arn, process_queue.arn]
        self.job_role_arn = job_role.arn
        self.snapshot_role_arn = snapshot_role.arn
        self.log_group_name = log_group.name
        self.register_outputs(
            {
                "queue_arn": self.queue_arn,
                "process_queue_arn": self.process_queue_arn,
                **self.job_definition_arns,
            }
        )


_NO_DEFAULT_NETWORK = (
    "set subnetIds (with securityGroupIds) to subnets of your own, "
    "or privateNetworking true to create a VPC for the jobs"
)


def the_default_vpc(ids: list[str], region: str) -> str:
    """The default VPC's ID; an account without one (many have deleted it) fails at preview."""
    if not ids:
        msg = (
            f"config key {PROJECT}:subnetIds is empty and the account has no default VPC in {region}: "
            f"{_NO_DEFAULT_NETWORK}"
        )
        raise ConfigError(msg)
    return ids[0]


def the_default_subnets(ids: list[str], region: str) -> list[str]:
    if not ids:
        msg = (
            f"config key {PROJECT}:subnetIds is empty and the default VPC in {region} has no default "
            f"subnets: {_NO_DEFAULT_NETWORK}"
        )
        raise ConfigError(msg)
    return ids


def _snake(rule: dict[str, str]) -> dict[str, str]:
    names = {"onStatusReason": "on_status_reason", "onExitCode": "on_exit_code", "onReason": "on_reason"}
    return {names.get(k, k): v for k, v in rule.items()}
