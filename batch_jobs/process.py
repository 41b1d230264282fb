"""The processor: one array child converts one chunk of the plan to one Parquet part.

Reads its sources straight from the delivery (``batch_jobs/source.py``: whole data files or pieces
of one, size and MD5 checked where a file is read to its end, rows counted by newlines), parses
and types them batch by batch, and streams the part to local disk (``batch_jobs/convert.py``); no
copy of the input is written anywhere. Then it computes the part's stats and its partial rollups
(``batch_jobs/rollups.py``) and only then uploads the part (atomic: no partial object is ever
visible at the output key), the partial rollups, and the stats last. A failure names the data
file, its line and the value.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from batch_jobs import rollups
from batch_jobs.convert import parse_batch, write_part
from batch_jobs.duplicates import write_partial as write_identities
from batch_jobs.run import JobInputError, Run, load_plan
from batch_jobs.source import Source, SourceStats, read_source
from batch_jobs.storage import Storage, write_json
from inventory_contract.jsonlog import JsonLogger
from inventory_contract.rollups import DEFAULT_PREFIX_DEPTH
from inventory_contract.schema import columns_for

PROGRESS_ENV = "S3INV_PROGRESS_SECONDS"
"""How often a child logs its progress, in seconds (default 10; ``run-local`` asks for every 2)."""


@dataclass
class PartStats:
    index: int
    part: str
    rows: int  # in the Parquet part, read back from it
    rows_counted: int  # newlines in the sources' ranges, counted as they were read
    parquet_bytes: int
    size_sum: int | None
    min_last_modified_date: str | None
    max_last_modified_date: str | None
    duration_seconds: float
    sources: list[dict[str, Any]] = field(default_factory=list)
    duplicates: dict[str, Any] = field(default_factory=dict)


class RunSupersededError(RuntimeError):
    """A rerun of the partition started while this child ran: writing its part would mix runs."""


def process(
    store: Storage,
    run: Run,
    index: int,
    *,
    log: JsonLogger,
    prefix_depth: int = DEFAULT_PREFIX_DEPTH,
    workdir: Path | None = None,
) -> PartStats:
    started = time.monotonic()
    plan_version = store.version(run.layout.plan_key)
    plan = load_plan(store, run)
    chunk_count = int(plan["chunk_count"])
    if not 0 <= index < chunk_count:
        msg = f"chunk index {index} is outside 0..{chunk_count - 1} for {run.manifest_uri}"
        raise JobInputError(msg)
    columns = columns_for(plan["file_schema"])
    sources = [Source.of(entry) for entry in plan["chunks"][index]["sources"]]
    part_key = run.layout.part_key(index)
    read: list[SourceStats] = []
    progress = _Progress(log, index, sources, read)

    def frames() -> Iterator[pl.DataFrame]:
        for source in sources:
            stats = SourceStats(source.file, source.key, source.piece, source.pieces)
            read.append(stats)
            uri = store.uri(source.key)
            for batch in read_source(store, source, stats):
                yield parse_batch(batch, columns, uri=uri)
                progress.maybe_log()

    with tempfile.TemporaryDirectory(prefix="part-", dir=workdir or store.scratch()) as tmp:
        part_path = Path(tmp) / "part.parquet"
        stats = write_part(frames(), part_path, columns)
        progress.log_now("part converted")  # what comes next, rollups and identities, takes a while too
        aggregates = rollups.partials(part_path, run.layout.run_date, prefix_depth)
        identities = Path(tmp) / "identities.parquet"
        repeats = write_identities(part_path, identities)
        if store.version(run.layout.plan_key) != plan_version:
            msg = (
                f"{run.manifest_uri}: a rerun replaced this run's plan while chunk {index} was converted; "
                "its part is not written"
            )
            raise RunSupersededError(msg)
        parquet_bytes = part_path.stat().st_size
        store.store(part_path, part_key)
        for name, frame in aggregates.items():  # before the stats: finalize reads them once the stats exist
            partial = Path(tmp) / f"{name}.parquet"
            frame.write_parquet(partial)
            store.store(partial, run.layout.rollup_partial_key(name, index))
        store.store(identities, run.layout.identity_partial_key(index))
        result = PartStats(
            index=index,
            part=part_key,
            rows_counted=sum(s.rows for s in read),
            parquet_bytes=parquet_bytes,
            duration_seconds=round(time.monotonic() - started, 3),
            sources=[asdict(s) for s in read],
            duplicates=asdict(repeats),
            **stats,
        )
    write_json(store, run.layout.part_stats_key(index), asdict(result))
    log.info("part written", part=store.uri(part_key), rows=result.rows, seconds=result.duration_seconds)
    return result


class _Progress:
    """``process progress`` lines: rows and compressed bytes read so far, and the rate; then one
    ``part converted`` line when every row is in the part."""

    def __init__(self, log: JsonLogger, index: int, sources: list[Source], read: list[SourceStats]) -> None:
        self._log, self._index, self._read = log, index, read
        self._total = sum(s.size for s in sources)
        self._sources = len(sources)
        self._started = self._last = time.monotonic()
        self._every = float(os.environ.get(PROGRESS_ENV, "10"))  # read per job: a warm process imports first

    def maybe_log(self) -> None:
        if time.monotonic() - self._last >= self._every:
            self.log_now("process progress")

    def log_now(self, message: str) -> None:
        now = time.monotonic()
        self._last = now
        rows = sum(s.rows for s in self._read)
        self._log.info(
            message,
            chunk=self._index,
            rows=rows,
            rows_per_s=round(rows / max(now - self._started, 1e-9)),
            compressed_bytes_done=sum(s.compressed_bytes for s in self._read),
            compressed_bytes_total=self._total,
            sources_done=max(len(self._read) - 1, 0) if message == "process progress" else len(self._read),
            sources=self._sources,
            seconds=round(now - self._started, 1),
        )
