"""The trigger: the Lambda that starts a Batch run when an inventory manifest lands."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config import StackSettings
from components.lambda_bundle import HANDLER, ROOT, bundle_archive
from components.role_policies import trigger_policy, trust_policy
from inventory_contract.delivery import MANIFEST_NAME

RUNTIME = "python3.13"
MAX_EVENT_AGE_SECONDS = 6 * 60 * 60


@dataclass(frozen=True)
class InventoryTriggerArgs:
    settings: StackSettings
    account_id: pulumi.Input[str]
    bucket_id: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    queue_arn: pulumi.Input[str]
    process_queue_arn: pulumi.Input[str]  # the processor children's (Fargate Spot), or queue_arn
    split_job_definition_arn: pulumi.Input[str]
    process_job_definition_arn: pulumi.Input[str]
    finalize_job_definition_arn: pulumi.Input[str]


class InventoryTrigger(pulumi.ComponentResource):
    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    failed_events_queue_arn: pulumi.Output[str]
    failed_events_queue_name: pulumi.Output[str]
    log_group_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: InventoryTriggerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("s3inventory:index:InventoryTrigger", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", retention_in_days=s.log_retention_days, opts=child
        )
        failed = aws.sqs.Queue(
            f"{name}-failed-events",
            message_retention_seconds=14 * 24 * 60 * 60,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: json.dumps(trust_policy("lambda.amazonaws.com", account))
            ),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.all(
                bucket_arn=args.bucket_arn,
                queue_arn=args.queue_arn,
                process_queue_arn=args.process_queue_arn,
                split=args.split_job_definition_arn,
                process=args.process_job_definition_arn,
                finalize=args.finalize_job_definition_arn,
                log_group_arn=log_group.arn,
                failed_events_queue_arn=failed.arn,
            ).apply(
                lambda v: json.dumps(
                    trigger_policy(
                        bucket_arn=v["bucket_arn"],
                        inventory_prefix=s.inventory_prefix,
                        queue_arns=[v["queue_arn"], v["process_queue_arn"]],
                        job_definition_arns=[v["split"], v["process"], v["finalize"]],
                        log_group_arn=v["log_group_arn"],
                        failed_events_queue_arn=v["failed_events_queue_arn"],
                    )
                )
            ),
            opts=child,
        )
        function = aws.lambda_.Function(
            f"{name}-function",
            runtime=RUNTIME,
            architectures=["arm64"],
            handler=HANDLER,
            # handler, contract and the pinned SDK; relative to the project folder, where Pulumi runs
            # the program, so that the same zip from another checkout is no change
            code=pulumi.FileArchive(bundle_archive().relative_to(ROOT).as_posix()),
            role=role.arn,
            timeout=s.trigger_timeout_seconds,
            memory_size=256,
            logging_config={"log_format": "Text", "log_group": log_group.name},
            environment={
                "variables": {
                    "JOB_QUEUE": args.queue_arn,
                    "PROCESS_JOB_QUEUE": args.process_queue_arn,
                    "SPLIT_JOB_DEFINITION": args.split_job_definition_arn,
                    "PROCESS_JOB_DEFINITION": args.process_job_definition_arn,
                    "FINALIZE_JOB_DEFINITION": args.finalize_job_definition_arn,
                    "INVENTORY_PREFIX": f"{s.inventory_prefix}/",
                    "TARGET_CHUNK_MIB": str(s.target_chunk_mib),
                    "CLAIM_LEASE_SECONDS": str(s.trigger_timeout_seconds),
                }
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-async",
            function_name=function.name,
            maximum_retry_attempts=2,
            maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS,
            destination_config={"on_failure": {"destination": failed.arn}},
            opts=child,
        )
        permission = aws.lambda_.Permission(
            f"{name}-s3-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="s3.amazonaws.com",
            source_arn=args.bucket_arn,
            source_account=args.account_id,
            opts=child,
        )
        aws.s3.BucketNotification(
            f"{name}-notification",
            bucket=args.bucket_id,
            lambda_functions=[
                {
                    "lambda_function_arn": function.arn,
                    "events": ["s3:ObjectCreated:*"],
                    "filter_prefix": f"{s.inventory_prefix}/",
                    "filter_suffix": MANIFEST_NAME,
                }
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
        )
        self.function_name = function.name
        self.function_arn = function.arn
        self.failed_events_queue_arn = failed.arn
        self.failed_events_queue_name = failed.name
        self.log_group_name = log_group.name  # the alerts' metric filters read the handler's log lines
        self.register_outputs({"function_name": self.function_name, "failed_events_queue_arn": failed.arn})
