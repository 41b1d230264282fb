"""S3 calls the jobs make, served from a local folder: the benchmark's way to time the jobs' own
code paths (inflate, hash, cut, convert) without a network, next to tools that read local files.

Used only by the benchmark; the tests and the local pipeline use moto's real S3 HTTP API.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any


class LocalS3:
    """Parts are written once, at their offset: every part but the last is ``part_size`` bytes,
    as the splitter's uploader sends them, so no copy is added that S3 would not make."""

    def __init__(self, root: Path, part_size: int = 8 * 1024 * 1024, write_root: Path | None = None) -> None:
        self.root = root
        self.write_root = write_root or root  # where written objects go (tmpfs: no disk writeback)
        self.part_size = part_size
        self._uploads: dict[str, Path] = {}

    def _path(self, bucket: str, key: str) -> Path:
        return self.write_root / bucket / key

    def get_object(self, Bucket: str, Key: str, Range: str | None = None) -> dict[str, Any]:
        path = self._path(Bucket, Key)
        if not path.exists():  # inputs stay where they are; outputs are read back from write_root
            path = self.root / Bucket / Key
        f = path.open("rb")
        if Range:
            tail = int(Range.removeprefix("bytes=-"))
            f.seek(max(path.stat().st_size - tail, 0))
        return {"Body": f}

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        path = self._path(Bucket, Key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Body)
        return {"ETag": hashlib.md5(Body).hexdigest()}

    def create_multipart_upload(self, Bucket: str, Key: str) -> dict[str, Any]:
        upload_id = f"{Bucket}/{Key}"
        pending = self._path(Bucket, f"{Key}.uploading")
        pending.parent.mkdir(parents=True, exist_ok=True)
        pending.write_bytes(b"")
        self._uploads[upload_id] = pending
        return {"UploadId": upload_id}

    def upload_part(
        self, Bucket: str, Key: str, UploadId: str, PartNumber: int, Body: bytes
    ) -> dict[str, Any]:
        fd = os.open(self._uploads[UploadId], os.O_WRONLY)
        try:
            os.pwrite(fd, Body, (PartNumber - 1) * self.part_size)
        finally:
            os.close(fd)
        return {"ETag": str(PartNumber)}

    def complete_multipart_upload(self, Bucket: str, Key: str, UploadId: str, **_: Any) -> None:
        self._uploads.pop(UploadId).replace(self._path(Bucket, Key))

    def abort_multipart_upload(self, Bucket: str, Key: str, UploadId: str) -> None:
        self._uploads.pop(UploadId).unlink(missing_ok=True)

    def delete_object(self, Bucket: str, Key: str) -> None:
        self._path(Bucket, Key).unlink(missing_ok=True)

    def get_paginator(self, operation: str) -> _ListPaginator:
        if operation != "list_objects_v2":
            msg = f"LocalS3 paginates list_objects_v2 only, not {operation}"
            raise NotImplementedError(msg)
        return _ListPaginator(self)


class _ListPaginator:
    """``list_objects_v2`` over what was written (outputs), one page."""

    def __init__(self, s3: LocalS3) -> None:
        self._s3 = s3

    def paginate(self, Bucket: str, Prefix: str = "") -> list[dict[str, Any]]:
        base = self._s3.write_root / Bucket
        found = (
            sorted((p.relative_to(base).as_posix(), p.stat().st_size) for p in base.rglob("*") if p.is_file())
            if base.is_dir()
            else []
        )
        return [{"Contents": [{"Key": k, "Size": n} for k, n in found if k.startswith(Prefix)]}]
