"""Alerts: one per failed run (the EventBridge pattern against sample Batch events, matched by
moto's EventBridge pattern matcher), the trigger's log lines against the metric filters (the real
handler's output), the errors alarm's metric math, and the topic policy."""

from __future__ import annotations

import copy
import io
import json
import re
from typing import Any

import pytest
from moto.events.models import EventPattern

from components.alerts import (
    DEPENDENCY_FAILED_REASON,
    MANIFEST_REJECTED_PATTERN,
    RUN_IN_PROGRESS_PATTERN,
    failed_run_pattern,
    topic_policy,
)
from inventory_contract.jsonlog import JsonLogger
from lambdas.inventory_trigger import handle_event
from lambdas.runs import RunInProgressError
from tests.aws_fixtures import DEST, EVENTS, object_created
from tests.components.conftest import ACCOUNT, deploy, settings

QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/batch-queue-1"
TEMPLATE = json.loads((EVENTS / "batch-job-failed.json").read_text())
EXITED = "Essential container in task exited"
START_FAILED = "Task failed to start"


def batch_event(
    job: str,
    *,
    status: str = "FAILED",
    reason: str | None = EXITED,
    exit_code: int | None = 2,
    index: int | None = None,
    array_size: int | None = None,
    queue: str = QUEUE,
) -> dict[str, Any]:
    """A "Batch Job State Change" event shaped as AWS Batch documents it (tests/events)."""
    event = copy.deepcopy(TEMPLATE)
    detail = event["detail"]
    detail["jobName"] = f"s3inv-{job}-demo-source-bucket-20261124-g1"
    detail["jobId"] = f"{job}-0000" + (f":{index}" if index is not None else "")
    detail["jobQueue"], detail["status"] = queue, status
    if reason is None:
        del detail["statusReason"]
    else:
        detail["statusReason"] = reason
    if exit_code is None:  # never ran: no attempt, no exit code
        detail["attempts"], detail["container"] = [], {"image": detail["container"]["image"]}
        del detail["startedAt"]
    else:
        detail["container"]["exitCode"] = exit_code
        detail["attempts"][0]["container"]["exitCode"] = exit_code
        detail["attempts"][0]["statusReason"] = reason
    if index is not None:  # an array child
        detail["arrayProperties"] = {"index": index}
    if array_size is not None:  # the array job itself
        detail["arrayProperties"] = {"size": array_size, "statusSummary": {}}
    return event


def dependent(job: str, array_size: int | None = None) -> dict[str, Any]:
    """The event of a job that failed because a job it depends on failed: it never ran."""
    return batch_event(job, reason=DEPENDENCY_FAILED_REASON, exit_code=None, array_size=array_size)


def matching(events: list[dict[str, Any]]) -> list[str]:
    pattern = EventPattern.load(json.dumps(failed_run_pattern([QUEUE])))
    return [e["detail"]["jobId"] for e in events if pattern.matches_event(e)]


def test_a_failed_splitter_alerts_once_not_for_the_jobs_that_depend_on_it():
    # GIVEN the splitter rejects its input: process (an array job) and finalize fail after it
    events = [batch_event("split", exit_code=2), dependent("process", array_size=8), dependent("finalize")]
    # THEN one alert, about the splitter
    assert matching(events) == ["split-0000"]


def test_a_splitter_that_cannot_start_alerts_once():
    start_failure = batch_event("split", reason=START_FAILED, exit_code=None)
    start_failure["detail"]["container"]["reason"] = (
        "CannotPullContainerError: pull image manifest has been retried"
    )
    assert matching([start_failure, dependent("process", array_size=8), dependent("finalize")]) == [
        "split-0000"
    ]


@pytest.mark.parametrize(
    "parent_reason",
    [None, "Array Child Job failed", "Some children failed"],
    ids=["no status reason", "hypothetical wording", "other wording"],
)
def test_a_failed_array_alerts_once_for_the_array_not_per_child(parent_reason):
    # GIVEN 3 of 6 processor children fail (each after its retries), so the array job and then
    # finalize fail; the other children succeed. Batch does not document the array job's status
    # reason, so the pattern must not depend on it.
    children = [
        batch_event("process", index=i, exit_code=1)
        if i in (1, 3, 4)
        else batch_event("process", index=i, status="SUCCEEDED", exit_code=0)
        for i in range(6)
    ]
    events = [
        batch_event("split", status="SUCCEEDED", exit_code=0),
        *children,
        batch_event("process", reason=parent_reason, exit_code=None, array_size=6),
        dependent("finalize"),
    ]
    assert sum(e["detail"]["status"] == "FAILED" for e in events) == 5  # 3 children, the array, finalize
    assert matching(events) == ["process-0000"]


