"""Alerts, to one SNS topic: one per failed run, rejected manifests, trigger failures and trigger
events given up on.

- Batch sends a "Batch Job State Change" FAILED event for every job: each failed array child, the
  array job itself, and every job that fails because a job it depends on failed. The rule keeps
  the one event that says why the run failed: not an array child (``arrayProperties.index``), and
  not a job whose status reason says a dependency failed.
- The trigger's JSON log lines are counted by metric filters (``{ $.message = "..." }``): a
  rejected manifest alarms; a "run in progress" retry (another invocation holds the run's claim and
  Lambda retries the event) is subtracted from the function's errors, which alarm otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

# The status reason Batch gives a job that fails because a job it depends on failed.
DEPENDENCY_FAILED_REASON = "Dependent Job failed"
# Metric filter patterns over the trigger's log lines (inventory_contract/jsonlog.py): the messages
# lambdas/runs.py and lambdas/inventory_trigger.py log. tests/components/test_alerts.py runs the
# handler and checks that each pattern matches the line it logs.
MANIFEST_REJECTED_PATTERN = '{ $.message = "manifest rejected" }'
RUN_IN_PROGRESS_PATTERN = '{ $.message = "run in progress, Lambda retries the event" }'
MANIFESTS_REJECTED_METRIC = "ManifestsRejected"
RUN_IN_PROGRESS_METRIC = "RunInProgressRetries"
PERIOD_SECONDS = 300


def failed_run_pattern(queue_arns: Sequence[pulumi.Input[str]]) -> dict[str, Any]:
    """The EventBridge pattern of one event per failed run of this stack's queues."""
    return {
        "source": ["aws.batch"],
        "detail-type": ["Batch Job State Change"],
        "detail": {
            "status": ["FAILED"],
            "jobQueue": list(queue_arns),
            # an array child: the array job's own FAILED event stands for its children
            "arrayProperties": {"index": [{"exists": False}]},
            # a job whose dependency failed: the dependency's own event says why
            "$or": [
                {"statusReason": [{"anything-but": {"prefix": DEPENDENCY_FAILED_REASON}}]},
                {"statusReason": [{"exists": False}]},
            ],
        },
    }


def topic_policy(
    *, topic_arn: str, account_id: str, rule_arn: str, alarm_arns: Sequence[str]
) -> dict[str, Any]:
    """Who may publish to the alerts topic: this stack's rule (EventBridge) and alarms (CloudWatch),
    in this account; ``aws:SourceArn``/``aws:SourceAccount`` keep the services from publishing on
    behalf of anyone else's rule or alarm (confused deputy)."""

    def service_may_publish(sid: str, service: str, source_arns: list[str]) -> dict[str, Any]:
        return {
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {
                "ArnLike": {"aws:SourceArn": source_arns},
                "StringEquals": {"aws:SourceAccount": account_id},
            },
        }

    return {
        "Version": "2012-10-17",
        "Statement": [
            service_may_publish("FailedRunsFromThisStacksRule", "events.amazonaws.com", [rule_arn]),
            service_may_publish("AlarmsOfThisStack", "cloudwatch.amazonaws.com", list(alarm_arns)),
        ],
    }


@dataclass(frozen=True)
class PipelineAlertsArgs:
    account_id: pulumi.Input[str]
    queue_arns: Sequence[pulumi.Input[str]]  # the stack's queue, and the processors' (Spot) when apart
    function_name: pulumi.Input[str]
    trigger_log_group_name: pulumi.Input[str]
    failed_events_queue_name: pulumi.Input[str]
    metric_namespace: str  # this stack's own: two stacks' metric filters never add up
    email: str


