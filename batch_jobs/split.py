"""The splitter: stream every data file of a delivery once into N balanced chunk files.

- Reads each gzip data file as a stream, hashing the compressed bytes (MD5 and size are checked
  against the manifest) and inflating them with ISA-L.
- Cuts the row stream into exactly N chunks, only ever after a newline (keys are URL-encoded, so
  a newline always ends a row), balanced by bytes: each chunk's end is placed at an equal share of
  the bytes still expected. The expected total comes from each file's gzip trailer (ISIZE, read
  with a 4-byte ranged GET) and, where that is not usable, from the compression ratio seen so far.
- Rows pass through byte for byte; a file that does not end with a newline gets one.
- Memory is bounded by the read-ahead queue and the uploader's parts in flight.
- Writes the split report last, only on success: the processors require it.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from batch_jobs.run import Run
from batch_jobs.s3io import MiB
from batch_jobs.storage import MissingObjectError, ObjectWriter, Storage, write_json
from inventory_contract.jsonlog import JsonLogger
from inventory_contract.manifest import DataFile
from inventory_contract.rollups import ROLLUPS

try:
    from isal import isal_zlib as zlib_impl
except ImportError:  # pragma: no cover - isal ships wheels for every platform the image targets
    import zlib as zlib_impl  # type: ignore[no-redef]

GZIP_WBITS = 31
_GZIP_ERROR: type[Exception] = zlib_impl.error  # type: ignore[assignment]
READ_BLOCK = 1 * MiB
READ_AHEAD_BLOCKS = 8
INFLATE_AHEAD_BLOCKS = 4
PROGRESS_SECONDS = float(os.environ.get("S3INV_PROGRESS_SECONDS", "10"))
"""How often the splitter logs its progress (``run-local`` asks for every 2 seconds)."""
DEFAULT_PART_SIZE = 8 * MiB
DEFAULT_RATIO = 8.0  # uncompressed / compressed, used before any byte has been seen
_ISIZE_TRUSTED_BELOW = 256 * MiB
_BOM = b"\xef\xbb\xbf"  # larger files may have inflated past 4 GiB, where ISIZE wraps


class SplitError(ValueError):
    """A data file is not what the manifest says: missing, wrong size or MD5, or bad gzip.

    Permanent: the job exits 2 and the retry strategy does not retry it."""


@dataclass
class Source:
    """Rows of one data file that a chunk holds: ``rows`` rows from line ``first_line`` on."""

    key: str
    first_line: int
    rows: int = 0


@dataclass
class ChunkStats:
    index: int
    key: str
    rows: int = 0
    bytes: int = 0
    sources: list[Source] = field(default_factory=list)


@dataclass
class FileStats:
    key: str
    size: int
    md5: str
    rows: int = 0
    uncompressed_bytes: int = 0


@dataclass
class SplitReport:
    manifest: str
    source_bucket: str
    run_date: str
    file_schema: list[str]
    chunk_count: int
    rows: int
    uncompressed_bytes: int
    compressed_bytes: int
    duration_seconds: float
    chunks: list[ChunkStats] = field(default_factory=list)
    files: list[FileStats] = field(default_factory=list)


def split(
    store: Storage, run: Run, chunks: int, *, log: JsonLogger, part_size: int = DEFAULT_PART_SIZE
) -> SplitReport:
    if chunks < 1:
        msg = f"--chunks must be at least 1, got {chunks}"
        raise ValueError(msg)
    started = time.monotonic()
    retired = retire_earlier_run(store, run, chunks)
    if retired:
        log.info("retired an earlier run of this partition", objects=len(retired), first=retired[0])
    files = run.manifest.files
    estimate = _SizeEstimate(files, _isize_hints(store, files))
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="upload") as pool:

        def open_chunk(index: int) -> ObjectWriter:
            return store.writer(run.layout.chunk_key(index), pool, part_size)

        router = _ChunkRouter(chunks, open_chunk, estimate.total)
        progress = _Progress(log, estimate, router)
        try:
            for i, data_file in enumerate(files):
                estimate.start_file(i)
                stats = _stream_file(store, data_file, router, estimate, progress)
                estimate.finish_file(stats.uncompressed_bytes)
                progress.files.append(stats)
            chunk_stats = router.finish()
        except BaseException:
            router.abort()
            raise
    report = SplitReport(
        manifest=run.manifest_uri,
        source_bucket=run.delivery.source_bucket,
        run_date=run.delivery.run_date,
        file_schema=list(run.manifest.file_schema),
        chunk_count=chunks,
        rows=sum(c.rows for c in chunk_stats),
        uncompressed_bytes=router.produced,
        compressed_bytes=run.manifest.total_size,
        duration_seconds=round(time.monotonic() - started, 3),
        chunks=chunk_stats,
        files=progress.files,
    )
    write_json(store, run.layout.split_report_key, asdict(report))
    progress.log_now("split done", final=True)
    return report


def retire_earlier_run(store: Storage, run: Run, chunks: int) -> list[str]:
    """Before a rerun writes anything: delete the earlier run's completion marker, report and rollup
    tables (the partition is being rewritten), and its parts, part stats, partial rollups and chunks
    beyond this run's ``chunks``, which nothing would overwrite. Returns the deleted keys, the
    marker first."""
    layout = run.layout
    keep = {
        key
        for i in range(chunks)
        for key in (
            layout.part_key(i),
            layout.part_stats_key(i),
            layout.chunk_key(i),
            layout.identity_partial_key(i),
            *(layout.rollup_partial_key(r.name, i) for r in ROLLUPS),
        )
    }
    prefixes = (
        layout.reports_prefix,
        layout.processed_prefix,
        layout.part_stats_prefix,
        layout.chunk_prefix,
        *(layout.rollup_prefix(r.name) for r in ROLLUPS),
    )
    stale = sorted(
        (key for prefix in prefixes for key, _ in store.list(prefix) if key not in keep),
        key=lambda key: key != layout.complete_marker_key,
    )
    if stale:  # one request per key: DeleteObjects would report a refused key only in its response
        store.delete(stale[0])
        with ThreadPoolExecutor(max_workers=16, thread_name_prefix="retire") as pool:
            list(pool.map(store.delete, stale[1:]))
    return stale


def _stream_file(
    store: Storage,
    data_file: DataFile,
    router: _ChunkRouter,
    estimate: _SizeEstimate,
    progress: _Progress,
) -> FileStats:
    """Route one data file's rows; reading, hashing and inflating run a stage ahead, in threads."""
    uri = store.uri(data_file.key)
    stats = FileStats(key=data_file.key, size=data_file.size, md5=data_file.md5)
    rows_before, last = router.rows, b"\n"
    router.begin_file(data_file.key)
    head = b""  # the file's first bytes, until there are enough to tell a byte-order mark
    md5 = hashlib.md5(usedforsecurity=False)
    blocks = _background(_hashed(_read_blocks(store, data_file.key, uri), md5), READ_AHEAD_BLOCKS)
    for out, consumed in _background(_inflate(blocks, md5, data_file, uri), INFLATE_AHEAD_BLOCKS):
        estimate.advance(consumed, len(out))
        if out:
            if len(head) < len(_BOM):
                head += out[: len(_BOM)]
                if head.startswith(_BOM):
                    msg = (
                        f"{uri}: line 1 starts with a UTF-8 byte-order mark, which S3 Inventory never writes"
                    )
                    raise SplitError(msg)
            router.feed(out)
            stats.uncompressed_bytes += len(out)
            last = out[-1:]
        progress.maybe_log()
    if last != b"\n":  # rows never span files
        router.feed(b"\n")
        stats.uncompressed_bytes += 1
    stats.rows = router.rows - rows_before
    return stats