def test_a_single_chunk_processor_and_a_failed_finalize_alert_once_each():
    single = [
        batch_event("split", status="SUCCEEDED", exit_code=0),
        batch_event("process", exit_code=1),
        dependent("finalize"),
    ]
    assert matching(single) == ["process-0000"]
    reconcile = [
        batch_event("process", status="SUCCEEDED", exit_code=0, array_size=4),
        batch_event("finalize", exit_code=2),
    ]
    assert matching(reconcile) == ["finalize-0000"]


def test_no_alert_for_other_queues_or_other_states():
    assert matching([batch_event("split", queue=QUEUE.replace("batch-queue-1", "someone-elses"))]) == []
    assert (
        matching(
            [batch_event("split", status=s, exit_code=None) for s in ("RUNNABLE", "RUNNING", "SUCCEEDED")]
        )
        == []
    )
    assert matching([batch_event("split", reason=None)]) == ["split-0000"]  # no reason at all still alerts


# ---------- the trigger's log lines and the metric filters ----------

_JSON_EQUALS = re.compile(r'\{ \$\.(?P<field>[A-Za-z_][A-Za-z0-9_]*) = "(?P<value>[^"*]*)" \}')


def filter_matches(pattern: str, line: str) -> bool:
    """CloudWatch Logs' JSON filter ``{ $.field = "value" }``: the log event is a JSON object whose
    top-level ``field`` is that exact string (no wildcard is used here)."""
    match = _JSON_EQUALS.fullmatch(pattern)
    assert match, f'not a {{ $.field = "value" }} pattern: {pattern}'
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return isinstance(event, dict) and event.get(match["field"]) == match["value"]


def handler_lines(aws, event, *, expect: type[BaseException] | None = None) -> list[str]:
    """Run the real handler (the function's code path) and return the lines it logs, each of which
    the Lambda runtime ships to CloudWatch Logs as one log event."""
    stream = io.StringIO()
    log = JsonLogger(stream, component="inventory_trigger")
    if expect is None:
        handle_event(event, settings=aws.settings, s3=aws.s3, batch=aws.batch, log=log)
    else:
        with pytest.raises(expect):
            handle_event(event, settings=aws.settings, s3=aws.s3, batch=aws.batch, log=log)
    return stream.getvalue().splitlines()


def test_the_manifest_rejected_filter_counts_the_line_a_bad_manifest_logs(aws, delivery):
    key = delivery.delivery.manifest_key
    manifest = json.loads(delivery.manifest_path.read_bytes())
    manifest["fileFormat"] = "ORC"
    aws.s3.put_object(Bucket=DEST, Key=key, Body=json.dumps(manifest).encode())

    lines = handler_lines(aws, object_created(DEST, key))

    counted = [line for line in lines if filter_matches(MANIFEST_REJECTED_PATTERN, line)]
    assert len(counted) == 1 and json.loads(counted[0])["key"] == key
    assert not any(filter_matches(RUN_IN_PROGRESS_PATTERN, line) for line in lines)


def test_a_good_delivery_logs_nothing_either_filter_counts(aws, delivery):
    lines = handler_lines(aws, object_created(DEST, delivery.delivery.manifest_key))
    assert lines and json.loads(lines[-1])["message"] == "run submitted"
    for pattern in (MANIFEST_REJECTED_PATTERN, RUN_IN_PROGRESS_PATTERN):
        assert not any(filter_matches(pattern, line) for line in lines)


def test_the_in_progress_filter_counts_the_line_a_retried_duplicate_logs(aws, delivery, monkeypatch):
    # GIVEN an invocation that claimed the run and was killed before submitting (its lease is live:
    # a killed invocation never releases its claim)
    from lambdas import runs

    event = object_created(DEST, delivery.delivery.manifest_key)

    def died(**_):
        raise ConnectionError("the invocation died before submitting")

    monkeypatch.setattr(aws.batch, "submit_job", died)
    monkeypatch.setattr(runs, "_release", lambda *args: None)
    handler_lines(aws, event, expect=ConnectionError)
    monkeypatch.undo()
    # WHEN the duplicate event arrives inside the lease, it raises so that Lambda retries it
    lines = handler_lines(aws, event, expect=RunInProgressError)
    # THEN it logs one line, which the metric filter counts
    counted = [line for line in lines if filter_matches(RUN_IN_PROGRESS_PATTERN, line)]
    assert len(counted) == 1
    assert json.loads(counted[0])["key"] == delivery.delivery.manifest_key
    assert not any(filter_matches(MANIFEST_REJECTED_PATTERN, line) for line in lines)


