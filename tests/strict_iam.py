"""Make the stand-in's IAM as strict as AWS for the calls this project makes.

moto authorizes S3 requests against the caller's policies once its "initial no-auth action count"
is used up, but it is more lenient than AWS in ways that matter here, and this module closes
them while it is active (``enforced_iam()``), for moto servers and ``mock_aws`` in this process:

- moto ignores every condition but ``StringEquals`` and never sets ``s3:prefix``: a ListBucket
  limited to some prefixes would allow every listing. Here conditions are evaluated (String*,
  Arn*, Bool; an operator we do not know fails closed) with ``s3:prefix`` taken from the request.
- moto answers a missing key 404 to anyone allowed GetObject. AWS answers 403 unless the caller may
  list the bucket (an ``s3:ListBucket`` that holds without an ``s3:prefix``). So does this module.
- moto authorizes HeadBucket as ``s3:HeadBucket``, an action IAM does not have; AWS authorizes it
  as ``s3:ListBucket``. So does this module.
- moto authorizes Batch requests against resource ``*`` only. Here SubmitJob is authorized against
  the ARNs of its job queue and job definition and TerminateJob against the job's, as AWS does;
  ListJobs and DescribeJobs against ``*``.

A denied request fails with AWS's message, naming the principal, the action and the resource, and
is recorded in the list that ``enforced_iam()`` yields. An authorized one is recorded in the list
passed as ``allowed``, so a test can tell which grants a run used (``unused_grants``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import botocore.session
from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import JsonRESTError
from moto.iam.access_control import IAMRequestBase, S3IAMRequest
from moto.iam.models import Policy
from moto.s3.exceptions import S3ClientError
from moto.s3.models import s3_backends


@dataclass(frozen=True)
class Denial:
    principal: str
    action: str
    resource: str
    why: str

    @property
    def message(self) -> str:
        return (
            f"User: {self.principal} is not authorized to perform: {self.action} on resource: "
            f'"{self.resource}" because {self.why}'
        )


class _S3AccessDenied(S3ClientError):
    code = 403

    def __init__(self, message: str) -> None:
        super().__init__("AccessDenied", message)


class _AccessDenied(JsonRESTError):
    code = 403

    def __init__(self, message: str) -> None:
        super().__init__("AccessDeniedException", message)


@dataclass(frozen=True)
class Request:
    """An authorized request: who asked for which action on which resource, in which context."""

    principal: str
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    @property
    def role(self) -> str:
        """``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`` -> ``SESSION``: the tests name each
        session for the piece of code it stands for (``tests/iam_principals.py``)."""
        return self.principal.rsplit("/", 1)[-1]


# ---------- policy evaluation (identity policies of one principal) ----------


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _like(pattern: str, value: str, *, case: bool = True) -> bool:
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


_CONDITIONS = {
    "StringEquals": lambda want, got: want == got,
    "StringLike": lambda want, got: _like(want, got),
    "ArnEquals": lambda want, got: want == got,
    "ArnLike": lambda want, got: _like(want, got),
    "Bool": lambda want, got: str(want).lower() == str(got).lower(),
}
_NEGATED = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike", "ArnNotLike": "ArnLike"}


def _condition_holds(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, tests in conditions.items():
        base = _NEGATED.get(operator, operator)
        if base not in _CONDITIONS:
            msg = f"strict IAM: condition operator {operator} is not implemented; refusing to guess"
            raise NotImplementedError(msg)
        for key, wanted in tests.items():
            if key not in context:  # a missing key: positive operators fail, negated ones hold
                if operator in _NEGATED:
                    continue
                return False
            matched = any(_CONDITIONS[base](str(w), context[key]) for w in _values(wanted))
            if matched == (operator in _NEGATED):
                return False
    return True


def _statement_applies(
    statement: dict[str, Any], action: str, resource: str, context: dict[str, str]
) -> bool:
    if "NotAction" in statement or "NotResource" in statement:
        msg = "strict IAM: NotAction/NotResource are not implemented"
        raise NotImplementedError(msg)
    if not any(_like(a, action, case=False) for a in _values(statement["Action"])):
        return False
    if not any(_like(r, resource) for r in _values(statement.get("Resource", []))):
        return False
    return _condition_holds(statement.get("Condition", {}), context)


def unused_grants(documents: dict[str, dict[str, Any]], used: list[Request]) -> list[str]:
    """``role/Sid: action on resource [s3:prefix value]`` for every grant of every role's Allow
    statements that no request of ``used`` by that role needed: each action, each resource
    pattern, and each value of a condition (a ListBucket limited to several prefixes)."""
    unused = []
    for role, document in documents.items():
        requests = [r for r in used if r.role == role]
        for statement in _values(document["Statement"]):
            if statement["Effect"] != "Allow":
                continue
            for action in _values(statement["Action"]):
                for resource in _values(statement["Resource"]):
                    narrowed = {**statement, "Action": action, "Resource": resource}
                    for condition in _each_condition_value(statement.get("Condition", {})):
                        grant = {**narrowed, "Condition": condition} if condition else narrowed
                        if not any(
                            _statement_applies(grant, r.action, r.resource, dict(r.context)) for r in requests
                        ):
                            values = [v for tests in condition.values() for v in tests.values()]
                            suffix = f" {values}" if values else ""
                            unused.append(f"{role}/{statement['Sid']}: {action} on {resource}{suffix}")
    return unused


def _each_condition_value(conditions: dict[str, Any]) -> list[dict[str, Any]]:
    """The statement's condition once per value of each positive test (one value each), or ``[{}]``."""
    if not conditions:
        return [{}]
    variants: list[dict[str, Any]] = [{}]
    for operator, tests in conditions.items():
        for key, wanted in tests.items():
            values = _values(wanted) if operator not in _NEGATED else [wanted]
            variants = [
                {**v, operator: {**v.get(operator, {}), key: value}} for v in variants for value in values
            ]
    return variants


