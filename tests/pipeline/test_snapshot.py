"""``python -m pipeline snapshot``: a bucket listed into an inventory delivery, then converted.

The bucket lives in a moto server on loopback; the command runs in its own process. The oracle is
what the test itself wrote (the version IDs S3 answered, in the order of the writes), read back
from the Parquet with DuckDB: no code of the listing or the conversion decides the expected rows.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
from botocore.awsrequest import AWSResponse
from moto.s3.models import S3Backend

from batch_jobs.snapshot import ListingSource, listing_client, snapshot
from batch_jobs.storage import LocalStorage
from inventory_contract.listing import LISTING_CONFIG_ID, VERSIONS_FIELDS
from tests.conftest import REGION
from tests.iam_principals import user_credentials
from tests.listed_bucket import Written, fill_versioned, new_bucket, put
from tests.moto_s3_listing import s3_key_marker_as_aws
from tests.strict_iam import enforced_iam

pytestmark = pytest.mark.slow
_ids = itertools.count()


@pytest.fixture(autouse=True)
def key_marker_as_aws() -> Iterator[None]:
    with s3_key_marker_as_aws():
        yield


def snapshot_command(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "snapshot", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def parquet_rows(out: Path, bucket: str) -> list[tuple[Any, ...]]:
    parts = next((out / "processed" / f"source_bucket={bucket}").glob("run_date=*"))
    return duckdb.sql(
        f"SELECT key, version_id, is_latest, is_delete_marker, size, storage_class "
        f"FROM read_parquet('{parts}/*.parquet')"
    ).fetchall()


def test_a_versioned_bucket_is_listed_and_converted_exactly(s3, server_env, tmp_path):
    bucket = new_bucket(s3, versioned=True)
    written = fill_versioned(s3, bucket)
    out = tmp_path / "out"

    done = snapshot_command(server_env, f"s3://{bucket}", "--out", str(out), "--workers", "4")

    assert done.returncode == 0, done.stderr
    rows = parquet_rows(out, bucket)
    assert len(rows) == sum(len(stack) for stack in written.versions.values()) == 1_147
    assert set(rows) == written.rows()
    assert sum(1 for r in rows if r[3]) == 3  # the delete markers
    [run_date] = [p.name for p in (out / "processed" / f"source_bucket={bucket}").iterdir()]
    report = json.loads(
        (out / "run-reports" / f"source_bucket={bucket}" / run_date / "run-report.json").read_text()
    )
    assert report["status"] == "complete"
    assert report["inventory_kind"] == "listing"
    assert report["rows_out"] == 1_147
    assert report["size_sum"] == sum(v["size"] or 0 for s in written.versions.values() for v in s)
    assert run_date == f"run_date={time.strftime('%Y-%m-%d', time.gmtime())}" or "run_date=" in run_date
    # the delivery is S3's format: a manifest whose fileSchema names the listing's fields, its checksum
    [manifest] = (out / "listing").rglob("manifest.json")
    assert manifest.parent.parent.name == LISTING_CONFIG_ID
    document = json.loads(manifest.read_bytes())
    assert document["fileSchema"] == ", ".join(VERSIONS_FIELDS)
    assert (manifest.parent / "manifest.checksum").is_file()
    lines = [
        line
        for f in document["files"]
        for line in gzip.decompress((out / "listing" / f["key"]).read_bytes()).decode().splitlines()
    ]
    assert any('"math/a%2Bb%3Dc.txt"' in line for line in lines)  # + as %2B, as S3 encodes it
    assert any('"photos/summer+2024/beach+day.jpg"' in line for line in lines)  # space as +
    assert "listing s3://" in done.stderr and "requests/s" in done.stderr
    assert "source:           a listing of the bucket (snapshot), not S3 Inventory" in done.stdout


def test_current_only_lists_the_current_objects_without_version_columns(s3, server_env, tmp_path):
    bucket = new_bucket(s3, versioned=True)
    written = fill_versioned(s3, bucket)
    out = tmp_path / "out"

    done = snapshot_command(
        server_env, f"s3://{bucket}", "--current-only", "--out", str(out), "--workers", "2"
    )

    assert done.returncode == 0, done.stderr
    rows = parquet_rows(out, bucket)
    assert {(k, size, cls) for k, version, _, _, size, cls in rows} == written.current()
    assert {(version, latest, marker) for _, version, latest, marker, _, _ in rows} == {(None, None, None)}


def test_an_unversioned_bucket_has_no_version_ids(s3, server_env, tmp_path):
    bucket = new_bucket(s3, versioned=False)
    written = Written()
    for n in range(50):
        put(s3, bucket, written, f"p{n % 5}/k{n}", b"a" * n)
    put(s3, bucket, written, "p1/k1", b"overwritten")  # no versioning: replaces the object
    out = tmp_path / "out"

    done = snapshot_command(server_env, f"s3://{bucket}", "--out", str(out), "--workers", "3")

    assert done.returncode == 0, done.stderr
    rows = parquet_rows(out, bucket)
    assert len(rows) == 50
    assert {r[1] for r in rows} == {None}  # S3's "null" version is an inventory's empty field
    assert all(r[2] is True and r[3] is False for r in rows)
    assert ("p1/k1", None, True, False, len(b"overwritten"), "STANDARD") in rows


def test_an_empty_bucket_is_a_complete_run_of_zero_rows(s3, server_env, tmp_path):
    bucket = new_bucket(s3, versioned=True)
    out = tmp_path / "out"

    done = snapshot_command(server_env, f"s3://{bucket}", "--out", str(out))

    assert done.returncode == 0, done.stderr
    assert parquet_rows(out, bucket) == []
    assert "rows in 0 = rows out 0" in done.stdout


def test_a_prefix_lists_only_what_is_under_it(s3, server_env, tmp_path):
    bucket = new_bucket(s3, versioned=True)
    written = fill_versioned(s3, bucket)
    out = tmp_path / "out"

    done = snapshot_command(server_env, f"s3://{bucket}/fan0", "--out", str(out), "--workers", "2")

    assert done.returncode == 0, done.stderr
    expected = {r for r in written.rows() if r[0].startswith("fan0")}
    assert set(parquet_rows(out, bucket)) == expected
    assert len(expected) == 12  # fan00..fan09, one new version and one delete marker


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("s3:/bucket", "is not a bucket URI"),
        ("http://bucket/x", "is not a bucket URI"),
        ("s3://", "is not a bucket URI"),
        ("s3://Bad_Bucket", "is not a bucket name"),
        ("s3://no-such-bucket-here", "does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(server_env, tmp_path, uri, says):
    out = tmp_path / "out"
    done = snapshot_command(server_env, uri, "--out", str(out))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and says in done.stderr
    assert not out.exists()


def test_a_bucket_in_another_region_is_named(s3, server_env, tmp_path):
    name = f"snap-eu-{os.getpid()}-{next(_ids)}"
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    out = tmp_path / "out"
    done = snapshot_command(server_env, f"s3://{name}", "--out", str(out))
    assert done.returncode == 2, done.stderr
    assert "is in eu-west-1, not in us-east-1" in done.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("actions", "current_only", "missing"),
    [
        ([], False, "s3:ListBucket"),
        (["s3:ListBucket"], False, "s3:ListBucketVersions"),
        ([], True, "s3:ListBucket"),
    ],
)
def test_access_denied_names_the_bucket_and_the_missing_action(
    s3, server_env, tmp_path, actions, current_only, missing
):
    bucket = new_bucket(s3, versioned=True)
    s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    statements = [{"Effect": "Allow", "Action": a, "Resource": f"arn:aws:s3:::{bucket}"} for a in actions]
    policy = {
        "Version": "2012-10-17",
        "Statement": statements
        or [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::other/*"}],
    }
    key = user_credentials(boto3.client("iam", region_name=REGION), "lister", policy)
    env = {
        **server_env,
        "AWS_ACCESS_KEY_ID": key["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": key["aws_secret_access_key"],
    }
    out = tmp_path / "out"
    with enforced_iam():
        done = snapshot_command(
            env, f"s3://{bucket}", "--out", str(out), *(["--current-only"] if current_only else [])
        )
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1
    assert f"access denied to s3://{bucket}" in done.stderr and f"may not {missing} " in done.stderr
    assert not out.exists()


@contextmanager
def _slow_listings(seconds: float) -> Iterator[list[int]]:
    """Every listing page takes ``seconds`` longer; yields [the pages being answered right now]."""
    originals = {name: getattr(S3Backend, name) for name in ("list_object_versions", "list_objects")}
    in_flight = [0]

    def slowed(name: str) -> Any:
        def call(self: S3Backend, *args: Any, **kwargs: Any) -> Any:
            in_flight[0] += 1
            try:
                time.sleep(seconds)
                return originals[name](self, *args, **kwargs)
            finally:
                in_flight[0] -= 1

        return call

    for name in originals:
        setattr(S3Backend, name, slowed(name))
    try:
        yield in_flight
    finally:
        for name, original in originals.items():
            setattr(S3Backend, name, original)


def test_an_interrupted_listing_leaves_no_delivery_and_a_rerun_completes(s3, server_env, tmp_path):
    bucket = new_bucket(s3, versioned=True)
    written = fill_versioned(s3, bucket)
    out = tmp_path / "out"
    with _slow_listings(0.5):
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipeline",
                "snapshot",
                f"s3://{bucket}",
                "--out",
                str(out),
                "--workers",
                "2",
            ],
            env=server_env,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stderr is not None
        for line in process.stderr:  # the listing has started
            if "key range(s)" in line:
                break
        time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        stderr = process.stderr.read()
        assert process.wait(timeout=60) == 143, stderr
    assert "terminated" in stderr
    assert not list((out / "listing").rglob("manifest.json"))
    assert not list((out / "listing").rglob("*.csv.gz"))  # the data files it stored are deleted
    assert not (out / "processed").exists()

    done = snapshot_command(server_env, f"s3://{bucket}", "--out", str(out), "--workers", "4")
    assert done.returncode == 0, done.stderr
    assert set(parquet_rows(out, bucket)) == written.rows()


class _FailingAfter:
    """An S3 client whose listing pages raise ``error`` from the ``n``-th request on."""

    def __init__(self, client: Any, n: int, error: BaseException) -> None:
        self._client, self._left, self._error = client, n, error
        client.meta.events.register("before-send.s3.ListObjectVersions", self._count)

    def _count(self, **_: Any) -> None:
        self._left -= 1
        if self._left <= 0:
            raise self._error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_failed_listing_deletes_the_data_files_it_stored(s3, server_env, tmp_path):
    bucket = new_bucket(s3, versioned=True)
    fill_versioned(s3, bucket)
    store = LocalStorage("dest", tmp_path / "dest")
    client = _FailingAfter(listing_client(2), 4, KeyboardInterrupt())
    stored: list[str] = []
    original_store = store.store

    def store_and_note(path: Path, key: str) -> None:
        original_store(path, key)
        stored.append(key)

    store.store = store_and_note  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        snapshot(client, ListingSource(bucket), store, inventory_prefix="inventory", workers=2, file_bytes=1)
    assert stored, "the test must interrupt a listing that has stored data files"
    assert not [p for p in (tmp_path / "dest").rglob("*") if p.is_file() and ".scratch" not in p.parts]


def test_slow_down_is_retried_and_nothing_is_lost(s3, server_env, tmp_path):
    bucket = new_bucket(s3, versioned=True)
    written = fill_versioned(s3, bucket)
    client = listing_client(2)
    throttled = {"left": 4}

    def slow_down(request: Any, **_: Any) -> AWSResponse | None:
        if throttled["left"] <= 0:
            return None
        throttled["left"] -= 1
        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        return AWSResponse(request.url, 503, {}, _Raw(body))

    client.meta.events.register("before-send.s3.ListObjectVersions", slow_down)
    store = LocalStorage("dest", tmp_path / "dest")
    result = snapshot(client, ListingSource(bucket), store, inventory_prefix="inventory", workers=2)
    assert throttled["left"] == 0
    assert result.rows == 1_147 == sum(len(s) for s in written.versions.values())


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_a_killed_snapshot_leaves_no_listing_process_behind(s3, server_env, tmp_path):
    bucket = new_bucket(s3, versioned=True)
    fill_versioned(s3, bucket)
    with _slow_listings(4.0) as in_flight:  # a page takes 4 s: a listing process outlives its parent by that
        command = [
            sys.executable,
            "-m",
            "pipeline",
            "snapshot",
            f"s3://{bucket}",
            "--out",
            str(tmp_path / "out"),
        ]
        process = subprocess.Popen([*command, "--workers", "3"], env=server_env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while in_flight[0] < 3 and time.monotonic() < deadline:  # the three processes are listing
            time.sleep(0.05)
        children = _children(process.pid)
        assert in_flight[0] >= 3 and len(children) >= 3, (in_flight, children)
        process.kill()
        process.wait(timeout=30)
        deadline = time.monotonic() + 2.0  # they die with it, not once their page is answered
        while (alive := [c for c in children if Path(f"/proc/{c}").exists() and "Z" not in _state(c)]) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.1)
    assert alive == []


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_a_second_listing_in_the_same_minute_never_replaces_the_first_delivery(s3, server_env, tmp_path):
    from datetime import UTC, datetime

    from batch_jobs.snapshot import ListingConflictError
    from batch_jobs.storage import S3Storage

    bucket = new_bucket(s3, versioned=True)
    fill_versioned(s3, bucket)
    minute = datetime(2026, 12, 5, 9, 30, 12, tzinfo=UTC)
    destination = new_bucket(s3, versioned=False)
    for store in (LocalStorage("dest", tmp_path / "dest"), S3Storage(destination, s3)):
        first = snapshot(
            listing_client(2),
            ListingSource(bucket),
            store,
            inventory_prefix="inventory",
            workers=2,
            clock=lambda: minute,
        )
        manifest = store.read(first.manifest_key)
        with pytest.raises(ListingConflictError, match="started in the same minute"):
            snapshot(
                listing_client(2),
                ListingSource(bucket),
                store,
                inventory_prefix="inventory",
                workers=2,
                clock=lambda: minute.replace(second=50),
            )
        assert store.read(first.manifest_key) == manifest  # the first delivery is whole
        listed = json.loads(manifest)["files"]
        assert sorted(k for k, _ in store.list("inventory/")) == sorted(
            [f["key"] for f in listed] + [first.manifest_key, first.delivery.checksum_key]
        )  # the second listing's data files are gone


def test_a_listing_process_that_dies_fails_the_listing_instead_of_hanging(s3, server_env, tmp_path):
    import multiprocessing
    import threading
    from concurrent.futures.process import BrokenProcessPool

    bucket = new_bucket(s3, versioned=True)
    fill_versioned(s3, bucket)
    store = LocalStorage("dest", tmp_path / "dest")
    outcome: dict[str, Any] = {}

    def listing() -> None:
        try:
            snapshot(
                listing_client(3),
                ListingSource(bucket),
                store,
                inventory_prefix="inventory",
                workers=3,
                file_bytes=1,
                processes=True,
            )
        except BaseException as err:
            outcome["error"] = err

    with _slow_listings(1.0) as in_flight:
        thread = threading.Thread(target=listing, daemon=True)
        thread.start()
        deadline = time.monotonic() + 120
        while in_flight[0] < 3 and time.monotonic() < deadline:  # the processes are listing
            time.sleep(0.05)
        victim = next(p for p in multiprocessing.active_children() if p.pid and "Process" in type(p).__name__)
        os.kill(victim.pid, signal.SIGKILL)  # as the OOM killer would
        thread.join(timeout=60)
    assert not thread.is_alive(), "the listing hangs on a dead listing process"
    assert isinstance(outcome.get("error"), BrokenProcessPool)
    assert not [p for p in (tmp_path / "dest").rglob("*") if p.is_file() and ".scratch" not in p.parts]


def test_a_caller_allowed_one_prefix_can_list_that_prefix(s3, server_env, tmp_path):
    bucket = new_bucket(s3, versioned=True)
    written = fill_versioned(s3, bucket)
    allowed = {
        "Effect": "Allow",
        "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
        "Resource": f"arn:aws:s3:::{bucket}",
        "Condition": {"StringLike": {"s3:prefix": ["fan0*"]}},
    }
    key = user_credentials(
        boto3.client("iam", region_name=REGION),
        "prefix-lister",
        {"Version": "2012-10-17", "Statement": [allowed]},
    )
    env = {
        **server_env,
        "AWS_ACCESS_KEY_ID": key["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": key["aws_secret_access_key"],
    }
    out = tmp_path / "out"
    with enforced_iam() as denials:
        done = snapshot_command(env, f"s3://{bucket}/fan0", "--out", str(out), "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert {(d.action, d.resource) for d in denials} == {
        ("s3:ListBucket", f"arn:aws:s3:::{bucket}")
    }  # HeadBucket
    assert set(parquet_rows(out, bucket)) == {r for r in written.rows() if r[0].startswith("fan0")}
