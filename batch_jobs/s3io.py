"""S3 I/O for the S3 storage backend: the client and the transfer settings.

Clients use the standard AWS configuration (region, credentials, ``AWS_ENDPOINT_URL``), so the
same code runs against AWS and against an S3 endpoint on loopback.
"""

from __future__ import annotations

from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MiB = 1024 * 1024
_CLIENT_CONFIG = Config(retries={"max_attempts": 10, "mode": "adaptive"}, max_pool_connections=32)
TRANSFER = TransferConfig(multipart_threshold=64 * MiB, multipart_chunksize=64 * MiB, max_concurrency=4)
"""Part uploads and partial downloads: 64 MiB ranges, 4 at a time (at most 256 MiB in flight).
Fewer, larger requests than boto3's 8 MiB default; moto's stand-in also copies the whole object
for every ranged GET, which made 8 MiB ranges 6x slower locally."""


def s3_client() -> Any:
    return boto3.client("s3", config=_CLIENT_CONFIG)
