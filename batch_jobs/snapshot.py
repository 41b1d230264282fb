"""List a bucket and write what S3 Inventory would have delivered (``inventory_contract/listing.py``).

How the listing is parallel, exact and cheap:

- Discovery: delimiter listings (``/``), level by level from the prefix, a bounded number of pages
  each, collect common prefixes until there are enough to share among the workers.
- The sorted prefixes cut the key space into ranges: range k holds the keys after boundary k and
  up to boundary k+1. Any set of boundaries cuts it exactly (every key falls in one range), so
  discovery may stop anywhere: it only decides how well the ranges balance, never which keys are
  listed.
- Each range is one flat listing (StartAfter / KeyMarker at its start, stopped past its end), taken
  by the next free worker; pages stream into the worker's gzip CSV data file, rotated by size, so
  memory does not grow with the bucket. A flat listing costs one request per 1,000 keys, as a
  listing of the whole bucket would; discovery adds at most ``MAX_DISCOVERY_REQUESTS``.
- SlowDown (503) and other retryable errors back off in the SDK's adaptive retry mode.
- The data files are stored as they are completed, then ``manifest.checksum``, then
  ``manifest.json`` last, which starts the run. A listing that fails or is interrupted deletes
  the data files it stored and writes no manifest: a new listing starts again (a SIGKILL leaves
  data files without a manifest, which nothing reads, and which the stack's ``inventoryRetentionDays``
  expires with the deliveries).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import queue
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError
from isal import igzip

from batch_jobs.child import die_with_parent
from batch_jobs.storage import Storage
from inventory_contract.delivery import Delivery
from inventory_contract.errors import ListingSourceError
from inventory_contract.listing import (
    CURRENT_FIELDS,
    VERSIONS_FIELDS,
    csv_row,
    current_values,
    data_key,
    listing_delivery,
    version_values,
)

MiB = 1024 * 1024
DEFAULT_WORKERS = 16
DEFAULT_FILE_BYTES = 128 * MiB
"""A data file is closed once it holds about this many gzip bytes: as large as run-local's chunk
cap, so the plan can give whole files to children."""
RANGES_PER_WORKER = 4
MAX_DISCOVERY_DEPTH = 16
MAX_DISCOVERY_REQUESTS = 1_000
"""Delimiter listings spent finding boundaries, at most (about $0.005 in us-east-1)."""
MAX_PAGES_PER_PREFIX = 10
DELIMITER = "/"
PROGRESS_SECONDS = 5.0


class ListingConflictError(RuntimeError):
    """Another listing of the bucket delivered under the same timestamp (the same minute)."""


class ListingRefusedError(RuntimeError):
    """S3 refused the listing (access denied): the message names the bucket and the action."""


@dataclass(frozen=True)
class ListingSource:
    bucket: str
    prefix: str = ""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass
class ListingResult:
    delivery: Delivery
    manifest_key: str
    rows: int
    delete_markers: int
    data_files: int
    requests: int
    seconds: float


@dataclass
class _Counters:
    rows: int = 0
    delete_markers: int = 0
    requests: int = 0
    ranges_done: int = 0
    ranges: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    shared: list[Any] | None = None  # rows, markers, requests counted by listing processes

    def sync(self) -> None:
        """Take the listing processes' totals (a no-op when the listing runs in threads)."""
        if self.shared is not None:
            with self.lock:
                self.rows, self.delete_markers, self.requests = (v.value for v in self.shared)

    def add(self, rows: int = 0, markers: int = 0, requests: int = 0, ranges_done: int = 0) -> None:
        with self.lock:
            self.rows += rows
            self.delete_markers += markers
            self.requests += requests
            self.ranges_done += ranges_done


def listing_client(workers: int, region: str | None = None) -> Any:
    """An S3 client for ``workers`` threads, retrying as the SDK's adaptive mode does, that keeps
    timestamps as S3 wrote them (ISO 8601, UTC): parsing them into datetimes (dateutil) was more
    than half of a listing's CPU time, and the inventory writes them as text again."""
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    config = Config(retries={"max_attempts": 10, "mode": "adaptive"}, max_pool_connections=workers + 4)
    return boto3.Session(botocore_session=core, region_name=region).client("s3", config=config)