def is_allowed(documents: list[dict[str, Any]], action: str, resource: str, context: dict[str, str]) -> bool:
    """IAM's rule for one principal's identity policies: an explicit Deny wins, then any Allow."""
    statements = [s for doc in documents for s in _values(doc["Statement"])]
    applicable = [s for s in statements if _statement_applies(s, action, resource, context)]
    if any(s["Effect"] == "Deny" for s in applicable):
        return False
    return any(s["Effect"] == "Allow" for s in applicable)


# ---------- what a request asks for ----------


def _documents(request: IAMRequestBase) -> list[dict[str, Any]]:
    documents = []
    for policy in request._access_key.collect_policies():
        if isinstance(policy, Policy):
            policy = next(v.document for v in policy.versions if v.is_default)
        elif isinstance(policy, dict):
            policy = policy["policy_document"]
        documents.append(json.loads(policy) if isinstance(policy, str) else policy)
    return documents


def _batch_resources(request: IAMRequestBase) -> list[str]:
    """SubmitJob is authorized on its queue and its job definition, TerminateJob on the job; the
    rest on ``*``."""
    action = _action(request)
    if action not in {"batch:SubmitJob", "batch:TerminateJob"}:
        return ["*"]
    body = json.loads(request._body or b"{}")
    prefix = f"arn:aws:batch:{request._region}:{request.account_id}"
    if action == "batch:TerminateJob":
        return [f"{prefix}:job/{body['jobId']}"]
    queue, definition = body["jobQueue"], body["jobDefinition"]
    if not queue.startswith("arn:"):
        queue = f"{prefix}:job-queue/{queue}"
    if not definition.startswith("arn:"):
        if ":" not in definition:
            msg = f"strict IAM: SubmitJob with job definition {definition!r} and no revision is not modelled"
            raise NotImplementedError(msg)
        definition = f"{prefix}:job-definition/{definition}"
    return [queue, definition]


def _action(request: IAMRequestBase) -> str:
    """``s3:GetObject``; moto names Batch actions by their lower-case URL path, AWS by the operation."""
    service, _, name = request._action.partition(":")
    if service == "s3" and name == "HeadBucket":  # no such IAM action: AWS authorizes it as ListBucket
        name = "ListBucket"
    if service == "batch":
        operations = {op.lower(): op for op in _BATCH.operation_names}
        name = operations.get(name.lower(), name)
    return f"{service}:{name}"


_BATCH = botocore.session.get_session().get_service_model("batch")


def _s3_context(request: IAMRequestBase) -> dict[str, str]:
    query = parse_qs(urlsplit(request._path).query, keep_blank_values=True)
    return {"s3:prefix": query["prefix"][0]} if "prefix" in query else {}


def _missing_key(request: IAMRequestBase, resource: str) -> bool:
    bucket, _, key = resource.split(":::", 1)[1].partition("/")
    backend = s3_backends[request.account_id]["aws"]
    return bool(key) and bucket in backend.buckets and backend.buckets[bucket].keys.get(key) is None


# ---------- the patch ----------


@contextmanager
def enforced_iam(allowed: list[Request] | None = None) -> Iterator[list[Denial]]:
    """Enforce IAM, strictly, from now on; yields every denial, in order, and appends every
    authorized request to ``allowed``."""
    denials: list[Denial] = []
    original = IAMRequestBase.check_action_permitted

    def check(self: IAMRequestBase, resource: str) -> None:
        if self._action == "sts:GetCallerIdentity":
            return
        documents = _documents(self)
        principal = self._access_key.arn
        s3 = isinstance(self, S3IAMRequest)
        action = _action(self)
        resources = (
            [resource] if s3 else _batch_resources(self) if action.startswith("batch:") else [resource]
        )
        context = _s3_context(self) if s3 else {}
        for target in resources:
            why = None
            if not is_allowed(documents, action, target, context):
                why = f"no identity-based policy allows the {action} action"
            elif s3 and action == "s3:GetObject" and _missing_key(self, target):
                bucket_arn = target.split("/", 1)[0]
                if not is_allowed(documents, "s3:ListBucket", bucket_arn, {}):
                    why = (
                        "the key does not exist and no identity-based policy allows s3:ListBucket on "
                        f"{bucket_arn} (S3 answers a missing key 403 without it)"
                    )
            if why:
                denial = Denial(principal, action, target, why)
                denials.append(denial)
                raise (_S3AccessDenied if s3 else _AccessDenied)(denial.message)
            if allowed is not None:
                allowed.append(Request(principal, action, target, tuple(sorted(context.items()))))

    saved_count = settings.INITIAL_NO_AUTH_ACTION_COUNT
    IAMRequestBase.check_action_permitted = check  # type: ignore[method-assign]
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0
    try:
        yield denials
    finally:
        IAMRequestBase.check_action_permitted = original  # type: ignore[method-assign]
        settings.INITIAL_NO_AUTH_ACTION_COUNT = saved_count
