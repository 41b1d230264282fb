"""``python -m pipeline snapshot s3://SOURCE --outputs FILE``: the stack's snapshot job, followed.

The command runs in its own process against a moto server; the test plays AWS's part (as in
``test_smoke.py``): it runs the submitted snapshot job with the local executor, delivers the
manifest's event to the real trigger, and runs the run's jobs, reporting each job's state to Batch.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from inventory_contract.listing import LISTING_CONFIG_ID
from lambdas import inventory_trigger
from pipeline.local.executor import Executor, plan
from pipeline.local.flow import manifest_event
from tests.conftest import REGION
from tests.listed_bucket import fill_versioned, new_bucket
from tests.moto_s3_listing import s3_key_marker_as_aws
from tests.pipeline.test_smoke import (  # noqa: F401 - fixtures (F811 off for this file: pyproject.toml)
    PREFIX,
    Stack,
    jobs_wait_for_the_watcher,
    set_status,
    stack,
    trigger_env,
)

pytestmark = pytest.mark.slow
WAIT_SECONDS = 120  # a safety net so a broken test fails instead of hanging; nothing is timed


@pytest.fixture(autouse=True)
def key_marker_as_aws() -> Iterator[None]:
    with s3_key_marker_as_aws():
        yield


def _until(found: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


class Aws(threading.Thread):
    """The snapshot job, S3's event to the real trigger, then the run's jobs, in order."""

    def __init__(self, stack: Stack, source: str, *, fail_snapshot: bool = False) -> None:
        super().__init__(daemon=True)
        self.stack, self.source, self.fail_snapshot = stack, source, fail_snapshot
        self.earlier: set[str] = set()  # manifests that were there before the command ran
        self.error: BaseException | None = None
        self.batch = boto3.Session(region_name=REGION).client("batch", endpoint_url=stack.endpoint)

    def run(self) -> None:
        try:
            self._play()
        except BaseException as err:  # reported by the test
            self.error = err

    def _play(self) -> None:
        def snapshot_job() -> str | None:
            jobs = self.batch.list_jobs(jobQueue=self.stack.batch.queue, jobStatus="RUNNABLE")[
                "jobSummaryList"
            ]
            return next((j["jobId"] for j in jobs if j["jobName"].startswith("s3inv-snapshot-")), None)

        job_id = _until(snapshot_job, "the snapshot job was submitted")
        if self.fail_snapshot:
            set_status(job_id, "FAILED", "Essential container in task exited")
            return
        set_status(job_id, "RUNNING")
        Executor(self.stack.env, self.stack.tmp / "logs", progress=lambda _: None, workers=1).run(
            plan(self.batch, [job_id])
        )
        set_status(job_id, "SUCCEEDED")
        s3 = self.stack.s3()
        folder = f"{PREFIX}/{self.source}/{LISTING_CONFIG_ID}/"

        def manifest() -> str | None:
            listed = s3.list_objects_v2(Bucket=self.stack.bucket, Prefix=folder).get("Contents", [])
            found = [o["Key"] for o in listed if o["Key"].endswith("/manifest.json")]
            return next((k for k in found if k not in self.earlier), None)

        key = _until(manifest, "the listing's manifest landed")
        inventory_trigger.settings.cache_clear()
        inventory_trigger.clients.cache_clear()
        run = inventory_trigger.handler(manifest_event(self.stack.bucket, key))["runs"][0]
        for job in plan(self.batch, list(run["jobs"].values())):
            set_status(job.job_id, "RUNNING")
            Executor(self.stack.env, self.stack.tmp / "logs", progress=lambda _: None, workers=2).run([job])
            set_status(job.job_id, "SUCCEEDED")


def _snapshot(stack: Stack, source: str, outputs: dict[str, Any]) -> tuple[int, str, str]:
    outputs_file = stack.tmp / "outputs.json"
    outputs_file.write_text(json.dumps(outputs))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "snapshot",
            f"s3://{source}",
            "--outputs",
            str(outputs_file),
            "--workers",
            "2",
            "--poll",
            "0.1",
            "--timeout",
            str(WAIT_SECONDS),
        ],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS + 60,
    )
    return done.returncode, done.stdout, done.stderr


def _outputs(stack: Stack, *sources: str) -> dict[str, Any]:
    return {
        **stack.outputs,
        "snapshotJobDefinitionArn": stack.batch.job_definitions["snapshot"],
        "sourceBuckets": list(sources),
    }


def test_snapshot_on_the_stack_lists_delivers_and_follows_the_run_to_the_end(stack, monkeypatch):
    # GIVEN a deployed stack (its outputs), one of its source buckets, and AWS playing its part
    trigger_env(monkeypatch, stack)
    source = new_bucket(stack.s3(), versioned=True)
    written = fill_versioned(stack.s3(), source)
    # and an earlier listing's manifest of a few minutes ago, which the command must not follow
    from datetime import UTC, datetime, timedelta

    earlier = (datetime.now(UTC) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H-%MZ")
    earlier_key = f"{PREFIX}/{source}/{LISTING_CONFIG_ID}/{earlier}/manifest.json"
    stack.s3().put_object(Bucket=stack.bucket, Key=earlier_key, Body=b"{}")
    aws = Aws(stack, source)
    aws.earlier.add(earlier_key)
    aws.start()
    # WHEN the command runs
    code, stdout, stderr = _snapshot(stack, source, _outputs(stack, source))
    aws.join(timeout=WAIT_SECONDS)
    assert aws.error is None, aws.error
    # THEN it followed the job, then the run, and printed the run's report
    assert code == 0, stderr
    assert "submitted the snapshot job" in stderr and "snapshot job running" in stderr
    assert "following run" in stderr and "complete" in stderr
    assert "is complete (a listing, not an S3 Inventory)" in stdout
    assert f"{len(written.rows()):,} in, {len(written.rows()):,} out" in stdout


def test_a_bucket_that_is_not_a_source_of_the_stack_is_refused_before_anything_is_submitted(stack):
    code, _, stderr = _snapshot(stack, "not-a-source", _outputs(stack, "my-source"))
    assert code == 2
    assert "s3://not-a-source is not a source bucket of this stack (sourceBuckets: my-source)" in stderr
    assert stack.s3().list_objects_v2(Bucket=stack.bucket, Prefix=f"{PREFIX}/not-a-source/")["KeyCount"] == 0


def test_outputs_of_a_stack_without_the_snapshot_job_say_to_update_it(stack):
    outputs = {**stack.outputs, "sourceBuckets": ["src-bucket"]}
    code, _, stderr = _snapshot(stack, "src-bucket", outputs)
    assert code == 2 and "no snapshotJobDefinitionArn; update the stack with `pulumi up`" in stderr


def test_a_failed_snapshot_job_exits_1_with_batchs_reason(stack):
    source = new_bucket(stack.s3(), versioned=True)
    aws = Aws(stack, source, fail_snapshot=True)
    aws.start()
    code, _, stderr = _snapshot(stack, source, _outputs(stack, source))
    aws.join(timeout=WAIT_SECONDS)
    assert aws.error is None, aws.error
    assert code == 1
    assert "the snapshot job" in stderr and "failed: Essential container in task exited" in stderr
