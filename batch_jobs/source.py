"""Read one planned source straight from the delivery: whole rows of a gzip CSV data file.

A source is a whole data file, or a piece of one: the rows whose first byte lies in ``[start,
end)`` of the file's inflated stream (``inventory_contract/plan.py``). The file is read from its
first byte in any case (gzip cannot be entered in the middle): reading, hashing and inflating run
in a thread ahead of the caller (ISA-L and hashlib release the GIL), the bytes before the range are
counted for line numbers and dropped, and reading stops after the range's last row.

- A source read to the end of its file checks the file's size and MD5 against the manifest, and
  counts all its rows; a file that does not end with a newline gets one.
- Rows come out in batches of whole rows (``BATCH_BYTES`` or so), with the line of the file the
  first one is on, and their count by newlines (no CSV parsing here: keys are URL-encoded, so a
  newline always ends a row). Memory is bounded by the batch and the read-ahead, whatever the
  file's size.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from batch_jobs.storage import MissingObjectError, Storage

try:
    from isal import isal_zlib as zlib_impl
except ImportError:  # pragma: no cover - isal ships wheels for every platform the image targets
    import zlib as zlib_impl  # type: ignore[no-redef]

MiB = 1024 * 1024
READ_BLOCK = 1 * MiB
READ_AHEAD = 4
"""Inflated blocks (about 7 MiB each) the reading thread may hold ahead of the caller."""
BATCH_BYTES = 16 * MiB
"""Rows handed to the parser at once: measured as fast as 64 MiB, with a third less memory."""
MAX_ROW_BYTES = 16 * MiB
"""A row longer than this is not an inventory row (no field can hold a newline, and keys are at
most 1,024 bytes): reading stops instead of holding the file in memory looking for its end."""
GZIP_WBITS = 31
_GZIP_ERROR: type[Exception] = zlib_impl.error  # type: ignore[assignment]
_BOM = b"\xef\xbb\xbf"


class SourceError(ValueError):
    """A data file is not what the manifest says: missing, another size or MD5, bad gzip, or a
    byte-order mark. Permanent: the job exits 2 and is not retried."""


@dataclass(frozen=True)
class Source:
    """One entry of a chunk in the run's plan."""

    file: int  # the data file's index in the manifest
    key: str
    size: int
    md5: str
    piece: int = 0
    pieces: int = 1
    start: int = 0
    end: int | None = None  # None: to the end of the file

    @classmethod
    def of(cls, entry: dict[str, Any]) -> Source:
        return cls(**{name: entry[name] for name in cls.__dataclass_fields__})


@dataclass
class SourceStats:
    """What reading a source found, for the part stats and finalize's reconciliation."""

    file: int
    key: str
    piece: int
    pieces: int
    first_line: int = 0  # the file's line of the first row read (0: no row)
    rows: int = 0  # rows read, counted by newlines
    file_rows: int | None = None  # every row of the file, when it was read to its end
    compressed_bytes: int = 0  # read from the file, its beginning included
    verified: bool = False  # read to the end, with the manifest's size and MD5


@dataclass(frozen=True)
class Batch:
    data: bytes  # whole rows, each ending with a newline
    first_line: int
    rows: int


def read_source(
    store: Storage, source: Source, stats: SourceStats, *, batch_bytes: int = BATCH_BYTES
) -> Iterator[Batch]:
    """The source's rows in batches of about ``batch_bytes`` (whole rows: a batch ends at the first
    newline past that size); ``stats`` is filled in as they are read. Each inflated byte is copied
    once, into its batch, and its newlines are counted once."""
    parts: list[bytes] = []  # segments of the next batch
    held = rows = 0  # their bytes and newlines
    open_row = 0  # bytes since the last newline read
    next_line = 0
    for segment, line, newlines in _rows_in_range(store, source, stats, store.uri(source.key)):
        if not next_line:
            next_line = stats.first_line = line
        open_row = len(segment) - segment.rfind(b"\n") - 1 if newlines else open_row + len(segment)
        if open_row > MAX_ROW_BYTES:
            msg = (
                f"{store.uri(source.key)}: line {next_line + rows + newlines} runs past "
                f"{MAX_ROW_BYTES:,} bytes without a newline; an inventory row is a few KB (keys are "
                "at most 1,024 bytes)"
            )
            raise SourceError(msg)
        while held + len(segment) >= batch_bytes and (
            cut := segment.find(b"\n", max(batch_bytes - 1 - held, 0)) + 1
        ):
            head = segment[:cut]
            in_head = head.count(b"\n")
            parts.append(head)
            yield Batch(b"".join(parts), next_line, rows + in_head)
            next_line += rows + in_head
            parts, held, rows = [], 0, 0
            segment, newlines = segment[cut:], newlines - in_head
        if segment:
            parts.append(segment)
            held, rows = held + len(segment), rows + newlines
    if parts:
        yield Batch(b"".join(parts), next_line, rows)


