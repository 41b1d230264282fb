"""In-process moto S3 and Batch (no Docker) with the pipeline's queue and job definitions."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from urllib.parse import quote_plus

import boto3
import pytest
from moto import mock_aws

from lambdas.settings import Settings
from pipeline.local.batch_env import create_local_batch
from pipeline.synthetic import generate_delivery
from tests.conftest import upload_tree

EVENTS = Path(__file__).parent / "events"
DEST = "demo-inventory-destination"


def object_created(
    bucket: str, *keys: str, event_name: str = "ObjectCreated:Put", version: str = "2.1"
) -> dict:
    """An S3 event with one record per key, keys URL-encoded as S3 sends them."""
    template = json.loads((EVENTS / "s3-object-created.json").read_text())["Records"][0]
    records = []
    for key in keys:
        record = copy.deepcopy(template)
        record["eventName"], record["eventVersion"] = event_name, version
        record["s3"]["bucket"]["name"] = bucket
        record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
        record["s3"]["object"]["key"] = quote_plus(key, safe="/")
        records.append(record)
    return {"Records": records}


@pytest.fixture
def aws(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config={"batch": {"use_docker": False}}):
        session = boto3.Session(region_name="us-east-1")
        s3 = session.client("s3")
        s3.create_bucket(Bucket=DEST)
        local = create_local_batch(session)
        settings = Settings(
            job_queue=local.queue,
            split_job_definition=local.job_definitions["split"],
            process_job_definition=local.job_definitions["process"],
            finalize_job_definition=local.job_definitions["finalize"],
            target_chunk_bytes=64 * 1024,
        )
        yield type(
            "Aws", (), {"s3": s3, "batch": session.client("batch"), "settings": settings, "session": session}
        )


@pytest.fixture
def delivery(aws, tmp_path):
    gen = generate_delivery(tmp_path / "root", objects=3000, files=3, destination_bucket=DEST)
    upload_tree(aws.s3, gen.root, DEST)
    return gen
