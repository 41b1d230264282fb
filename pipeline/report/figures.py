"""What the storage report shows, read from an output folder: every complete run's rollup tables
and run report, the changes between the last two (``pipeline/changes.py``, as the ``changes``
command computes them) and the duplicate candidates of the last (the saved query's rule).

Nothing here recomputes a rollup: the figures are the rollup tables' rows, summed or picked.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from inventory_contract.layout import RunLayout
from inventory_contract.rollups import DELETE_MARKER, ROLLUPS
from pipeline.changes import (
    DuplicateCandidates,
    KindTotals,
    PartsNotComparableError,
    duplicate_candidates,
    totals,
    write_changes,
)
from pipeline.errors import UsageError
from pipeline.local.status import local_runs


@dataclass(frozen=True)
class RunFigures:
    """One complete run: its run report and its rollup tables' rows (bytes as Python ints)."""

    run_date: str
    report: dict[str, Any]
    rollups: dict[str, list[dict[str, Any]]]

    def stored_by_class(self) -> dict[str, tuple[int, int]]:
        """(objects, bytes) of stored versions (current and noncurrent) per storage class."""
        found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for row in self.rollups["storage_class"]:
            if row["version_kind"] != DELETE_MARKER:
                cell = found[row["storage_class"] or "(none)"]
                cell[0] += row["objects"]
                cell[1] += row["bytes"] or 0
        return {name: (o, b) for name, (o, b) in found.items()}

    def by_version_kind(self) -> dict[str, tuple[int, int]]:
        found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for row in self.rollups["storage_class"]:
            cell = found[row["version_kind"]]
            cell[0] += row["objects"]
            cell[1] += row["bytes"] or 0
        return {kind: (o, b) for kind, (o, b) in found.items()}

    def prefixes(self, depth: int) -> dict[str, int]:
        """Bytes per prefix at ``depth``."""
        return {r["prefix"]: r["bytes"] or 0 for r in self.rollups["prefix"] if r["depth"] == depth}

    @property
    def depths(self) -> list[int]:
        return sorted({r["depth"] for r in self.rollups["prefix"]})


@dataclass(frozen=True)
class ReportFigures:
    bucket: str
    runs: list[RunFigures]  # complete runs, oldest first
    not_complete: list[str] = field(default_factory=list)  # "DATE: why", runs left out
    changes: dict[str, KindTotals] | None = None  # between the last two runs
    candidates: DuplicateCandidates | None = None  # of the last run

    @property
    def latest(self) -> RunFigures | None:
        return self.runs[-1] if self.runs else None

    @property
    def previous(self) -> RunFigures | None:
        return self.runs[-2] if len(self.runs) > 1 else None


def local_figures(out: Path, bucket: str) -> ReportFigures:
    """The figures of ``bucket``'s runs in the local output folder ``out``."""
    if not out.is_dir():
        msg = f"OUT {out} {'is a file' if out.exists() else 'does not exist'}; give the folder run-local or demo wrote"
        raise UsageError(msg)
    statuses = [s for s in local_runs(out) if s.source_bucket == bucket]
    if not statuses:
        found = sorted({s.source_bucket for s in local_runs(out)})
        msg = f"no run of source bucket {bucket!r} in {out}" + (
            f" (it holds runs of {', '.join(found)})" if found else "; convert a delivery into it first"
        )
        raise UsageError(msg)
    runs, left_out = [], []
    for status in sorted(statuses, key=lambda s: s.run_date):
        if status.state != "complete":
            left_out.append(f"{status.run_date}: {status.state}, {status.detail}")
            continue
        layout = RunLayout(bucket, status.run_date)
        report = json.loads((out / layout.run_report_key).read_text())
        tables = {r.name: rollup_rows(out / layout.rollup_prefix(r.name)) for r in ROLLUPS}
        runs.append(RunFigures(status.run_date, report, tables))
    changes = candidates = None
    if runs:
        last = out / RunLayout(bucket, runs[-1].run_date).processed_prefix
        candidates = duplicate_candidates(last)
        if len(runs) > 1:
            before = out / RunLayout(bucket, runs[-2].run_date).processed_prefix
            changes = changes_between(before, last)
    return ReportFigures(bucket, runs, left_out, changes, candidates)


def rollup_rows(folder: Path) -> list[dict[str, Any]]:
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return []
    frame = pl.read_parquet(files)
    decimals = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Decimal)]
    return frame.with_columns(pl.col(decimals).cast(pl.Int128)).to_dicts()


def changes_between(before: Path, after: Path) -> dict[str, KindTotals]:
    with tempfile.TemporaryDirectory(prefix="report-changes-") as tmp:
        target = Path(tmp) / "changes.parquet"
        try:
            write_changes(before, after, target)
        except PartsNotComparableError as err:
            raise UsageError(str(err)) from err
        return totals(target)
