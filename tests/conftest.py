"""Shared fixtures: a moto server on loopback that jobs in other processes reach over HTTP."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

pytest_plugins = ["tests.aws_fixtures"]  # in-process moto S3 + Batch: the `aws` and `delivery` fixtures
REGION = "us-east-1"
_names = itertools.count()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    body = json.dumps({"batch": {"use_docker": False}}).encode()  # jobs run in local processes, not Docker
    urllib.request.urlopen(
        urllib.request.Request(f"{endpoint}/moto-api/config", data=body), timeout=10
    ).close()
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def aws_env(moto_endpoint: str) -> dict[str, str]:
    """The environment a job process gets: standard AWS configuration pointing at the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
    )
    return env


@pytest.fixture
def server_env(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point this process's boto3 at the server too (for code under test run in-process)."""
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    for k, v in aws_env.items():
        if k.startswith("AWS_"):
            monkeypatch.setenv(k, v)
    return aws_env


@pytest.fixture
def s3(server_env: dict[str, str]):
    return boto3.client("s3", region_name=REGION)


@pytest.fixture
def bucket(s3) -> str:
    name = f"dest-{os.getpid()}-{next(_names)}"
    s3.create_bucket(Bucket=name)
    return name


def upload_tree(s3, root: Path, bucket: str) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        s3.upload_file(str(path), bucket, path.relative_to(root).as_posix())


def run_job(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m batch_jobs ARGS`` in its own process, as the image does."""
    return subprocess.run(
        [sys.executable, "-m", "batch_jobs", *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="session")
def spark():  # type: ignore[no-untyped-def]
    """One local Spark session for the test run (a JVM start costs about 10 s)."""
    pyspark_sql = pytest.importorskip("pyspark.sql")
    session = spark_session(pyspark_sql)
    yield session
    session.stop()


def spark_session(pyspark_sql):  # type: ignore[no-untyped-def]
    """The active local session, or a new one: UTC, one core, no UI."""
    return (
        pyspark_sql.SparkSession.builder.master("local[1]")
        .appName("s3-inventory-pipeline-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
