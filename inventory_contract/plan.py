"""Which rows of which delivered data files each processor child reads: the run's plan.

A run is N chunks; processor child ``i`` converts chunk ``i``. A chunk is a list of shares of the
manifest's data files, read by the child straight from the delivery (nothing is copied first):

- a whole data file, or
- one of ``pieces`` consecutive row ranges of a file too large to balance whole. Piece ``p`` holds
  the rows whose first byte lies in ``[start, end)`` of the file's inflated stream (the last piece
  has no end). The child inflates the file from its beginning, skips to its range and stops after
  it: no copy of the file is written, and each row belongs to exactly one piece wherever the
  offsets fall, since only a row's first byte decides.

``plan_chunks`` is one pure function of the files' compressed sizes and the target chunk size, so
the trigger, which submits N children, and the splitter, which writes the plan, always agree.
Whole files are packed by bytes, largest first, each into the chunk holding the fewest bytes (LPT);
a file is cut only when the largest chunk would otherwise hold more than ``BALANCE`` times the
mean. ``piece_offsets`` places the cuts; they only balance, so an estimate of the inflated size is
enough.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

from inventory_contract.jobs import MAX_ARRAY_SIZE

DEFAULT_TARGET_CHUNK_MIB = 1024
"""The stack's default ``targetChunkMib``: a child's memory does not grow with its chunk (it
streams), so a chunk is sized for time and cost: about 7.5 GB of CSV, half a minute of work on 2
vCPU beside the minute a Fargate task takes to start (docs/scaling.md)."""
BALANCE = 1.5
"""The largest chunk may hold this many times the mean chunk's bytes before a file is cut."""
_SINGLE_CUTS = 8
"""Cuts tried one at a time (the largest piece in two) before every large file is cut at once."""


@dataclass(frozen=True, order=True)
class Share:
    """What one chunk reads of data file ``file`` (an index into the manifest's files): all of
    it when ``pieces`` is 1, else piece ``piece`` (0-based) of ``pieces``."""

    file: int
    piece: int = 0
    pieces: int = 1

    @property
    def whole(self) -> bool:
        return self.pieces == 1

    @property
    def last(self) -> bool:
        """The piece that reads the file to its end, and so checks its size and MD5."""
        return self.piece == self.pieces - 1


@dataclass(frozen=True)
class ChunkPlan:
    chunks: tuple[tuple[Share, ...], ...]

    @property
    def count(self) -> int:
        return len(self.chunks)

    @property
    def pieces(self) -> dict[int, int]:
        """Cut files -> how many pieces."""
        return {s.file: s.pieces for chunk in self.chunks for s in chunk if not s.whole}


