"""Where the jobs read and write: one small interface, an S3 backend and a local-folder backend.

The jobs depend only on ``Storage``: read an object, open it as a stream, read its tail or its
size, write it (whole, or from a file), fetch it to a file, list a prefix, delete, and tell whether
it changed. ``S3Storage`` does it with boto3, as on AWS. ``LocalStorage`` does it in a folder that
stands for the destination bucket, so ``run-local`` runs the same job code with no HTTP in the data
path: reads look in the output folder, then in the folder that holds the delivery; writes go to
the output folder; a fetch is a hard link and a store is a rename, so nothing is copied.

The backend is chosen once, at the edge (``storage_for``): local when ``S3INV_LOCAL_OUT`` is set.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from botocore.exceptions import ClientError

from batch_jobs.s3io import TRANSFER, s3_client
from inventory_contract.layout import PROCESSED_ROOT, REPORTS_ROOT, ROLLUPS_ROOT, STATE_ROOT, parse_s3_uri
from inventory_contract.s3 import is_missing

LOCAL_OUT_ENV = "S3INV_LOCAL_OUT"
"""The folder the jobs write to (and read their own outputs from) when they run locally."""
RUN_ROOTS = tuple(f"{root}/" for root in (PROCESSED_ROOT, STATE_ROOT, REPORTS_ROOT, ROLLUPS_ROOT))
"""What a run writes: never read from the delivery folder."""
LOCAL_INPUTS_ENV = "S3INV_LOCAL_INPUTS"
"""The folder that holds the delivery at its keys (the downloaded destination bucket)."""


class MissingObjectError(LookupError):
    """The key does not exist (S3: 404, or 403 with a listing that does not find it)."""


class Storage(Protocol):
    bucket: str

    def uri(self, key: str) -> str: ...
    def read(self, key: str) -> bytes: ...
    def open(self, key: str) -> IO[bytes]: ...
    def tail(self, key: str, size: int) -> bytes: ...
    def size(self, key: str) -> int: ...
    def write(self, key: str, data: bytes, content_type: str | None = None) -> None: ...
    def create(self, key: str, data: bytes, content_type: str | None = None) -> bool: ...
    def fetch(self, key: str, path: Path) -> None: ...
    def store(self, path: Path, key: str) -> None: ...
    def list(self, prefix: str) -> Iterator[tuple[str, int]]: ...
    def delete(self, key: str) -> None: ...
    def version(self, key: str) -> str | None: ...
    def scratch(self) -> Path | None: ...


def storage_for(manifest_uri: str) -> Storage:
    """The backend for a job: local when run by ``run-local`` (``S3INV_LOCAL_OUT``), else S3."""
    bucket, _ = parse_s3_uri(manifest_uri)
    out = os.environ.get(LOCAL_OUT_ENV)
    if out:
        inputs = os.environ.get(LOCAL_INPUTS_ENV)
        return LocalStorage(bucket, Path(out), Path(inputs) if inputs else None)
    return S3Storage(bucket, s3_client())


@dataclass
class S3Storage:
    bucket: str
    client: Any

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def read(self, key: str) -> bytes:
        body: bytes = self._get(key)["Body"].read()
        return body

    def open(self, key: str) -> IO[bytes]:
        body: IO[bytes] = self._get(key)["Body"]
        return body

    def tail(self, key: str, size: int) -> bytes:
        tail: bytes = self._get(key, Range=f"bytes=-{size}")["Body"].read()
        return tail

    def write(self, key: str, data: bytes, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)

    def create(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        """Write ``key`` only if it does not exist (a conditional write); False if it does."""
        extra = {"ContentType": content_type} if content_type else {}
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*", **extra)
        except ClientError as err:  # 412: it exists; 409: another write of it is in flight
            if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (409, 412):
                return False
            raise
        return True

    def size(self, key: str) -> int:
        try:
            size: int = self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except ClientError as err:
            self._missing(err, key)
            raise
        return size

    def fetch(self, key: str, path: Path) -> None:
        try:
            self.client.download_file(self.bucket, key, str(path), Config=TRANSFER)
        except ClientError as err:
            self._missing(err, key)
            raise

    def store(self, path: Path, key: str) -> None:
        self.client.upload_file(str(path), self.bucket, key, Config=TRANSFER)

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"], item["Size"]

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def version(self, key: str) -> str | None:
        try:
            etag: str = self.client.head_object(Bucket=self.bucket, Key=key)["ETag"]
        except ClientError as err:
            if is_missing(err, s3=self.client, bucket=self.bucket, key=key):
                return None
            raise
        return etag

    def scratch(self) -> Path | None:
        return None  # the task's own disk

    def _get(self, key: str, **extra: Any) -> Any:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key, **extra)
        except ClientError as err:
            self._missing(err, key)
            raise

    def _missing(self, err: ClientError, key: str) -> None:
        if is_missing(err, s3=self.client, bucket=self.bucket, key=key):
            msg = f"{self.uri(key)} does not exist"
            raise MissingObjectError(msg) from err


@dataclass
class LocalStorage:
    """The bucket as a folder: writes to ``out``; reads from ``out``, then from ``inputs``."""

    bucket: str
    out: Path
    inputs: Path | None = None

    def uri(self, key: str) -> str:
        return str(self._find(key, must_exist=False))

    def read(self, key: str) -> bytes:
        return self._find(key).read_bytes()

    def open(self, key: str) -> IO[bytes]:
        return self._find(key).open("rb")

    def tail(self, key: str, size: int) -> bytes:
        with self._find(key).open("rb") as f:
            f.seek(max(f.seek(0, os.SEEK_END) - size, 0))
            return f.read()

    def write(self, key: str, data: bytes, content_type: str | None = None) -> None:
        target = self._target(key)
        partial = _partial(target)
        try:
            partial.write_bytes(data)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)  # a write that failed (a full disk) leaves nothing

    def create(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        target = self._target(key)
        partial = _partial(target)
        try:
            partial.write_bytes(data)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        try:
            os.link(partial, target)  # fails if the target exists: an exclusive create
        except FileExistsError:
            return False
        finally:
            partial.unlink()
        return True

    def size(self, key: str) -> int:
        return self._find(key).stat().st_size

    def fetch(self, key: str, path: Path) -> None:
        source = self._find(key)
        try:
            os.link(source, path)  # the same file, no copy
        except OSError:
            shutil.copyfile(source, path)

    def store(self, path: Path, key: str) -> None:
        target = self._target(key)
        try:
            path.replace(target)  # a rename when on the same file system
        except OSError:
            partial = _partial(target)
            shutil.copyfile(path, partial)
            partial.replace(target)

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        folder, _, _ = prefix.rpartition("/")
        base = self.out / folder
        if not base.is_dir():
            return
        found = []
        for path in base.rglob("*"):
            key = path.relative_to(self.out).as_posix()
            if path.is_file() and key.startswith(prefix) and not path.name.startswith(".partial-"):
                found.append((key, path.stat().st_size))
        yield from sorted(found)

    def delete(self, key: str) -> None:
        (self.out / key).unlink(missing_ok=True)

    def version(self, key: str) -> str | None:
        path = self.out / key
        if not path.is_file():
            return None
        stat = path.stat()
        return hashlib.md5(f"{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}".encode()).hexdigest()

    def scratch(self) -> Path | None:
        """Temporary files beside the outputs: a fetch links and a store renames, no copy."""
        path = self.out / ".scratch"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _find(self, key: str, *, must_exist: bool = True) -> Path:
        """``out`` first; the delivery folder only for the delivery's own keys, never for what a
        run writes (an old copy of run state there must not stand in for this run's)."""
        roots = [self.out]
        if self.inputs is not None and not key.startswith(RUN_ROOTS):
            roots.append(self.inputs)
        for root in roots:
            if (root / key).is_file():
                return root / key
        if must_exist:
            msg = f"{self.out / key} does not exist"
            raise MissingObjectError(msg)
        return self.out / key

    def _target(self, key: str) -> Path:
        target = self.out / key
        target.parent.mkdir(parents=True, exist_ok=True)
        return target


def _partial(target: Path) -> Path:
    """A temporary name beside ``target``: renamed into place when complete, so a reader never
    sees half an object (as S3 never shows half a PUT). Its mode follows the umask, as a file
    written in place would (mkstemp's own is owner-only)."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".partial-{target.name}.")
    os.fchmod(fd, 0o666 & ~_UMASK)
    os.close(fd)
    return Path(name)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def read_json(store: Storage, key: str) -> Any:
    return json.loads(store.read(key))


def maybe_json(store: Storage, key: str) -> Any:
    """The JSON document at ``key``; None when it is missing or not JSON (a write cut short)."""
    try:
        return read_json(store, key)
    except (MissingObjectError, ValueError):
        return None


def write_json(store: Storage, key: str, document: Any) -> None:
    store.write(key, json.dumps(document, indent=2, sort_keys=True, default=str).encode(), "application/json")