def test_the_filter_evaluator_can_say_no():
    line = json.dumps({"level": "ERROR", "message": "manifest rejected", "key": "k"})
    assert filter_matches(MANIFEST_REJECTED_PATTERN, line)
    assert not filter_matches(
        MANIFEST_REJECTED_PATTERN, line.replace("manifest rejected", "manifest rejected!")
    )
    assert not filter_matches(MANIFEST_REJECTED_PATTERN, "[ERROR] manifest rejected")  # not JSON
    assert not filter_matches(RUN_IN_PROGRESS_PATTERN, line)


# ---------- the stack's alert resources ----------


@pytest.fixture(scope="module")
def alerting():
    return deploy(settings(alertEmail="ops@example.com"))


def test_failed_runs_go_to_the_topic_with_the_run_and_the_reason(alerting):
    topic = alerting.one("aws:sns/topic:Topic")
    queue = alerting.one("aws:batch/jobQueue:JobQueue").outputs["arn"]
    rule = alerting.one("aws:cloudwatch/eventRule:EventRule")
    assert json.loads(rule.inputs["eventPattern"]) == failed_run_pattern([queue])
    target = alerting.one("aws:cloudwatch/eventTarget:EventTarget")
    assert target.inputs["arn"] == topic.outputs["arn"]
    transformer = target.inputs["inputTransformer"]
    for field in ("reason", "job", "bucket", "date", "manifest"):
        assert f"<{field}>" in transformer["inputTemplate"]
    assert transformer["inputPaths"]["date"] == "$.detail.parameters.run_date"
    subscription = alerting.one("aws:sns/topicSubscription:TopicSubscription")
    assert (subscription.inputs["protocol"], subscription.inputs["endpoint"]) == ("email", "ops@example.com")


def test_no_email_subscription_unless_configured(stack):
    assert stack.of_type("aws:sns/topicSubscription:TopicSubscription") == []


def _filters(stack) -> dict[str, dict[str, Any]]:
    return {
        f.inputs["pattern"]: f.inputs for f in stack.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
    }


def test_the_metric_filters_read_the_triggers_log_group_into_the_stacks_namespace(alerting):
    log_group = alerting.one("aws:cloudwatch/logGroup:LogGroup", "trigger-logs").outputs["name"]
    filters = _filters(alerting)
    assert set(filters) == {MANIFEST_REJECTED_PATTERN, RUN_IN_PROGRESS_PATTERN}
    for spec in filters.values():
        assert spec["logGroupName"] == log_group
        assert spec["metricTransformation"]["namespace"] == "s3-inventory-pipeline/test"
        assert spec["metricTransformation"]["value"] == "1"


def _alarms(stack) -> dict[str, dict[str, Any]]:
    return {a.name: a.inputs for a in stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}


def test_a_rejected_manifest_alarms(alerting):
    rejected = _alarms(alerting)["alerts-manifest-rejected"]
    metric = _filters(alerting)[MANIFEST_REJECTED_PATTERN]["metricTransformation"]
    assert (rejected["namespace"], rejected["metricName"]) == (metric["namespace"], metric["name"])
    assert (rejected["statistic"], rejected["threshold"], rejected["comparisonOperator"]) == (
        "Sum",
        0,
        "GreaterThanThreshold",
    )


def _metric_math(expression: str, series: dict[str, list[float | None]]) -> list[float]:
    """CloudWatch metric math for the one form the errors alarm uses, ``FILL(a, 0) - FILL(b, 0)``."""
    match = re.fullmatch(r"FILL\((\w+), 0\) - FILL\((\w+), 0\)", expression)
    assert match, expression
    a, b = (series[name] for name in match.groups())
    return [(x or 0) - (y or 0) for x, y in zip(a, b, strict=True)]


