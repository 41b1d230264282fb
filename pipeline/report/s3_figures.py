"""The storage report's figures from the stack's destination bucket on S3.

A run counts when its ``_COMPLETE`` marker is there and no rerun claimed it since (as ``status``
decides). Each complete run's run report and the rollup tables its marker lists are read (small:
kilobytes a table); the Parquet parts of the last two runs are downloaded into a temporary folder,
for the changes between them and the duplicate candidates of the last, as ``report OUT`` computes
them locally (``pipeline/changes.py``): about 50 MB a million objects, said before it starts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from inventory_contract.layout import REPORTS_ROOT, RunLayout
from inventory_contract.rollups import ROLLUPS
from pipeline.changes import duplicate_candidates
from pipeline.errors import UsageError
from pipeline.report.figures import ReportFigures, RunFigures, changes_between, rollup_rows
from pipeline.rollups_view import human
from pipeline.status import claimed_since, common_prefixes, read_json


def s3_figures(s3: Any, bucket: str, source_bucket: str, progress: Callable[[str], None]) -> ReportFigures:
    days = sorted(
        p.rstrip("/").rsplit("run_date=", 1)[-1]
        for p in common_prefixes(s3, bucket, f"{REPORTS_ROOT}/source_bucket={source_bucket}/")
    )
    if not days:
        msg = f"no run of source bucket {source_bucket!r} in s3://{bucket} (nothing under {REPORTS_ROOT}/source_bucket={source_bucket}/)"
        raise UsageError(msg)
    complete: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    left_out = []
    for day in days:
        layout = RunLayout(source_bucket, day)
        marker = read_json(s3, bucket, layout.complete_marker_key)
        claim = read_json(s3, bucket, layout.claim_key)
        report = read_json(s3, bucket, layout.run_report_key)
        if not isinstance(marker, dict) or claimed_since(claim, marker) or not isinstance(report, dict):
            left_out.append(f"{day}: not complete (no _COMPLETE marker, or a rerun claimed it since)")
            continue
        complete.append((day, marker, report))
    with tempfile.TemporaryDirectory(prefix="report-") as tmp:
        root = Path(tmp)
        runs = []
        for day, marker, report in complete:
            _download(s3, bucket, list(marker.get("rollups", {})), root)
            layout = RunLayout(source_bucket, day)
            runs.append(
                RunFigures(
                    day, report, {r.name: rollup_rows(root / layout.rollup_prefix(r.name)) for r in ROLLUPS}
                )
            )
        changes = candidates = None
        last_two = complete[-2:]
        if last_two:
            parts = {day: list(marker.get("parts", {})) for day, marker, _ in last_two}
            size = sum(sum(marker.get("parts", {}).values()) for _, marker, _ in last_two)
            progress(
                f"downloading the Parquet parts of {', '.join(parts)} ({human(size)}) for the changes and duplicate candidates"
            )
            for keys in parts.values():
                _download(s3, bucket, keys, root)
            folders = [root / RunLayout(source_bucket, day).processed_prefix for day in parts]
            candidates = duplicate_candidates(folders[-1])
            if len(folders) == 2:
                changes = changes_between(folders[0], folders[1])
    return ReportFigures(source_bucket, runs, left_out, changes, candidates)


def _download(s3: Any, bucket: str, keys: list[str], root: Path) -> list[Path]:
    """Each key into ``root`` at its key (16 at a time)."""

    def fetch(key: str) -> Path:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(path))
        return path

    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="report-download") as pool:
        return list(pool.map(fetch, keys))
