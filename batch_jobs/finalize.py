"""The finalize job: after every processor child succeeded, prove the run is whole, then mark it.

Reconciles the plan with the manifest and with each part's stats and object:
- the plan reads every data file of the manifest exactly once (whole, or as all its pieces), at the
  manifest's key, size and MD5;
- each part is present at the size its stats say, and its child read exactly its chunk's sources;
- each data file was read to its end, with its size and MD5 checked, by the child that read it
  whole or its last piece, and a cut file's pieces hold all its rows, as that child counted them;
- rows counted by newlines as they were read = rows in the part, for every chunk; rows in = rows out.
On success it writes the run report and the ``_COMPLETE`` marker under ``run-reports/`` (outside
the table's location), then the storage report of the runs up to this one
(``batch_jobs/storage_report.py``); on a mismatch it writes the run report with the problems, naming the data
file and the chunk, and fails with the numbers.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batch_jobs import duplicates, rollups
from batch_jobs.run import Run, load_plan
from batch_jobs.storage import MissingObjectError, S3Storage, Storage, read_json, write_json
from batch_jobs.storage_report import write_storage_report
from inventory_contract.jsonlog import JsonLogger
from inventory_contract.listing import INVENTORY, inventory_kind
from inventory_contract.plan import ChunkPlan, Share, check_plan
from inventory_contract.rollups import ROLLUPS


class ReconciliationError(RuntimeError):
    """The run's parts do not add up to its input; the message gives the numbers. Not bad input:
    a bug, or another run writing the same partition; a retry would find the same."""


@dataclass
class RunReport:
    manifest: str
    source_bucket: str
    run_date: str
    status: str
    chunks: int
    rows_in: int
    rows_out: int
    size_sum: int
    parquet_bytes: int
    min_last_modified_date: str | None
    max_last_modified_date: str | None
    finished_at: str
    inventory_kind: str = INVENTORY
    """``s3-inventory`` for a delivery of S3 Inventory, ``listing`` for one a listing wrote."""
    rollups: dict[str, Any] = field(default_factory=dict)
    duplicates: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def finalize(store: Storage, run: Run, chunks: int, *, log: JsonLogger) -> RunReport:
    report = load_plan(store, run)
    if int(report["chunk_count"]) != chunks:
        msg = f"the plan has {report['chunk_count']} chunks but the job was given --chunks {chunks}"
        raise ReconciliationError(msg)
    _step(log, f"checking the plan and the {chunks} part(s) against the manifest")
    problems: list[str] = plan_problems(report, run)
    parts, rows_in = [], 0  # rows in: as each child counted them, its part there or not
    objects = dict(store.list(run.layout.processed_prefix))  # one listing, not a request per part
    for chunk in report["chunks"]:
        index = chunk["index"]
        stats_key = run.layout.part_stats_key(index)
        size = objects.pop(run.layout.part_key(index), None)
        try:
            stats = read_json(store, stats_key)
        except MissingObjectError:
            problems.append(f"part {index}: missing (no stats at {stats_key})")
            continue
        rows_in += int(stats["rows_counted"])
        if size is None:
            problems.append(f"part {index}: missing ({run.layout.part_key(index)} does not exist)")
            continue
        if size != stats["parquet_bytes"]:
            problems.append(
                f"part {index}: object is {size} bytes but its stats say {stats['parquet_bytes']}"
            )
        problems += chunk_problems(chunk, stats)
        parts.append(stats)
    problems += [
        f"unexpected object {key}: not written by this run; Athena would read it" for key in sorted(objects)
    ]
    if not problems:
        problems += file_problems(report, parts)
    rows_out = sum(p["rows"] for p in parts)
    if rows_in != rows_out:
        problems.append(f"rows in = {rows_in} but rows out = {rows_out} (difference {rows_out - rows_in:+d})")
    size_sum = sum(p.get("size_sum") or 0 for p in parts)
    with tempfile.TemporaryDirectory(prefix="rollups-", dir=store.scratch()) as tmp:
        merged: dict[str, list[Path]] = {}
        if not problems:  # every part is there: merge their rollups, check them against the rows
            _step(log, f"merging the rollups of {len(parts)} part(s)")
            merged = _merge_rollups(store, run, chunks, Path(tmp), problems)
        if merged:
            problems += rollups.reconcile(merged, rows=rows_out, size_sum=size_sum)
        if not problems:
            _step(log, f"looking for objects listed more than once among {rows_out:,} rows")
        repeats = _repeated_objects(store, run, report, parts, Path(tmp), problems) if not problems else None
        rollup_summary = rollups.summary(merged) if merged else {}
        rollup_files = {
            run.layout.rollup_key(name, index): path
            for name, paths in merged.items()
            for index, path in enumerate(paths)
        }
        rollup_sizes = {key: path.stat().st_size for key, path in rollup_files.items()}
        if not problems:
            _step(log, f"storing {len(rollup_files)} rollup table(s), then the run report and the marker")
            for key, path in rollup_files.items():
                store.store(path, key)
    dates_min = [p["min_last_modified_date"] for p in parts if p.get("min_last_modified_date")]
    dates_max = [p["max_last_modified_date"] for p in parts if p.get("max_last_modified_date")]
    result = RunReport(
        manifest=run.manifest_uri,
        source_bucket=run.delivery.source_bucket,
        run_date=run.delivery.run_date,
        status="failed" if problems else "complete",
        chunks=chunks,
        rows_in=rows_in,
        rows_out=rows_out,
        size_sum=size_sum,
        parquet_bytes=sum(p["parquet_bytes"] for p in parts),
        min_last_modified_date=min(dates_min, default=None),
        max_last_modified_date=max(dates_max, default=None),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        inventory_kind=inventory_kind(run.delivery),
        rollups=rollup_summary,
        duplicates=asdict(repeats) if repeats else {},
        problems=problems,
    )
    write_json(store, run.layout.run_report_key, asdict(result))
    if problems:
        log.error("run does not reconcile", problems=problems, rows_in=rows_in, rows_out=rows_out)
        msg = f"{run.manifest_uri}: the run does not reconcile: " + "; ".join(problems)
        raise ReconciliationError(msg)
    marker = {
        "manifest": run.manifest_uri,
        "run_report": run.layout.run_report_key,
        "rows": rows_out,
        "completed_at": result.finished_at,
        # what a reader needs to know the partition is whole: exactly these parts, at these sizes
        "parts": {run.layout.part_key(p["index"]): p["parquet_bytes"] for p in parts},
        "rollups": rollup_sizes,
    }
    write_json(store, run.layout.complete_marker_key, marker)
    if repeats and repeats.identities:
        log.warning(
            "objects listed more than once", identities=repeats.identities, extra_rows=repeats.extra_rows
        )
    log.info("run complete", rows=rows_out, chunks=chunks, parquet_bytes=result.parquet_bytes, at=time.time())
    if isinstance(store, S3Storage):  # run-local writes it once the run is published beside the others
        write_storage_report(store, run.layout, where=f"s3://{run.bucket}", log=log)
    return result


def _step(log: JsonLogger, step: str) -> None:
    """A ``finalize step`` line: what finalize does next (run-local shows it as progress)."""
    log.info("finalize step", step=step)


def _repeated_objects(
    store: Storage,
    run: Run,
    report: dict[str, Any],
    parts: list[dict[str, Any]],
    tmp: Path,
    problems: list[str],
) -> duplicates.Repeats | None:
    """The identities the run lists more than once, from every child's identity hashes; the chunks
    that share one are named with their data files."""
    folder = tmp / "identities"
    folder.mkdir()

    def fetch(index: int) -> Path | None:
        path = folder / f"{index:06d}.parquet"
        try:
            store.fetch(run.layout.identity_partial_key(index), path)
        except MissingObjectError:
            problems.append(f"part {index}: its identity hashes are missing")
            return None
        return path

    indexes = [int(p["index"]) for p in parts]
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="identities") as pool:
        if store.scratch() is None and not _room_for(store, run, indexes, folder, pool, problems):
            return None
        fetched = list(pool.map(fetch, indexes))
    if any(path is None for path in fetched):
        return None
    per_chunk = [
        duplicates.Repeats(**p["duplicates"]) if p.get("duplicates") else duplicates.Repeats() for p in parts
    ]
    found = duplicates.merge([p for p in fetched if p is not None], indexes, per_chunk)
    files_of = {c["index"]: sorted({s["key"] for s in c.get("sources", [])}) for c in report["chunks"]}
    for shared in found.across_chunks:
        shared["data_files"] = [key for index in shared["chunks"] for key in files_of.get(index, [])][:10]
    return found


def _room_for(
    store: Storage, run: Run, indexes: list[int], folder: Path, pool: ThreadPoolExecutor, problems: list[str]
) -> bool:
    """Whether the task's disk holds every child's identity hashes (16 bytes an object: 16 GB at a
    billion objects, within Fargate's default 20 GiB); if not, the run fails saying so, before a
    download that would fill the disk."""

    def size(index: int) -> int:
        try:
            return store.size(run.layout.identity_partial_key(index))
        except MissingObjectError:
            return 0  # named by the fetch that follows

    needed = sum(pool.map(size, indexes))
    free = shutil.disk_usage(folder).free
    if needed <= free * 0.9:
        return True
    problems.append(
        f"finalize needs {needed / 1e9:.1f} GB of disk for the children's identity hashes but has "
        f"{free / 1e9:.1f} GB free: raise ephemeralStorageGib (stack config) and rerun with --force"
    )
    return False


def plan_problems(plan: dict[str, Any], run: Run) -> list[str]:
    """The plan against the manifest: every data file read exactly once, at its key, size and MD5."""
    files = run.manifest.files
    shares = ChunkPlan(
        tuple(tuple(Share(s["file"], s["piece"], s["pieces"]) for s in c["sources"]) for c in plan["chunks"])
    )
    problems = [f"plan: {problem}" for problem in check_plan(shares, len(files))]
    for chunk in plan["chunks"]:
        for source in chunk["sources"]:
            index = source["file"]
            if not 0 <= index < len(files):
                continue  # check_plan named it
            expected = (files[index].key, files[index].size, files[index].md5)
            if (source["key"], source["size"], source["md5"]) != expected:
                problems.append(
                    f"plan: chunk {chunk['index']} reads {source['key']} ({source['size']} bytes, MD5 "
                    f"{source['md5']}) as data file {index}, which the manifest lists as {expected}"
                )
    return problems


def chunk_problems(chunk: dict[str, Any], stats: dict[str, Any]) -> list[str]:
    """A child's stats against its chunk: it read exactly the chunk's sources, and its part holds
    every row it counted."""
    index = chunk["index"]
    planned = [(s["file"], s["piece"], s["pieces"]) for s in chunk["sources"]]
    read = [(s["file"], s["piece"], s["pieces"]) for s in stats.get("sources", [])]
    if read != planned:
        return [f"part {index}: its child read {read}, but chunk {index} is {planned}"]
    problems = []
    if stats["rows_counted"] != sum(s["rows"] for s in stats["sources"]):
        problems.append(
            f"part {index}: {stats['rows_counted']} rows counted but its sources add up otherwise"
        )
    if stats["rows"] != stats["rows_counted"]:
        what = "extra" if stats["rows"] > stats["rows_counted"] else "lost"
        problems.append(
            f"part {index}: {stats['rows']} rows in the part but {stats['rows_counted']} read from "
            f"{', '.join(s['key'] for s in stats['sources'])} ({what} rows)"
        )
    return problems


def file_problems(plan: dict[str, Any], parts: list[dict[str, Any]]) -> list[str]:
    """Each data file read to its end and checked by one child, and a cut file's pieces holding
    exactly its rows."""
    problems = []
    read: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    for part in parts:
        for source in part["sources"]:
            read.setdefault(source["file"], []).append((part["index"], source))
    for index, entry in enumerate(plan["files"]):
        pieces = sorted(read.get(index, []), key=lambda item: item[1]["piece"])
        last_chunk, last = pieces[-1]
        if not last["verified"]:
            problems.append(
                f"data file {entry['key']}: chunk {last_chunk} did not read it to its end with its size and MD5"
            )
            continue
        counted = sum(source["rows"] for _, source in pieces)
        if counted != last["file_rows"]:
            chunks = sorted({chunk for chunk, _ in pieces})
            problems.append(
                f"data file {entry['key']}: its {len(pieces)} piece(s) in chunks {chunks} hold {counted} rows "
                f"but the file has {last['file_rows']} ({'extra' if counted > last['file_rows'] else 'lost'} rows)"
            )
    return problems


def _merge_rollups(
    store: Storage, run: Run, chunks: int, tmp: Path, problems: list[str]
) -> dict[str, list[Path]]:
    """Every child's partial rollups fetched to ``tmp`` and merged, one or more files per rollup
    (``rollups.merge``); a missing partial is a problem (and nothing is merged)."""
    wanted = [(r.name, i) for r in ROLLUPS for i in range(chunks)]
    (tmp / "partials").mkdir()
    (tmp / "merged").mkdir()

    def fetch(item: tuple[str, int]) -> Path | None:
        name, index = item
        path = tmp / "partials" / f"{name}-{index:06d}.parquet"
        try:
            store.fetch(run.layout.rollup_partial_key(name, index), path)
        except MissingObjectError:
            problems.append(f"part {index}: its {name} rollup is missing")
            return None
        return path

    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="rollups") as pool:
        fetched = dict(zip(wanted, pool.map(fetch, wanted), strict=True))
    if any(path is None for path in fetched.values()):
        return {}
    merged = {}
    for rollup in ROLLUPS:
        paths = [fetched[rollup.name, i] for i in range(chunks)]
        merged[rollup.name] = rollups.merge(rollup, [p for p in paths if p is not None], tmp / "merged")
    return merged
