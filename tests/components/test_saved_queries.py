"""Every saved Athena query, transpiled from Trino to DuckDB with sqlglot, run on real output.

The table is two days of one bucket converted with run-local (versions, delete markers, keys that
need decoding), the second day derived from the first with known changes and planted duplicate
copies. Each query's result is compared with the generator's truth, with the ``changes`` command,
or with the same question asked of the Parquet through Polars.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl
import pytest
import sqlglot

from batch_jobs.changes import KINDS
from components.queries import NAMED_QUERIES
from inventory_contract.layout import PROCESSED_ROOT, ROLLUPS_ROOT
from inventory_contract.rollups import AGE, CURRENT
from pipeline.cli import main
from tests.components.conftest import settings
from tests.two_days import BUCKET, DAY1, DAY2, TwoDays, two_days

pytestmark = pytest.mark.slow
DATABASE, TABLE = settings().catalog_database, settings().catalog_table


@dataclasses.dataclass(frozen=True)
class Table:
    db: duckdb.DuckDBPyConnection
    days: TwoDays
    command_summary: str  # what `python -m pipeline changes` printed for the same two days

    def run(self, name: str, *params: str) -> list[tuple[object, ...]]:
        trino = NAMED_QUERIES[name][1].format(table=f'"{DATABASE}"."{TABLE}"')
        sql = sqlglot.transpile(trino, read="trino", write="duckdb")[0]
        return self.db.execute(sql, list(params)).fetchall()

    def parts(self) -> pl.LazyFrame:
        return pl.scan_parquet(self.days.out / PROCESSED_ROOT, hive_partitioning=True)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Table:
    root = tmp_path_factory.mktemp("saved-queries")
    days = two_days(root, versions=True)
    db = duckdb.connect()
    db.execute(f'CREATE SCHEMA "{DATABASE}"')
    db.execute(
        f'CREATE VIEW "{DATABASE}"."{TABLE}" AS SELECT * FROM '
        f"read_parquet('{days.out}/{PROCESSED_ROOT}/*/*/*.parquet', hive_partitioning = true)"
    )
    summary = root / "summary.txt"
    with summary.open("w") as printed, contextlib.redirect_stdout(printed):
        code = main(["changes", str(days.out), "--source-bucket", BUCKET, "--from", DAY1, "--to", DAY2,
                     "--out", str(root / "changes")])  # fmt: skip
    assert code == 0
    return Table(db, days, summary.read_text())


def _current(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.filter(pl.col("is_latest").fill_null(True) & ~pl.col("is_delete_marker").fill_null(False))


def _day(t: Table, run_date: str) -> pl.LazyFrame:
    return t.parts().filter(pl.col("run_date") == datetime.fromisoformat(run_date).date())


def storage_by_class(t: Table) -> None:
    rows = t.run("storage-by-class", DAY1)
    assert {r[1]: r[3] for r in rows} == dict(t.days.day1.truth.size_by_class)
    assert {r[0] for r in rows} == {BUCKET}
    stored = _day(t, DAY2).filter(~pl.col("is_delete_marker").fill_null(False))
    expected = stored.group_by("storage_class").agg(pl.len(), pl.col("size").sum()).collect()
    later = t.run("storage-by-class", DAY2)  # the second snapshot answers for itself
    assert {r[1]: (r[2], r[3]) for r in later} == {r[0]: (r[1], r[2]) for r in expected.iter_rows()}
    assert later != rows


def delete_markers(t: Table) -> None:
    assert sum(r[2] for r in t.run("delete-markers", DAY1)) == t.days.day1.truth.delete_markers
    markers = _day(t, DAY2).filter(pl.col("is_delete_marker").fill_null(False)).select(pl.len()).collect()
    assert sum(r[2] for r in t.run("delete-markers", DAY2)) == markers.item()


def largest_prefixes(t: Table) -> None:
    for run_date in (DAY1, DAY2):
        expected = (
            _day(t, run_date)
            .filter(~pl.col("is_delete_marker").fill_null(False))
            .group_by(pl.col("key").str.split("/").list.first().alias("prefix"))
            .agg(pl.len().alias("objects"), pl.col("size").sum().alias("bytes"))
            .sort("bytes", descending=True)
            .head(20)
            .collect()
        )
        rows = t.run("largest-prefixes", run_date)
        assert [r[1:] for r in rows] == list(expected.iter_rows())


def not_modified_for_a_year(t: Table) -> None:
    # counted from each run's date, as the age rollup counts: the same answer on any day it is asked
    for run_date in (DAY1, DAY2):
        day = datetime.fromisoformat(run_date).replace(tzinfo=UTC)
        expected = (
            _current(t.parts().filter(pl.col("run_date") == day.date()))
            .filter(pl.col("last_modified_date") <= day - timedelta(days=365))
            .group_by("storage_class")
            .agg(pl.len(), pl.col("size").sum())
            .collect()
        )
        rows = t.run("not-modified-for-a-year", run_date)
        assert {r[1]: (r[2], r[3]) for r in rows} == {r[0]: (r[1], r[2]) for r in expected.iter_rows()}
        assert 0 < sum(r[2] for r in rows) < t.days.day1.truth.rows
        rollup = (
            pl.scan_parquet(t.days.out / ROLLUPS_ROOT / AGE.name, hive_partitioning=True)
            .filter(
                (pl.col("run_date") == day.date())
                & (pl.col("version_kind") == CURRENT)
                & pl.col("age_band").is_in(["1-2y", "2-5y", "5y+"])
            )
            .group_by("storage_class")
            .agg(pl.col("objects").sum(), pl.col("bytes").sum())
            .collect()
        )
        assert {r[1]: (r[2], r[3]) for r in rows} == {r[0]: (r[1], r[2]) for r in rollup.iter_rows()}


def listed_more_than_once(t: Table) -> None:
    for run_date in (DAY1, DAY2):
        day = t.parts().filter(pl.col("run_date") == datetime.fromisoformat(run_date).date())
        repeated = day.group_by("key", "version_id").len().filter(pl.col("len") > 1).collect()
        assert t.run("listed-more-than-once", run_date) == []
        assert (
            repeated.height == 0
        )  # the generator lists each version once (tests/pipeline/test_changes.py plants repeats)


def changes_by_kind(t: Table) -> None:
    truth = t.days.day2.truth
    rows = t.run("changes-by-kind", DAY1, DAY2)
    assert {r[1]: r[2:] for r in rows} == {
        k: (truth.objects[k], truth.bytes_before[k], truth.bytes_after[k]) for k in KINDS
    }
    printed = {w[0]: tuple(int(x.replace(",", "")) for x in w[1:]) for w in map(str.split, t.command_summary.splitlines()) if w and w[0] in KINDS}  # fmt: skip
    assert {r[1]: r[2:] for r in rows} == printed  # the command and the saved query agree
    assert {r[0] for r in rows} == {BUCKET}
    assert t.run("changes-by-kind", DAY2, DAY1) != rows  # the order of the parameters matters


def changed_objects(t: Table) -> None:
    assert t.days.day2.truth.rows is not None
    truth = sorted(dataclasses.astuple(r) for r in t.days.day2.truth.rows)
    rows = t.run("changed-objects", DAY1, DAY2)
    assert sorted(r[1:10] for r in rows) == truth
    assert len(rows[0]) == 12  # and the last-modified dates before and after


def largest_changes(t: Table) -> None:
    assert t.days.day2.truth.rows is not None

    def changed(r):  # type: ignore[no-untyped-def]
        if r.change == "modified":
            return abs(r.size_after - r.size_before)
        return r.size_after if r.size_after is not None else r.size_before

    ranked = sorted(t.days.day2.truth.rows, key=lambda r: (-changed(r), r.key, r.version_id or ""))
    rows = t.run("largest-changes", DAY1, DAY2)
    assert [(r[-1], r[2], r[3]) for r in rows] == [(changed(r), r.key, r.version_id) for r in ranked[:100]]


def duplicate_candidates(t: Table) -> None:
    rows = t.run("duplicate-candidates", DAY2)
    assert {(r[1], r[2]): r[3] for r in rows} == t.days.day2.duplicates
    assert len(t.days.day2.duplicates) == t.days.plan.copies  # the multipart copies are not candidates
    assert all(r[4] == r[1] for r in rows)  # one redundant copy of each
    assert t.run("duplicate-candidates", DAY1) == []  # none planted on day 1


CHECKS: dict[str, Callable[[Table], None]] = {
    "storage-by-class": storage_by_class,
    "delete-markers": delete_markers,
    "largest-prefixes": largest_prefixes,
    "not-modified-for-a-year": not_modified_for_a_year,
    "changes-by-kind": changes_by_kind,
    "changed-objects": changed_objects,
    "largest-changes": largest_changes,
    "duplicate-candidates": duplicate_candidates,
    "listed-more-than-once": listed_more_than_once,
}


def test_every_saved_query_has_a_check():
    assert set(CHECKS) == set(NAMED_QUERIES)


@pytest.mark.parametrize("name", sorted(NAMED_QUERIES))
def test_each_saved_query_answers_as_the_truth(table, name):
    CHECKS[name](table)


@pytest.mark.parametrize("name", sorted(NAMED_QUERIES))
def test_each_saved_query_filters_on_its_run_dates(table, name):
    params = ["1999-01-01"] * NAMED_QUERIES[name][1].count("?")
    assert table.run(name, *params) == []


def test_the_view_reads_both_runs_as_one_table(table):
    dates = table.db.execute(
        f'SELECT DISTINCT CAST(run_date AS VARCHAR) FROM "{DATABASE}"."{TABLE}"'
    ).fetchall()
    assert sorted(d[0] for d in dates) == [DAY1, DAY2]


def test_every_sum_of_sizes_is_exact_past_2_to_the_63():
    # Trino sums a bigint into a bigint and fails the query past 2^63 bytes (DuckDB, which the other
    # tests run, sums into 128 bits and cannot show it): every sum of a size is over a DECIMAL(38, 0)
    sizes = {"size", "size_before", "size_after"}
    found = 0
    for name, (_, sql) in NAMED_QUERIES.items():
        tree = sqlglot.parse_one(sql.format(table="t"), read="trino")
        for total in tree.find_all(sqlglot.exp.Sum):
            if {c.name for c in total.find_all(sqlglot.exp.Column)} & sizes:
                found += 1
                cast = total.this
                assert isinstance(cast, sqlglot.exp.Cast), (name, total.sql("trino"))
                assert cast.to.sql("trino") == "DECIMAL(38, 0)", (name, total.sql("trino"))
        for product in tree.find_all(sqlglot.exp.Mul):  # redundant bytes: a count times a size
            if {c.name for c in product.find_all(sqlglot.exp.Column)} & sizes:
                assert any(
                    c.to.sql("trino") == "DECIMAL(38, 0)" for c in product.find_all(sqlglot.exp.Cast)
                ), name
    assert found >= 5  # storage by class, largest prefixes, not modified for a year, changes by kind (2)


def test_not_modified_for_a_year_counts_exactly_365_days_back_from_the_run_date():
    # GIVEN objects modified exactly 365 days before the run date's midnight (UTC), and a millisecond
    # either side, and one on the run date itself
    run_date = "2026-11-24"
    start = datetime(2026, 11, 24, tzinfo=UTC)
    edge = start - timedelta(days=365)
    modified = {
        "a-ms-before": edge - timedelta(milliseconds=1),
        "exactly": edge,
        "a-ms-after": edge + timedelta(milliseconds=1),
        "on-the-day": start + timedelta(hours=5),
    }
    db = duckdb.connect()
    db.execute(
        "CREATE TABLE t (source_bucket VARCHAR, run_date VARCHAR, key VARCHAR, storage_class VARCHAR, "
        "size BIGINT, is_latest BOOLEAN, is_delete_marker BOOLEAN, last_modified_date TIMESTAMPTZ)"
    )
    for key, when in modified.items():
        db.execute("INSERT INTO t VALUES ('b', ?, ?, 'STANDARD', 10, true, false, ?)", [run_date, key, when])
    sql = sqlglot.transpile(
        NAMED_QUERIES["not-modified-for-a-year"][1].format(table="t"), read="trino", write="duckdb"
    )[0]
    # WHEN the saved query runs THEN it counts what is at least 365 days old, as the age rollup's
    # 1-2y band does (whole days since the run date's midnight), in plain Python
    oracle = [k for k, when in modified.items() if (start - when) // timedelta(days=1) >= 365]
    assert oracle == ["a-ms-before", "exactly"]
    assert db.execute(sql, [run_date]).fetchall() == [("b", "STANDARD", len(oracle), 10 * len(oracle))]