def _hashed(blocks: Iterator[bytes], md5: Any) -> Iterator[bytes]:
    for block in blocks:
        md5.update(block)
        yield block


def _inflate(blocks: Iterator[bytes], md5: Any, data_file: DataFile, uri: str) -> Iterator[tuple[bytes, int]]:
    """Yield (uncompressed bytes, compressed bytes consumed); check size, MD5 and gzip at the end.

    Handles multi-member gzip. A corrupt stream is reported after the whole file was read, so the
    message can also say whether the file matches the manifest's size and MD5.
    """
    inflate = zlib_impl.decompressobj(GZIP_WBITS)
    member_bytes = consumed = 0  # compressed bytes fed to the current gzip member / in all
    corrupt: str | None = None
    for block in blocks:  # hashed by the stage before, which read them
        consumed += len(block)
        if consumed > data_file.size:
            msg = f"{uri}: size is more than the {data_file.size} bytes the manifest says"
            raise SplitError(msg)
        data = block
        while data and corrupt is None:
            try:
                out = inflate.decompress(data)
            except _GZIP_ERROR as err:
                corrupt = f"corrupt gzip in the {len(block)} compressed bytes from offset {consumed - len(block)} ({err})"
                break
            member_bytes += len(data) - len(inflate.unused_data)
            if out:
                yield out, len(block) if data is block else 0
            elif data is block:
                yield b"", len(block)
            if inflate.eof:
                data = inflate.unused_data
                inflate, member_bytes = zlib_impl.decompressobj(GZIP_WBITS), 0
            else:
                data = b""
    _verify(uri, data_file, consumed, md5.hexdigest(), corrupt)
    if member_bytes and not inflate.eof:
        msg = f"{uri}: gzip stream is truncated (it ends inside a member, after {consumed} compressed bytes)"
        raise SplitError(msg)


