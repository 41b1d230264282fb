"""One delivery through the real handler (against the stand-in's S3 and Batch APIs) and the real jobs."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from inventory_contract.delivery import Delivery
from inventory_contract.jsonlog import JsonLogger
from lambdas import inventory_trigger
from lambdas.runs import RunResult
from pipeline.errors import EXIT_BAD_INPUT, EXIT_FAILED, PipelineError
from pipeline.local.batch_env import create_local_batch
from pipeline.local.executor import Executor, plan
from pipeline.local.stand_in import StandIn
from pipeline.local.warm import WarmPool


class RunNotStartedError(PipelineError):
    """The trigger did not start a run (a rejected manifest is bad input: exit code 2)."""


def manifest_event(bucket: str, key: str) -> dict[str, Any]:
    """The object-created event S3 sends when ``manifest.json`` lands (key URL-encoded)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "s3": {
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key, safe="/")},
        },
    }
    return {"Records": [record]}


def trigger_and_run(
    aws: StandIn,
    bucket: str,
    delivery: Delivery,
    *,
    log_dir: Path,
    progress: Callable[[str], None],
    target_chunk_mib: int,
    workers: int = 0,
    storage_env: dict[str, str] | None = None,
    pool: WarmPool | None = None,
) -> RunResult:
    """Deliver the manifest event to the real handler, then run exactly the jobs it submitted.

    The handler listens under the delivery's own prefix (S3 lets the inventory configuration
    choose any prefix, or none), so every delivery key S3 can produce starts its run. The jobs get
    ``storage_env`` on top of the stand-in's configuration: with the local storage backend's
    variables they read and write local folders and never the stand-in.
    """
    with _environment(aws.env):
        local = create_local_batch(aws.session(), image="local")
    env = {
        **aws.env,
        "JOB_QUEUE": local.queue,
        "SPLIT_JOB_DEFINITION": local.job_definitions["split"],
        "PROCESS_JOB_DEFINITION": local.job_definitions["process"],
        "FINALIZE_JOB_DEFINITION": local.job_definitions["finalize"],
        "TARGET_CHUNK_MIB": str(target_chunk_mib),
        "INVENTORY_PREFIX": f"{delivery.prefix}/" if delivery.prefix else "",
    }
    log_path = log_dir / "trigger.log"
    log = JsonLogger(_LogFile(log_path), component="inventory_trigger")
    with _environment(env):  # the real handler, cold-started against the stand-in
        inventory_trigger.settings.cache_clear()
        inventory_trigger.clients.cache_clear()
        inventory_trigger.LOG = log
        response = inventory_trigger.handler(manifest_event(bucket, delivery.manifest_key))
    if not response["runs"]:
        msg = f"the trigger ignored the event for s3://{bucket}/{delivery.manifest_key} (why: {log_path})"
        raise RunNotStartedError(msg)
    result = RunResult(**response["runs"][0])
    progress(
        f"trigger: {result.status} run {result.run_id}"
        + (f", {result.chunks} chunk(s)" if result.chunks else "")
    )
    if result.status != "submitted":
        msg = f"the trigger did not start a run: {result.status}: {result.reason}"
        raise RunNotStartedError(
            msg, exit_code=EXIT_BAD_INPUT if result.status == "rejected" else EXIT_FAILED
        )
    jobs = plan(aws.client("batch"), list(result.jobs.values()))
    jobs_env = {**env, **(storage_env or {}), "S3INV_PROGRESS_SECONDS": "2"}
    Executor(jobs_env, log_dir, progress, workers=workers, pool=pool).run(jobs)
    return result


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _LogFile:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path

    def write(self, text: str) -> int:
        with self._path.open("a") as f:
            return f.write(text)

    def flush(self) -> None:
        pass
