"""What a finished run produced: totals queried from its Parquet parts with Polars, and its rollups."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from batch_jobs.convert import byte_total
from batch_jobs.units import human
from inventory_contract.listing import LISTING
from pipeline.rollups_view import bytes_by_class, render_repeats, render_rollups

if TYPE_CHECKING:
    from pipeline.local.run_local import LocalRun


def print_run(run: LocalRun, out: Path) -> None:
    """What ``run-local`` and ``snapshot`` print when a run is done: the data, the reconciliation,
    and where to look next."""
    report = run.run_report()
    print(render(summarize(run.parts_dir, report)))
    print(render_reconciliation(report))
    print(what_next(run.parts_dir, out / run.layout.run_report_key))


def summarize(parts_dir: Path, report: dict[str, Any]) -> dict[str, Any]:
    """Totals read from the Parquet parts (for whatever fields the delivery has: an inventory may
    lack ``Size``, ``StorageClass`` or the version columns; a figure it cannot give is None), and the
    run's rollups from its run report."""
    paths = sorted(parts_dir.glob("*.parquet"))  # listed here: the folder's name may hold glob characters
    frame = pl.scan_parquet(paths, glob=False)
    totals = frame.select(
        pl.len().alias("rows"),
        pl.col("is_delete_marker").sum().alias("delete_markers"),
        byte_total(pl.col("size")).alias("total_size"),
        pl.col("size").is_not_null().any().alias("has_size"),
        pl.col("is_delete_marker").is_not_null().any().alias("has_markers"),
    ).collect()
    row = totals.row(0, named=True)
    rollups = report.get("rollups", {})
    return {
        "rows": row["rows"],
        "delete_markers": row["delete_markers"] if row["has_markers"] else None,
        "total_size": row["total_size"] if row["has_size"] else None,
        "size_by_class": bytes_by_class(rollups),
        "rollups": rollups,
        "parts": len(paths),
        "location": str(parts_dir),
    }


def render(summary: dict[str, Any]) -> str:
    lines = [f"objects (rows):   {summary['rows']:,}"]
    if summary["delete_markers"] is not None:
        lines.append(f"delete markers:   {summary['delete_markers']:,}")
    if summary["total_size"] is not None:
        lines.append(f"total bytes:      {summary['total_size']:,} ({human(summary['total_size'])})")
    lines.append(render_rollups(summary["rollups"]))
    lines.append(f"Parquet parts:    {summary['parts']} in {summary['location']}")
    return "\n".join(lines)


def render_reconciliation(report: dict[str, Any]) -> str:
    """The finalize job's run report, as one line per fact."""
    lines = [
        f"reconciliation:   {report['status']}: rows in {report['rows_in']:,} = rows out {report['rows_out']:,}"
        if report["status"] == "complete"
        else f"reconciliation:   {report['status']}: rows in {report['rows_in']:,}, rows out {report['rows_out']:,}",
        f"                  {report['chunks']} chunk(s), {report['parquet_bytes']:,} Parquet bytes",
    ]
    lines += [f"  problem: {p}" for p in report.get("problems", [])]
    if report.get("inventory_kind") == LISTING:
        lines.append(
            "source:           a listing of the bucket (snapshot), not S3 Inventory: no replication, "
            "encryption, Object Lock, tier, ACL or lifecycle fields"
        )
    repeats = render_repeats(report.get("duplicates", {}))
    return "\n".join([*lines, repeats] if repeats else lines)


def what_next(parts_dir: Path, run_report: Path) -> str:
    """Where the output and the run report are, and a query to try on the output, as a few lines."""
    return "\n".join(
        [
            "next:",
            f"  Parquet:    {parts_dir}",
            f"  run report: {run_report}",
            f"  try:        {query_command(parts_dir)}",
        ]
    )


def query_command(parts_dir: Path) -> str:
    """A shell command that prints objects and bytes by storage class in ``parts_dir``, with Polars
    (a dependency of the package, so it is there wherever the CLI runs)."""
    folder = json.dumps(str(parts_dir))  # a Python string literal in double quotes, as the rest
    code = (
        f"import polars as pl; print(pl.scan_parquet({folder})"
        '.group_by("storage_class").agg(pl.len().alias("objects"), pl.col("size").cast(pl.Int128).sum().alias("bytes"))'
        '.sort("bytes", descending=True).collect())'
    )
    return f"{_python()} -c {shlex.quote(code)}"


def _python() -> str:
    """This interpreter as the user would type it: ``python`` in an activated virtualenv, else its
    path (relative when under the current folder, as ``make demo``'s ``.venv/bin/python``)."""
    active = os.environ.get("VIRTUAL_ENV")
    if active and Path(active).resolve() == Path(sys.prefix).resolve():
        return "python"
    interpreter = Path(sys.executable)
    try:
        return shlex.quote(str(interpreter.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(interpreter))
