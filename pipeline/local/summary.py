"""What a finished run produced, queried from its Parquet parts with Polars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl


def summarize(parts_dir: Path, *, top: int = 5) -> dict[str, Any]:
    frame = pl.scan_parquet(parts_dir / "*.parquet")
    totals = frame.select(
        pl.len().alias("rows"),
        pl.col("is_delete_marker").sum().alias("delete_markers"),
        pl.col("size").sum().alias("total_size"),
    ).collect()
    by_class = (
        frame.filter(pl.col("storage_class").is_not_null())
        .group_by("storage_class")
        .agg(pl.col("size").sum().alias("bytes"), pl.len().alias("objects"))
        .sort("bytes", descending=True)
        .collect()
    )
    prefixes = (
        frame.with_columns(pl.col("key").str.split("/").list.first().alias("prefix"))
        .group_by("prefix")
        .agg(pl.col("size").sum().alias("bytes"), pl.len().alias("objects"))
        .sort("bytes", descending=True)
        .head(top)
        .collect()
    )
    row = totals.row(0, named=True)
    return {
        "rows": row["rows"],
        "delete_markers": row["delete_markers"],
        "total_size": row["total_size"],
        "size_by_class": {r["storage_class"]: r["bytes"] for r in by_class.iter_rows(named=True)},
        "largest_prefixes": [dict(r) for r in prefixes.iter_rows(named=True)],
        "parts": len(list(parts_dir.glob("*.parquet"))),
        "location": str(parts_dir),
    }


def render(summary: dict[str, Any]) -> str:
    lines = [
        f"objects (rows):   {summary['rows']:,}",
        f"delete markers:   {summary['delete_markers']:,}",
        f"total bytes:      {summary['total_size']:,} ({_human(summary['total_size'])})",
        "bytes by storage class:",
        *(f"  {name:<22} {size:>20,} ({_human(size)})" for name, size in summary["size_by_class"].items()),
        "largest top-level prefixes:",
        *(
            f"  {p['prefix']:<22} {p['bytes']:>20,} ({_human(p['bytes'])}, {p['objects']:,} objects)"
            for p in summary["largest_prefixes"]
        ),
        f"Parquet parts:    {summary['parts']} in {summary['location']}",
    ]
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
    return "\n".join(lines)


def _human(size: int | None) -> str:
    value = float(size or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover
