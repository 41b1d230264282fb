"""Runs with different field sets read as one table, with no schema merging, in DuckDB, Polars and
Spark; the rollup tables too. Each run is converted by the real jobs (run-local)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from components.catalog import glue_columns
from inventory_contract.layout import PROCESSED_ROOT, ROLLUPS_ROOT
from inventory_contract.rollups import ROLLUPS
from inventory_contract.schema import KNOWN_FIELDS, TABLE_FIELDS, table_columns
from pipeline.cli import main
from pipeline.synthetic import generate_delivery

SOURCE = "demo-source-bucket"
CURRENT_ONLY = ("Bucket", "Key", "Size", "LastModifiedDate", "ETag", "StorageClass")
DAYS = {  # run date -> (fields, versions)
    "2026-11-23": (CURRENT_ONLY, False),
    "2026-11-24": (KNOWN_FIELDS, True),
}


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("stable")
    rows = {}
    for day, (fields, versions) in DAYS.items():
        when = datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC).replace(hour=1)
        gen = generate_delivery(
            root / f"bucket-{day}", objects=400, files=2, fields=fields, versions=versions, timestamp=when
        )
        assert main(["run-local", str(gen.manifest_path), "--out", str(root / "out")]) == 0
        rows[day] = gen.truth.rows
    return root / "out", rows


def test_every_part_has_the_tables_columns_in_its_order(out):
    folder, _ = out
    expected = [c.name for c in table_columns(KNOWN_FIELDS)]
    assert expected == [c["name"] for c in glue_columns()]  # what Glue declares
    for day in DAYS:
        parts = sorted(
            (folder / PROCESSED_ROOT / f"source_bucket={SOURCE}" / f"run_date={day}").glob("*.parquet")
        )
        assert parts
        for part in parts:
            assert list(pl.read_parquet_schema(part)) == expected


def test_duckdb_reads_both_runs_on_a_glob_without_union_by_name(out):
    folder, rows = out
    found = duckdb.sql(
        f"SELECT run_date, count(*), count(version_id), count(encryption_status) FROM "
        f"read_parquet('{folder}/{PROCESSED_ROOT}/*/*/*.parquet', hive_partitioning = true) "
        "GROUP BY run_date ORDER BY run_date"
    ).fetchall()
    # the day without versions or encryption reads as nulls in those columns, not as an error
    assert [(str(d), n) for d, n, _, _ in found] == sorted(rows.items())
    assert (found[0][2], found[0][3]) == (0, 0) and found[1][2] > 0 and found[1][3] > 0


def test_polars_scans_both_runs_with_hive_partitions(out):
    folder, rows = out
    frame = pl.scan_parquet(folder / PROCESSED_ROOT, hive_partitioning=True)
    counts = frame.group_by("run_date").agg(pl.len(), pl.col("is_latest").count()).sort("run_date").collect()
    assert counts.schema["run_date"] == pl.Date  # a Date partition: compare with a date, not a string
    assert [(str(d), n) for d, n, _ in counts.iter_rows()] == sorted(rows.items())
    assert counts["is_latest"].to_list()[0] == 0
    one_day = frame.filter(pl.col("run_date") == date(2026, 11, 24)).select(pl.len()).collect().item()
    assert one_day == rows["2026-11-24"]


def test_every_rollup_table_reads_across_runs_as_one(out):
    folder, rows = out
    for rollup in ROLLUPS:
        frame = pl.scan_parquet(folder / ROLLUPS_ROOT / rollup.name, hive_partitioning=True)
        names = frame.collect_schema().names()
        assert names == [c.name for c in rollup.columns] + ["source_bucket", "run_date"]
        assert [c["name"] for c in glue_columns(rollup.columns)] == names[:-2]
    classes = (
        pl.scan_parquet(folder / ROLLUPS_ROOT / "storage_class", hive_partitioning=True)
        .group_by("run_date")
        .agg(pl.col("objects").sum())
        .sort("run_date")
        .collect()
    )
    assert [(str(d), n) for d, n in classes.iter_rows()] == sorted(rows.items())


@pytest.mark.slow
def test_spark_reads_both_runs_without_merge_schema(out, spark):
    folder, rows = out
    frame = spark.read.option("mergeSchema", "false").parquet(str(folder / PROCESSED_ROOT))
    assert frame.columns == [c.name for c in table_columns(KNOWN_FIELDS)] + ["source_bucket", "run_date"]
    counts = {str(r["run_date"]): r["count"] for r in frame.groupBy("run_date").count().collect()}
    assert counts == rows
    versions = frame.where("run_date = '2026-11-23'").where("version_id IS NOT NULL").count()
    assert versions == 0  # the day without versions: null, read with the same schema
    assert len(TABLE_FIELDS) == len(frame.columns) - 2