def check_source(s3: Any, source: ListingSource, *, current_only: bool) -> None:
    """Refuse, before anything is written, a bucket that does not exist, is in another Region than
    the client's, or that this caller may not list as asked."""
    arn = f"arn:aws:s3:::{source.bucket}"
    try:
        response = s3.head_bucket(Bucket=source.bucket)
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code"))
        if code in {"404", "NoSuchBucket"}:
            msg = f"s3://{source.bucket} does not exist (or not in this partition)"
            raise ListingSourceError(msg) from err
        if code not in {"403", "AccessDenied"} and not _bucket_region(err.response):
            raise
        # 403: HeadBucket needs s3:ListBucket without an s3:prefix condition, which a caller allowed
        # one prefix does not have; the listings of the prefix below tell whether it may list
        response = err.response
    region = _bucket_region(response)
    if region and region != s3.meta.region_name:
        raise ListingSourceError(_other_region(source, region, s3))
    probes = [("s3:ListBucket", s3.list_objects_v2)]  # the discovery of prefixes, and --current-only
    if not current_only:
        probes.append(("s3:ListBucketVersions", s3.list_object_versions))
    for action, call in probes:
        try:
            call(Bucket=source.bucket, Prefix=source.prefix, MaxKeys=1)
        except ClientError as err:
            if str(err.response.get("Error", {}).get("Code")) in {"403", "AccessDenied"}:
                scope = f" under {source.prefix!r}" if source.prefix else ""
                hint = (
                    ""
                    if current_only
                    else " (a listing of every version needs s3:ListBucket and s3:ListBucketVersions; "
                    "--current-only needs s3:ListBucket only)"
                )
                msg = f"access denied to s3://{source.bucket}: this caller may not {action} on {arn}{scope}{hint}"
                raise ListingRefusedError(msg) from err
            raise


def _bucket_region(response: dict[str, Any]) -> str | None:
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    region = response.get("BucketRegion") or headers.get("x-amz-bucket-region")
    return str(region) if region else None


def _other_region(source: ListingSource, region: str, s3: Any) -> str:
    return (
        f"s3://{source.bucket} is in {region}, not in {s3.meta.region_name}: "
        f"run with AWS_REGION={region} (or a profile of that Region)"
    )


