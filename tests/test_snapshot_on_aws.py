"""The snapshot job on the AWS path, end to end, under exactly the IAM the stack deploys, enforced.

The snapshot job runs in its own process with the snapshot role's credentials and writes the
listing's delivery into the destination bucket; the real trigger (trigger role) and the run's jobs
(job role) then convert it (``tests/test_deployed_iam.py``'s ``run_pipeline``). The policies are
the stack's own functions (``components.role_policies``), rendered for the stand-in.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest

from batch_jobs.snapshot import ListingSource, snapshot
from batch_jobs.storage import S3Storage
from components.role_policies import snapshot_policy
from inventory_contract.jobs import snapshot_parameters
from inventory_contract.layout import RunLayout
from inventory_contract.listing import LISTING_CONFIG_ID
from pipeline.local.batch_env import create_local_batch
from pipeline.local.executor import Executor, JobFailedError, plan
from tests.conftest import REGION
from tests.listed_bucket import fill_versioned, new_bucket
from tests.moto_s3_listing import s3_key_marker_as_aws
from tests.strict_iam import Request, enforced_iam, unused_grants
from tests.test_deployed_iam import PREFIX, Account, new_account, run_pipeline

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def key_marker_as_aws() -> Iterator[None]:
    with s3_key_marker_as_aws():
        yield


def _policy(account: Account, *sources: str) -> dict[str, Any]:
    return snapshot_policy(
        bucket_arn=f"arn:aws:s3:::{account.bucket}",
        inventory_prefix=PREFIX,
        source_bucket_arns=[f"arn:aws:s3:::{s}" for s in sources],
    )


def _run_snapshot_job(
    account: Account, document: dict[str, Any], source: str, allowed: list[Request], **options: Any
) -> list[Any]:
    """Submit the stack's snapshot job and run it as the snapshot role, IAM enforced; the denials."""
    credentials = account.role("snapshot", document)
    setup = boto3.Session(region_name=REGION)
    local = create_local_batch(setup, name_prefix=f"snap-{account.bucket}-{len(allowed)}-{id(document)}")
    parameters = snapshot_parameters(
        f"s3://{source}", account.bucket, PREFIX, current_only=options.get("current_only", False), workers=4
    )
    job_id = setup.client("batch").submit_job(
        jobName="s3inv-snapshot",
        jobQueue=local.queue,
        jobDefinition=local.job_definitions["snapshot"],
        parameters=parameters,
    )["jobId"]
    jobs = plan(setup.client("batch"), [job_id])
    env = {
        "AWS_ENDPOINT_URL": account.endpoint,
        "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
        "AWS_SESSION_TOKEN": credentials["aws_session_token"],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }
    with enforced_iam(allowed) as denials:
        try:
            Executor(env, account.root / "logs", progress=lambda _: None, workers=1).run(jobs)
        finally:
            found = list(denials)
    return found


def _listing_manifests(account: Account, source: str) -> list[str]:
    s3 = account.client(account.admin, "s3")
    listed = s3.list_objects_v2(Bucket=account.bucket, Prefix=f"{PREFIX}/{source}/{LISTING_CONFIG_ID}/")
    return [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith("/manifest.json")]


