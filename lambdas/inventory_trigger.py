"""The trigger Lambda: each inventory ``manifest.json`` that lands starts exactly one Batch run.

Handler: ``lambdas.inventory_trigger.handler``. Configuration: environment variables, see
``lambdas/settings.py``. Permanent problems (a malformed or unsupported manifest) are logged,
recorded under ``run-state/`` and not retried; transient AWS errors propagate so that Lambda
retries the event, which is safe because starting a run is idempotent (``lambdas/runs.py``).
"""

from __future__ import annotations

import os
from dataclasses import asdict
from functools import cache
from typing import Any
from urllib.parse import unquote_plus

import boto3

from inventory_contract.delivery import MANIFEST_NAME, parse_delivery_key
from inventory_contract.errors import DeliveryKeyError
from inventory_contract.jsonlog import JsonLogger
from lambdas.runs import RunInProgressError, start_run
from lambdas.sdk import require_conditional_writes
from lambdas.settings import Settings

LOG = JsonLogger(component="inventory_trigger")


@cache
def settings() -> Settings:
    """Parsed once per cold start; a missing or invalid variable fails here, naming it."""
    return Settings.from_env(os.environ)


@cache
def clients() -> tuple[Any, Any]:
    """Created once per cold start; an SDK without conditional writes fails here (lambdas/sdk.py)."""
    s3 = boto3.client("s3")
    require_conditional_writes(s3)
    return s3, boto3.client("batch")


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    s3, batch = clients()
    log = LOG.bind(request_id=getattr(context, "aws_request_id", None))
    return handle_event(event, settings=settings(), s3=s3, batch=batch, log=log)


def handle_event(
    event: dict[str, Any], *, settings: Settings, s3: Any, batch: Any, log: JsonLogger
) -> dict[str, Any]:
    if event.get("Event") == "s3:TestEvent":
        log.info("ignored s3:TestEvent", bucket=event.get("Bucket"))
        return {"runs": [], "ignored": 1}
    runs, ignored = [], 0
    for record in event.get("Records", []):
        target = _manifest_of(record, settings, log)
        if target is None:
            ignored += 1
            continue
        bucket, key = target
        delivery = parse_delivery_key(key)
        try:
            result = start_run(bucket, delivery, settings=settings, s3=s3, batch=batch, log=log)
        except RunInProgressError as err:
            # Another invocation is starting this run: raising hands the event back to Lambda to
            # retry later, which is no failure. The stack's alerts count this line (a metric filter,
            # components/alerts.py) and subtract it from the function's errors.
            log.info("run in progress, Lambda retries the event", bucket=bucket, key=key, reason=str(err))
            raise
        runs.append(asdict(result))
    return {"runs": runs, "ignored": ignored}


def _manifest_of(record: dict[str, Any], settings: Settings, log: JsonLogger) -> tuple[str, str] | None:
    """The (bucket, decoded key) of a manifest this record announces, or None, logged once."""
    version = str(record.get("eventVersion", ""))
    name = str(record.get("eventName", ""))
    s3 = record.get("s3", {})
    bucket = s3.get("bucket", {}).get("name")
    key = unquote_plus(s3.get("object", {}).get("key", ""))
    context = {"bucket": bucket, "key": key, "event_name": name, "event_version": version}
    if not version.startswith("2."):
        log.info("ignored record: unsupported event version", **context)
        return None
    if not name.startswith("ObjectCreated:"):
        log.info("ignored record: not an object-created event", **context)
        return None
    if not bucket or not key.startswith(settings.inventory_prefix) or not key.endswith(f"/{MANIFEST_NAME}"):
        log.info("ignored record: not a manifest.json under the inventory prefix", **context)
        return None
    try:
        parse_delivery_key(key)
    except DeliveryKeyError as err:
        log.info("ignored record: not an inventory delivery key", error=str(err), **context)
        return None
    return bucket, key
