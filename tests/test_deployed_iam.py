"""The trigger and every job, end to end, under exactly the IAM the stack deploys, enforced.

The role policies are the stack's own functions (``components.role_policies``), rendered for the
stand-in's account, bucket, queue and job definitions. The trigger runs in this process with the
trigger role's credentials; each job runs in its own process with the job role's credentials,
against a moto server on loopback whose IAM is as strict as AWS's (``tests.strict_iam``).
"""

from __future__ import annotations

import ast
import io
import itertools
import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pytest

from components.role_policies import execution_policy, finalize_policy, job_policy, trigger_policy
from inventory_contract.delivery import parse_delivery_key
from inventory_contract.jsonlog import JsonLogger
from inventory_contract.layout import PROCESSED_ROOT, ROLLUPS_ROOT, STATE_ROOT, RunLayout
from lambdas import runs
from lambdas.inventory_trigger import handle_event
from lambdas.runs import start_run
from lambdas.settings import Settings
from pipeline.local.batch_env import create_local_batch
from pipeline.local.executor import Executor, JobFailedError, plan
from pipeline.synthetic import generate_delivery
from tests.aws_fixtures import object_created
from tests.conftest import REGION, upload_tree
from tests.iam_principals import ADMIN, as_environment, role_credentials, user_credentials
from tests.strict_iam import Denial, Request, enforced_iam, is_allowed, unused_grants

pytestmark = pytest.mark.slow

ACCOUNT = "123456789012"  # moto's default account
PREFIX = "inventory"
_ids = itertools.count()

# Statements nothing here can exercise, because an AWS service uses them on the role's behalf.
USED_BY_AWS_ONLY = {
    ("trigger", "WriteLogs"): "Lambda writes the function's logs",
    ("trigger", "ReportFailedEvents"): "Lambda sends an event that failed every attempt to the queue",
    ("execution", "EcrToken"): "ECS authenticates to ECR to pull the job image",
    ("execution", "PullJobImage"): "ECS pulls the job image",
    ("execution", "WriteJobLogs"): "the awslogs driver writes the job's logs",
}
# Statements a successful run never uses, each with the test that checks it instead (the failed
# uploads of test_every_grant_... use AbortMultipartUploads: no statement is left here).
USED_ONLY_ON_FAILURE: dict[tuple[str, str], str] = {}
# Statements whose absence does not fail a run, each with the test that shows what it does instead.
ABSENCE_SHOWN_ELSEWHERE = {
    ("job", "AbortMultipartUploads"): "an upload that fails is aborted, or its parts are left behind: "
    "test_without_the_abort_grant_a_failed_upload_leaves_its_parts_behind",
    ("finalize", "AbortMultipartUploads"): "an upload that fails is aborted, or its parts are left behind: "
    "test_without_the_abort_grant_a_failed_upload_leaves_its_parts_behind",
    (
        "finalize",
        "ReadRunsForTheStorageReport",
    ): "the run completes without its storage report, and says why: "
    "test_without_a_storage_report_grant_the_run_completes_and_finalize_logs_the_refusal",
    ("finalize", "StorageReports"): "the run completes without its storage report, and says why: "
    "test_without_a_storage_report_grant_the_run_completes_and_finalize_logs_the_refusal",
}
# The scenario that needs each statement (the default: a delivery whose checksum has not landed yet).
SCENARIO = {
    ("trigger", "RecordRejections"): "rejected",
    ("job", "RetireEarlierRuns"): "forced-rerun-with-fewer-chunks",
}


@dataclass
class Account:
    """The stand-in set up as the stack would be, with a role per piece of code."""

    endpoint: str
    bucket: str
    settings: Settings
    admin: boto3.Session
    root: Path
    manifest_key: str
    denials: list[Denial] = field(default_factory=list)  # of the last run_pipeline
    allowed: list[Request] = field(default_factory=list)  # every authorized request, of every run

    def session(self, credentials: dict[str, str]) -> boto3.Session:
        return boto3.Session(**credentials, region_name=REGION)

    def client(self, session: boto3.Session, service: str) -> Any:
        return session.client(service, endpoint_url=self.endpoint)

    def role(self, name: str, document: dict[str, Any]) -> dict[str, str]:
        """A role holding exactly ``document``, and credentials from assuming it."""
        iam, sts = self.client(self.admin, "iam"), self.client(self.admin, "sts")
        return role_credentials(iam, sts, name, document)

    def documents(self) -> dict[str, dict[str, Any]]:
        return render(self.bucket, self.settings)


