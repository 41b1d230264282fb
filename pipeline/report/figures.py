"""The storage report's figures from a local output folder: the runs ``status`` finds complete there
(their parts checked, not only their marker), read as ``batch_jobs/report_figures.py`` reads them
from a bucket."""

from __future__ import annotations

import json
from pathlib import Path

from batch_jobs.changes import PartsNotComparableError, duplicate_candidates
from batch_jobs.report_figures import (
    HISTORY_RUNS,
    ReportFigures,
    changes_between,
    delivered_fields_differ,
    read_run,
)
from batch_jobs.storage import LocalStorage
from inventory_contract.layout import RunLayout
from pipeline.errors import UsageError
from pipeline.local.status import local_runs


def local_figures(out: Path, bucket: str, up_to: str | None = None) -> ReportFigures:
    """The figures of ``bucket``'s runs in the local output folder ``out`` (up to the run date ``up_to``)."""
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
    ordered = sorted((s for s in statuses if up_to is None or s.run_date <= up_to), key=lambda s: s.run_date)
    if not ordered:
        msg = f"no run of source bucket {bucket!r} in {out} on or before {up_to}"
        raise UsageError(msg)
    complete = [s.run_date for s in ordered if s.state == "complete"]
    earlier = complete[: max(len(complete) - HISTORY_RUNS, 0)]
    for status in ordered:
        if status.run_date in earlier:
            continue
        if status.state != "complete":
            left_out.append(f"{status.run_date}: {status.state}, {status.detail}")
            continue
        layout = RunLayout(bucket, status.run_date)
        try:
            report = json.loads((out / layout.run_report_key).read_text())
        except (OSError, ValueError) as err:  # cut short or unreadable: the run is left out, saying why
            left_out.append(f"{status.run_date}: its run report cannot be read ({err})")
            continue
        runs.append(
            read_run(status.run_date, report, out, layout, with_prefixes=status.run_date in complete[-2:])
        )
    changes = candidates = differ = None
    if runs:
        last = out / RunLayout(bucket, runs[-1].run_date).processed_prefix
        candidates = duplicate_candidates(last)
        if len(runs) > 1:
            before = out / RunLayout(bucket, runs[-2].run_date).processed_prefix
            differ = delivered_fields_differ(
                LocalStorage("local", out), bucket, [r.run_date for r in runs[-2:]]
            )
            try:
                changes = None if differ else changes_between(before, last)
            except PartsNotComparableError as err:
                differ = str(err)
            if differ:
                candidates = None
    return ReportFigures(
        bucket, runs, left_out, changes, candidates, changes_left_out=differ, earlier_runs=len(earlier)
    )