class PipelineAlerts(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: PipelineAlertsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("s3inventory:index:PipelineAlerts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        topic = aws.sns.Topic(f"{name}-topic", opts=child)
        if args.email:
            aws.sns.TopicSubscription(
                f"{name}-email", topic=topic.arn, protocol="email", endpoint=args.email, opts=child
            )
        rule = aws.cloudwatch.EventRule(
            f"{name}-failed-runs",
            description="A run of the s3-inventory-pipeline queue FAILED (one event per run)",
            event_pattern=pulumi.Output.json_dumps(failed_run_pattern(args.queue_arns)),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-failed-runs-to-topic",
            rule=rule.name,
            arn=topic.arn,
            input_transformer={
                "input_paths": {
                    "job": "$.detail.jobName",
                    "id": "$.detail.jobId",
                    "reason": "$.detail.statusReason",
                    "queue": "$.detail.jobQueue",
                    "bucket": "$.detail.parameters.source_bucket",
                    "date": "$.detail.parameters.run_date",
                    "manifest": "$.detail.parameters.manifest",
                },
                "input_template": '"Run <bucket>/<date> FAILED: Batch job <job> (<id>) in <queue>: <reason>. '
                "The jobs that depend on it failed with it (no alert of their own). "
                "Logs: CloudWatch Logs, stream prefix by job name. Run state: python -m pipeline status "
                '<bucket>/<date> --bucket DEST. Rerun: python -m pipeline trigger <manifest> --force."',
            },
            opts=child,
        )
        for logical, pattern, metric in (
            ("manifest-rejected", MANIFEST_REJECTED_PATTERN, MANIFESTS_REJECTED_METRIC),
            ("run-in-progress", RUN_IN_PROGRESS_PATTERN, RUN_IN_PROGRESS_METRIC),
        ):
            aws.cloudwatch.LogMetricFilter(
                f"{name}-{logical}",
                log_group_name=args.trigger_log_group_name,
                pattern=pattern,
                metric_transformation={"name": metric, "namespace": args.metric_namespace, "value": "1"},
                opts=child,
            )

        def alarm(alarm_name: str, description: str, **metric: Any) -> aws.cloudwatch.MetricAlarm:
            return aws.cloudwatch.MetricAlarm(
                f"{name}-{alarm_name}",
                alarm_description=description,
                evaluation_periods=1,
                threshold=0,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=[topic.arn],
                opts=child,
                **metric,
            )

        errors = {"namespace": "AWS/Lambda", "metric_name": "Errors", "stat": "Sum", "period": PERIOD_SECONDS}
        retries = {"namespace": args.metric_namespace, "metric_name": RUN_IN_PROGRESS_METRIC, "stat": "Sum"}
        alarms = [
            alarm(
                "trigger-errors",
                "The trigger Lambda failed (errors and timeouts; Lambda retries the event twice). "
                "Retries of a run that another invocation is starting are not counted.",
                metric_queries=[
                    {
                        "id": "errors",
                        "metric": {**errors, "dimensions": {"FunctionName": args.function_name}},
                    },
                    {"id": "retries", "metric": {**retries, "period": PERIOD_SECONDS}},
                    {
                        "id": "failures",
                        "expression": "FILL(errors, 0) - FILL(retries, 0)",
                        "label": "Trigger errors that are not run-in-progress retries",
                        "return_data": True,
                    },
                ],
            ),
            alarm(
                "manifest-rejected",
                "The trigger rejected an inventory manifest (malformed, not CSV, or a wrong checksum), "
                "so no run started: see run-state/.../rejected.json and the trigger's log",
                namespace=args.metric_namespace,
                metric_name=MANIFESTS_REJECTED_METRIC,
                statistic="Sum",
                period=PERIOD_SECONDS,
            ),
            alarm(
                "failed-trigger-events",
                "Inventory events the trigger gave up on are waiting in the on-failure queue",
                namespace="AWS/SQS",
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": args.failed_events_queue_name},
                statistic="Maximum",
                period=PERIOD_SECONDS,
            ),
        ]
        aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, args.account_id, rule.arn, *[a.arn for a in alarms]).apply(
                lambda v: json.dumps(
                    topic_policy(topic_arn=v[0], account_id=v[1], rule_arn=v[2], alarm_arns=v[3:])
                )
            ),
            opts=child,
        )
        self.topic_arn = topic.arn
        self.register_outputs({"topic_arn": self.topic_arn})
