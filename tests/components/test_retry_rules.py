"""The job definitions' retry rules, evaluated as AWS Batch documents evaluateOnExit.

Sources: AWS Batch User Guide, "Automated job retries" (up to 5 rules; an attempt that matches
none is retried; the example rules RETRY on onStatusReason "Task failed to start" and end with an
EXIT on onReason "*"), API Reference "EvaluateOnExit" (the action applies when all of
onStatusReason, onReason and onExitCode match; each pattern may end with '*' so that only the start
must match exactly; onStatusReason/onReason may hold letters, digits, periods, colons and white
space, onExitCode only digits), "Job states"/"Job dependencies", and the Amazon ECS stopped-task
error codes (CannotPullContainerError, ResourceInitializationError, OutOfMemoryError) that a
Fargate job's container reason carries. Cancelled, terminated and timed-out jobs are never retried,
so they are not evaluated.

Two points the documentation leaves open are made parameters of the evaluator, and the rules must
give the same answer either way: whether a lone '*' matches an attempt that has no such value (a
start failure has no exit code), and whether patterns are case-sensitive.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from components.job_definitions import RETRY_RULES, retry_strategy

CONDITIONS = {  # rule key -> where an attempt (AttemptDetail) holds the value it matches
    "onStatusReason": ("statusReason",),
    "onReason": ("container", "reason"),
    "onExitCode": ("container", "exitCode"),
}


def _value(attempt: dict[str, Any], path: tuple[str, ...]) -> str | None:
    node: Any = attempt
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return None if node is None else str(node)


def _glob(pattern: str, value: str | None, *, star_matches_missing: bool, ignore_case: bool) -> bool:
    if value is None:
        return pattern == "*" and star_matches_missing
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def evaluate(
    rules: list[dict[str, str]],
    attempt: dict[str, Any],
    *,
    star_matches_missing: bool = False,
    ignore_case: bool = False,
) -> str:
    """RETRY or EXIT for one failed attempt: the first rule whose every condition matches decides;
    no matching rule means RETRY."""
    for rule in rules:
        conditions = [key for key in CONDITIONS if key in rule]
        assert conditions, f"a rule without conditions: {rule}"
        if all(
            _glob(
                rule[key],
                _value(attempt, CONDITIONS[key]),
                star_matches_missing=star_matches_missing,
                ignore_case=ignore_case,
            )
            for key in conditions
        ):
            return rule["action"].upper()
    return "RETRY"


def attempt(status_reason: str, reason: str | None = None, exit_code: int | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {}
    if reason is not None:
        container["reason"] = reason
    if exit_code is not None:
        container["exitCode"] = exit_code
    return {"statusReason": status_reason, "container": container}


EXITED = "Essential container in task exited"
# The failures a Fargate job of this pipeline can see, as Batch reports them, and what must happen.
DOCUMENTED_FAILURES = [
    pytest.param(
        attempt(
            "Task failed to start",
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve "
            "ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/jobs:abc: not found",
        ),
        "RETRY",
        id="start failure: image pull",
    ),
    pytest.param(
        attempt(
            "Task failed to start",
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
            "retrieval failed: unable to retrieve ecr registry auth: service call has been retried 3 time(s)",
        ),
        "RETRY",
        id="start failure: resource initialization (ENI, registry auth)",
    ),
    pytest.param(
        attempt("Task failed to start", "CannotStartContainerError: Error response from daemon"),
        "RETRY",
        id="start failure: any other reason",
    ),
    pytest.param(
        attempt("Task failed to start"),
        "RETRY",
        id="start failure without a container reason",
    ),
    pytest.param(
        attempt("Timeout waiting for task to start", "CannotPullContainerError: context canceled"),
        "RETRY",
        id="image pull failure, status reason worded otherwise (hypothetical)",
    ),
    pytest.param(
        attempt("Task stopped", "ResourceInitializationError: failed to configure ENI"),
        "RETRY",
        id="resource initialization failure, worded otherwise (hypothetical)",
    ),
    pytest.param(attempt(EXITED, exit_code=1), "RETRY", id="exit 1: unexpected error"),
    pytest.param(attempt(EXITED, exit_code=2), "EXIT", id="exit 2: bad input"),
    pytest.param(
        attempt(
            "OutOfMemoryError: Container killed due to memory usage",
            "OutOfMemoryError: Container killed due to memory usage",
            137,
        ),
        "EXIT",
        id="out of memory (137): the same size would fail again",
    ),
    pytest.param(attempt(EXITED, exit_code=137), "EXIT", id="killed (137)"),
    pytest.param(
        attempt(EXITED, exit_code=143), "RETRY", id="stopped (143): a Fargate Spot interruption's SIGTERM"
    ),
    pytest.param(
        attempt("Your Spot Task was interrupted.", exit_code=143),
        "RETRY",
        id="Spot interruption, ECS's wording",
    ),
    pytest.param(
        attempt("OutOfMemoryError: Container killed due to memory usage"),
        "EXIT",
        id="out of memory without an exit code",
    ),
    pytest.param(attempt(EXITED, exit_code=3), "EXIT", id="exit 3: the run does not reconcile"),
]


@pytest.mark.parametrize("ignore_case", [False, True], ids=["exact case", "any case"])
@pytest.mark.parametrize("star_matches_missing", [False, True], ids=["* needs a value", "* matches none"])
@pytest.mark.parametrize(("failure", "expected"), DOCUMENTED_FAILURES)
def test_the_rules_retry_infrastructure_failures_and_errors_but_not_bad_input(
    failure, expected, star_matches_missing, ignore_case
):
    rules = retry_strategy(3)["evaluateOnExit"]
    assert (
        evaluate(rules, failure, star_matches_missing=star_matches_missing, ignore_case=ignore_case)
        == expected
    )


def test_the_evaluator_follows_the_documented_example():
    # the user guide's own rules: RETRY on AGENT or "Task failed to start", EXIT on anything else
    example = [
        {"action": "RETRY", "onReason": "AGENT"},
        {"action": "RETRY", "onStatusReason": "Task failed to start"},
        {"action": "EXIT", "onReason": "*"},
    ]
    assert evaluate(example, attempt("Task failed to start", "CannotPullContainerError: x")) == "RETRY"
    assert evaluate(example, attempt("Host EC2 (instance i-0abc) terminated.", "AGENT")) == "RETRY"
    assert evaluate(example, attempt(EXITED, "Error", 2)) == "EXIT"
    assert (
        evaluate([{"action": "RETRY", "onExitCode": "1"}], attempt(EXITED, exit_code=2)) == "RETRY"
    )  # no match
    # every condition of a rule must match
    both = [{"action": "EXIT", "onStatusReason": EXITED, "onExitCode": "2"}]
    assert evaluate(both, attempt(EXITED, exit_code=2)) == "EXIT"
    assert evaluate(both, attempt(EXITED, exit_code=1)) == "RETRY"
    # a pattern without '*' is exact; with one, a prefix
    assert evaluate([{"action": "EXIT", "onExitCode": "1"}], attempt(EXITED, exit_code=137)) == "RETRY"
    assert evaluate([{"action": "EXIT", "onExitCode": "13*"}], attempt(EXITED, exit_code=137)) == "EXIT"


def test_the_rules_are_valid_for_batch():
    assert len(RETRY_RULES) <= 5
    text = re.compile(r"[A-Za-z0-9.:\s]*\*?")  # letters, digits, '.', ':', white space; may end with '*'
    digits = re.compile(r"[0-9]*\*?")
    for rule in RETRY_RULES:
        assert rule["action"] in ("RETRY", "EXIT")
        assert set(rule) - {"action"} <= set(CONDITIONS), rule
        for key, pattern in rule.items():
            if key == "action":
                continue
            assert 1 <= len(pattern) <= 512, rule
            assert (digits if key == "onExitCode" else text).fullmatch(pattern), rule
    # what must never be retried is named; the last rule retries the rest, as no rule would
    assert RETRY_RULES[-1] == {"action": "RETRY", "onStatusReason": "*"}
    exits = {rule.get("onExitCode") for rule in RETRY_RULES if rule["action"] == "EXIT"}
    assert {"2", "3", "137"} <= exits
