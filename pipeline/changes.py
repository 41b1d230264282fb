"""Day-over-day changes between two runs of one source bucket, streamed with Polars.

The rules (the Athena saved queries in ``components/queries.py`` follow the same ones):

- Only current objects are compared: rows whose ``is_latest`` is true (or null: an inventory of
  current versions only) and that are not delete markers. A key whose current version became a
  delete marker is therefore ``deleted``; its hidden version, now noncurrent, is not reported.
- An object is identified by (``key``, ``version_id``), a null version id (unversioned bucket)
  equal to a null one. In a versioned bucket an overwrite is a new version: the old version is
  ``deleted`` (no longer current) and the new one ``added``.
- ``modified``: the size or the ETag differs. When the storage class moved too, the change is
  ``modified`` (modified wins); both classes are in the row. ``storage_class_changed``: same
  size and ETag, another class.
- Bytes per kind are the sums of ``size_before`` and ``size_after`` over its rows (null counts 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from batch_jobs.convert import POLARS_TYPES
from pipeline.contract.schema import table_columns

KINDS = ("added", "deleted", "modified", "storage_class_changed")
IDENTITY = ("key", "version_id")
COMPARED = ("size", "e_tag", "storage_class", "last_modified_date")
_READ = (
    "key",
    "version_id",
    "is_latest",
    "is_delete_marker",
    "size",
    "e_tag",
    "storage_class",
    "last_modified_date",
)
_SCHEMA = pl.Schema({c.name: POLARS_TYPES[c.type] for c in table_columns(()) if c.name in _READ})
"""The columns read from each part, typed as the processor writes them (for a run with no parts)."""
OUTPUT_COLUMNS = (
    "change",
    *IDENTITY,
    *(f"{column}_{side}" for column in COMPARED for side in ("before", "after")),
)


@dataclass(frozen=True)
class KindTotals:
    objects: int
    bytes_before: int
    bytes_after: int


def current_objects(parts: Path) -> pl.LazyFrame:
    """The current objects of one run partition (a folder of Parquet parts), identity and compared columns."""
    files = sorted(parts.glob("*.parquet"))
    frame = (
        pl.scan_parquet(files, hive_partitioning=False, glob=False).select(_SCHEMA.names())
        if files
        else pl.LazyFrame(schema=_SCHEMA)
    )
    current = pl.col("is_latest").fill_null(True) & ~pl.col("is_delete_marker").fill_null(False)
    return frame.filter(current).select(*IDENTITY, *COMPARED)


def object_changes(before: pl.LazyFrame, after: pl.LazyFrame) -> pl.LazyFrame:
    """One row per changed object, ``OUTPUT_COLUMNS``: a full join on the identity, nulls equal."""

    def side(frame: pl.LazyFrame, suffix: str) -> pl.LazyFrame:
        return frame.select(
            *IDENTITY,
            pl.lit(True).alias(f"present_{suffix}"),
            *(pl.col(c).alias(f"{c}_{suffix}") for c in COMPARED),
        )

    joined = side(before, "before").join(
        side(after, "after"), on=list(IDENTITY), how="full", nulls_equal=True, coalesce=True
    )
    differs = pl.col("size_before").ne_missing(pl.col("size_after")) | pl.col("e_tag_before").ne_missing(
        pl.col("e_tag_after")
    )
    moved = pl.col("storage_class_before").ne_missing(pl.col("storage_class_after"))
    change = (
        pl.when(pl.col("present_before").is_null())
        .then(pl.lit("added"))
        .when(pl.col("present_after").is_null())
        .then(pl.lit("deleted"))
        .when(differs)
        .then(pl.lit("modified"))  # modified wins over a storage-class move
        .when(moved)
        .then(pl.lit("storage_class_changed"))
    )
    return (
        joined.with_columns(change.alias("change"))
        .filter(pl.col("change").is_not_null())
        .select(OUTPUT_COLUMNS)
    )


def write_changes(before_parts: Path, after_parts: Path, target: Path) -> None:
    """Stream the changes between two run partitions into the Parquet file ``target``."""
    changes = object_changes(current_objects(before_parts), current_objects(after_parts))
    changes.sink_parquet(target, engine="streaming", maintain_order=False)


def totals(changes_file: Path) -> dict[str, KindTotals]:
    """Objects and bytes per kind of change, every kind present (zero when none), in ``KINDS`` order."""
    found = (
        pl.scan_parquet(changes_file, glob=False)
        .group_by("change")
        .agg(
            pl.len().alias("objects"),
            pl.col("size_before").sum().alias("bytes_before"),
            pl.col("size_after").sum().alias("bytes_after"),
        )
        .collect(engine="streaming")
    )
    by_kind = {row["change"]: row for row in found.iter_rows(named=True)}
    return {
        kind: KindTotals(
            int(by_kind.get(kind, {}).get("objects", 0)),
            int(by_kind.get(kind, {}).get("bytes_before", 0)),
            int(by_kind.get(kind, {}).get("bytes_after", 0)),
        )
        for kind in KINDS
    }
