"""The processor: one array child converts one chunk to one Parquet part.

Downloads the chunk, runs one streaming Polars pass that sinks the part to local disk, computes the
part's stats and its partial rollups (``batch_jobs/rollups.py``) from it, and only then uploads the
part (a multipart upload is atomic: no partial object is ever visible at the output key), the
partial rollups, and the stats last. A failure names the chunk, line and value.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from batch_jobs import rollups
from batch_jobs.convert import convert_chunk
from batch_jobs.duplicates import write_partial as write_identities
from batch_jobs.run import JobInputError, Run, load_split_report
from batch_jobs.storage import Storage, write_json
from inventory_contract.jsonlog import JsonLogger
from inventory_contract.rollups import DEFAULT_PREFIX_DEPTH
from inventory_contract.schema import columns_for


@dataclass
class PartStats:
    index: int
    chunk: str
    part: str
    rows: int
    parquet_bytes: int
    size_sum: int | None
    min_last_modified_date: str | None
    max_last_modified_date: str | None
    duration_seconds: float
    duplicates: dict[str, Any] = field(default_factory=dict)


class RunSupersededError(RuntimeError):
    """A rerun of the partition started while this child ran: writing its part would mix runs."""


def source_locator(
    uri: Callable[[str], str], sources: list[dict[str, Any]], chunk_uri: str
) -> Callable[[int], str]:
    """Chunk line -> "DATA-FILE-URI: line N (chunk ... line L)", from the split report."""

    def locate(line: int) -> str:
        first = 1
        for source in sources:
            if line < first + source["rows"]:
                at = source["first_line"] + line - first
                return f"{uri(source['key'])}: line {at} (chunk {chunk_uri} line {line})"
            first += source["rows"]
        return f"{chunk_uri}: line {line}"

    return locate


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
    split_version = store.version(run.layout.split_report_key)
    report = load_split_report(store, run)
    chunk_count = int(report["chunk_count"])
    if not 0 <= index < chunk_count:
        msg = f"chunk index {index} is outside 0..{chunk_count - 1} for {run.manifest_uri}"
        raise JobInputError(msg)
    columns = columns_for(report["file_schema"])
    chunk_key, part_key = run.layout.chunk_key(index), run.layout.part_key(index)
    chunk_uri = store.uri(chunk_key)
    with tempfile.TemporaryDirectory(prefix="chunk-", dir=workdir or store.scratch()) as tmp:
        chunk_path, part_path = Path(tmp) / "chunk.csv", Path(tmp) / "part.parquet"
        store.fetch(chunk_key, chunk_path)
        log.info("chunk fetched", chunk=chunk_uri, bytes=chunk_path.stat().st_size)
        locate = source_locator(store.uri, report["chunks"][index].get("sources", []), chunk_uri)
        stats = convert_chunk(chunk_path, part_path, columns, chunk_uri=chunk_uri, locate=locate)
        aggregates = rollups.partials(part_path, run.layout.run_date, prefix_depth)
        identities = Path(tmp) / "identities.parquet"
        repeats = write_identities(part_path, identities)
        if store.version(run.layout.split_report_key) != split_version:
            msg = (
                f"{run.manifest_uri}: a rerun replaced this run's split while chunk {index} was converted; "
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
            chunk=chunk_key,
            part=part_key,
            parquet_bytes=parquet_bytes,
            duration_seconds=round(time.monotonic() - started, 3),
            duplicates=asdict(repeats),
            **stats,
        )
    write_json(store, run.layout.part_stats_key(index), asdict(result))
    log.info("part written", part=store.uri(part_key), rows=result.rows, seconds=result.duration_seconds)
    return result
