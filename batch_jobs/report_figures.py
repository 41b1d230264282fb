"""What the storage report shows: every complete run's rollup tables and run report, the changes
between the last two (``batch_jobs/changes.py``, as the ``changes`` command computes them) and the
duplicate candidates of the last (the saved query's rule).

Nothing here recomputes a rollup: the figures are the rollup tables' rows, summed or picked.

``store_figures`` reads them from a destination (the bucket on S3, or run-local's folder, through
``Storage``): a run counts when its ``_COMPLETE`` marker is there and no rerun claimed it since (as
``status`` decides). The rollup tables its marker lists are read (kilobytes a table); the Parquet
parts of the last two runs are fetched into scratch for the changes and duplicate candidates, about
50 MB a million objects, unless they hold more rows than ``changes_max_rows`` (finalize's memory
bounds it on AWS): then the page says they were left out, and how to get them.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl
from botocore.exceptions import BotoCoreError, ClientError

from batch_jobs.changes import (
    DuplicateCandidates,
    KindTotals,
    duplicate_candidates,
    fields_differ,
    totals,
    write_changes,
)
from batch_jobs.run import claimed_since, run_days
from batch_jobs.storage import MissingObjectError, Storage, maybe_json
from batch_jobs.units import human
from inventory_contract.layout import REPORTS_ROOT, RunLayout
from inventory_contract.prices import INTELLIGENT_TIERING
from inventory_contract.rollups import DELETE_MARKER, PREFIX, ROLLUPS

UNREADABLE = (MissingObjectError, ClientError, BotoCoreError, pl.exceptions.PolarsError, OSError, ValueError)
"""What reading a run's files may raise: gone, refused, cut short, or not Parquet. The run (or its
changes) is left out of the page, saying why, rather than the page not written."""


class NoRunsError(LookupError):
    """The destination holds no run of the source bucket."""


@dataclass(frozen=True)
class RunFigures:
    """One complete run: its run report and its rollup tables' rows (bytes as Python ints)."""

    run_date: str
    report: dict[str, Any]
    rollups: dict[str, list[dict[str, Any]]]  # the small tables: storage class, age, encryption
    prefix: pl.DataFrame | None = None  # the prefix rollup (depth, prefix, bytes): the last two runs only

    def stored_by_class(self) -> dict[str, tuple[int, int]]:
        """(objects, bytes) of stored versions (current and noncurrent) per storage class."""
        found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for row in self.rollups["storage_class"]:
            if row["version_kind"] != DELETE_MARKER:
                cell = found[row["storage_class"] or "(none)"]
                cell[0] += row["objects"]
                cell[1] += row["bytes"] or 0
        return {name: (o, b) for name, (o, b) in found.items()}

    def tiering(self) -> dict[str | None, int]:
        """Bytes of stored Intelligent-Tiering versions by access tier (None: not in the inventory,
        or a table written before the rollup had the tier)."""
        found: dict[str | None, int] = defaultdict(int)
        for row in self.rollups["storage_class"]:
            if row["version_kind"] != DELETE_MARKER and row["storage_class"] == INTELLIGENT_TIERING:
                found[row.get("intelligent_tiering_access_tier")] += row["bytes"] or 0
        return dict(found)

    def by_version_kind(self) -> dict[str, tuple[int, int]]:
        found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for row in self.rollups["storage_class"]:
            cell = found[row["version_kind"]]
            cell[0] += row["objects"]
            cell[1] += row["bytes"] or 0
        return {kind: (o, b) for kind, (o, b) in found.items()}

    @property
    def depths(self) -> list[int]:
        if self.prefix is None:
            return []
        return sorted(self.prefix.get_column("depth").unique().to_list())


HISTORY_RUNS = 60
"""Complete runs the page shows (about two months of daily runs): a year of them would make a page
of 1.5 MB. The earlier ones are counted on the page; their rollup tables stay in the bucket."""
TOP_PREFIXES = 12
"""Prefixes shown per depth; the others are one row, "other (N prefixes)", never left out."""


@dataclass(frozen=True)
class PrefixRow:
    label: str
    bytes: int
    change: int | None  # since the previous run; None without one
    kind: str = "prefix"  # "prefix", "new" (not in the previous run), "rest" or "gone"


