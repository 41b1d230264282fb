"""The per-run rollup tables: what each one groups by and measures, in one place.

Each processor child aggregates its part into partial rollups; finalize merges the partials of
every child (sums, minimums, maximums: associative, so the merge is exact whatever the number of
children) into one small table per rollup under ``rollups/NAME/source_bucket=B/run_date=D/``,
registered in the Glue catalog beside the inventory table. Definitions:

- ``storage_class``: every row, by storage class and version kind (``current``, ``noncurrent``,
  ``delete_marker``); objects and bytes.
- ``prefix``: every stored version (delete markers excluded), by prefix at each depth 1..N. A key's
  prefix at depth d is its first d folders (``a/b/`` at depth 2 for ``a/b/c/x.txt``); a key with
  fewer folders counts under all of its folders (``a/`` for ``a/x.txt`` at depth 2, ``""`` for
  ``x.txt``), as ``du --max-depth`` does, so every depth adds up to the whole bucket.
- ``age``: every stored version, by last-modified age band on the run date, storage class and
  version kind: lifecycle candidates.
- ``encryption``: every stored version, by encryption status.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from inventory_contract.schema import Column, ColumnType

DEFAULT_PREFIX_DEPTH = 3
MAX_PREFIX_DEPTH = 32
CURRENT, NONCURRENT, DELETE_MARKER = "current", "noncurrent", "delete_marker"
AGE_BANDS: tuple[tuple[int | None, str], ...] = (
    (30, "0-30d"),
    (90, "30-90d"),
    (180, "90-180d"),
    (365, "180d-1y"),
    (730, "1-2y"),
    (1825, "2-5y"),
    (None, "5y+"),
)
"""(upper bound in days, exclusive; label) in order; an object modified after the run date is in the first."""


class Merge(StrEnum):
    """How the partial values of one measure merge across children."""

    SUM = "sum"
    MIN = "min"
    MAX = "max"


@dataclass(frozen=True)
class Measure:
    name: str
    type: ColumnType
    merge: Merge


@dataclass(frozen=True)
class Rollup:
    name: str
    description: str
    keys: tuple[Column, ...]
    measures: tuple[Measure, ...]
    stored_versions_only: bool  # delete markers excluded (they store no bytes)

    @property
    def columns(self) -> tuple[Column, ...]:
        """Every column of the table, keys first, as Glue declares them."""
        return (*self.keys, *(Column(field=m.name, name=m.name, type=m.type) for m in self.measures))


def _key(name: str, kind: ColumnType = ColumnType.STRING) -> Column:
    return Column(field=name, name=name, type=kind)


OBJECTS = Measure("objects", ColumnType.INT64, Merge.SUM)
BYTES = Measure("bytes", ColumnType.BYTE_TOTAL, Merge.SUM)
STORAGE_CLASS = Rollup(
    name="storage_class",
    description="objects and bytes by storage class, for current and noncurrent versions and delete "
    "markers, Intelligent-Tiering by its access tier",
    # the access tier last: a table written before it had one reads it as null (Athena, Glue)
    keys=(_key("storage_class"), _key("version_kind"), _key("intelligent_tiering_access_tier")),
    measures=(OBJECTS, BYTES),
    stored_versions_only=False,
)
PREFIX = Rollup(
    name="prefix",
    description="objects, bytes, oldest and newest last-modified by prefix at each depth",
    keys=(_key("depth", ColumnType.INT64), _key("prefix")),
    measures=(
        OBJECTS,
        BYTES,
        Measure("oldest_last_modified", ColumnType.TIMESTAMP_MS_UTC, Merge.MIN),
        Measure("newest_last_modified", ColumnType.TIMESTAMP_MS_UTC, Merge.MAX),
    ),
    stored_versions_only=True,
)
AGE = Rollup(
    name="age",
    description="objects and bytes by last-modified age on the run date, storage class and version kind",
    keys=(_key("age_band"), _key("storage_class"), _key("version_kind")),
    measures=(OBJECTS, BYTES),
    stored_versions_only=True,
)
ENCRYPTION = Rollup(
    name="encryption",
    description="objects and bytes by encryption status",
    keys=(_key("encryption_status"),),
    measures=(OBJECTS, BYTES),
    stored_versions_only=True,
)
ROLLUPS: tuple[Rollup, ...] = (STORAGE_CLASS, PREFIX, AGE, ENCRYPTION)


def rollup_table_suffix(rollup: Rollup) -> str:
    """What a rollup's catalog table name adds to the inventory table's: ``inventory_rollup_age``."""
    return f"_rollup_{rollup.name}"


def check_prefix_depth(depth: int) -> int:
    if not 1 <= depth <= MAX_PREFIX_DEPTH:
        msg = f"rollup prefix depth must be 1 to {MAX_PREFIX_DEPTH}, got {depth}"
        raise ValueError(msg)
    return depth