def _verify(uri: str, data_file: DataFile, consumed: int, md5: str, corrupt: str | None) -> None:
    also = f"; also, {corrupt}" if corrupt else ""
    if consumed != data_file.size:
        msg = f"{uri}: size is {consumed} bytes but the manifest says {data_file.size}{also}"
        raise SplitError(msg)
    if md5 != data_file.md5:
        msg = f"{uri}: MD5 is {md5} but the manifest says {data_file.md5}{also}"
        raise SplitError(msg)
    if corrupt:
        msg = f"{uri}: {corrupt}"
        raise SplitError(msg)


def _read_blocks(store: Storage, key: str, uri: str) -> Iterator[bytes]:
    try:
        body = store.open(key)
    except MissingObjectError as err:
        msg = f"{uri}: data file listed in the manifest does not exist"
        raise SplitError(msg) from err
    try:
        while block := body.read(READ_BLOCK):
            yield block
    finally:
        body.close()


_DONE = object()


def _background(items: Iterator[Any], ahead: int) -> Iterator[Any]:
    """Run a generator in its own thread, at most ``ahead`` items in front; errors re-raise here.

    zlib/ISA-L inflate, MD5 and socket reads release the GIL, so the stages overlap on 2 cores.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                handoff.put(item)
            handoff.put(_DONE)
        except BaseException as err:
            handoff.put(err)

    thread = threading.Thread(target=produce, name="split-stage", daemon=True)
    thread.start()
    try:
        while (item := handoff.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                handoff.get_nowait()
            except queue.Empty:
                thread.join(0.05)


def _isize_hints(store: Storage, files: tuple[DataFile, ...]) -> list[int | None]:
    """Each file's uncompressed size from its gzip trailer, where that can be trusted."""

    def hint(data_file: DataFile) -> int | None:
        if not 18 <= data_file.size < _ISIZE_TRUSTED_BELOW:
            return None
        try:
            tail = store.tail(data_file.key, 4)
        except MissingObjectError:
            return None  # the stream reports the missing file with its own message
        size = int.from_bytes(tail, "little") if len(tail) == 4 else 0
        return size if size >= data_file.size else None

    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="isize") as pool:
        return list(pool.map(hint, files))


class _SizeEstimate:
    """How many uncompressed bytes the whole delivery will produce, refined as it streams."""

    def __init__(self, files: tuple[DataFile, ...], hints: list[int | None]) -> None:
        self._sizes = [f.size for f in files]
        self._hints = hints
        n = len(files)
        self._known_after = [0] * (n + 1)  # sum of hints of files j.. that have one
        self._unknown_after = [0] * (n + 1)  # compressed size of files j.. that have none
        for j in range(n - 1, -1, -1):
            h = hints[j]
            self._known_after[j] = self._known_after[j + 1] + (h or 0)
            self._unknown_after[j] = self._unknown_after[j + 1] + (files[j].size if h is None else 0)
        self._current = 0
        self._done_bytes = 0  # uncompressed bytes of finished files
        self._current_bytes = 0
        self.compressed_seen = 0
        self.uncompressed_seen = 0
        self.total_compressed = sum(self._sizes)

    def start_file(self, index: int) -> None:
        self._current, self._current_bytes = index, 0

    def advance(self, compressed: int, uncompressed: int) -> None:
        self.compressed_seen += compressed
        self._current_bytes += uncompressed
        self.uncompressed_seen += uncompressed

    def finish_file(self, uncompressed: int) -> None:
        self._done_bytes += uncompressed
        self._current_bytes = 0
        self._current += 1

    def total(self) -> int:
        ratio = self.uncompressed_seen / self.compressed_seen if self.compressed_seen else DEFAULT_RATIO
        j = self._current
        if j >= len(self._sizes):
            return self._done_bytes
        hint = self._hints[j]
        current = hint if hint is not None else int(self._sizes[j] * ratio)
        rest = self._known_after[j + 1] + int(self._unknown_after[j + 1] * ratio)
        return self._done_bytes + max(current, self._current_bytes) + rest


