"""Compute the rollups (``inventory_contract/rollups.py``) with Polars: partials from one part,
the merge of every child's partials, and the totals finalize reconciles with the rows."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from batch_jobs.convert import POLARS_TYPES, byte_total
from inventory_contract.rollups import (
    AGE,
    AGE_BANDS,
    CURRENT,
    DELETE_MARKER,
    ENCRYPTION,
    NONCURRENT,
    PREFIX,
    ROLLUPS,
    STORAGE_CLASS,
    Merge,
    Rollup,
)

_DELETE_MARKER = pl.col("is_delete_marker").fill_null(False)
_VERSION_KIND = (
    pl.when(_DELETE_MARKER)
    .then(pl.lit(DELETE_MARKER))
    .when(pl.col("is_latest").fill_null(True))  # no IsLatest: an inventory of current versions only
    .then(pl.lit(CURRENT))
    .otherwise(pl.lit(NONCURRENT))
    .alias("version_kind")
)
_MERGE = {Merge.SUM: pl.Expr.sum, Merge.MIN: pl.Expr.min, Merge.MAX: pl.Expr.max}


def schema(rollup: Rollup) -> pl.Schema:
    return pl.Schema({c.name: POLARS_TYPES[c.type] for c in rollup.columns})


def partials(part: Path, run_date: str, prefix_depth: int) -> dict[str, pl.DataFrame]:
    """Every rollup of one Parquet part (the table's columns), keyed by rollup name."""
    rows = pl.scan_parquet(part, glob=False).with_columns(_VERSION_KIND)
    stored = rows.filter(~_DELETE_MARKER)
    measured = (pl.len().alias("objects"), byte_total(pl.col("size")).alias("bytes"))
    queries = {
        STORAGE_CLASS.name: rows.group_by(*(c.name for c in STORAGE_CLASS.keys)).agg(*measured),
        PREFIX.name: _prefix_rollup(stored, prefix_depth, measured),
        AGE.name: stored.group_by(_age_band(run_date), "storage_class", "version_kind").agg(*measured),
        ENCRYPTION.name: stored.group_by("encryption_status").agg(*measured),
    }
    frames = [
        q.collect(engine="streaming") for q in queries.values()
    ]  # one scan each: a shared scan is held whole
    return {
        rollup.name: frame.select(schema(rollup).names()).cast(schema(rollup))
        for rollup, frame in zip(ROLLUPS, frames, strict=True)
    }


MERGE_ROWS_PER_PASS = 500_000
"""Partial rows one merge aggregates at once (about 300 MiB for the prefix rollup). A larger merge
first scatters the partials by a hash of their keys into buckets of about that many rows, in one
streaming pass, then merges each bucket into a file of its own: finalize's memory stays bounded
(about 0.5 GiB measured at 4 million distinct prefixes) and its time linear, whatever the number of
distinct prefixes."""
_BUCKET = "__bucket"


def merge(rollup: Rollup, paths: Sequence[Path], out_dir: Path) -> list[Path]:
    """The partials at ``paths`` merged into one table: files in ``out_dir``, each in the keys' order,
    each group in exactly one of them."""
    keys = [c.name for c in rollup.keys]
    scan = pl.scan_parquet(list(paths), glob=False, schema=schema(rollup))
    rows = scan.select(pl.len()).collect().item()
    buckets = -(-rows // MERGE_ROWS_PER_PASS)
    if buckets <= 1:
        groups = [list(paths)]
    else:
        scattered = out_dir / f"{rollup.name}-buckets"
        scan.with_columns((pl.struct(keys).hash(seed=0) % buckets).alias(_BUCKET)).sink_parquet(
            pl.PartitionBy(scattered, key=_BUCKET, include_key=False)
        )
        groups = [sorted(folder.rglob("*.parquet")) for folder in sorted(scattered.iterdir())]
    written = []
    for index, files in enumerate(groups):
        path = out_dir / f"{rollup.name}-{index:06d}.parquet"
        (
            pl.scan_parquet(files, glob=False, schema=schema(rollup))
            .group_by(keys)
            .agg(_MERGE[m.merge](pl.col(m.name)).alias(m.name) for m in rollup.measures)
            .sort(keys, nulls_last=True)
            .sink_parquet(path, compression="zstd", statistics=True, engine="streaming")
        )
        written.append(path)
    if buckets > 1:
        shutil.rmtree(out_dir / f"{rollup.name}-buckets")
    return written


def reconcile(merged: dict[str, list[Path]], *, rows: int, size_sum: int) -> list[str]:
    """What does not add up between the merged rollups (files) and the run's rows and bytes."""
    totals = (pl.col("objects").sum(), pl.col("bytes").sum().fill_null(0))
    markers = (
        pl.scan_parquet(merged[STORAGE_CLASS.name], glob=False)
        .filter(pl.col("version_kind") == DELETE_MARKER)
        .select(pl.col("objects").sum())
        .collect()
        .item()
    )
    stored = rows - int(markers or 0)
    checks: list[tuple[str, pl.DataFrame, int]] = []
    for rollup in ROLLUPS:
        frame = pl.scan_parquet(merged[rollup.name], glob=False)
        if rollup is PREFIX:
            by_depth = frame.group_by("depth").agg(*totals).sort("depth").collect()
            checks += [
                (f"{PREFIX.name} at depth {row['depth']}", pl.DataFrame([row]), stored)
                for row in by_depth.iter_rows(named=True)
            ]
        else:
            expected = stored if rollup.stored_versions_only else rows
            checks.append((rollup.name, frame.select(*totals).collect(), expected))
    problems = []
    for name, total, expected in checks:
        objects, size = int(total["objects"][0] or 0), int(total["bytes"][0] or 0)
        if (objects, size) != (expected, size_sum):
            problems.append(
                f"rollup {name}: {objects} objects and {size} bytes, but the parts hold "
                f"{expected} objects and {size_sum} bytes"
            )
    return problems


def summary(merged: dict[str, list[Path]], *, top: int = 10) -> dict[str, Any]:
    """The small rollups whole and the largest prefixes at depth 1, for the run report."""
    small = {r.name: pl.read_parquet(merged[r.name], glob=False) for r in (STORAGE_CLASS, AGE, ENCRYPTION)}
    prefix = pl.scan_parquet(merged[PREFIX.name], glob=False)
    depth = prefix.select(pl.col("depth").max()).collect().item()
    largest = (
        prefix.filter(pl.col("depth") == 1).sort(["bytes", "objects"], descending=True).head(top).collect()
    )
    return {
        **{name: _records(frame) for name, frame in small.items()},
        "prefix_depth": int(depth or 0),
        "largest_prefixes": _records(largest),
    }


def _records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON values: timestamps in ISO 8601, byte totals as (exact) integers."""
    return [
        {
            k: v.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            if isinstance(v, datetime)
            else int(v)
            if isinstance(v, Decimal)
            else v
            for k, v in row.items()
        }
        for row in frame.iter_rows(named=True)
    ]


def _prefix_rollup(stored: pl.LazyFrame, depth: int, measured: tuple[pl.Expr, ...]) -> pl.LazyFrame:
    """Rows aggregated once by their prefix at the deepest depth, then each shallower depth from
    those groups: a key's first d folders are the first d folders of its first ``depth`` folders."""
    deepest = stored.group_by(_prefix(pl.col("key"), depth).alias("prefix")).agg(
        *measured,
        pl.col("last_modified_date").min().alias("oldest_last_modified"),
        pl.col("last_modified_date").max().alias("newest_last_modified"),
    )
    merged = [_MERGE[m.merge](pl.col(m.name)).alias(m.name) for m in PREFIX.measures]
    return pl.concat(
        [
            deepest.group_by(
                pl.lit(d, pl.Int64).alias("depth"), _prefix(pl.col("prefix"), d).alias("prefix")
            ).agg(merged)
            for d in range(1, depth + 1)
        ]
    )


def _prefix(path: pl.Expr, depth: int) -> pl.Expr:
    """The first ``depth`` folders of ``path`` (fewer if it has fewer), with their trailing ``/``."""
    return path.str.extract(rf"^((?:[^/]*/){{0,{depth}}})", 1)


def _age_band(run_date: str) -> pl.Expr:
    day = date.fromisoformat(run_date)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    age = (pl.lit(start, pl.Datetime("ms", "UTC")) - pl.col("last_modified_date")).dt.total_days()
    expr: Any = pl.when(pl.col("last_modified_date").is_null()).then(pl.lit(None, pl.String))
    for limit, label in AGE_BANDS:
        expr = (
            expr.when(age < limit).then(pl.lit(label)) if limit is not None else expr.otherwise(pl.lit(label))
        )
    return expr.alias("age_band")
