"""The splitter: check the delivery, then write the run's plan; it copies no data.

- Retires an earlier run of the partition first (a forced rerun): its completion marker, report and
  rollup tables, and the parts it wrote beyond this run's chunk count.
- Checks that every data file the manifest lists exists at its size (one HEAD each, in parallel),
  so a delivery with a file missing fails here, naming it, before the array starts.
- Plans the chunks with ``inventory_contract.plan.plan_chunks`` (the function the trigger used to
  submit N children) and checks the count against ``--chunks``. For a file cut into pieces, the
  pieces' offsets in its inflated stream come from its gzip trailer (ISIZE, a 4-byte ranged GET),
  which gives the inflated size modulo 4 GiB, closest to an estimate from its compressed size.
- Writes the plan (``run-state/.../plan.json``) last, only on success: the processors require it.
  Each child then reads its sources from the delivery itself (``batch_jobs/source.py``).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from batch_jobs.run import JobInputError, Run, newer_marked_run
from batch_jobs.source import SourceError
from batch_jobs.storage import MissingObjectError, Storage, write_json
from inventory_contract.jsonlog import JsonLogger
from inventory_contract.manifest import DataFile
from inventory_contract.plan import piece_offsets, plan_chunks
from inventory_contract.rollups import ROLLUPS

INFLATION_ESTIMATE = 7.5
"""Inflated / compressed bytes of an inventory data file with every optional field (measured:
7.4); used only to pick the inflated size from a gzip trailer, which holds it modulo 4 GiB."""
_ISIZE_WRAP = 2**32


def split(
    store: Storage, run: Run, chunks: int, *, target_chunk_bytes: int, log: JsonLogger
) -> dict[str, Any]:
    if chunks < 1:
        msg = f"--chunks must be at least 1, got {chunks}"
        raise ValueError(msg)
    started = time.monotonic()
    files = run.manifest.files
    plan = plan_chunks([f.size for f in files], target_chunk_bytes)
    if plan.count != chunks:
        msg = (
            f"{run.manifest_uri}: the plan has {plan.count} chunks at {target_chunk_bytes} bytes a chunk, "
            f"but the job was given --chunks {chunks} (the trigger planned with another target?)"
        )
        raise JobInputError(msg)
    retired = retire_earlier_run(store, run, chunks)
    if retired:
        log.info("retired an earlier run of this partition", objects=len(retired), first=retired[0])
    check_data_files(store, files)
    cut = plan.pieces
    inflated = dict(zip(cut, _inflated_sizes(store, [files[i] for i in cut]), strict=True))
    offsets = {i: piece_offsets(inflated[i], pieces) for i, pieces in cut.items()}
    document = {
        "manifest": run.manifest_uri,
        "source_bucket": run.delivery.source_bucket,
        "run_date": run.delivery.run_date,
        "file_schema": list(run.manifest.file_schema),
        "target_chunk_bytes": target_chunk_bytes,
        "chunk_count": plan.count,
        "compressed_bytes": run.manifest.total_size,
        "files": [
            {"key": f.key, "size": f.size, "md5": f.md5, "pieces": cut.get(i, 1)} for i, f in enumerate(files)
        ],
        "chunks": [
            {
                "index": index,
                "compressed_bytes": sum(files[s.file].size // s.pieces for s in shares),
                "sources": [
                    {
                        "file": s.file,
                        "key": files[s.file].key,
                        "size": files[s.file].size,
                        "md5": files[s.file].md5,
                        "piece": s.piece,
                        "pieces": s.pieces,
                        "start": offsets[s.file][s.piece][0] if s.file in offsets else 0,
                        "end": offsets[s.file][s.piece][1] if s.file in offsets else None,
                    }
                    for s in shares
                ],
            }
            for index, shares in enumerate(plan.chunks)
        ],
        "duration_seconds": round(time.monotonic() - started, 3),
    }
    write_json(store, run.layout.plan_key, document)
    log.info(
        "plan written",
        chunks=plan.count,
        files=len(files),
        cut_files=len(cut),
        compressed_bytes=run.manifest.total_size,
        seconds=document["duration_seconds"],
    )
    return document


def check_data_files(store: Storage, files: tuple[DataFile, ...]) -> None:
    """Every data file exists at the manifest's size (its MD5 is checked as a child reads it)."""

    def size(data_file: DataFile) -> int | None:
        try:
            return store.size(data_file.key)
        except MissingObjectError:
            return None

    with ThreadPoolExecutor(max_workers=32, thread_name_prefix="head") as pool:
        found = list(pool.map(size, files))
    for data_file, actual in zip(files, found, strict=True):
        uri = store.uri(data_file.key)
        if actual is None:
            msg = f"{uri}: data file listed in the manifest does not exist"
            raise SourceError(msg)
        if actual != data_file.size:
            msg = f"{uri}: size is {actual} bytes but the manifest says {data_file.size}"
            raise SourceError(msg)


def _inflated_sizes(store: Storage, files: list[DataFile]) -> list[int]:
    """Each file's inflated size, from its gzip trailer (modulo 4 GiB) nearest the estimate."""

    def inflated(data_file: DataFile) -> int:
        estimate = int(data_file.size * INFLATION_ESTIMATE)
        if data_file.size < 18:  # not even a gzip header and trailer: the read says why
            return estimate
        isize = int.from_bytes(store.tail(data_file.key, 4), "little")
        wraps = max(round((estimate - isize) / _ISIZE_WRAP), 0)
        return isize + wraps * _ISIZE_WRAP

    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="isize") as pool:
        return list(pool.map(inflated, files))


def retire_earlier_run(store: Storage, run: Run, chunks: int) -> list[str]:
    """Before a rerun writes anything: delete the earlier run's completion marker, report, rollup
    tables and storage report (the partition is being rewritten; ``latest.html`` too when no
    complete run is newer), and its parts, part stats and partial rollups beyond this run's
    ``chunks``, which nothing would overwrite. Returns the deleted keys, the marker first."""
    layout = run.layout
    keep = {
        key
        for i in range(chunks)
        for key in (
            layout.part_key(i),
            layout.part_stats_key(i),
            layout.identity_partial_key(i),
            *(layout.rollup_partial_key(r.name, i) for r in ROLLUPS),
        )
    }
    prefixes = (
        layout.reports_prefix,
        layout.storage_report_key,  # its page: the run it shows is being replaced
        layout.processed_prefix,
        layout.part_stats_prefix,
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
    # latest.html showed this run unless a later day has a marker (a listing: split reads no
    # marker); decided on every attempt, so a retry after a failure here still removes it
    latest = layout.latest_storage_report_key
    if newer_marked_run(store, layout) is None and any(k == latest for k, _ in store.list(latest)):
        store.delete(latest)  # the rerun's finalize writes it again
        stale.append(latest)
    return stale
