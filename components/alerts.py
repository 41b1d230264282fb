"""Alerts: failed Batch jobs of this queue, trigger errors and failed trigger events, to one SNS topic."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.policies import document


def failed_job_pattern(queue_arn: pulumi.Input[str]) -> dict[str, object]:
    return {
        "source": ["aws.batch"],
        "detail-type": ["Batch Job State Change"],
        "detail": {"status": ["FAILED"], "jobQueue": [queue_arn]},
    }


@dataclass(frozen=True)
class PipelineAlertsArgs:
    queue_arn: pulumi.Input[str]
    function_name: pulumi.Input[str]
    failed_events_queue_name: pulumi.Input[str]
    email: str


class PipelineAlerts(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: PipelineAlertsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("s3inventory:index:PipelineAlerts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        topic = aws.sns.Topic(f"{name}-topic", opts=child)
        aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=topic.arn,
            policy=pulumi.Output.json_dumps(
                document(
                    {
                        "Sid": "EventBridgePublishesFailedJobs",
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sns:Publish",
                        "Resource": topic.arn,
                    },
                    {
                        "Sid": "CloudWatchPublishesAlarms",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudwatch.amazonaws.com"},
                        "Action": "sns:Publish",
                        "Resource": topic.arn,
                    },
                )
            ),
            opts=child,
        )
        if args.email:
            aws.sns.TopicSubscription(
                f"{name}-email", topic=topic.arn, protocol="email", endpoint=args.email, opts=child
            )
        rule = aws.cloudwatch.EventRule(
            f"{name}-failed-jobs",
            description="A job of the s3-inventory-pipeline queue FAILED",
            event_pattern=pulumi.Output.json_dumps(failed_job_pattern(args.queue_arn)),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-failed-jobs-to-topic",
            rule=rule.name,
            arn=topic.arn,
            input_transformer={
                "input_paths": {
                    "job": "$.detail.jobName",
                    "id": "$.detail.jobId",
                    "reason": "$.detail.statusReason",
                    "queue": "$.detail.jobQueue",
                },
                "input_template": '"Batch job <job> (<id>) FAILED in <queue>: <reason>. '
                'Logs: CloudWatch Logs, stream prefix by job name; run state: python -m pipeline status."',
            },
            opts=child,
        )
        alarms = (
            ("trigger-errors", "The trigger Lambda raised errors (Lambda retries them; see its logs)",
             "AWS/Lambda", "Errors", {"FunctionName": args.function_name}, "Sum"),
            ("failed-trigger-events", "Inventory events the trigger gave up on are waiting in the on-failure queue",
             "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": args.failed_events_queue_name}, "Maximum"),
        )  # fmt: skip
        for alarm, description, namespace, metric, dimensions, statistic in alarms:
            aws.cloudwatch.MetricAlarm(
                f"{name}-{alarm}",
                alarm_description=description,
                namespace=namespace,
                metric_name=metric,
                dimensions=dimensions,
                statistic=statistic,
                period=300,
                evaluation_periods=1,
                threshold=0,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=[topic.arn],
                opts=child,
            )
        self.topic_arn = topic.arn
        self.register_outputs({"topic_arn": self.topic_arn})