def prefix_rows(
    run: RunFigures, previous: RunFigures | None, depth: int, most: int = TOP_PREFIXES
) -> list[PrefixRow]:
    """The ``most`` largest prefixes at ``depth``, then the rest summed, then the prefixes the
    previous run had and this one has not (their bytes gone): the changes add up to the bucket's.
    Computed with Polars, so a rollup of millions of distinct prefixes stays a table."""
    now = _at(run, depth)
    before = _at(previous, depth) if previous is not None and previous.prefix is not None else None
    ordered = now.sort(["bytes", "prefix"], descending=[True, False], nulls_last=True)
    shown, rest = ordered.head(most), ordered.slice(most)
    if before is None:
        rows = [PrefixRow(p or "(top level)", b, None) for p, b in shown.iter_rows()]
    else:
        joined = shown.join(
            before.rename({"bytes": "before"}), on="prefix", how="left", maintain_order="left"
        )
        rows = [
            PrefixRow(p or "(top level)", b, b - (was or 0), "prefix" if was is not None else "new")
            for p, b, was in joined.iter_rows()
        ]
    if rest.height:
        size = int(rest.get_column("bytes").sum())
        was = (
            None
            if before is None
            else int(before.join(rest, on="prefix", how="semi").get_column("bytes").sum())
        )
        rows.append(
            PrefixRow(f"other ({rest.height:,} prefixes)", size, None if was is None else size - was, "rest")
        )
    if before is not None:
        gone = before.join(now, on="prefix", how="anti")
        if gone.height:
            lost = int(gone.get_column("bytes").sum())
            rows.append(
                PrefixRow(f"gone since the previous run ({gone.height:,} prefixes)", 0, -lost, "gone")
            )
    return rows


def _at(run: RunFigures, depth: int) -> pl.DataFrame:
    frame = run.prefix if run.prefix is not None else pl.DataFrame(schema=PREFIX_SCHEMA)
    return frame.filter(pl.col("depth") == depth).select("prefix", "bytes")


PREFIX_SCHEMA = pl.Schema({"depth": pl.Int64, "prefix": pl.String, "bytes": pl.Int128})


def prefix_frame(folder: Path) -> pl.DataFrame:
    """A prefix rollup table's depth, prefix and bytes (nulls as 0), as one frame."""
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return pl.DataFrame(schema=PREFIX_SCHEMA)
    frame = pl.read_parquet(files, columns=["depth", "prefix", "bytes"])
    return frame.with_columns(pl.col("bytes").cast(pl.Int128).fill_null(0)).cast(PREFIX_SCHEMA)


@dataclass(frozen=True)
class ReportFigures:
    bucket: str
    runs: list[RunFigures]  # complete runs, oldest first
    not_complete: list[str] = field(default_factory=list)  # "DATE: why", runs left out
    changes: dict[str, KindTotals] | None = None  # between the last two runs
    candidates: DuplicateCandidates | None = None  # of the last run
    changes_left_out: str | None = None  # why the changes and candidates were not computed
    earlier_runs: int = 0  # complete runs before ``runs``, kept but not shown (HISTORY_RUNS)

    @property
    def latest(self) -> RunFigures | None:
        return self.runs[-1] if self.runs else None

    @property
    def previous(self) -> RunFigures | None:
        return self.runs[-2] if len(self.runs) > 1 else None


def rollup_rows(folder: Path) -> list[dict[str, Any]]:
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return []
    frame = pl.read_parquet(files)
    decimals = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Decimal)]
    return frame.with_columns(pl.col(decimals).cast(pl.Int128)).to_dicts()


def read_run(
    day: str, report: dict[str, Any], root: Path, layout: RunLayout, *, with_prefixes: bool
) -> RunFigures:
    """A run's figures from its rollup tables under ``root`` (a folder laid out as the bucket)."""
    small = {r.name: rollup_rows(root / layout.rollup_prefix(r.name)) for r in ROLLUPS if r is not PREFIX}
    prefix = prefix_frame(root / layout.rollup_prefix(PREFIX.name)) if with_prefixes else None
    return RunFigures(day, report, small, prefix)


def changes_between(before: Path, after: Path) -> dict[str, KindTotals]:
    """Raises ``PartsNotComparableError`` when the two runs' parts do not have the compared columns."""
    with tempfile.TemporaryDirectory(prefix="report-changes-") as tmp:
        target = Path(tmp) / "changes.parquet"
        write_changes(before, after, target)
        return totals(target)