class _ChunkRouter:
    """Cuts a stream of row bytes into ``n`` chunks after newlines, balanced by bytes."""

    def __init__(self, n: int, open_chunk: Callable[[int], ObjectWriter], expected_total: Callable[[], int]):
        self._n, self._open, self._expected_total = n, open_chunk, expected_total
        self.produced = 0
        self.rows = 0
        self.stats: list[ChunkStats] = []
        self._writer: ObjectWriter | None = None
        self._end = 0
        self._file = ""  # the data file being fed, and how many of its rows were routed
        self._file_rows = 0
        self._start_chunk(0)

    def begin_file(self, key: str) -> None:
        self._file, self._file_rows = key, 0

    def _start_chunk(self, index: int) -> None:
        self._writer = self._open(index)
        self.stats.append(ChunkStats(index=index, key=self._writer.key))
        remaining = max(self._expected_total() - self.produced, 0)
        self._end = self.produced + remaining // (self._n - index)

    def _write(self, block: bytes, start: int, end: int) -> None:
        assert self._writer is not None
        self._writer.write(block if (start, end) == (0, len(block)) else block[start:end])
        current = self.stats[-1]
        rows = block.count(b"\n", start, end)
        if not current.sources or current.sources[-1].key != self._file:
            current.sources.append(Source(self._file, first_line=self._file_rows + 1))
        current.sources[-1].rows += rows
        current.bytes += end - start
        current.rows += rows
        self.rows += rows
        self._file_rows += rows
        self.produced += end - start

    def _next_chunk(self) -> None:
        assert self._writer is not None
        self._writer.close()
        self._start_chunk(len(self.stats))

    def feed(self, block: bytes) -> None:
        pos, size = 0, len(block)
        while pos < size:
            if len(self.stats) == self._n:  # the last chunk takes the rest
                self._write(block, pos, size)
                return
            start = pos + max(self._end - self.produced - 1, 0)
            cut = block.find(b"\n", start) if start < size else -1
            if cut < 0:
                self._write(block, pos, size)
                return
            self._write(block, pos, cut + 1)
            self._next_chunk()
            pos = cut + 1

    def finish(self) -> list[ChunkStats]:
        assert self._writer is not None
        self._writer.close()
        self._writer = None
        while len(self.stats) < self._n:  # fewer rows than chunks: the rest are empty
            self._writer = self._open(len(self.stats))
            self.stats.append(ChunkStats(index=len(self.stats), key=self._writer.key))
            self._writer.close()
            self._writer = None
        return self.stats

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()


class _Progress:
    def __init__(self, log: JsonLogger, estimate: _SizeEstimate, router: _ChunkRouter) -> None:
        self._log, self._estimate, self._router = log, estimate, router
        self._started = self._last = time.monotonic()
        self.files: list[FileStats] = []

    def maybe_log(self) -> None:
        if time.monotonic() - self._last >= PROGRESS_SECONDS:
            self.log_now("split progress")

    def log_now(self, message: str, *, final: bool = False) -> None:
        now = time.monotonic()
        self._last = now
        elapsed = max(now - self._started, 1e-9)
        e = self._estimate
        self._log.info(
            message,
            files_done=len(self.files),
            compressed_bytes_done=e.compressed_seen,
            compressed_bytes_total=e.total_compressed,
            uncompressed_bytes=e.uncompressed_seen,
            rows=sum(c.rows for c in self._router.stats),
            chunk=len(self._router.stats) - 1,
            mb_per_s=round(e.uncompressed_seen / elapsed / 1e6, 1),
            seconds=round(elapsed, 1),
            final=final,
        )