def snapshot(
    s3: Any,
    source: ListingSource,
    store: Storage,
    *,
    inventory_prefix: str,
    current_only: bool = False,
    workers: int = DEFAULT_WORKERS,
    file_bytes: int = DEFAULT_FILE_BYTES,
    partition: str = "aws",
    progress: Callable[[str], None] = lambda _: None,
    progress_seconds: float = PROGRESS_SECONDS,
    processes: bool = False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ListingResult:
    """List ``source`` and write its delivery into ``store`` (the destination bucket) under
    ``inventory_prefix``; ``check_source`` first. Returns what was written.

    ``processes``: list the ranges in ``workers`` processes, each with a client of its own, so that
    the listing uses as many cores (parsing a page's XML costs about 40 µs of CPU an object: one
    core lists about 25,000 objects a second, bench/results-listing.md); else in ``workers``
    threads of this process, with ``s3``."""
    started = clock()
    clock_started = time.monotonic()
    delivery = listing_delivery(inventory_prefix, source.bucket, started)
    fields = CURRENT_FIELDS if current_only else VERSIONS_FIELDS
    counters = _Counters()
    stored: list[tuple[str, int, str]] = []
    stored_lock = threading.Lock()
    done = threading.Event()

    def report() -> None:
        while not done.wait(progress_seconds):
            progress(_progress_line(counters, time.monotonic() - clock_started))

    reporter = threading.Thread(target=report, name="listing-progress", daemon=True)
    reporter.start()
    try:
        with tempfile.TemporaryDirectory(prefix="s3inv-listing-", dir=store.scratch()) as tmp:

            def keep(path: Path) -> None:
                key = data_key(delivery, path.name)
                size, md5 = path.stat().st_size, _md5(path)
                store.store(path, key)
                with stored_lock:
                    stored.append((key, size, md5))

            boundaries = _discover(s3, source, workers, counters)
            ranges = list(zip([None, *boundaries], [*boundaries, None], strict=True))
            counters.ranges = len(ranges)
            progress(
                f"listing s3://{source.bucket}/{source.prefix} in {len(ranges)} key range(s) "
                f"with {workers} worker(s)" + (" (current objects only)" if current_only else "")
            )
            work = _Work(source, ranges, workers, current_only, Path(tmp), file_bytes, keep, counters)
            if processes and workers > 1 and len(ranges) > 1:
                _list_ranges_in_processes(s3.meta.region_name, work)
            else:
                _list_ranges(s3, work)
            if not stored:  # an empty bucket: one empty data file, so the manifest lists one
                empty = Path(tmp) / f"{uuid.uuid4()}.csv.gz"
                with igzip.open(empty, "wb"):
                    pass
                keep(empty)
        manifest = _manifest(delivery, source, fields, sorted(stored), store.bucket, partition, started)
        # conditional writes: a second listing of the bucket in the same minute must not replace
        # this one's manifest (its runs would read the other's files); it fails, and a retry (or a
        # rerun) a minute later delivers under a timestamp of its own
        checksum = hashlib.md5(manifest, usedforsecurity=False).hexdigest().encode()
        if not store.create(delivery.checksum_key, checksum):
            msg = (
                f"a listing of s3://{source.bucket} started in the same minute has delivered "
                f"{store.uri(delivery.manifest_key)}; run this one again in a minute"
            )
            raise ListingConflictError(msg)
        stored.append((delivery.checksum_key, 0, ""))  # deleted with the data files if what follows fails
        if not store.create(delivery.manifest_key, manifest, "application/json"):
            msg = f"{store.uri(delivery.manifest_key)} appeared while this listing wrote its checksum; run again"
            raise ListingConflictError(msg)
    except BaseException:
        done.set()
        for key, _, _ in stored:  # nothing half-delivered is left for a reader to find
            try:
                store.delete(key)
            except Exception as err:  # the original error matters more; say what is left
                progress(f"could not delete {store.uri(key)}: {err}")
        raise
    done.set()
    seconds = time.monotonic() - clock_started
    progress(_progress_line(counters, seconds, final=True))
    return ListingResult(
        delivery=delivery,
        manifest_key=delivery.manifest_key,
        rows=counters.rows,
        delete_markers=counters.delete_markers,
        data_files=len(stored),
        requests=counters.requests,
        seconds=seconds,
    )


def _progress_line(counters: _Counters, seconds: float, *, final: bool = False) -> str:
    counters.sync()
    rate = counters.requests / seconds if seconds > 0 else 0.0
    what = "listed" if final else "listing:"
    return (
        f"{what} {counters.rows:,} objects ({counters.delete_markers:,} delete markers) in "
        f"{counters.requests:,} requests, {rate:,.1f} requests/s, "
        f"{counters.rows / seconds if seconds > 0 else 0:,.0f} objects/s; "
        f"{counters.ranges_done}/{counters.ranges} key ranges done"
    )


def _discover(s3: Any, source: ListingSource, workers: int, counters: _Counters) -> list[str]:
    """Common prefixes to cut the key space at: level by level until there are enough for
    ``RANGES_PER_WORKER`` ranges a worker, a level has none, or the request budget is spent."""
    wanted = max(workers * RANGES_PER_WORKER, 1) - 1
    level, found = [source.prefix], set[str]()
    budget = MAX_DISCOVERY_REQUESTS
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in range(MAX_DISCOVERY_DEPTH):
            if len(found) >= wanted or not level or budget < len(level):
                break
            budget -= len(level)
            listed = pool.map(lambda p: _common_prefixes(s3, source.bucket, p, counters), level)
            children = [p for prefixes in listed for p in prefixes]
            found.update(children)
            level = children
    boundaries = sorted(found)  # code point order is UTF-8 byte order: S3's order of keys
    if len(boundaries) <= wanted:
        return boundaries
    step = len(boundaries) / wanted  # evenly spaced among those found
    return [boundaries[int(i * step)] for i in range(wanted)]


def _common_prefixes(s3: Any, bucket: str, prefix: str, counters: _Counters) -> list[str]:
    found: list[str] = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter=DELIMITER)
    for number, page in enumerate(pages, start=1):
        counters.add(requests=1)
        found += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if number >= MAX_PAGES_PER_PREFIX:  # enough to cut at; the rest still lies in a range
            break
    return found