def store_figures(
    store: Storage,
    source_bucket: str,
    *,
    progress: Callable[[str], None] = lambda _: None,
    changes_max_rows: int | None = None,
    up_to: str | None = None,
) -> ReportFigures:
    """The figures of ``source_bucket``'s complete runs in ``store`` (up to the run date ``up_to``)."""
    days = [day for day in run_days(store, source_bucket) if up_to is None or day <= up_to]
    if not days:
        root = f"{REPORTS_ROOT}/source_bucket={source_bucket}/"
        msg = f"no run of source bucket {source_bucket!r} in {store.uri(root)}"
        raise NoRunsError(msg)

    def documents(day: str) -> tuple[Any, Any, Any]:
        layout = RunLayout(source_bucket, day)
        keys = (layout.complete_marker_key, layout.run_report_key, layout.claim_key)
        marker, report, claim = (maybe_json(store, key) for key in keys)
        return marker, report, claim

    complete: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    left_out = []
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="report-runs") as pool:  # a year: ~1,100 GETs
        for day, (marker, report, claim) in zip(days, pool.map(documents, days), strict=True):
            if not isinstance(marker, dict) or not isinstance(report, dict):
                left_out.append(f"{day}: not complete (no _COMPLETE marker or run report)")
            elif not isinstance(marker.get("rollups"), dict):
                left_out.append(
                    f"{day}: converted by a version before rollup tables (convert it again to show it)"
                )
            elif claimed_since(claim, marker):
                left_out.append(f"{day}: a rerun claimed it after it completed")
            else:
                complete.append((day, marker, report))
    earlier = max(len(complete) - HISTORY_RUNS, 0)
    complete = complete[earlier:]
    with tempfile.TemporaryDirectory(prefix="report-", dir=store.scratch()) as tmp:
        folder = Path(tmp)
        runs, markers = [], {}
        for index, (day, marker, report) in enumerate(complete):
            layout = RunLayout(source_bucket, day)
            recent = index >= len(complete) - 2  # the page shows prefixes of the last two runs only
            tables = {
                k: size
                for k, size in marker.get("rollups", {}).items()
                if recent or not k.startswith(layout.rollup_prefix(PREFIX.name))
            }
            try:
                _fetch(store, tables, folder)
                runs.append(read_run(day, report, folder, layout, with_prefixes=recent))
            except UNREADABLE as err:
                left_out.append(f"{day}: its rollup tables cannot be read ({err})")
                continue
            markers[day] = marker
        figures = ReportFigures(source_bucket, runs, left_out, earlier_runs=earlier)
        if runs:
            figures = _with_changes(store, figures, markers, folder, progress, changes_max_rows)
    return figures


def _with_changes(
    store: Storage,
    figures: ReportFigures,
    markers: dict[str, dict[str, Any]],
    folder: Path,
    progress: Callable[[str], None],
    changes_max_rows: int | None,
) -> ReportFigures:
    """``figures`` with the changes between its last two runs and the last's duplicate candidates."""
    last_two = [run.run_date for run in figures.runs[-2:]]
    rows = sum(int(markers[day].get("rows") or 0) for day in last_two)
    if changes_max_rows is not None and rows > changes_max_rows:
        why = (
            f"the last {'two runs hold' if len(last_two) == 2 else 'run holds'} {rows:,} rows, more than "
            f"the {changes_max_rows:,} this report's task compares in its memory; `python -m pipeline changes` "
            "computes them from a machine with the disk"
        )
        return replace(figures, changes_left_out=why)
    differ = delivered_fields_differ(store, figures.bucket, last_two)
    if differ:
        return replace(figures, changes_left_out=differ)
    parts = {day: dict(markers[day].get("parts", {})) for day in last_two}
    size = sum(sum(markers[day].get("parts", {}).values()) for day in last_two)
    progress(
        f"fetching the Parquet parts of {', '.join(parts)} ({human(size)}) for the changes and duplicate candidates"
    )
    try:
        for sizes in parts.values():
            _fetch(store, sizes, folder)
        runs = [folder / RunLayout(figures.bucket, day).processed_prefix for day in last_two]
        candidates = duplicate_candidates(runs[-1])
        changes = changes_between(runs[0], runs[1]) if len(runs) == 2 else None
    except UNREADABLE as err:
        return replace(
            figures, changes_left_out=f"the parts of {' and '.join(last_two)} cannot be read ({err})"
        )
    return replace(figures, changes=changes, candidates=candidates)


def delivered_fields_differ(store: Storage, bucket: str, days: list[str]) -> str | None:
    """Why the last two runs cannot be compared, by their plans' delivered fields (the plans expire
    with the run state: without them, ``write_changes`` still finds runs that list version ids
    differently)."""
    plans = [maybe_json(store, RunLayout(bucket, day).plan_key) for day in days]
    if len(days) != 2 or not all(
        isinstance(p, dict) and isinstance(p.get("file_schema"), list) for p in plans
    ):
        return None
    return fields_differ(plans[0]["file_schema"], plans[1]["file_schema"], days[0], days[1])


def _fetch(store: Storage, sizes: dict[str, int], root: Path) -> None:
    """Each key into ``root`` at its key (16 at a time), at the size its run's marker lists: a file
    of another size is a rerun writing it since, and the run's figures are not read from it."""

    def fetch(key: str) -> None:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        store.fetch(key, path)
        if path.stat().st_size != sizes[key]:
            msg = f"{store.uri(key)} is {path.stat().st_size} bytes, not the {sizes[key]} its marker lists: a rerun is writing it"
            raise ValueError(msg)

    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="report-fetch") as pool:
        list(pool.map(fetch, sizes))
