"""``run-local s3://DEST/.../manifest.json``: fetch exactly one delivery, then convert it locally.

Downloads the manifest, its checksum (when it is there) and the data files the manifest lists,
nothing else (not the other days under the same prefix), into ``INTO/DEST/...`` at their keys, so
the folder is a bucket root for ``run-local``. A data file already there at its listed size is not
fetched again (the splitter verifies every file's MD5 anyway); a file is written under a temporary
name and renamed when complete, so an interrupted download never leaves a partial file in place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from inventory_contract.delivery import parse_delivery_key
from inventory_contract.errors import ContractError
from inventory_contract.layout import parse_s3_uri
from inventory_contract.manifest import parse_manifest
from inventory_contract.s3 import is_missing
from pipeline.errors import UsageError

MB = 1_000_000
_TRANSFER = TransferConfig(multipart_threshold=64 * 2**20, multipart_chunksize=64 * 2**20, max_concurrency=8)


def download_delivery(uri: str, into: Path, progress: Callable[[str], None], s3: Any = None) -> Path:
    """Fetch the delivery whose manifest is ``uri``; returns the local manifest path."""
    try:
        bucket, key = parse_s3_uri(uri)
    except ValueError as err:
        msg = f"MANIFEST {uri!r} is not an S3 object URI like s3://BUCKET/PREFIX/.../manifest.json"
        raise UsageError(msg) from err
    delivery = parse_delivery_key(key)
    s3 = s3 or boto3.Session().client("s3")
    root = into / bucket
    try:
        raw = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        if is_missing(err, s3=s3, bucket=bucket, key=key):
            msg = f"MANIFEST {uri} does not exist"
            raise UsageError(msg) from err
        raise
    try:
        checksum: bytes | None = s3.get_object(Bucket=bucket, Key=delivery.checksum_key)["Body"].read()
    except ClientError as err:
        if not is_missing(err, s3=s3, bucket=bucket, key=delivery.checksum_key):
            raise
        checksum = None
    manifest = parse_manifest(raw, source=uri, checksum=checksum)
    wanted = [f for f in manifest.files if not _present(root / f.key, f.size)]
    total = sum(f.size for f in wanted)
    have = len(manifest.files) - len(wanted)
    progress(
        f"download: {len(wanted)} of {len(manifest.files)} data file(s), {total / MB:,.0f} MB, from s3://{bucket}"
        + (f" ({have} already here)" if have else "")
    )
    meter = _Meter(total, progress)
    for data_file in wanted:
        target = root / data_file.key
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".partial-{target.name}")
        try:
            s3.download_file(bucket, data_file.key, str(partial), Config=_TRANSFER, Callback=meter.add)
        except ClientError as err:
            partial.unlink(missing_ok=True)
            if is_missing(err, s3=s3, bucket=bucket, key=data_file.key):
                msg = f"s3://{bucket}/{data_file.key}: data file listed in the manifest does not exist"
                raise ContractError(msg) from err
            raise
        partial.replace(target)
    meter.done()
    manifest_path = root / key
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    if checksum is not None:
        (root / delivery.checksum_key).write_bytes(checksum)
    manifest_path.write_bytes(raw)  # last: a manifest in place means its delivery is complete
    return manifest_path


def _present(path: Path, size: int) -> bool:
    return path.is_file() and path.stat().st_size == size


class _Meter:
    """Bytes downloaded, said every 2 seconds with the rate."""

    def __init__(self, total: int, progress: Callable[[str], None]) -> None:
        self._total, self._progress = total, progress
        self._done = 0
        self._started = self._said = time.monotonic()

    def add(self, count: int) -> None:  # called from the transfer's threads
        self._done += count
        now = time.monotonic()
        if now - self._said >= 2:
            self._said = now
            self._say(now)

    def done(self) -> None:
        if self._total:
            self._say(time.monotonic())

    def _say(self, now: float) -> None:
        rate = self._done / max(now - self._started, 1e-9) / MB
        share = self._done / self._total * 100 if self._total else 100
        self._progress(
            f"download: {self._done / MB:,.0f} of {self._total / MB:,.0f} MB ({share:.0f}%), {rate:,.0f} MB/s"
        )