@dataclass(frozen=True)
class _Work:
    """The ranges to list, and where their data files go."""

    source: ListingSource
    ranges: list[tuple[str | None, str | None]]
    workers: int
    current_only: bool
    tmp: Path
    file_bytes: int
    keep: Callable[[Path], None]
    counters: _Counters


def _rows_of(current_only: bool) -> Callable[..., Iterator[list[str]]]:
    """The pages of one key range, as inventory CSV lines: current objects, or every version."""
    return _current_rows if current_only else _version_rows


def _list_ranges(s3: Any, work: _Work) -> None:
    """Each worker takes the next range and streams it into its own data file."""
    source, ranges, workers, counters = work.source, work.ranges, work.workers, work.counters
    todo: queue.SimpleQueue[tuple[str | None, str | None]] = queue.SimpleQueue()
    for item in ranges:
        todo.put(item)
    failed = threading.Event()

    def lister() -> None:
        with _DataFiles(work.tmp, work.file_bytes, work.keep) as out:
            while not failed.is_set():
                try:
                    after, until = todo.get_nowait()
                except queue.Empty:
                    return
                for lines in _rows_of(work.current_only)(s3, source, after, until, counters):
                    if failed.is_set():
                        return
                    out.write("".join(lines))
                counters.add(ranges_done=1)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lister") as pool:
        futures = [pool.submit(lister) for _ in range(min(workers, len(ranges)))]
        try:
            for future in futures:
                future.result()
        except BaseException:
            failed.set()  # the other workers stop at their next page
            raise


_CHILD: dict[str, Any] = {}


def _child_init(
    parent: int, region: str | None, rows: Any, markers: Any, requests: Any
) -> None:  # pragma: no cover
    """In each listing process: end with the parent, leave Ctrl-C to it, own a client."""
    import os
    import signal

    die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above: no signal will come
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _CHILD.update(client=listing_client(1, region), rows=rows, markers=markers, requests=requests)


class _SharedCounters(_Counters):
    """A child's counters: each page adds to the parent's shared totals at once (progress)."""

    def add(self, rows: int = 0, markers: int = 0, requests: int = 0, ranges_done: int = 0) -> None:
        for name, value in (("rows", rows), ("markers", markers), ("requests", requests)):
            if value:
                with _CHILD[name].get_lock():
                    _CHILD[name].value += value


def _list_range_in_child(
    task: tuple[ListingSource, str | None, str | None, bool, str, int],
) -> list[str]:  # pragma: no cover - runs in a listing process (its effects are tested)
    source, after, until, current_only, folder, file_bytes = task
    s3, counters, written = _CHILD["client"], _SharedCounters(), []
    rows = _rows_of(current_only)
    with _DataFiles(Path(folder), file_bytes, lambda path: written.append(str(path))) as out:
        for lines in rows(s3, source, after, until, counters):
            out.write("".join(lines))
    return written


def _list_ranges_in_processes(region: str | None, work: _Work) -> None:
    """Each of ``workers`` processes takes the next range and writes its data files into ``tmp``;
    this process keeps (stores) them as each range completes. A failure or an interruption
    terminates every listing process."""
    context = multiprocessing.get_context("spawn")  # no fork of a process that has threads
    shared = [context.Value("q", 0) for _ in range(3)]
    work.counters.shared = shared
    tasks = [
        (work.source, after, until, work.current_only, str(work.tmp), work.file_bytes)
        for after, until in work.ranges
    ]
    processes = min(work.workers, len(work.ranges))
    # an executor, not a Pool: a listing process that dies (the OOM killer, a kill) breaks it and
    # fails the listing (BrokenProcessPool), where a Pool would replace the process and wait forever
    # for the range it held
    initargs: tuple[Any, ...] = (os.getpid(), region, *shared)
    pool = ProcessPoolExecutor(processes, mp_context=context, initializer=_child_init, initargs=initargs)
    try:
        futures = [pool.submit(_list_range_in_child, task) for task in tasks]
        for done in as_completed(futures):
            for path in done.result():
                work.keep(Path(path))
            work.counters.add(ranges_done=1)
    except BaseException:
        for process in list(getattr(pool, "_processes", {}).values()):  # stop every listing now
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    work.counters.sync()