def chunk_count(total_bytes: int, target_chunk_bytes: int) -> int:
    """How many chunks the target asks for: one per ``target_chunk_bytes`` of compressed data, at
    least 1 and at most 10,000 (an array job's limit; past it, chunks grow instead)."""
    if target_chunk_bytes <= 0:
        msg = f"target chunk size must be positive, got {target_chunk_bytes}"
        raise ValueError(msg)
    wanted = -(-total_bytes // target_chunk_bytes)  # ceiling division
    return min(max(wanted, 1), MAX_ARRAY_SIZE)


def plan_chunks(sizes: Sequence[int], target_chunk_bytes: int) -> ChunkPlan:
    """The chunks for data files of these compressed ``sizes`` (in the manifest's order).

    About ``chunk_count(sum(sizes), target_chunk_bytes)`` chunks, none empty unless the delivery
    has no data file (one empty chunk: a part of zero rows), the largest at most ``BALANCE`` times
    the mean. Whole files first: with the target's count, else with a count near it that whole
    files of about equal size fill evenly (one, two, three or four to a chunk), up to twice the
    target's and down to chunks of ``BALANCE`` times the target. Only when
    neither balances are files cut, as few as that needs: the largest piece in two, a few times,
    then every file larger than half the mean into pieces of at most half the mean, which LPT is
    known to balance (its largest chunk is at most the mean plus its largest piece).
    """
    if any(size < 0 for size in sizes):
        msg = f"data file sizes must not be negative, got {min(sizes)}"
        raise ValueError(msg)
    total = sum(sizes)
    n = chunk_count(total, target_chunk_bytes)
    if not sizes or total == 0:
        return ChunkPlan((tuple(Share(i) for i in range(len(sizes))),))
    whole = [1] * len(sizes)
    fewest = math.ceil(total / (BALANCE * target_chunk_bytes))  # no chunk beyond BALANCE x the target
    for count in _counts_to_try(n, len(sizes), fewest):
        bins, largest = _pack(sizes, whole, count)
        if largest <= BALANCE * total / count:
            return _plan(bins)
    mean = total / n
    limit = BALANCE * mean
    pieces = [max(1, math.ceil(size / limit)) for size in sizes]  # a file alone above the limit
    for attempt in range(_SINGLE_CUTS + 1):
        bins, largest = _pack(sizes, pieces, n)
        if largest <= limit:
            return _plan(bins)
        if attempt < _SINGLE_CUTS:
            biggest = max(range(len(sizes)), key=lambda i: (sizes[i] / pieces[i], -i))
            pieces[biggest] += 1
    half = mean * (BALANCE - 1)
    pieces = [max(p, math.ceil(size / half)) for p, size in zip(pieces, sizes, strict=True)]
    bins, _ = _pack(sizes, pieces, n)
    return _plan(bins)


def _counts_to_try(n: int, files: int, fewest: int) -> list[int]:
    """The target's count, then the counts that put 1 to 4 whole files in each chunk, nearest
    first: at most twice the target's, and never so few that a chunk would hold more than
    ``BALANCE`` times the target (so no fewer children than the target asks for, within that)."""
    natural = {-(-files // per) for per in range(1, 5)}
    near = [c for c in natural if max(fewest, 1) <= c <= min(2 * n, MAX_ARRAY_SIZE) and c != n]
    return [n, *sorted(near, key=lambda c: (abs(math.log(c / n)), c))]


def _pack(sizes: Sequence[int], pieces: list[int], n: int) -> tuple[list[list[Share]], float]:
    """LPT: shares largest first, each into the chunk with the fewest bytes (ties: lowest index)."""
    shares = sorted(
        (Share(i, p, k) for i, k in enumerate(pieces) for p in range(k)),
        key=lambda s: (-sizes[s.file] / s.pieces, s.file, s.piece),
    )
    heap = [(0.0, index) for index in range(n)]
    bins: list[list[Share]] = [[] for _ in range(n)]
    for share in shares:
        load, index = heapq.heappop(heap)
        bins[index].append(share)
        heapq.heappush(heap, (load + sizes[share.file] / share.pieces, index))
    return bins, max(load for load, _ in heap)


def _plan(bins: list[list[Share]]) -> ChunkPlan:
    """Non-empty chunks, each reading its shares in the manifest's order, ordered by their first."""
    chunks = sorted(tuple(sorted(b)) for b in bins if b)
    return ChunkPlan(tuple(chunks))


def piece_offsets(inflated_size: int, pieces: int) -> list[tuple[int, int | None]]:
    """``[start, end)`` of each piece in a file's inflated stream (the last piece has no end),
    equal shares of an estimate of its inflated size."""
    if pieces < 1:
        msg = f"pieces must be at least 1, got {pieces}"
        raise ValueError(msg)
    starts = [inflated_size * p // pieces for p in range(pieces)]
    return [(start, starts[p + 1] if p + 1 < pieces else None) for p, start in enumerate(starts)]


def check_plan(plan: ChunkPlan, file_count: int) -> list[str]:
    """What is wrong with a plan for a delivery of ``file_count`` data files: every file must be
    read exactly once, whole by one chunk or as all of its pieces, each piece by one chunk."""
    problems = []
    seen: dict[int, list[Share]] = {}
    for chunk in plan.chunks:
        for share in chunk:
            seen.setdefault(share.file, []).append(share)
    for index in range(file_count):
        shares = sorted(seen.pop(index, []))
        if not shares:
            problems.append(f"data file {index} is read by no chunk")
            continue
        pieces = {s.pieces for s in shares}
        expected = [Share(index, p, shares[0].pieces) for p in range(shares[0].pieces)]
        if len(pieces) != 1 or shares != expected:
            read = ", ".join(f"piece {s.piece + 1} of {s.pieces}" for s in shares)
            problems.append(f"data file {index} is not read exactly once: {read}")
    problems += [
        f"the plan reads data file {index}, which the manifest does not list" for index in sorted(seen)
    ]
    return problems
