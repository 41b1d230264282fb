"""``python -m pipeline smoke`` end to end: the real command in its own process against a moto server,
while the test plays AWS's part.

The watcher (a thread) sees the manifest land, delivers the S3 event to the real handler, and runs
exactly the jobs it submitted with the local executor, reporting each job's state to the Batch
stand-in (moto's Batch without Docker would mark every job SUCCEEDED at once; here a job stays
RUNNABLE until the watcher runs it). It moves on from a state only once the smoke command has
printed it, so every state the command reports is asserted without timing anything.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.batch.models import batch_backends
from moto.batch_simple.models import BatchSimpleBackend
from moto.moto_api import state_manager

from components.role_policies import finalize_policy, job_policy, trigger_policy
from inventory_contract.jsonlog import JsonLogger
from lambdas import inventory_trigger
from pipeline.cli import main
from pipeline.local.batch_env import LocalBatch, create_local_batch
from pipeline.local.executor import Executor, JobFailedError, plan
from pipeline.local.flow import manifest_event
from pipeline.smoke_scope import SmokeScope, is_smoke_source, smoke_policy, smoke_source
from pipeline.stack_outputs import inventory_prefix_of
from tests.conftest import REGION
from tests.iam_principals import ACCOUNT, ADMIN, as_environment, role_credentials, user_credentials
from tests.strict_iam import enforced_iam

pytestmark = pytest.mark.slow

PREFIX = "inventory"
SMOKE_ROWS = 400
OTHER_SOURCE = "my-real-bucket"
EARLIER_SMOKE = "amzn-s3-demo-smoke-20200101-000000-abcdef"  # another deployer's smoke run, in flight
HANDSHAKE_SECONDS = 120  # a safety net so a broken test fails instead of hanging; nothing is timed
_ids = iter(range(10**6))


# ---------- the stand-in: destination bucket, Batch, keys of other sources ----------


@functools.cache
def _admin_s3(endpoint: str) -> Any:
    return boto3.Session(region_name=REGION).client("s3", endpoint_url=endpoint)


@dataclass
class Stack:
    endpoint: str
    bucket: str
    batch: LocalBatch
    env: dict[str, str]
    tmp: Path
    others: dict[str, bytes] = field(default_factory=dict)

    @property
    def outputs(self) -> dict[str, Any]:
        """What `pulumi stack output --json` prints for this stand-in (the names that matter here)."""
        return {
            "destinationBucket": self.bucket,
            "inventoryPrefix": PREFIX,
            "jobQueueArn": self.batch.queue,
            "triggerFunctionName": "trigger-function-1a2b3c",
        }

    def s3(self, session: boto3.Session | None = None) -> Any:
        if session is None:  # one client: each new session loads botocore's models again (0.2 s)
            return _admin_s3(self.endpoint)
        return session.client("s3", endpoint_url=self.endpoint)

    def keys(self) -> dict[str, bytes]:
        s3 = self.s3()
        found = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                found[item["Key"]] = s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
        return found


@pytest.fixture
def jobs_wait_for_the_watcher() -> Iterator[None]:
    """Batch's part is the watcher's: a submitted job stays RUNNABLE until the watcher says otherwise."""

    def queued(self: Any, include_start_attempt: bool, job: Any) -> None:
        self.backend._jobs[job.job_id] = job
        job.status = "RUNNABLE"

    original = BatchSimpleBackend._mark_job_as_finished
    BatchSimpleBackend._mark_job_as_finished = queued  # type: ignore[method-assign]
    state_manager.set_transition("batch::job", {"progression": "manual", "times": 10**9})
    try:
        yield
    finally:
        BatchSimpleBackend._mark_job_as_finished = original  # type: ignore[method-assign]
        state_manager.unset_transition("batch::job")


@pytest.fixture
def stack(server_env: dict[str, str], tmp_path: Path, jobs_wait_for_the_watcher: None) -> Stack:
    n = next(_ids)
    bucket = f"smoke-dest-{os.getpid()}-{n}"
    setup = boto3.Session(region_name=REGION)
    setup.client("s3").create_bucket(Bucket=bucket)
    local = create_local_batch(setup, name_prefix=f"smoke-{os.getpid()}-{n}")
    stack = Stack(server_env["AWS_ENDPOINT_URL"], bucket, local, dict(server_env), tmp_path)
    # Another source's delivery and run, and another smoke run's keys: none may be touched
    for key in (
        f"{PREFIX}/{OTHER_SOURCE}/cfg/data/0b7c.csv.gz",
        f"{PREFIX}/{OTHER_SOURCE}/cfg/2026-11-24T01-00Z/manifest.json",
        f"{PREFIX}/{EARLIER_SMOKE}/cfg/data/1234.csv.gz",
        f"processed/source_bucket={OTHER_SOURCE}/run_date=2026-11-24/part-000000.parquet",
        f"processed/source_bucket={EARLIER_SMOKE}/run_date=2020-01-01/part-000000.parquet",
        f"run-state/source_bucket={OTHER_SOURCE}/run_date=2026-11-24/claim.json",
        f"run-reports/source_bucket={OTHER_SOURCE}/run_date=2026-11-24/_COMPLETE",
        f"rollups/storage_class/source_bucket={OTHER_SOURCE}/run_date=2026-11-24/rollup.parquet",
        f"inventory-chunks/source_bucket={EARLIER_SMOKE}/run_date=2020-01-01/inventory-part-000000.csv",
        "notes/readme.txt",
    ):
        body = f"keep {key}".encode()
        stack.s3().put_object(Bucket=bucket, Key=key, Body=body)
        stack.others[key] = body
    return stack


# ---------- the watcher: S3's notification, the Lambda, and Batch ----------


def set_status(job_id: str, status: str, reason: str | None = None) -> None:
    """What Batch reports for a job (and its array children)."""
    job = batch_backends[ACCOUNT][REGION].get_job_by_id(job_id)
    assert job is not None, job_id
    for one in [job, *(getattr(job, "_child_jobs", None) or [])]:
        one.status = status
        if reason:
            one.job_stopped_reason = reason


def statuses(stack: Stack, job_ids: list[str]) -> dict[str, tuple[str, str | None]]:
    batch = boto3.Session(region_name=REGION).client("batch", endpoint_url=stack.endpoint)
    return {
        j["jobName"].split("-")[1]: (j["status"], j.get("statusReason"))
        for j in batch.describe_jobs(jobs=job_ids)["jobs"]
    }


class Watcher(threading.Thread):
    """Plays AWS: the manifest's event to the real handler, then the submitted jobs, in order.

    ``mode``: "run" runs every job; "trigger" submits and leaves the jobs RUNNABLE; "corrupt"
    overwrites a data file before the splitter reads it (a bad delivery: the splitter fails).
    """

    def __init__(
        self,
        stack: Stack,
        stderr: Path,
        *,
        mode: str = "run",
        admin: boto3.Session | None = None,
        job_env: dict[str, str] | None = None,
        finalize_env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.stack, self.stderr, self.mode = stack, stderr, mode
        self.admin = admin or boto3.Session(region_name=REGION)
        self.job_env = job_env or {}
        self.env_by_command = {"finalize": finalize_env} if finalize_env else {}
        self.run_result: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self._play()
        except BaseException as err:  # reported by the test, not lost in the thread
            self.error = err
        finally:
            self.done.set()

    def said(self, pattern: str) -> None:
        """Wait until the smoke command has printed a progress line matching ``pattern``."""
        deadline = time.monotonic() + HANDSHAKE_SECONDS
        while not re.search(pattern, self.stderr.read_text(errors="replace")):
            if time.monotonic() > deadline:
                msg = f"the smoke command never printed {pattern!r}:\n{self.stderr.read_text()}"
                raise AssertionError(msg)
            time.sleep(0.05)

    def _manifest(self) -> str:
        s3 = self.stack.s3(self.admin)
        deadline = time.monotonic() + HANDSHAKE_SECONDS
        while time.monotonic() < deadline:
            listed = s3.list_objects_v2(Bucket=self.stack.bucket, Prefix=f"{PREFIX}/amzn-s3-demo-smoke-")
            found = [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith("/manifest.json")]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError("no smoke manifest landed")

    def _play(self) -> None:
        key = self._manifest()
        s3 = self.stack.s3(self.admin)
        if self.mode == "corrupt":
            manifest = json.loads(s3.get_object(Bucket=self.stack.bucket, Key=key)["Body"].read())
            s3.put_object(Bucket=self.stack.bucket, Key=manifest["files"][0]["key"], Body=b"not gzip")
        inventory_trigger.settings.cache_clear()
        inventory_trigger.clients.cache_clear()
        self.run_result = inventory_trigger.handler(manifest_event(self.stack.bucket, key))["runs"][0]
        if self.mode == "trigger" or self.run_result["status"] != "submitted":
            return
        self.said(r"\] splitting")
        admin_batch = self.admin.client("batch", endpoint_url=self.stack.endpoint)
        jobs = plan(admin_batch, list(self.run_result["jobs"].values()))
        env = {**self.stack.env, **self.job_env}
        for index, job in enumerate(jobs):
            set_status(job.job_id, "RUNNING")
            try:
                Executor(
                    env,
                    self.stack.tmp / "logs",
                    progress=lambda _: None,
                    workers=2,
                    env_by_command=self.env_by_command,
                ).run([job])
            except JobFailedError:
                set_status(job.job_id, "FAILED", "Essential container in task exited")
                for later in jobs[index + 1 :]:
                    set_status(later.job_id, "FAILED", "Dependent Job failed")
                return
            set_status(job.job_id, "SUCCEEDED")
            if index == 0:
                self.said(r"\] processing")


# ---------- running the command ----------


@dataclass
class Smoke:
    process: subprocess.Popen[str]
    stderr_path: Path
    stdout: str = ""

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait(self, watcher: Watcher | None = None) -> int:
        """The command's exit code; if the watcher broke, the command is stopped and the watcher's
        error raised (instead of the command waiting for a run nothing will run)."""
        while watcher is not None and self.process.poll() is None:
            if watcher.done.wait(0.1) and watcher.error is not None:
                self.process.kill()
                self.process.communicate()
                raise watcher.error
        self.stdout, _ = self.process.communicate(timeout=300)
        return self.process.returncode


def start_smoke(
    stack: Stack, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> Smoke:
    stderr = stack.tmp / f"smoke-{next(_ids)}.stderr"
    stderr.touch()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "smoke", "--poll", "0.1", *args],
        env=env or stack.env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr.open("w"),
        text=True,
    )
    if stdin is not None:
        assert process.stdin is not None
        process.stdin.write(stdin)
        process.stdin.close()
        process.stdin = None  # written and closed: communicate() has nothing more to send
    return Smoke(process, stderr)


def fake_pulumi(stack: Stack, script: str) -> dict[str, str]:
    """An environment whose PATH has a `pulumi` that runs ``script`` (a shell snippet)."""
    bin_dir = stack.tmp / f"bin-{next(_ids)}"
    bin_dir.mkdir()
    pulumi = bin_dir / "pulumi"
    pulumi.write_text(f"#!/bin/sh\n{script}\n")
    pulumi.chmod(0o755)
    return {**stack.env, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def trigger_env(monkeypatch: pytest.MonkeyPatch, stack: Stack) -> None:
    """The Lambda's configuration, as the stack sets it."""
    for name, value in {
        "JOB_QUEUE": stack.batch.queue,
        "SPLIT_JOB_DEFINITION": stack.batch.job_definitions["split"],
        "PROCESS_JOB_DEFINITION": stack.batch.job_definitions["process"],
        "FINALIZE_JOB_DEFINITION": stack.batch.job_definitions["finalize"],
        "INVENTORY_PREFIX": f"{PREFIX}/",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(inventory_trigger, "LOG", JsonLogger(io.StringIO()))
    # a cold start: boto3's default session (and the credentials it resolved) is made anew from the environment
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


def smoke_keys(keys: dict[str, bytes]) -> list[str]:
    return [k for k in keys if "amzn-s3-demo-smoke-" in k and EARLIER_SMOKE not in k]


def assert_only_the_others_remain(stack: Stack) -> None:
    assert stack.keys() == stack.others


# ---------- the happy path ----------


def test_smoke_runs_a_delivery_through_the_stack_and_removes_it(stack, monkeypatch):
    # GIVEN the stack's outputs from `pulumi stack output --json`, and AWS playing its part
    trigger_env(monkeypatch, stack)
    env = fake_pulumi(
        stack, f"[ \"$*\" = 'stack output --json' ] || exit 9\necho '{json.dumps(stack.outputs)}'"
    )
    smoke = start_smoke(stack, env=env)
    watcher = Watcher(stack, smoke.stderr_path)
    watcher.start()

    # WHEN the smoke test runs
    code = smoke.wait(watcher)
    watcher.join(10)

    # THEN it followed every state, passed with the rows it delivered, and left only the others' keys
    assert watcher.error is None, watcher.error
    assert code == 0, smoke.stderr
    assert watcher.run_result is not None and watcher.run_result["status"] == "submitted"
    source = watcher.run_result["run_id"].split("/")[0]
    assert is_smoke_source(source)
    states = re.findall(r"\] (delivered|claimed|splitting|processing|complete|failed)\b", smoke.stderr)
    assert states[0] == "delivered" and states[-1] == "complete"
    assert {"splitting", "processing"} <= set(states)
    assert (
        f"delivered {SMOKE_ROWS} objects in 2 data files to s3://{stack.bucket}/{PREFIX}/{source}/"
        in smoke.stderr
    )
    assert re.search(rf"smoke test passed in \d+m\d\ds: {source}/\d{{4}}-\d\d-\d\d is complete", smoke.stdout)
    assert f"rows:             {SMOKE_ROWS} delivered, {SMOKE_ROWS} in, {SMOKE_ROWS} out" in smoke.stdout
    assert "chunks:           1 (generation 1)" in smoke.stdout
    assert "storage classes (objects / bytes):" in smoke.stdout  # the rollups
    assert re.search(r"removed \d+ object\(s\) under 9 prefixes of " + source, smoke.stderr)
    assert_only_the_others_remain(stack)


def test_a_second_smoke_run_in_a_row_has_its_own_run(stack, monkeypatch):
    trigger_env(monkeypatch, stack)
    sources = []
    for _ in range(2):
        smoke = start_smoke(stack, "--outputs", "-", stdin=json.dumps(stack.outputs))
        watcher = Watcher(stack, smoke.stderr_path)
        watcher.start()
        assert smoke.wait(watcher) == 0, smoke.stderr
        watcher.join(10)
        assert watcher.run_result is not None
        sources.append(watcher.run_result["run_id"])
    assert sources[0] != sources[1]
    assert [s.endswith("/g1") for s in sources] == [True, True]  # a run of its own, not a forced rerun
    assert_only_the_others_remain(stack)


# ---------- failures ----------


def test_a_failed_job_exits_1_with_batchs_reason_and_still_cleans_up(stack, monkeypatch):
    trigger_env(monkeypatch, stack)
    smoke = start_smoke(
        stack, "--destination-bucket", stack.bucket
    )  # --inventory-prefix defaults to inventory
    watcher = Watcher(stack, smoke.stderr_path, mode="corrupt")
    watcher.start()

    code = smoke.wait(watcher)
    watcher.join(10)

    assert watcher.error is None, watcher.error
    assert code == 1
    assert watcher.run_result is not None
    error = [line for line in smoke.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1
    assert re.fullmatch(
        r"error: the smoke run failed: split job s3inv-split-amzn-s3-demo-smoke-[\w-]+-g1 failed: "
        r"Essential container in task exited",
        error[0],
    )
    assert "smoke test passed" not in smoke.stdout
    assert_only_the_others_remain(stack)


def test_a_timeout_names_the_state_stops_the_jobs_and_cleans_up(stack, monkeypatch):
    # GIVEN a run that is submitted but never starts (Fargate has no capacity, say)
    trigger_env(monkeypatch, stack)
    smoke = start_smoke(stack, "--outputs", "-", "--timeout", "5", stdin=json.dumps(stack.outputs))
    watcher = Watcher(stack, smoke.stderr_path, mode="trigger")
    watcher.start()

    code = smoke.wait(watcher)
    watcher.join(10)

    assert code == 1
    assert watcher.run_result is not None
    error = smoke.stderr.splitlines()[-1]
    assert error == "error: the smoke run did not complete in 5 s; it was splitting (RUNNABLE)"
    reasons = statuses(stack, list(watcher.run_result["jobs"].values()))
    assert reasons == dict.fromkeys(
        ("split", "process", "finalize"), ("RUNNABLE", "smoke test stopped (timed out)")
    )
    assert "terminated the run's unfinished jobs: s3inv-split-" in smoke.stderr
    assert_only_the_others_remain(stack)


def test_a_timeout_with_no_trigger_says_nothing_claimed_the_run(stack):
    smoke = start_smoke(stack, "--outputs", "-", "--timeout", "1", stdin=json.dumps(stack.outputs))

    assert smoke.wait() == 1
    assert smoke.stderr.splitlines()[-1] == (
        "error: the smoke run did not complete in 1 s; it was delivered (waiting for the trigger to claim "
        "the run); nothing claimed the run: check the logs of the trigger function trigger-function-1a2b3c "
        "and its failed-events queue (stack output failedEventsQueueArn)"
    )
    assert_only_the_others_remain(stack)


@pytest.mark.parametrize(
    ("signum", "code", "said"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_ctrl_c_or_sigterm_stops_following_stops_the_jobs_and_cleans_up(
    stack, monkeypatch, signum, code, said
):
    trigger_env(monkeypatch, stack)
    smoke = start_smoke(stack, "--outputs", "-", stdin=json.dumps(stack.outputs))
    watcher = Watcher(stack, smoke.stderr_path, mode="trigger")
    watcher.start()
    watcher.join(HANDSHAKE_SECONDS)
    watcher.said(r"\] splitting")

    smoke.process.send_signal(signum)

    assert smoke.wait() == code
    assert watcher.run_result is not None
    assert (
        smoke.stderr.splitlines()[-1]
        == f"{said}: stopped following the smoke run of {watcher.run_result['run_id'].split('/')[0]}"
    )
    reasons = statuses(stack, list(watcher.run_result["jobs"].values()))
    assert {reason for _, reason in reasons.values()} == {f"smoke test stopped ({said})"}
    assert_only_the_others_remain(stack)


def test_keep_leaves_the_delivery_and_the_run(stack, monkeypatch):
    trigger_env(monkeypatch, stack)
    smoke = start_smoke(stack, "--outputs", "-", "--keep", stdin=json.dumps(stack.outputs))
    watcher = Watcher(stack, smoke.stderr_path)
    watcher.start()
    assert smoke.wait(watcher) == 0, smoke.stderr
    watcher.join(10)
    assert watcher.run_result is not None
    source = watcher.run_result["run_id"].split("/")[0]
    kept = smoke_keys(stack.keys())
    assert any(k.startswith(f"processed/source_bucket={source}/") for k in kept)
    assert any(k.endswith("/manifest.json") for k in kept)
    assert "kept (--keep): " in smoke.stderr


# ---------- bad input: exit 2, one line, nothing written ----------


def _in_process(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["smoke", *argv])
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "{not json",
            "error: the stack outputs from {path} are not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1)); give what `pulumi stack output --json` prints",
        ),
        (
            '["destinationBucket"]',
            "error: the stack outputs from {path} are not a JSON object of output names and values",
        ),
        (
            '{"glueTable": "inventory"}',
            "error: the stack outputs have no destinationBucket; give --destination-bucket or the outputs of this stack",
        ),
        (
            '{"destinationBucket": "b"}',
            "error: the stack outputs name no inventory prefix (inventoryPrefix); give --inventory-prefix",
        ),
        (
            '{"destinationBucket": "b", "inventoryPrefix": "processed/x"}',
            "error: --inventory-prefix must not start with a prefix the pipeline writes (inventory-chunks, processed, run-state, run-reports), got 'processed/x'",
        ),
    ],
)
def test_bad_outputs_exit_2_in_one_line_writing_nothing(stack, tmp_path, capsys, content, message):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(content)

    code, err = _in_process(["--outputs", str(outputs)], capsys)

    assert (code, err) == (2, [message.format(path=outputs)])
    assert_only_the_others_remain(stack)


def test_a_missing_bucket_exits_2_in_one_line(stack, capsys):
    code, err = _in_process(["--destination-bucket", "no-such-bucket-here"], capsys)

    assert (code, err) == (
        2,
        [
            "error: destination bucket 'no-such-bucket-here' does not exist; check destinationBucket and the AWS account"
        ],
    )


def test_no_pulumi_cli_exits_2_in_one_line(stack, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no pulumi

    code, err = _in_process([], capsys)

    assert (code, err) == (
        2,
        [
            "error: the pulumi CLI is not on PATH: install it, or give --outputs FILE (the JSON of "
            "`pulumi stack output --json`) or --destination-bucket"
        ],
    )
    assert_only_the_others_remain(stack)


def test_a_failing_pulumi_exits_2_with_its_reason(stack, capsys, monkeypatch):
    env = fake_pulumi(stack, "echo 'error: no stack named dev found' >&2\nexit 255")
    monkeypatch.setenv("PATH", env["PATH"])

    code, err = _in_process(["--stack", "dev"], capsys)

    assert (code, err) == (
        2,
        [
            "error: `pulumi stack output --json --stack dev` failed (exit 255): error: no stack named dev "
            "found; select the stack (--stack) or give --outputs FILE"
        ],
    )
    assert_only_the_others_remain(stack)


def test_print_policy_renders_the_smoke_writers_iam(stack, tmp_path, capsys):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps({**stack.outputs, "jobQueueArn": "arn:aws-cn:batch:cn-north-1:1:job-queue/q"})
    )

    code = main(["smoke", "--outputs", str(outputs), "--print-policy"])

    printed = json.loads(capsys.readouterr().out)
    assert code == 0
    assert printed == smoke_policy(
        bucket_arn=f"arn:aws-cn:s3:::{stack.bucket}", inventory_prefix=PREFIX, partition="aws-cn"
    )
    assert_only_the_others_remain(stack)


# ---------- under the deployed IAM, enforced ----------


def test_smoke_passes_under_the_deployed_iam_and_the_documented_smoke_policy(stack, monkeypatch):
    # GIVEN the trigger and the jobs with the stack's role policies, and a deployer who holds only
    # the smoke policy (`pipeline smoke --print-policy`), with IAM enforced as strictly as AWS
    bucket_arn = f"arn:aws:s3:::{stack.bucket}"
    queue, definitions = stack.batch.queue, list(stack.batch.job_definitions.values())
    setup_iam = boto3.Session(region_name=REGION).client("iam", endpoint_url=stack.endpoint)
    admin = boto3.Session(**user_credentials(setup_iam, "admin", ADMIN), region_name=REGION)
    iam, sts = (admin.client(service, endpoint_url=stack.endpoint) for service in ("iam", "sts"))
    trigger = trigger_policy(
        bucket_arn=bucket_arn,
        inventory_prefix=PREFIX,
        queue_arns=[queue],
        job_definition_arns=definitions,
        log_group_arn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:trigger",
        failed_events_queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:failed-events",
    )
    trigger_creds = as_environment(role_credentials(iam, sts, "trigger", trigger))
    job_creds = as_environment(
        role_credentials(iam, sts, "job", job_policy(bucket_arn=bucket_arn, inventory_prefix=PREFIX))
    )
    finalize_creds = as_environment(
        role_credentials(
            iam, sts, "finalize", finalize_policy(bucket_arn=bucket_arn, inventory_prefix=PREFIX)
        )
    )
    smoke_only = smoke_policy(bucket_arn=bucket_arn, inventory_prefix=PREFIX)
    deployer = as_environment(user_credentials(iam, "deployer", smoke_only))
    trigger_env(monkeypatch, stack)
    for name, value in trigger_creds.items():  # the handler's boto3 reads them, as in Lambda
        monkeypatch.setenv(name, value)

    with enforced_iam() as denials:
        smoke = start_smoke(
            stack, "--outputs", "-", env={**stack.env, **deployer}, stdin=json.dumps(stack.outputs)
        )
        watcher = Watcher(
            stack, smoke.stderr_path, admin=admin, job_env=job_creds, finalize_env=finalize_creds
        )
        watcher.start()
        code = smoke.wait(watcher)
        watcher.join(10)

    assert watcher.error is None, watcher.error
    assert code == 0, smoke.stderr
    assert f"rows:             {SMOKE_ROWS} delivered, {SMOKE_ROWS} in, {SMOKE_ROWS} out" in smoke.stdout
    # the only refusals: a run's rejected.json that does not exist (403 without a listing of the bucket;
    # `status` then lists exactly that key), read by the smoke command while it follows the run
    assert {(d.action, d.resource.rsplit("/", 1)[-1]) for d in denials} <= {
        ("s3:GetObject", "rejected.json"),
        ("s3:GetObject", "run-report.json"),
        ("s3:GetObject", "_COMPLETE"),
        ("s3:GetObject", "claim.json"),
    }
    assert_only_the_others_remain(stack)


def test_the_smoke_policy_cannot_reach_other_sources(stack):
    """The deployer's smoke policy allows the reserved names only (checked with the same evaluator)."""
    from tests.strict_iam import is_allowed

    policy = [smoke_policy(bucket_arn="arn:aws:s3:::d", inventory_prefix=PREFIX)]
    smoke = smoke_source(datetime(2026, 11, 24, 1, 2, 3, tzinfo=UTC), "0a1b2c")
    assert smoke == "amzn-s3-demo-smoke-20261124-010203-0a1b2c"
    for action in ("s3:PutObject", "s3:DeleteObject"):
        assert is_allowed(policy, action, f"arn:aws:s3:::d/{PREFIX}/{smoke}/cfg/data/x.csv.gz", {})
        assert not is_allowed(policy, action, f"arn:aws:s3:::d/{PREFIX}/{OTHER_SOURCE}/cfg/data/x.csv.gz", {})
    assert is_allowed(
        policy,
        "s3:DeleteObject",
        f"arn:aws:s3:::d/rollups/age/source_bucket={smoke}/run_date=2026-11-24/rollup.parquet",
        {},
    )
    assert not is_allowed(
        policy,
        "s3:DeleteObject",
        f"arn:aws:s3:::d/processed/source_bucket={OTHER_SOURCE}/run_date=2026-11-24/part-000000.parquet",
        {},
    )
    assert not is_allowed(
        policy,
        "s3:PutObject",
        f"arn:aws:s3:::d/run-state/source_bucket={smoke}/run_date=2026-11-24/claim.json",
        {},
    )
    assert not is_allowed(
        policy, "s3:ListBucket", "arn:aws:s3:::d", {"s3:prefix": f"processed/source_bucket={OTHER_SOURCE}/"}
    )


# ---------- the scope and the outputs, as units ----------


def test_the_scope_is_exactly_the_reserved_sources_prefixes():
    scope = SmokeScope("d", "inv/nested", "amzn-s3-demo-smoke-20261124-010203-0a1b2c", "2026-11-24")
    part = "source_bucket=amzn-s3-demo-smoke-20261124-010203-0a1b2c/run_date=2026-11-24/"
    assert scope.prefixes == (
        "inv/nested/amzn-s3-demo-smoke-20261124-010203-0a1b2c/",
        f"processed/{part}",
        f"run-state/{part}",
        f"run-reports/{part}",
        f"rollups/storage_class/{part}",
        f"rollups/prefix/{part}",
        f"rollups/age/{part}",
        f"rollups/encryption/{part}",
        "reports/source_bucket=amzn-s3-demo-smoke-20261124-010203-0a1b2c/",  # its pages, latest.html too
    )


@pytest.mark.parametrize(
    "name",
    [
        "my-bucket",
        "amzn-s3-demo-smoke-",
        "amzn-s3-demo-smoke-20261124-010203-0a1b2c-x",
        "amzn-s3-demo-bucket",
    ],
)
def test_cleanup_refuses_any_source_that_is_not_a_smoke_run(name):
    with pytest.raises(ValueError, match="is not a smoke test's reserved source name"):
        SmokeScope("d", PREFIX, name, "2026-11-24")


def test_an_older_stack_names_its_inventory_prefix_only_in_the_backfill_command():
    backfill = "JOB_QUEUE=q python -m pipeline trigger s3://dest/inv/a/b/SOURCE-BUCKET/cfg/YYYY-MM-DDTHH-MMZ/manifest.json"
    assert inventory_prefix_of({"backfillCommand": backfill}) == "inv/a/b"
    assert inventory_prefix_of({"inventoryPrefix": "x", "backfillCommand": backfill}) == "x"
    assert inventory_prefix_of({"glueTable": "t"}) is None