def test_the_errors_alarm_ignores_in_progress_retries_but_not_errors_or_timeouts(alerting):
    alarm = _alarms(alerting)["alerts-trigger-errors"]
    function = alerting.one("aws:lambda/function:Function").outputs["name"]
    retries_metric = _filters(alerting)[RUN_IN_PROGRESS_PATTERN]["metricTransformation"]
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    assert "metricName" not in alarm and set(queries) == {"errors", "retries", "failures"}
    assert queries["errors"]["metric"] == {
        "namespace": "AWS/Lambda",
        "metricName": "Errors",  # errors and timeouts of the function
        "dimensions": {"FunctionName": function},
        "stat": "Sum",
        "period": 300,
    }
    retries = queries["retries"]["metric"]
    assert (retries["namespace"], retries["metricName"], retries["stat"]) == (
        retries_metric["namespace"],
        retries_metric["name"],
        "Sum",
    )
    assert [q["id"] for q in alarm["metricQueries"] if q.get("returnData")] == ["failures"]
    assert (alarm["threshold"], alarm["comparisonOperator"]) == (0, "GreaterThanThreshold")
    # per 5 minutes: 2 in-progress retries | a timeout | an error and a retry | nothing logged
    errors = [2, 1, 2, 1]
    in_progress = [2, None, 1, None]
    assert _metric_math(queries["failures"]["expression"], {"errors": errors, "retries": in_progress}) == [
        0,
        1,
        1,
        1,
    ]


def test_every_alarm_goes_to_the_topic(alerting):
    topic = alerting.one("aws:sns/topic:Topic").outputs["arn"]
    alarms = _alarms(alerting)
    assert set(alarms) == {
        "alerts-trigger-errors",
        "alerts-manifest-rejected",
        "alerts-failed-trigger-events",
    }
    failed_queue = alerting.one("aws:sqs/queue:Queue").outputs["name"]
    assert alarms["alerts-failed-trigger-events"]["dimensions"] == {"QueueName": failed_queue}
    for alarm in alarms.values():
        assert alarm["alarmActions"] == [topic]
        assert alarm["treatMissingData"] == "notBreaching"


def test_only_this_stacks_rule_and_alarms_may_publish_to_the_topic(alerting):
    topic = alerting.one("aws:sns/topic:Topic").outputs["arn"]
    rule = alerting.one("aws:cloudwatch/eventRule:EventRule").outputs["arn"]
    alarms = [a.outputs["arn"] for a in alerting.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")]
    policy = alerting.policy(alerting.one("aws:sns/topicPolicy:TopicPolicy"))
    policy["Statement"][1]["Condition"]["ArnLike"]["aws:SourceArn"].sort()  # registered in any order
    expected = topic_policy(topic_arn=topic, account_id=ACCOUNT, rule_arn=rule, alarm_arns=sorted(alarms))
    assert policy == expected
    assert len(alarms) == 3 and all(":alarm:alerts-" in arn for arn in alarms)
    assert rule.startswith("arn:aws:events:us-east-1:123456789012:rule/alerts-failed-runs-")


def test_the_topic_policy_conditions_each_service_on_its_source():
    policy = topic_policy(
        topic_arn="arn:aws-cn:sns:cn-north-1:123456789012:alerts",
        account_id="123456789012",
        rule_arn="arn:aws-cn:events:cn-north-1:123456789012:rule/failed-runs",
        alarm_arns=[
            "arn:aws-cn:cloudwatch:cn-north-1:123456789012:alarm:a",
            "arn:aws-cn:cloudwatch:cn-north-1:123456789012:alarm:b",
        ],
    )
    statements = {s["Principal"]["Service"]: s for s in policy["Statement"]}
    assert set(statements) == {"events.amazonaws.com", "cloudwatch.amazonaws.com"}
    for statement in statements.values():
        assert (statement["Effect"], statement["Action"]) == ("Allow", "sns:Publish")
        assert statement["Resource"] == "arn:aws-cn:sns:cn-north-1:123456789012:alerts"
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    assert statements["events.amazonaws.com"]["Condition"]["ArnLike"] == {
        "aws:SourceArn": ["arn:aws-cn:events:cn-north-1:123456789012:rule/failed-runs"]
    }
    assert statements["cloudwatch.amazonaws.com"]["Condition"]["ArnLike"]["aws:SourceArn"] == [
        "arn:aws-cn:cloudwatch:cn-north-1:123456789012:alarm:a",
        "arn:aws-cn:cloudwatch:cn-north-1:123456789012:alarm:b",
    ]
    assert "arn:aws:" not in json.dumps(policy)