def _version_rows(
    s3: Any, source: ListingSource, after: str | None, until: str | None, counters: _Counters
) -> Iterator[list[str]]:
    extra = {"KeyMarker": after} if after is not None else {}
    pages = s3.get_paginator("list_object_versions").paginate(
        Bucket=source.bucket, Prefix=source.prefix, **extra
    )
    for page in pages:
        counters.add(requests=1)
        entries = [(v, False) for v in page.get("Versions", [])] + [
            (m, True) for m in page.get("DeleteMarkers", [])
        ]
        kept = [(e, marker) for e, marker in entries if until is None or e["Key"] <= until]
        lines = [csv_row(version_values(source.bucket, e, delete_marker=marker)) for e, marker in kept]
        counters.add(rows=len(lines), markers=sum(1 for _, marker in kept if marker))
        yield lines
        if len(kept) < len(entries):  # the page ran past the range's end
            return


def _current_rows(
    s3: Any, source: ListingSource, after: str | None, until: str | None, counters: _Counters
) -> Iterator[list[str]]:
    extra = {"StartAfter": after} if after is not None else {}
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=source.bucket, Prefix=source.prefix, FetchOwner=True, **extra
    )
    for page in pages:
        counters.add(requests=1)
        entries = page.get("Contents", [])
        kept = [e for e in entries if until is None or e["Key"] <= until]
        lines = [csv_row(current_values(source.bucket, e)) for e in kept]
        counters.add(rows=len(lines))
        yield lines
        if len(kept) < len(entries):
            return


class _DataFiles:
    """One worker's gzip CSV data files: a new one once the current holds ``file_bytes``."""

    def __init__(self, folder: Path, file_bytes: int, keep: Callable[[Path], None]) -> None:
        self._folder, self._limit, self._keep = folder, file_bytes, keep
        self._path: Path | None = None
        self._raw: Any = None
        self._gzip: Any = None

    def __enter__(self) -> _DataFiles:
        return self

    def write(self, text: str) -> None:
        if not text:
            return
        if self._gzip is None:
            self._path = self._folder / f"{uuid.uuid4()}.csv.gz"
            self._raw = self._path.open("wb")
            self._gzip = igzip.IGzipFile(fileobj=self._raw, mode="wb", compresslevel=1)
        self._gzip.write(text.encode())
        if self._raw.tell() >= self._limit:
            self._close(keep=True)

    def _close(self, *, keep: bool) -> None:
        if self._gzip is None:
            return
        self._gzip.close()
        self._raw.close()
        path, self._gzip, self._raw, self._path = self._path, None, None, None
        assert path is not None
        if keep:
            self._keep(path)

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        self._close(keep=kind is None)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while block := f.read(8 * MiB):
            digest.update(block)
    return digest.hexdigest()


def _manifest(
    delivery: Delivery,
    source: ListingSource,
    fields: tuple[str, ...],
    files: list[tuple[str, int, str]],
    destination_bucket: str,
    partition: str,
    started: datetime,
) -> bytes:
    document = {
        "sourceBucket": source.bucket,
        "destinationBucket": f"arn:{partition}:s3:::{destination_bucket}",
        "version": "2016-11-30",
        "creationTimestamp": str(int(started.timestamp() * 1000)),
        "fileFormat": "CSV",
        "fileSchema": ", ".join(fields),
        "files": [{"key": key, "size": size, "MD5checksum": md5} for key, size, md5 in files],
    }
    return json.dumps(document, indent=2).encode()
