"""``python -m pipeline status OUT``: the runs in a local output folder (run-local's, demo's or
snapshot's ``--out``), and their state.

A run is found by any of its folders (its Parquet partition, run report, run state or logs) or by
its partition's lock file, which every run-local takes first. Its state:

| state | meaning |
| --- | --- |
| complete | its ``_COMPLETE`` marker and every part and rollup table it lists are there |
| converting | a run-local of that bucket and date holds its lock now (figures: the last complete run's, if any) |
| incomplete | anything else, with why (no marker: interrupted or failed before its first success; a part missing or of another size) |

A failed or interrupted run publishes nothing, so what its folders hold is the last complete run's
or nothing (``pipeline/local/publish.py``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch_jobs.units import human
from inventory_contract.layout import PROCESSED_ROOT, REPORTS_ROOT, STATE_ROOT, RunLayout
from pipeline.local.locks import converting, started
from pipeline.local.publish import why_incomplete
from pipeline.local.run_local import LOGS, logs_of
from pipeline.rollups_view import bytes_by_class


@dataclass
class LocalRunStatus:
    run: str  # SOURCE-BUCKET/YYYY-MM-DD
    source_bucket: str
    run_date: str
    state: str  # complete, converting or incomplete
    detail: str = ""
    kind: str | None = None  # s3-inventory, or listing (snapshot)
    rows: int | None = None
    bytes: int | None = None  # the Size of every row: the bucket's stored bytes, versions included
    parquet_bytes: int | None = None
    largest_class: str | None = None  # the rollup headline: the class holding most bytes, and its share
    largest_prefix: str | None = None  # the top-level prefix holding most bytes, and its share
    manifest: str | None = None
    finished_at: str | None = None


def local_runs(out: Path) -> list[LocalRunStatus]:
    """Every run in ``out``, newest date first."""
    return [_status(out, RunLayout(bucket, day)) for bucket, day in _partitions(out)]


_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _partitions(out: Path) -> list[tuple[str, str]]:
    found = set(started(out))
    for root in (PROCESSED_ROOT, REPORTS_ROOT, STATE_ROOT, LOGS):
        for folder in (out / root).glob("source_bucket=*/run_date=*"):
            day = folder.name.removeprefix("run_date=")
            if folder.is_dir() and _DAY.match(day):
                found.add((folder.parent.name.removeprefix("source_bucket="), day))
    return sorted(found, key=lambda run: (run[1], run[0]), reverse=True)


def _status(out: Path, layout: RunLayout) -> LocalRunStatus:
    run = f"{layout.source_bucket}/{layout.run_date}"
    status = LocalRunStatus(run, layout.source_bucket, layout.run_date, "incomplete")
    marker_path = out / layout.complete_marker_key
    marker = _json(marker_path)
    report = _json(out / layout.run_report_key)
    manifest = marker.get("manifest") if isinstance(marker, dict) else None
    problem = why_incomplete(out, layout, manifest) if manifest else None
    holder = converting(out, layout)
    if holder is not None:
        status.state = "converting"
        status.detail = f"pid {holder.get('pid')} since {holder.get('since')}: {holder.get('manifest')}"
    elif marker is None and marker_path.exists():
        status.detail = f"{marker_path} is unreadable (not JSON): run its delivery again with run-local"
    elif marker is None:
        logs = logs_of(out, layout)
        status.detail = (
            f"no {layout.complete_marker_key}: a run was interrupted or failed, and none completed"
            + (f" (its logs: {logs})" if logs.is_dir() else "")
            + "; run its delivery again with run-local"
        )
    elif manifest is None or problem:
        status.detail = problem or f"{out / layout.complete_marker_key} names no manifest"
    else:
        status.state = "complete"
    if isinstance(report, dict) and report.get("manifest") == manifest and manifest:
        _add_report(status, report)
    return status


def _add_report(status: LocalRunStatus, report: dict[str, Any]) -> None:
    status.kind = report.get("inventory_kind")
    status.rows = report.get("rows_out")
    status.bytes = report.get("size_sum")
    status.parquet_bytes = report.get("parquet_bytes")
    status.manifest = report.get("manifest")
    status.finished_at = report.get("finished_at")
    rollups = report.get("rollups") or {}
    total = sum(bytes_by_class(rollups).values())
    if total:
        name, size = next(iter(bytes_by_class(rollups).items()))
        status.largest_class = f"{name} {human(size)} ({size / total:.0%})"
        prefixes = rollups.get("largest_prefixes") or []
        if prefixes:
            top = prefixes[0]
            status.largest_prefix = (
                f"{top['prefix'] or '(top level)'} {human(top['bytes'])} ({top['bytes'] / total:.0%})"
            )


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def render(out: Path, runs: list[LocalRunStatus]) -> str:
    if not runs:
        return f"no runs in {out}: convert a delivery into it with run-local (or demo, snapshot)"
    lines = [
        f"{'run':<44} {'state':<11} {'kind':<12} {'rows':>13} {'bytes':>11} {'parquet':>10}  largest class / prefix"
    ]
    for s in runs:
        rows = f"{s.rows:,}" if s.rows is not None else "-"
        size = human(s.bytes) if s.bytes is not None else "-"
        parquet = human(s.parquet_bytes) if s.parquet_bytes is not None else "-"
        headline = " / ".join(h for h in (s.largest_class, s.largest_prefix) if h) or "-"
        lines.append(
            f"{s.run:<44} {s.state:<11} {s.kind or '-':<12} {rows:>13} {size:>11} {parquet:>10}  {headline}"
        )
        if s.detail:
            lines.append(f"  {s.state}: {s.detail}")
    return "\n".join(lines)