def _rows_in_range(
    store: Storage, source: Source, stats: SourceStats, uri: str
) -> Iterator[tuple[bytes, int, int]]:
    """Segments of the inflated stream holding exactly the rows that start in ``[start, end)``,
    each with the file's line of the range's first row and its own newlines; together they end
    with a newline."""
    start, end = source.start, source.end
    position = 0  # offset of the current block in the inflated stream
    newlines = 0  # in the file before the current block
    first_line = 0  # the line of the range's first row, once found
    head = b""  # the file's first bytes, until there are enough to tell a byte-order mark
    last = b""  # the last byte of the file read so far
    blocks = _background(_inflated(store, source, stats, uri), READ_AHEAD)
    try:
        for block in blocks:
            if len(head) < len(_BOM):
                head += block[: len(_BOM)]
                if start == 0 and head.startswith(_BOM):
                    msg = (
                        f"{uri}: line 1 starts with a UTF-8 byte-order mark, which S3 Inventory never writes"
                    )
                    raise SourceError(msg)
            begin = 0
            if not first_line:  # the first row starting at or after `start` follows a newline
                if start > 0:
                    found = block.find(b"\n", max(start - 1 - position, 0))
                    if found < 0:
                        newlines += block.count(b"\n")
                        position, last = position + len(block), block[-1:]
                        continue
                    begin = found + 1
                first_line = newlines + block.count(b"\n", 0, begin) + 1
                if end is not None and position + begin >= end:
                    return  # no row starts in the range
            stop, done = len(block), False
            if end is not None:  # the range ends with the row that holds byte end - 1
                found = block.find(b"\n", max(end - 1 - position, begin))
                if found >= 0:
                    stop, done = found + 1, True
            segment = block[begin:stop]  # the block itself when it is whole (no copy)
            in_segment = segment.count(b"\n")
            if segment:
                stats.rows += in_segment
                yield segment, first_line, in_segment
            if done:
                return  # the range's last row is read: the rest of the file is not
            newlines += in_segment + (block.count(b"\n", 0, begin) if begin else 0)
            position, last = position + len(block), block[-1:]
        unterminated = last not in (b"", b"\n")  # rows never span files
        if first_line and unterminated:
            stats.rows += 1
            yield b"\n", first_line, 1
        stats.file_rows = newlines + unterminated
    finally:
        blocks.close()


def _inflated(store: Storage, source: Source, stats: SourceStats, uri: str) -> Iterator[bytes]:
    """The file's inflated bytes; at its end, its size, MD5 and gzip are checked (multi-member
    gzip included). A corrupt stream is reported after the whole file was read, so the message can
    also say whether the file matches the manifest's size and MD5."""
    md5 = hashlib.md5(usedforsecurity=False)
    inflate = zlib_impl.decompressobj(GZIP_WBITS)
    member_bytes = 0
    corrupt: str | None = None
    for block in _read(store, source.key, uri):
        stats.compressed_bytes += len(block)
        if stats.compressed_bytes > source.size:
            msg = f"{uri}: size is more than the {source.size} bytes the manifest says"
            raise SourceError(msg)
        md5.update(block)
        data = block
        while data and corrupt is None:
            try:
                out = inflate.decompress(data)
            except _GZIP_ERROR as err:
                offset = stats.compressed_bytes - len(block)
                corrupt = f"corrupt gzip in the {len(block)} compressed bytes from offset {offset} ({err})"
                break
            member_bytes += len(data) - len(inflate.unused_data)
            if out:
                yield out
            if inflate.eof:
                data = inflate.unused_data
                inflate, member_bytes = zlib_impl.decompressobj(GZIP_WBITS), 0
            else:
                data = b""
    also = f"; also, {corrupt}" if corrupt else ""
    if stats.compressed_bytes != source.size:
        msg = f"{uri}: size is {stats.compressed_bytes} bytes but the manifest says {source.size}{also}"
        raise SourceError(msg)
    if md5.hexdigest() != source.md5:
        msg = f"{uri}: MD5 is {md5.hexdigest()} but the manifest says {source.md5}{also}"
        raise SourceError(msg)
    if corrupt:
        msg = f"{uri}: {corrupt}"
        raise SourceError(msg)
    if member_bytes and not inflate.eof:
        msg = f"{uri}: gzip stream is truncated (it ends inside a member, after {stats.compressed_bytes} compressed bytes)"
        raise SourceError(msg)
    stats.verified = True


def _read(store: Storage, key: str, uri: str) -> Iterator[bytes]:
    try:
        body = store.open(key)
    except MissingObjectError as err:
        msg = f"{uri}: data file listed in the manifest does not exist"
        raise SourceError(msg) from err
    try:
        while block := body.read(READ_BLOCK):
            yield block
    finally:
        body.close()


_DONE = object()


class _background:
    """Run a generator in a thread of its own, at most ``ahead`` items in front of the caller;
    its errors re-raise in the caller. ``close`` stops it and closes the generator (and so the
    object it reads) in its own thread."""

    def __init__(self, items: Iterator[Any], ahead: int) -> None:
        self._items = items
        self._handoff: queue.Queue[Any] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="source-reader", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            for item in self._items:
                if self._stop.is_set():
                    break
                self._handoff.put(item)
            else:
                self._handoff.put(_DONE)
        except BaseException as err:
            self._handoff.put(err)
        finally:
            self._items.close()  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[Any]:
        while (item := self._handoff.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                self._handoff.get_nowait()
            except queue.Empty:
                self._thread.join(0.05)
