"""S3 I/O for the S3 storage backend: the client, and a bounded streaming uploader.

Clients use the standard AWS configuration (region, credentials, ``AWS_ENDPOINT_URL``), so the
same code runs against AWS and against an S3 endpoint on loopback.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MiB = 1024 * 1024
_CLIENT_CONFIG = Config(retries={"max_attempts": 10, "mode": "adaptive"}, max_pool_connections=32)
TRANSFER = TransferConfig(multipart_threshold=64 * MiB, multipart_chunksize=64 * MiB, max_concurrency=4)
"""Chunk downloads and part uploads: 64 MiB ranges, 4 at a time (at most 256 MiB in flight, while
nothing else runs). Fewer, larger requests than boto3's 8 MiB default; moto's stand-in also
copies the whole object for every ranged GET, which made 8 MiB ranges 6x slower locally."""


def s3_client() -> Any:
    return boto3.client("s3", config=_CLIENT_CONFIG)


class StreamingUpload:
    """Write one object from a stream of byte blocks with bounded memory.

    Blocks are gathered into parts of ``part_size`` bytes; parts upload on a shared thread pool
    with at most ``max_in_flight`` parts in memory. An object smaller than one part is written
    with a single PutObject. Nothing is visible at the key until ``close`` succeeds; ``abort``
    discards everything.
    """

    def __init__(
        self, s3: Any, pool: ThreadPoolExecutor, bucket: str, key: str, *, part_size: int, max_in_flight: int
    ) -> None:
        self._s3, self._pool, self.bucket, self.key = s3, pool, bucket, key
        self._part_size = part_size
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._buffer: deque[bytes] = deque()
        self._buffered = 0
        self._upload_id: str | None = None
        self._parts: list[Future[dict[str, Any]]] = []

    def write(self, block: bytes) -> None:
        if not block:
            return
        self._buffer.append(block)
        self._buffered += len(block)
        while self._buffered >= self._part_size:  # every part but the last is exactly part_size
            self._flush_part(self._take(self._part_size))

    def close(self) -> None:
        if self._upload_id is None:
            self._s3.put_object(Bucket=self.bucket, Key=self.key, Body=self._take_buffer())
            return
        if self._buffered:
            self._flush_part(self._take_buffer())
        parts = [future.result() for future in self._parts]
        self._s3.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": parts}
        )

    def abort(self) -> None:
        for future in self._parts:
            future.cancel()
        if self._upload_id is not None:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)

    def _take_buffer(self) -> bytes:
        return self._take(self._buffered)

    def _take(self, size: int) -> bytes:
        """The first ``size`` buffered bytes; only a block that straddles the cut is sliced."""
        pieces, need = [], size
        while need:
            block = self._buffer.popleft()
            if len(block) > need:
                pieces.append(block[:need])
                self._buffer.appendleft(block[need:])
                need = 0
            else:
                pieces.append(block)
                need -= len(block)
        self._buffered -= size
        return b"".join(pieces)

    def _flush_part(self, data: bytes) -> None:
        if self._upload_id is None:
            created = self._s3.create_multipart_upload(Bucket=self.bucket, Key=self.key)
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        self._slots.acquire()
        self._parts.append(self._pool.submit(self._upload_part, number, data))

    def _upload_part(self, number: int, data: bytes) -> dict[str, Any]:
        try:
            response = self._s3.upload_part(
                Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=data
            )
            return {"PartNumber": number, "ETag": response["ETag"]}
        finally:
            self._slots.release()
