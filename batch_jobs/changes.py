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
- An identity listed more than once in one run (a merged or hand-made delivery; S3 does not
  document whether it can happen) counts once, as the row ``KEEP_ORDER`` puts first: the latest
  ``last_modified_date``, then the largest size, then the greatest ETag and storage class (nulls
  last). How many identities were listed twice, with examples, is reported per run.
- Bytes per kind are the sums of ``size_before`` and ``size_after`` over its rows (null counts 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from batch_jobs.convert import POLARS_TYPES, byte_total
from inventory_contract.schema import IDENTITY, KEEP_ORDER, table_columns

KINDS = ("added", "deleted", "modified", "storage_class_changed")
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
DUPLICATE_EXAMPLES = 10
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


@dataclass(frozen=True)
class Duplicates:
    """Identities (key, version id) a run lists more than once; each counts once in the changes."""

    identities: int = 0
    extra_rows: int = 0
    examples: list[dict[str, str | None]] = field(default_factory=list)


class PartsNotComparableError(ValueError):
    """A part lacks a column the comparison reads, or holds it with another type (a part written
    before the stable table, or by something else)."""


def check_comparable(parts: Path) -> None:
    """Every part of ``parts`` has every column ``changes`` reads, with the type the processor
    writes, or the error names the first part and column that do not (its footer is read, not its
    data)."""
    for part in sorted(parts.glob("*.parquet")):
        have = pl.read_parquet_schema(part)
        for name, dtype in _SCHEMA.items():
            if name not in have:
                msg = (
                    f"{part} has no column {name!r} (a part written before every part had every "
                    "column?): convert that day again with run-local to compare it"
                )
                raise PartsNotComparableError(msg)
            if have[name] != dtype:
                msg = (
                    f"{part}: column {name!r} is {have[name]}, not the {dtype} the processor writes "
                    "(a part written by something else?): convert that day again with run-local"
                )
                raise PartsNotComparableError(msg)


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


def once_each(objects: pl.LazyFrame) -> pl.LazyFrame:
    """One row per identity (the first by ``KEEP_ORDER``), with ``listed``: how many rows it had."""
    first = [pl.col(c).sort_by(list(KEEP_ORDER), descending=True, nulls_last=True).first() for c in COMPARED]
    return objects.group_by(list(IDENTITY)).agg(*first, pl.len().alias("listed"))


def duplicates(parts: Path) -> Duplicates:
    """The identities the run partition ``parts`` lists more than once."""
    repeated = (
        current_objects(parts)
        .group_by(list(IDENTITY))
        .agg(pl.len().alias("listed"))
        .filter(pl.col("listed") > 1)
    )
    stats = repeated.select(pl.len().alias("identities"), (pl.col("listed") - 1).sum().alias("extra"))
    counted = stats.collect(engine="streaming").row(0, named=True)
    if not counted["identities"]:
        return Duplicates()
    examples = repeated.sort(list(IDENTITY), nulls_last=True).head(DUPLICATE_EXAMPLES).select(IDENTITY)
    return Duplicates(int(counted["identities"]), int(counted["extra"] or 0), examples.collect().to_dicts())


def object_changes(before: pl.LazyFrame, after: pl.LazyFrame) -> pl.LazyFrame:
    """One row per changed object, ``OUTPUT_COLUMNS``: a full join on the identity, nulls equal."""

    def side(frame: pl.LazyFrame, suffix: str) -> pl.LazyFrame:
        return frame.select(
            *IDENTITY,
            pl.lit(True).alias(f"present_{suffix}"),
            *(pl.col(c).alias(f"{c}_{suffix}") for c in COMPARED),
        )

    before, after = once_each(before), once_each(after)
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


COMPARED_FIELDS = ("VersionId", "IsLatest", "IsDeleteMarker", "Size", "ETag", "StorageClass")
"""The delivery fields the comparison reads: both runs must have the same of them, or every object
would show as changed (a field that appears reads as a new value; versions as new identities)."""


def fields_differ(before: list[str], after: list[str], before_day: str, after_day: str) -> str | None:
    """Why two runs delivered with these fields (their manifests' fileSchema) cannot be compared."""
    first, second = ({f for f in fields if f in COMPARED_FIELDS} for fields in (before, after))
    if first == second:
        return None
    only = [
        f"{sorted(a - b)} only on {day}"
        for a, b, day in ((first, second, before_day), (second, first, after_day))
        if a - b
    ]
    return (
        f"the runs were delivered with different fields ({'; '.join(only)}): every object would "
        "show as changed; compare runs of one inventory configuration"
    )


def write_changes(before_parts: Path, after_parts: Path, target: Path) -> None:
    """Stream the changes between two run partitions into the Parquet file ``target``."""
    check_comparable(before_parts)
    check_comparable(after_parts)
    changes = object_changes(current_objects(before_parts), current_objects(after_parts))
    changes.sink_parquet(target, engine="streaming", maintain_order=False)
    mixed = _version_ids_differ(target)
    if mixed:
        target.unlink()
        msg = (
            f"{mixed:,} objects are the same in both runs (key, ETag and last modified) but listed with a "
            "version id in one and without in the other: the runs differ in whether they list version ids "
            "(an inventory without the VersionId field, or a snapshot with --current-only, against one "
            "with them); compare runs of the same kind"
        )
        raise PartsNotComparableError(msg)


def _version_ids_differ(changes_file: Path) -> int:
    """Objects "deleted" and "added" as the same object version: a version's id never changes, so
    an object with an id on one side and none on the other means the runs list ids differently."""
    changed = pl.scan_parquet(changes_file, glob=False)
    same = ["key", "e_tag", "last_modified_date"]

    def side(kind: str, suffix: str) -> pl.LazyFrame:
        return changed.filter(pl.col("change") == kind).select(
            "key",
            pl.col(f"e_tag_{suffix}").alias("e_tag"),
            pl.col(f"last_modified_date_{suffix}").alias("last_modified_date"),
            pl.col("version_id").is_null().alias(f"unversioned_{suffix}"),
        )

    pairs = side("deleted", "before").join(side("added", "after"), on=same, how="inner", nulls_equal=False)
    return int(
        pairs.filter(pl.col("unversioned_before") != pl.col("unversioned_after"))
        .select(pl.len())
        .collect()
        .item()
    )


def totals(changes_file: Path) -> dict[str, KindTotals]:
    """Objects and bytes per kind of change, every kind present (zero when none), in ``KINDS`` order."""
    found = (
        pl.scan_parquet(changes_file, glob=False)
        .group_by("change")
        .agg(
            pl.len().alias("objects"),
            byte_total(pl.col("size_before")).alias("bytes_before"),  # exact past 2^63
            byte_total(pl.col("size_after")).alias("bytes_after"),
        )
        .collect(engine="streaming")
    )
    by_kind = {row["change"]: row for row in found.iter_rows(named=True)}
    return {
        kind: KindTotals(
            int(by_kind.get(kind, {}).get("objects", 0)),
            int(by_kind.get(kind, {}).get("bytes_before") or 0),
            int(by_kind.get(kind, {}).get("bytes_after") or 0),
        )
        for kind in KINDS
    }


@dataclass(frozen=True)
class DuplicateCandidates:
    """Current objects that may be copies of each other, by the rule of the saved query
    ``duplicate-candidates`` (``components/queries.py``): the same size (above 0) and single-part
    ETag (no ``-``) under more than one key; each group's copies beyond the first are reclaimable."""

    groups: int = 0
    objects: int = 0
    reclaimable_bytes: int = 0


def duplicate_candidates(parts: Path) -> DuplicateCandidates:
    groups = (
        current_objects(parts)
        .filter((pl.col("size") > 0) & ~pl.col("e_tag").str.contains("-", literal=True))
        .group_by("size", "e_tag")
        .agg(pl.col("key").n_unique().alias("objects"))
        .filter(pl.col("objects") > 1)
    )
    found = (
        groups.select(
            pl.len().alias("groups"),
            pl.col("objects").sum().alias("objects"),
            ((pl.col("objects") - 1).cast(pl.Int128) * pl.col("size").cast(pl.Int128))  # exact past 2^63
            .sum()
            .alias("reclaimable"),
        )
        .collect(engine="streaming")
        .row(0, named=True)
    )
    return DuplicateCandidates(
        int(found["groups"]), int(found["objects"] or 0), int(found["reclaimable"] or 0)
    )