def render(bucket: str, settings: Settings) -> dict[str, dict[str, Any]]:
    """The stack's role policies, rendered for a stand-in's bucket, queue and job definitions."""
    bucket_arn = f"arn:aws:s3:::{bucket}"
    return {
        "trigger": trigger_policy(
            bucket_arn=bucket_arn,
            inventory_prefix=PREFIX,
            queue_arns=[settings.job_queue],
            job_definition_arns=[
                settings.split_job_definition,
                settings.process_job_definition,
                settings.finalize_job_definition,
            ],
            log_group_arn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:trigger",
            failed_events_queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:failed-events",
        ),
        "job": job_policy(bucket_arn=bucket_arn, inventory_prefix=PREFIX),
        "finalize": finalize_policy(bucket_arn=bucket_arn, inventory_prefix=PREFIX),
        "execution": execution_policy(
            repository_arn=f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/jobs",
            log_group_arn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:jobs",
        ),
    }


def statements() -> list[tuple[str, str]]:
    """(role, Sid) of every statement of every role policy."""
    definition = f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/d:1"
    settings = Settings(definition, definition, definition, definition)
    return [(role, s["Sid"]) for role, doc in render("b", settings).items() for s in doc["Statement"]]


@pytest.fixture
def account(server_env: dict[str, str], tmp_path: Path) -> Account:
    return new_account(server_env, tmp_path)


def new_account(server_env: dict[str, str], tmp_path: Path) -> Account:
    """As an administrator, before enforcement: the destination, a delivery, Batch, an admin user."""
    endpoint = server_env["AWS_ENDPOINT_URL"]
    n = next(_ids)
    bucket = f"iam-dest-{os.getpid()}-{n}"
    setup = boto3.Session(region_name=REGION)
    setup.client("s3").create_bucket(Bucket=bucket)
    generated = generate_delivery(tmp_path / "root", objects=2000, files=2, destination_bucket=bucket)
    # S3 writes manifest.checksum after manifest.json: the trigger must cope with it not being there yet
    (generated.root / generated.delivery.checksum_key).unlink()
    upload_tree(setup.client("s3"), generated.root, bucket)
    local = create_local_batch(setup, name_prefix=f"iam-{os.getpid()}-{n}")
    admin_key = user_credentials(setup.client("iam"), "admin", ADMIN)
    admin = boto3.Session(**admin_key, region_name=REGION)
    total = sum(f.stat().st_size for f in (generated.root / "inventory").rglob("*.csv.gz"))
    settings = Settings(
        job_queue=local.queue,
        split_job_definition=local.job_definitions["split"],
        process_job_definition=local.job_definitions["process"],
        finalize_job_definition=local.job_definitions["finalize"],
        target_chunk_bytes=total // 2 + 1,  # two chunks: the processor runs as an array
    )
    return Account(endpoint, bucket, settings, admin, tmp_path, generated.delivery.manifest_key)


def run_pipeline(
    account: Account, documents: dict[str, dict[str, Any]], scenario: str = "no-checksum-yet"
) -> dict[str, Any]:
    """The trigger with its role, then each submitted job with the job role; returns the trigger's run."""
    trigger = account.session(account.role("trigger", documents["trigger"]))
    job = account.role("job", documents["job"])
    finalize_role = account.role("finalize", documents["finalize"])
    if scenario == "rejected":  # a manifest that can never be processed: the trigger records why
        account.client(account.admin, "s3").put_object(
            Bucket=account.bucket, Key=account.manifest_key, Body=b'{"not": "a manifest"}'
        )
    if scenario == "a-data-file-is-gone":  # listed by the manifest, deleted since (expired, say)
        data_key = json.loads(_object(account, account.manifest_key))["files"][0]["key"]
        account.client(account.admin, "s3").delete_object(Bucket=account.bucket, Key=data_key)
    if scenario == "forced-rerun-with-fewer-chunks":  # a complete run of 2 chunks, then one of 1
        run_pipeline(account, account.documents())
    with enforced_iam(account.allowed) as denials:
        account.denials = denials
        s3, batch, log = (
            account.client(trigger, "s3"),
            account.client(trigger, "batch"),
            JsonLogger(io.StringIO()),
        )
        if scenario == "forced-rerun-with-fewer-chunks":  # what `pipeline trigger --force` does
            one_chunk = replace(account.settings, target_chunk_bytes=10**12)
            delivery = parse_delivery_key(account.manifest_key)
            forced = start_run(
                account.bucket, delivery, settings=one_chunk, s3=s3, batch=batch, log=log, force=True
            )
            run = asdict(forced)
        else:
            event = object_created(account.bucket, account.manifest_key)
            [run] = handle_event(event, settings=account.settings, s3=s3, batch=batch, log=log)["runs"]
        if run["status"] != "submitted":
            return run
        jobs = plan(account.client(account.admin, "batch"), list(run["jobs"].values()))
        env = {
            "AWS_ENDPOINT_URL": account.endpoint,
            **as_environment(job),
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }
        finalize = {"finalize": as_environment(finalize_role)}  # its own role, as the job definition says
        Executor(env, account.root / "logs", progress=lambda _: None, workers=2, env_by_command=finalize).run(
            jobs
        )
    return run


def only_the_missing_checksum_was_refused(account: Account) -> bool:
    """The checksum that has not landed yet answers 403 (the roles list only some prefixes); the
    trigger's listing of exactly that key tells "missing" from "forbidden". Nothing else is refused."""
    checksum = account.manifest_key.replace("manifest.json", "manifest.checksum")
    denials = account.denials
    return [(d.action, d.resource) for d in denials] == [
        ("s3:GetObject", f"arn:aws:s3:::{account.bucket}/{checksum}")
    ]


def _object(account: Account, key: str) -> bytes:
    return account.client(account.admin, "s3").get_object(Bucket=account.bucket, Key=key)["Body"].read()


def test_a_delivery_converts_end_to_end_under_the_deployed_iam(account: Account) -> None:
    run = run_pipeline(account, account.documents())

    assert run["status"] == "submitted" and run["chunks"] == 2
    assert only_the_missing_checksum_was_refused(account)
    layout = RunLayout(source_bucket="demo-source-bucket", run_date="2026-11-24")
    report = json.loads(_object(account, layout.run_report_key))
    assert (report["status"], report["rows_in"], report["rows_out"]) == ("complete", 2000, 2000)
    assert json.loads(_object(account, layout.complete_marker_key))["rows"] == 2000
    # finalize's last step: the storage report, as a page the S3 console opens, at the run's key
    # and at the newest report's key (the stack's output)
    admin = account.client(account.admin, "s3")
    table = pl.read_parquet(_object(account, layout.rollup_key("storage_class")))
    current = table.filter(pl.col("version_kind") == "current")["objects"].sum()
    for key in (layout.storage_report_key, layout.latest_storage_report_key):
        page = admin.get_object(Bucket=account.bucket, Key=key)
        assert page["ContentType"] == "text/html; charset=utf-8"
        text = page["Body"].read().decode()
        assert re.search(r'id="headline-objects" data-value="(\d+)"', text)[1] == str(current)
        assert 0 < current <= 2000 and "One complete run only" in text


@pytest.mark.parametrize("sid", ["ReadRunsForTheStorageReport", "StorageReports"])
def test_without_a_storage_report_grant_the_run_completes_and_finalize_logs_the_refusal(
    account: Account, sid: str
) -> None:
    # GIVEN the job role without one of the storage report's statements
    documents = account.documents()
    removed = next(s for s in documents["finalize"]["Statement"] if s["Sid"] == sid)
    documents["finalize"]["Statement"].remove(removed)
    # WHEN the delivery lands
    run_pipeline(account, documents)
    # THEN the run is complete, no page was written, and finalize's log names what was refused
    layout = RunLayout(source_bucket="demo-source-bucket", run_date="2026-11-24")
    assert json.loads(_object(account, layout.complete_marker_key))["rows"] == 2000
    admin = account.client(account.admin, "s3")
    assert "Contents" not in admin.list_objects_v2(Bucket=account.bucket, Prefix="reports/")
    [finalize_log] = (account.root / "logs").glob("*finalize*.log")
    lines = [json.loads(line) for line in finalize_log.read_text().splitlines() if line.startswith("{")]
    [failed] = [line for line in lines if line["message"].startswith("storage report not written")]
    named = [
        d for d in account.denials if f'perform: {d.action} on resource: "{d.resource}"' in failed["error"]
    ]
    assert named and named[0].action in removed["Action"], (account.denials, failed["error"])
    assert failed["write_it_with"] == (
        f"python -m pipeline report s3://{account.bucket} --source-bucket demo-source-bucket --run-date 2026-11-24 "
        f"--out report.html && aws s3 cp report.html s3://{account.bucket}/{layout.storage_report_key} "
        "--content-type 'text/html; charset=utf-8'"
    )


def reader_policy(bucket: str, prefixes: tuple[str, ...]) -> dict[str, Any]:
    """What the README asks of whoever runs `report s3://DEST`."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "List",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
            {
                "Sid": "Read",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/{p}/*" for p in prefixes],
            },
        ],
    }


READ_FOR_THE_REPORT = ("run-reports", "run-state", "rollups", "processed")


@pytest.mark.parametrize("without", [None, "processed"])
def test_report_s3_dest_needs_only_the_reads_the_readme_names(
    account: Account, without: str | None, tmp_path: Path, monkeypatch, capsys
) -> None:
    from pipeline.cli import main

    run_pipeline(account, account.documents())
    prefixes = tuple(p for p in READ_FOR_THE_REPORT if p != without)
    iam = account.client(account.admin, "iam")
    for name, value in user_credentials(iam, "reader", reader_policy(account.bucket, prefixes)).items():
        monkeypatch.setenv(name.upper(), value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    page = tmp_path / "report.html"
    with enforced_iam() as denials:
        code = main(
            ["report", f"s3://{account.bucket}", "--source-bucket", "demo-source-bucket", "--out", str(page)]
        )
    assert code == 0, capsys.readouterr().err
    text = page.read_text()
    if without is None:
        assert denials == [] and 'id="reclaimable"' in text
    else:  # the parts refused: the page is still written, without the candidates, saying why
        assert {d.action for d in denials} == {"s3:GetObject"}
        assert all(d.resource.startswith(f"arn:aws:s3:::{account.bucket}/processed/") for d in denials)
        assert 'id="changes-left-out"' in text and "cannot be read (An error occurred (403)" in text
        assert 'id="headline-objects"' in text


def test_a_rejected_manifest_is_recorded_under_the_deployed_iam(account: Account) -> None:
    run = run_pipeline(account, account.documents(), scenario="rejected")

    assert run["status"] == "rejected"
    layout = RunLayout(source_bucket="demo-source-bucket", run_date="2026-11-24")
    rejected = json.loads(_object(account, layout.failure_key))
    assert rejected["manifest"] == f"s3://{account.bucket}/{account.manifest_key}"
    assert "required field" in rejected["error"]
    assert only_the_missing_checksum_was_refused(account)


def test_a_takeover_after_a_crash_reuses_the_submitted_jobs_under_the_deployed_iam(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, calls, denials = crash_then_take_over(account, monkeypatch)
    # THEN it found the splitter by name (ListJobs, DescribeJobs) and submitted only the rest
    assert run["status"] == "submitted"
    assert [name.split("-")[1] for name in calls] == ["split", "process", "process", "finalize"]
    admin = account.client(account.admin, "batch")
    assert admin.describe_jobs(jobs=[run["jobs"]["split"]])["jobs"][0]["jobName"] == calls[0]
    assert {d.action for d in denials} == {"s3:GetObject"}  # only the checksum that has not landed


def crash_then_take_over(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], list[str], list[Denial]]:
    """An invocation dies between its first and second submission; Lambda's retry arrives after the
    claim's lease expired. Returns the retry's run, every job name submitted, and the denials."""
    trigger = account.session(account.role("trigger", account.documents()["trigger"]))
    s3, batch = account.client(trigger, "s3"), account.client(trigger, "batch")
    event = object_created(account.bucket, account.manifest_key)
    real_submit, calls = batch.submit_job, []

    def dies_on_the_second(**request: Any) -> Any:
        calls.append(request["jobName"])
        if len(calls) == 2:
            raise ConnectionError("the invocation died")
        return real_submit(**request)

    def handle() -> dict[str, Any]:
        result = handle_event(
            event, settings=account.settings, s3=s3, batch=batch, log=JsonLogger(io.StringIO())
        )
        return dict(result["runs"][0])

    with enforced_iam(account.allowed) as denials, monkeypatch.context() as patched:
        patched.setattr(batch, "submit_job", dies_on_the_second)
        with pytest.raises(ConnectionError):
            handle()
        later = runs.time.time() + account.settings.claim_lease_seconds + 1
        patched.setattr(runs.time, "time", lambda: later)
        run = handle()
    return run, calls, denials


# Grants no run here can use, each with the reason (the removal test above skips them as well).
UNREACHABLE_GRANTS = {
    **{f"{role}/{sid}": why for (role, sid), why in USED_BY_AWS_ONLY.items()},
    **{f"{role}/{sid}": why for (role, sid), why in USED_ONLY_ON_FAILURE.items()},
}


def finalize_again_once_the_claim_expired(account: Account, run: dict[str, Any]) -> list[Denial]:
    """The run's finalize job again, as its own role, after the lifecycle rule expired the run's
    claim (the storage report reads every kept run's claim); the denials."""
    layout = RunLayout("demo-source-bucket", "2026-11-24")
    account.client(account.admin, "s3").delete_object(Bucket=account.bucket, Key=layout.claim_key)
    with enforced_iam(account.allowed) as denials:
        finalize_again(account, run, account.root / "logs-again")
    return denials


def finalize_again(account: Account, run: dict[str, Any], logs: Path) -> None:
    """The run's finalize job once more, as its own role (IAM as the caller enforces it)."""
    jobs = plan(account.client(account.admin, "batch"), list(run["jobs"].values()))
    [finalize] = [job for job in jobs if "finalize" in job.command]
    env = {
        "AWS_ENDPOINT_URL": account.endpoint,
        **as_environment(account.role("finalize", account.documents()["finalize"])),
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }
    Executor(env, logs, progress=lambda _: None, workers=1).run([finalize])


def test_the_report_reads_a_run_whose_claim_expired(account: Account) -> None:
    run = run_pipeline(account, account.documents())
    denials = finalize_again_once_the_claim_expired(account, run)
    layout = RunLayout("demo-source-bucket", "2026-11-24")
    # the claim's 403 (no such key, and no listing of the bucket as a whole) is the only refusal...
    assert [(d.action, d.resource) for d in denials] == [
        ("s3:GetObject", f"arn:aws:s3:::{account.bucket}/{layout.claim_key}")
    ]
    # ...and a listing of that key tells it is gone: the page is written again, the run in it
    [log] = (account.root / "logs-again").glob("*finalize*.log")
    said = [json.loads(line)["message"] for line in log.read_text().splitlines() if line.startswith("{")]
    assert "storage report written" in said and not any("not written" in m for m in said)
    page = _object(account, layout.latest_storage_report_key).decode()
    assert "Run of <b>2026-11-24</b>" in page


def test_a_forced_rerun_of_an_older_day_keeps_the_newer_days_page_as_latest(account: Account) -> None:
    # GIVEN day 1 complete, and a day 2 complete after it (its marker, report and page)
    run_pipeline(account, account.documents())
    admin = account.client(account.admin, "s3")
    day1, day2 = (RunLayout("demo-source-bucket", d) for d in ("2026-11-24", "2026-11-25"))
    for key in (day1.complete_marker_key, day1.run_report_key):
        admin.put_object(
            Bucket=account.bucket, Key=key.replace("2026-11-24", "2026-11-25"), Body=_object(account, key)
        )
    admin.put_object(Bucket=account.bucket, Key=day2.latest_storage_report_key, Body=b"day 2's page")
    # WHEN day 1 is rerun with --force (split retires it first, as the split/process role)
    run_pipeline(account, account.documents(), scenario="forced-rerun-with-fewer-chunks")
    # THEN the rerun completes; what was refused is only reads of keys that do not exist (day 2's
    # made-up run has no claim or plan, and its marker names day 1's parts the rerun retired);
    # latest.html is the newest run's page again (finalize of day 1 found day 2 complete and wrote
    # day 2's page, which shows day 1 too)
    assert account.denials and all(d.action == "s3:GetObject" for d in account.denials)
    for denial in account.denials:
        key = denial.resource.removeprefix(f"arn:aws:s3:::{account.bucket}/")
        assert "Contents" not in admin.list_objects_v2(Bucket=account.bucket, Prefix=key), key
    page = _object(account, day2.latest_storage_report_key).decode()
    assert "Run of <b>2026-11-25</b>" in page and "2026-11-24" in page
    assert json.loads(_object(account, day1.complete_marker_key))["rows"] == 2000


def finalize_once_the_manifest_is_gone(account: Account, run: dict[str, Any]) -> None:
    """The run's finalize job again, as its own role, after its manifest was deleted (expired by
    inventoryRetentionDays before a late finalize): it names the manifest and is not retried."""
    account.client(account.admin, "s3").delete_object(Bucket=account.bucket, Key=account.manifest_key)
    with enforced_iam(account.allowed), pytest.raises(JobFailedError, match=r"\(exit 2\)") as failed:
        finalize_again(account, run, account.root / "logs-gone")
    assert f"{account.manifest_key} does not exist" in str(failed.value)


def test_a_late_finalize_whose_manifest_is_gone_says_so_and_is_not_retried(account: Account) -> None:
    finalize_once_the_manifest_is_gone(account, run_pipeline(account, account.documents()))


def test_every_grant_of_the_deployed_policies_is_used_by_some_run(
    server_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN every scenario a deployed stack meets: a run and a forced rerun with fewer chunks, a
    # rejected manifest, a crash before submission taken over by Lambda's retry, a data file gone,
    # a report that reads a run whose run state expired, a late finalize whose manifest is gone
    accounts = [new_account(server_env, tmp_path / n) for n in "abcdef"]
    forced, rejected, taken_over, gone, aborted, expired = accounts
    run_pipeline(forced, forced.documents(), scenario="forced-rerun-with-fewer-chunks")
    expired_run = run_pipeline(expired, expired.documents())
    finalize_again_once_the_claim_expired(expired, expired_run)
    finalize_once_the_manifest_is_gone(expired, expired_run)
    upload_a_part_that_fails(aborted, monkeypatch)
    run_pipeline(rejected, rejected.documents(), scenario="rejected")
    crash_then_take_over(taken_over, monkeypatch)
    with pytest.raises(JobFailedError, match="does not exist"):  # named, not "Access Denied"
        run_pipeline(gone, gone.documents(), scenario="a-data-file-is-gone")
    # WHEN the grants are held against the requests those runs made
    dead = set.intersection(*(_unused(a) for a in accounts))
    # THEN every grant was needed, but for those no run here can reach
    dead = {g for g in dead if g.split(":", 1)[0] not in UNREACHABLE_GRANTS}
    assert not dead, f"granted, never used: {sorted(dead)}"


# What each statement that no run can reach may grant, exactly: an action added to one of them
# would escape the check above, so it fails here instead.
UNREACHABLE_ACTIONS = {
    "trigger/WriteLogs": {"logs:CreateLogStream", "logs:PutLogEvents"},
    "trigger/ReportFailedEvents": {"sqs:SendMessage"},
    "execution/EcrToken": {"ecr:GetAuthorizationToken"},
    "execution/PullJobImage": {
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability",
    },
    "execution/WriteJobLogs": {"logs:CreateLogStream", "logs:PutLogEvents"},
}


def test_the_statements_no_run_reaches_grant_exactly_their_actions_and_none_uses_a_wildcard() -> None:
    definition = f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/d:1"
    documents = render("b", Settings(definition, definition, definition, definition))
    assert set(UNREACHABLE_ACTIONS) == set(UNREACHABLE_GRANTS)
    for role, document in documents.items():
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not [a for a in actions if "*" in a or "?" in a], f"{role}/{statement['Sid']}: {actions}"
            if f"{role}/{statement['Sid']}" in UNREACHABLE_ACTIONS:
                assert set(actions) == UNREACHABLE_ACTIONS[f"{role}/{statement['Sid']}"], statement["Sid"]


def upload_a_part_that_fails(
    account: Account, monkeypatch: pytest.MonkeyPatch, documents: dict[str, Any] | None = None
) -> list[Denial]:
    """Uploads of a part, a partial and a rollup table above boto3's 64 MiB multipart threshold,
    each of whose second part fails: boto3 aborts each upload, with the job role, under enforced
    IAM. Returns the denials."""
    from batch_jobs.s3io import MiB
    from batch_jobs.storage import S3Storage

    documents = documents or account.documents()
    local = account.root / "large.parquet"
    local.write_bytes(b"\0" * (65 * MiB))
    layout = RunLayout("demo-source-bucket", "2026-11-24")
    by_role = {  # what each role writes in parts: a processor's part and partial, finalize's rollup table
        "job": [layout.part_key(0), layout.identity_partial_key(0)],
        "finalize": [layout.rollup_key("prefix")],
    }
    keys = [key for written in by_role.values() for key in written]
    with enforced_iam(account.allowed) as denials, monkeypatch.context() as patched:
        for role, written in by_role.items():
            s3 = account.client(account.session(account.role(role, documents[role])), "s3")
            real_upload_part = s3.upload_part

            def fails_on_the_second(real: Any = real_upload_part, **request: Any) -> Any:
                if request["PartNumber"] == 2:
                    raise ConnectionError("the network dropped")
                return real(**request)

            patched.setattr(s3, "upload_part", fails_on_the_second)
            for key in written:
                with pytest.raises(ConnectionError):
                    S3Storage(account.bucket, s3).store(local, key)
    admin = account.client(account.admin, "s3")
    assert all("Contents" not in admin.list_objects_v2(Bucket=account.bucket, Prefix=key) for key in keys)
    return denials


def test_without_the_abort_grant_a_failed_upload_leaves_its_parts_behind(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the job and finalize roles without their abort grants, WHEN their uploads fail half-way
    documents = account.documents()
    for role in ("job", "finalize"):
        documents[role]["Statement"] = [
            s for s in documents[role]["Statement"] if s["Sid"] != "AbortMultipartUploads"
        ]
    denials = upload_a_part_that_fails(account, monkeypatch, documents)
    # THEN S3 refused each abort, and the uploaded parts stay (billed until a lifecycle rule ends them)
    assert {d.action for d in denials} == {"s3:AbortMultipartUpload"} and len(denials) == 3
    admin = account.client(account.admin, "s3")
    assert len(admin.list_multipart_uploads(Bucket=account.bucket).get("Uploads", [])) == 3


def test_with_the_abort_grant_a_failed_upload_leaves_nothing(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert upload_a_part_that_fails(account, monkeypatch) == []
    admin = account.client(account.admin, "s3")
    assert admin.list_multipart_uploads(Bucket=account.bucket).get("Uploads", []) == []


def _unused(account: Account) -> set[str]:
    return {g.replace(account.bucket, "BUCKET") for g in unused_grants(account.documents(), account.allowed)}


def test_an_unneeded_grant_is_found(account: Account) -> None:
    # the check itself: the job role granted s3:PutObject on inventory/ (which it never writes)
    documents = account.documents()
    documents["job"]["Statement"].append(
        {
            "Sid": "Extra",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": [f"arn:aws:s3:::{account.bucket}/inventory/*"],
        }
    )
    run_pipeline(account, documents)
    extra = f"job/Extra: s3:PutObject on arn:aws:s3:::{account.bucket}/inventory/*"
    assert extra in unused_grants({"job": documents["job"]}, account.allowed)
    used = f"job/ParquetParts: s3:PutObject on arn:aws:s3:::{account.bucket}/processed/*"
    assert used not in unused_grants({"job": documents["job"]}, account.allowed)


def test_the_stand_in_refuses_what_aws_refuses(account: Account) -> None:
    """The harness itself: a missing key answers 403 without ListBucket; listings honour s3:prefix."""
    job = account.session(account.role("job", account.documents()["job"]))
    s3 = account.client(job, "s3")
    with enforced_iam() as denials:
        listed = s3.list_objects_v2(Bucket=account.bucket, Prefix="inventory/", MaxKeys=1)
        assert listed["KeyCount"] == 1
        with pytest.raises(s3.exceptions.ClientError, match=r"s3:ListBucket on resource: \"arn:aws:s3:::"):
            s3.list_objects_v2(Bucket=account.bucket, Prefix="elsewhere/")
        with pytest.raises(s3.exceptions.ClientError) as missing:
            s3.get_object(Bucket=account.bucket, Key="inventory/not-there")
        assert missing.value.response["Error"]["Code"] == "AccessDenied"
        assert "the key does not exist" in str(missing.value)
        with pytest.raises(s3.exceptions.ClientError, match="s3:PutObject"):
            s3.put_object(
                Bucket=account.bucket,
                Key="run-state/source_bucket=b/run_date=2026-11-24/claim.json",
                Body=b"{}",
            )
    bucket = f"arn:aws:s3:::{account.bucket}"
    assert [(d.action, d.resource) for d in denials] == [
        ("s3:ListBucket", bucket),
        ("s3:GetObject", f"{bucket}/inventory/not-there"),
        ("s3:PutObject", f"{bucket}/run-state/source_bucket=b/run_date=2026-11-24/claim.json"),
    ]


@pytest.mark.parametrize(
    ("role", "sid"),
    [
        s
        for s in statements()
        if s not in USED_BY_AWS_ONLY and s not in USED_ONLY_ON_FAILURE and s not in ABSENCE_SHOWN_ELSEWHERE
    ],
    ids=str,
)
def test_without_any_one_statement_the_run_fails_naming_action_and_resource(
    account: Account, role: str, sid: str
) -> None:
    # GIVEN the deployed documents without one statement
    documents = account.documents()
    removed = next(s for s in documents[role]["Statement"] if s["Sid"] == sid)
    documents[role]["Statement"].remove(removed)
    # WHEN the delivery lands
    failure: Exception | None = None
    try:
        run_pipeline(account, documents, scenario=SCENARIO.get((role, sid), "no-checksum-yet"))
    except (JobFailedError, account.client(account.admin, "s3").exceptions.ClientError) as err:
        failure = err
    # THEN the run fails, and says which action on which resource was refused
    denials = account.denials
    assert failure is not None, f"the run succeeded without {role}/{sid}"
    assert denials, f"{role}/{sid}: failed without an IAM denial: {failure}"
    assert any(d.action in removed["Action"] for d in denials), denials
    named = [d for d in denials if f'perform: {d.action} on resource: "{d.resource}"' in str(failure)]
    assert named, f"the failure names no refused action and resource: {failure}"


def test_the_statements_said_to_be_used_by_aws_only_exist() -> None:
    # the removal test covers every other statement; a renamed one must be classified again
    assert set(USED_BY_AWS_ONLY) | set(USED_ONLY_ON_FAILURE) <= set(statements())
    assert set(ABSENCE_SHOWN_ELSEWHERE) <= set(statements())
    assert (
        len(statements()) - len(USED_BY_AWS_ONLY) - len(USED_ONLY_ON_FAILURE) - len(ABSENCE_SHOWN_ELSEWHERE)
        == 17
    )


class _RecordingStorage:
    """A job's storage that notes every key written by a method that may upload in parts."""

    def __init__(self, inner: Any, written: set[str]) -> None:
        self._inner, self._written = inner, written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def store(self, path: Path, key: str) -> None:
        self._written.add(key)
        self._inner.store(path, key)


MULTIPART_CALLS = {"upload_file", "upload_fileobj", "create_multipart_upload", "upload_part"}


def test_the_jobs_upload_in_parts_only_through_the_storages_store() -> None:
    # so the keys passed to store() are every key a job may write in parts
    root = Path(__file__).parents[1] / "batch_jobs"
    callers = set()
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in MULTIPART_CALLS:
                callers.add(path.name)
    assert callers == {"storage.py"}


def test_every_key_a_run_may_write_in_parts_is_granted_abort_and_no_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the jobs, in this process on the local backend, noting the keys they write in parts
    from batch_jobs import cli
    from batch_jobs.storage import LOCAL_INPUTS_ENV, LOCAL_OUT_ENV

    generated = generate_delivery(tmp_path / "root", objects=3000, files=2, destination_bucket="dest")
    monkeypatch.setenv(LOCAL_OUT_ENV, str(tmp_path / "out"))
    monkeypatch.setenv(LOCAL_INPUTS_ENV, str(generated.root))
    written: dict[str, set[str]] = {"job": set(), "finalize": set()}  # by the role the job runs with
    role = "job"
    storage_for = cli.storage_for
    monkeypatch.setattr(cli, "storage_for", lambda uri: _RecordingStorage(storage_for(uri), written[role]))
    d = generated.delivery
    run = ["--manifest", f"s3://dest/{d.manifest_key}", "--source-bucket", d.source_bucket]
    run += ["--run-date", d.run_date]
    # WHEN a run of two chunks goes through every job
    sizes = [f.stat().st_size for f in (generated.root / "inventory").rglob("*.csv.gz")]
    assert cli.main(["split", *run, "--chunks", "2", "--target-chunk-bytes", str(sum(sizes) // 2 + 1)]) == 0
    assert all(cli.main(["process", *run, "--index", str(i)]) == 0 for i in range(2))
    role = "finalize"
    assert cli.main(["finalize", *run, "--chunks", "2"]) == 0
    # THEN each role may abort an upload at each of the keys its jobs write in parts...
    assert {key.split("/", 1)[0] for key in written["job"]} == {PROCESSED_ROOT, STATE_ROOT}
    assert {key.split("/", 1)[0] for key in written["finalize"]} == {ROLLUPS_ROOT}
    documents = render("dest", Settings("q", *["arn:aws:batch:r:1:job-definition/d:1"] * 3))
    for name, keys in written.items():
        policy = [documents[name]]
        for key in sorted(keys):
            assert is_allowed(policy, "s3:AbortMultipartUpload", f"arn:aws:s3:::dest/{key}", {}), (name, key)
        # ...and on nothing its jobs do not write in parts
        [grant] = [s for s in policy[0]["Statement"] if "s3:AbortMultipartUpload" in s["Action"]]
        for pattern in grant["Resource"]:
            only = [{"Statement": [{**grant, "Resource": pattern}]}]
            arns = [f"arn:aws:s3:::dest/{key}" for key in keys]
            assert any(is_allowed(only, "s3:AbortMultipartUpload", arn, {}) for arn in arns), (name, pattern)


def test_the_evaluator_applies_iam_rules() -> None:
    allow_list = {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::b",
        "Condition": {"StringLike": {"s3:prefix": ["run-state/*"]}},
    }
    deny_put = {"Effect": "Deny", "Action": "s3:Put*", "Resource": "arn:aws:s3:::b/*"}
    allow_all = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    docs = [{"Statement": [allow_list]}, {"Statement": [allow_all, deny_put]}]
    assert is_allowed(
        [{"Statement": [allow_list]}], "s3:listbucket", "arn:aws:s3:::b", {"s3:prefix": "run-state/x"}
    )
    assert not is_allowed(
        [{"Statement": [allow_list]}], "s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "x/"}
    )
    assert not is_allowed([{"Statement": [allow_list]}], "s3:ListBucket", "arn:aws:s3:::b", {})  # no prefix
    assert not is_allowed(docs, "s3:PutObject", "arn:aws:s3:::b/k", {})  # an explicit Deny wins
    assert is_allowed(docs, "s3:GetObject", "arn:aws:s3:::b/k", {})
    with pytest.raises(NotImplementedError, match="NumericLessThan"):
        is_allowed(
            [{"Statement": [{**allow_all, "Condition": {"NumericLessThan": {"k": "1"}}}]}],
            "s3:GetObject",
            "x",
            {},
        )