def test_the_snapshot_job_delivers_a_listing_that_the_stack_converts_under_the_deployed_iam(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    # GIVEN a deployed stack's account and a versioned source bucket of the stack
    account = new_account(server_env, tmp_path)
    setup_s3 = boto3.client("s3", region_name=REGION)
    source = new_bucket(setup_s3, versioned=True)
    written = fill_versioned(setup_s3, source)
    allowed: list[Request] = []
    # WHEN the snapshot job lists it as the snapshot role
    denials = _run_snapshot_job(account, _policy(account, source), source, allowed)
    # THEN nothing was refused, and the delivery landed under the inventory prefix, manifest last
    assert denials == []
    [manifest_key] = _listing_manifests(account, source)
    # WHEN the manifest's event reaches the real trigger (trigger role), and the run's jobs run (job role)
    account.manifest_key = manifest_key
    run = run_pipeline(account, account.documents())
    # THEN the run is complete, converted exactly, and nothing was refused (the checksum came first)
    assert run["status"] == "submitted"
    assert account.denials == []
    layout = RunLayout(source_bucket=source, run_date=manifest_key.split("/")[3][:10])
    s3 = account.client(account.admin, "s3")
    report = json.loads(s3.get_object(Bucket=account.bucket, Key=layout.run_report_key)["Body"].read())
    assert (report["status"], report["inventory_kind"]) == ("complete", "listing")
    assert report["rows_out"] == len(written.rows()) == 1_147
    parts = tmp_path / "parts"
    parts.mkdir()
    for item in s3.list_objects_v2(Bucket=account.bucket, Prefix=layout.processed_prefix)["Contents"]:
        s3.download_file(account.bucket, item["Key"], str(parts / Path(item["Key"]).name))
    rows = duckdb.sql(
        f"SELECT key, version_id, is_latest, is_delete_marker, size, storage_class "
        f"FROM read_parquet('{parts}/*.parquet')"
    ).fetchall()
    assert set(rows) == written.rows() and len(rows) == 1_147
    # AND the snapshot role used each grant but those only a failure needs: deleting the data files
    # of a failed listing (the test below) and aborting a failed multipart upload (data files above
    # 64 MiB are uploaded in parts)
    unused = unused_grants({"snapshot": _policy(account, source)}, allowed)
    assert {u.split(" on ")[0] for u in unused} == {
        "snapshot/DeleteFailedListings: s3:DeleteObject",
        "snapshot/WriteListings: s3:AbortMultipartUpload",
    }


def test_the_snapshot_role_cannot_list_a_bucket_that_is_not_a_source(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    account = new_account(server_env, tmp_path)
    setup_s3 = boto3.client("s3", region_name=REGION)
    source, other = new_bucket(setup_s3, versioned=True), new_bucket(setup_s3, versioned=True)
    setup_s3.put_object(Bucket=other, Key="secret/plan.txt", Body=b"x")
    with pytest.raises(JobFailedError, match=f"may not s3:ListBucket on arn:aws:s3:::{other}"):
        _run_snapshot_job(account, _policy(account, source), other, [])
    assert _listing_manifests(account, other) == []


@pytest.mark.parametrize(
    ("removed", "says"),
    [
        ("s3:ListBucketVersions", "may not s3:ListBucketVersions"),
        ("s3:PutObject", "AccessDenied"),
    ],
)
def test_without_each_grant_the_snapshot_job_fails_naming_it(
    server_env: dict[str, str], tmp_path: Path, removed: str, says: str
) -> None:
    account = new_account(server_env, tmp_path)
    setup_s3 = boto3.client("s3", region_name=REGION)
    source = new_bucket(setup_s3, versioned=True)
    setup_s3.put_object(Bucket=source, Key="a/b", Body=b"x")
    document = _policy(account, source)
    for statement in document["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != removed]
    with pytest.raises(JobFailedError, match=says):
        _run_snapshot_job(account, document, source, [])
    assert _listing_manifests(account, source) == []


def test_a_failed_listing_deletes_its_data_files_with_the_snapshot_role(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    # GIVEN a listing as the snapshot role that fails after it has stored data files
    account = new_account(server_env, tmp_path)
    setup_s3 = boto3.client("s3", region_name=REGION)
    source = new_bucket(setup_s3, versioned=True)
    fill_versioned(setup_s3, source)
    document = _policy(account, source)
    session = account.session(account.role("snapshot", document))
    client = session.client("s3", endpoint_url=account.endpoint)
    pages = {"left": 3}

    def fail_later(**_: Any) -> None:
        pages["left"] -= 1
        if pages["left"] <= 0:
            raise RuntimeError("the listing broke")

    client.meta.events.register("before-send.s3.ListObjectVersions", fail_later)
    store = S3Storage(account.bucket, session.client("s3", endpoint_url=account.endpoint))
    allowed: list[Request] = []
    # WHEN it fails, THEN what it stored is deleted, under the deployed grants
    with enforced_iam(allowed) as denials, pytest.raises(RuntimeError, match="the listing broke"):
        snapshot(
            client,
            ListingSource(source),
            store,
            inventory_prefix=PREFIX,
            workers=1,
            file_bytes=1,
            progress=io.StringIO().write,
        )
    assert denials == []
    assert any(r.action == "s3:DeleteObject" for r in allowed)
    listed = setup_s3.list_objects_v2(Bucket=account.bucket, Prefix=f"{PREFIX}/{source}/")
    assert listed.get("KeyCount", 0) == 0
