"""What a finished run produced, queried from its Parquet parts with Polars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl


def summarize(parts_dir: Path, *, top: int = 5) -> dict[str, Any]:
    """Totals, bytes by storage class and the largest prefixes, for whatever fields the delivery has:
    an inventory may lack ``Size``, ``StorageClass`` or the version columns (a figure it cannot give
    is None)."""
    paths = sorted(parts_dir.glob("*.parquet"))  # listed here: the folder's name may hold glob characters
    frame = pl.scan_parquet(paths, glob=False)
    names = set(frame.collect_schema().names())
    size = pl.col("size") if "size" in names else pl.lit(None, pl.Int64)
    markers = pl.col("is_delete_marker").sum() if "is_delete_marker" in names else pl.lit(None, pl.UInt32)
    totals = frame.select(
        pl.len().alias("rows"), markers.alias("delete_markers"), size.sum().alias("total_size")
    ).collect()
    row = totals.row(0, named=True)
    by_class: dict[str, int] = {}
    if {"storage_class", "size"} <= names:
        classes = (
            frame.filter(pl.col("storage_class").is_not_null())
            .group_by("storage_class")
            .agg(pl.col("size").sum().alias("bytes"))
            .sort("bytes", descending=True)
            .collect()
        )
        by_class = {r["storage_class"]: r["bytes"] for r in classes.iter_rows(named=True)}
    prefixes = (
        frame.with_columns(pl.col("key").str.split("/").list.first().alias("prefix"), size.alias("size"))
        .group_by("prefix")
        .agg(pl.col("size").sum().alias("bytes"), pl.len().alias("objects"))
        .sort(["bytes", "objects"], descending=True)
        .head(top)
        .collect()
    )
    return {
        "rows": row["rows"],
        "delete_markers": row["delete_markers"],
        "total_size": row["total_size"] if "size" in names else None,
        "size_by_class": by_class,
        "largest_prefixes": [dict(r) for r in prefixes.iter_rows(named=True)],
        "parts": len(paths),
        "location": str(parts_dir),
    }


def render(summary: dict[str, Any]) -> str:
    lines = [f"objects (rows):   {summary['rows']:,}"]
    if summary["delete_markers"] is not None:
        lines.append(f"delete markers:   {summary['delete_markers']:,}")
    if summary["total_size"] is not None:
        lines.append(f"total bytes:      {summary['total_size']:,} ({_human(summary['total_size'])})")
    if summary["size_by_class"]:
        lines.append("bytes by storage class:")
        lines += [
            f"  {name:<22} {size:>20,} ({_human(size)})" for name, size in summary["size_by_class"].items()
        ]
    lines.append(
        "largest top-level prefixes:" if summary["total_size"] is not None else "top-level prefixes:"
    )
    lines += [
        f"  {p['prefix']:<22} {p['bytes'] or 0:>20,} ({_human(p['bytes'])}, {p['objects']:,} objects)"
        if summary["total_size"] is not None
        else f"  {p['prefix']:<22} {p['objects']:,} objects"
        for p in summary["largest_prefixes"]
    ]
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
    return "\n".join(lines)


def _human(size: int | None) -> str:
    value = float(size or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover
