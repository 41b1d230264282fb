"""The rollups: known answers on hand-made parts, exact merges across children, and reconciliation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from batch_jobs import rollups
from batch_jobs.convert import output_schema
from inventory_contract.rollups import AGE, ENCRYPTION, PREFIX, ROLLUPS, STORAGE_CLASS
from inventory_contract.schema import TABLE_FIELDS, columns_for

RUN_DATE = "2026-11-24"
TABLE = output_schema(columns_for(TABLE_FIELDS))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def row(key: str, size: int | None, **values: Any) -> dict[str, Any]:
    return {
        "bucket": "src",
        "key": key,
        "size": size,
        "is_latest": True,
        "is_delete_marker": False,
        "storage_class": "STANDARD",
        "encryption_status": "SSE-S3",
        "last_modified_date": at("2026-11-20T00:00:00"),
        **values,
    }


ROWS = [
    row("top.txt", 1),
    row("a/x.txt", 10, last_modified_date=at("2026-10-25T00:00:00")),  # exactly 30 days: 30-90d
    row("a/b/y.txt", 100, storage_class="GLACIER_IR", last_modified_date=at("2026-10-25T00:00:01")),
    row("a/b/c/d/z.txt", 1000, is_latest=False, last_modified_date=at("2020-01-01T00:00:00")),
    row("a/b/c/d/z.txt", None, is_delete_marker=True, storage_class=None, encryption_status=None),
    row("e/😀 f/new\nline", 10000, encryption_status="SSE-KMS", last_modified_date=at("2026-11-25T09:00:00")),
    row("g//h", 5, last_modified_date=None),  # an empty folder name is a folder too
]


def write_part(path: Path, rows: list[dict[str, Any]]) -> Path:
    pl.DataFrame(rows, schema=TABLE).write_parquet(path)
    return path


def sorted_by_keys(frame: pl.DataFrame, rollup: Any) -> pl.DataFrame:
    return frame.sort([c.name for c in rollup.keys], nulls_last=True)


def test_intelligent_tiering_is_rolled_up_by_access_tier(tmp_path: Path) -> None:
    it = "INTELLIGENT_TIERING"
    rows = [
        row("a", 1, storage_class=it, intelligent_tiering_access_tier="FREQUENT"),
        row("b", 2, storage_class=it, intelligent_tiering_access_tier="FREQUENT"),
        row("c", 40, storage_class=it, intelligent_tiering_access_tier="ARCHIVE_INSTANT_ACCESS"),
        row("d", 300, storage_class=it, intelligent_tiering_access_tier=None),  # the field not delivered
        row("e", 5000),
    ]
    found = rollups.partials(write_part(tmp_path / "p.parquet", rows), RUN_DATE, prefix_depth=1)
    classes = {
        (r["storage_class"], r["intelligent_tiering_access_tier"]): (r["objects"], r["bytes"])
        for r in found[STORAGE_CLASS.name].iter_rows(named=True)
    }
    assert classes == {
        (it, "FREQUENT"): (2, 3),
        (it, "ARCHIVE_INSTANT_ACCESS"): (1, 40),
        (it, None): (1, 300),
        ("STANDARD", None): (1, 5000),
    }


def test_partials_give_the_known_answers(tmp_path: Path) -> None:
    found = rollups.partials(write_part(tmp_path / "p.parquet", ROWS), RUN_DATE, prefix_depth=3)

    classes = {
        (r["storage_class"], r["version_kind"]): (r["objects"], r["bytes"])
        for r in found[STORAGE_CLASS.name].iter_rows(named=True)
    }
    assert classes == {
        ("STANDARD", "current"): (4, 1 + 10 + 10000 + 5),
        ("STANDARD", "noncurrent"): (1, 1000),
        ("GLACIER_IR", "current"): (1, 100),
        (None, "delete_marker"): (1, 0),
    }

    prefixes = {
        (r["depth"], r["prefix"]): (r["objects"], r["bytes"])
        for r in found[PREFIX.name].iter_rows(named=True)
    }
    assert prefixes == {
        (1, ""): (1, 1),
        (1, "a/"): (3, 1110),
        (1, "e/"): (1, 10000),
        (1, "g/"): (1, 5),
        (2, ""): (1, 1),
        (2, "a/"): (1, 10),
        (2, "a/b/"): (2, 1100),
        (2, "e/😀 f/"): (1, 10000),
        (2, "g//"): (1, 5),
        (3, ""): (1, 1),
        (3, "a/"): (1, 10),
        (3, "a/b/"): (1, 100),
        (3, "a/b/c/"): (1, 1000),
        (3, "e/😀 f/"): (1, 10000),
        (3, "g//"): (1, 5),
    }
    a = found[PREFIX.name].filter((pl.col("depth") == 1) & (pl.col("prefix") == "a/")).row(0, named=True)
    assert (a["oldest_last_modified"], a["newest_last_modified"]) == (
        at("2020-01-01T00:00:00"),
        at("2026-10-25T00:00:01"),
    )
    g = found[PREFIX.name].filter(pl.col("prefix") == "g//").row(0, named=True)
    assert g["oldest_last_modified"] is None  # no date, not a made-up one

    ages = {
        (r["age_band"], r["storage_class"], r["version_kind"]): (r["objects"], r["bytes"])
        for r in found[AGE.name].iter_rows(named=True)
    }
    assert ages == {
        ("0-30d", "STANDARD", "current"): (2, 1 + 10000),  # 4 days old, and one modified after the run date
        ("30-90d", "STANDARD", "current"): (1, 10),  # exactly 30 days
        ("0-30d", "GLACIER_IR", "current"): (1, 100),  # one second under 30 days
        ("5y+", "STANDARD", "noncurrent"): (1, 1000),
        (None, "STANDARD", "current"): (1, 5),
    }
    encryption = {
        r["encryption_status"]: (r["objects"], r["bytes"])
        for r in found[ENCRYPTION.name].iter_rows(named=True)
    }
    assert encryption == {"SSE-S3": (5, 1116), "SSE-KMS": (1, 10000)}
    for rollup in ROLLUPS:
        assert found[rollup.name].schema == rollups.schema(rollup)


def test_merging_children_equals_the_rollup_of_the_whole(tmp_path: Path) -> None:
    whole = rollups.partials(write_part(tmp_path / "whole.parquet", ROWS), RUN_DATE, prefix_depth=4)
    children = [ROWS[:2], ROWS[2:5], [], ROWS[5:]]  # an empty part too
    paths: dict[str, list[Path]] = {r.name: [] for r in ROLLUPS}
    for i, rows in enumerate(children):
        for name, frame in rollups.partials(
            write_part(tmp_path / f"part-{i}.parquet", rows), RUN_DATE, prefix_depth=4
        ).items():
            paths[name].append(tmp_path / f"{name}-{i}.parquet")
            frame.write_parquet(paths[name][-1])
    for rollup in ROLLUPS:
        [merged] = rollups.merge(rollup, paths[rollup.name], tmp_path)
        assert_frame_equal(
            pl.read_parquet(merged), sorted_by_keys(whole[rollup.name], rollup), check_row_order=True
        )


def test_a_merge_too_large_for_one_pass_runs_in_several_with_the_same_result(tmp_path: Path, monkeypatch):
    # GIVEN partials with many distinct prefixes (every key its own folder at depth 2)
    rows = [row(f"t{i % 7}/{i}/x", i) for i in range(2000)]
    whole = rollups.partials(write_part(tmp_path / "whole.parquet", rows), RUN_DATE, prefix_depth=2)
    partial_paths = []
    for i in range(4):
        part = write_part(tmp_path / f"part-{i}.parquet", rows[i::4])
        partial_paths.append(tmp_path / f"prefix-{i}.parquet")
        rollups.partials(part, RUN_DATE, prefix_depth=2)[PREFIX.name].write_parquet(partial_paths[-1])
    # WHEN one pass may hold only 500 partial rows
    monkeypatch.setattr(rollups, "MERGE_ROWS_PER_PASS", 500)
    (tmp_path / "merged").mkdir()
    files = rollups.merge(PREFIX, partial_paths, tmp_path / "merged")
    # THEN several files, each prefix in exactly one, together the rollup of the whole
    assert 1 < len(files) <= -(-sum(pl.read_parquet(p).height for p in partial_paths) // 500)
    merged = pl.concat([pl.read_parquet(f) for f in files])
    assert merged.select("depth", "prefix").is_duplicated().sum() == 0
    assert_frame_equal(sorted_by_keys(merged, PREFIX), sorted_by_keys(whole[PREFIX.name], PREFIX))
    assert (
        rollups.reconcile(
            {**_merged(tmp_path, rows), PREFIX.name: files}, rows=2000, size_sum=sum(range(2000))
        )
        == []
    )


def _merged(tmp_path: Path, rows: list[dict[str, Any]]) -> dict[str, list[Path]]:
    merged = {}
    for name, frame in rollups.partials(write_part(tmp_path / "p.parquet", rows), RUN_DATE, 3).items():
        merged[name] = [tmp_path / f"{name}.parquet"]
        frame.write_parquet(merged[name][0])
    return merged


def test_reconcile_accepts_exact_totals_and_names_what_does_not_add_up(tmp_path: Path) -> None:
    merged = _merged(tmp_path, ROWS)
    size_sum = sum(r["size"] or 0 for r in ROWS)
    assert rollups.reconcile(merged, rows=len(ROWS), size_sum=size_sum) == []

    problems = rollups.reconcile(merged, rows=len(ROWS) + 1, size_sum=size_sum)
    assert (
        f"rollup storage_class: 7 objects and {size_sum} bytes, but the parts hold 8 objects" in problems[0]
    )
    assert len(problems) == 1 + 3 + 2  # every table: storage_class, prefix at depths 1-3, age, encryption

    prefix = pl.read_parquet(merged[PREFIX.name][0])  # one prefix lost at depth 2
    prefix.filter(~((pl.col("depth") == 2) & (pl.col("prefix") == "a/b/"))).write_parquet(
        merged[PREFIX.name][0]
    )
    assert rollups.reconcile(merged, rows=len(ROWS), size_sum=size_sum) == [
        f"rollup prefix at depth 2: 4 objects and {size_sum - 1100} bytes, but the parts hold "
        f"6 objects and {size_sum} bytes"
    ]


def test_a_delivery_without_versions_classes_or_sizes_still_rolls_up(tmp_path: Path) -> None:
    rows = [{"bucket": "src", "key": k} for k in ("a/1", "a/2", "b")]
    merged = _merged(tmp_path, rows)
    assert rollups.reconcile(merged, rows=3, size_sum=0) == []
    summary = rollups.summary(merged)
    assert summary["storage_class"] == [
        {
            "storage_class": None,
            "version_kind": "current",
            "intelligent_tiering_access_tier": None,
            "objects": 3,
            "bytes": 0,
        }
    ]
    assert [(p["prefix"], p["objects"]) for p in summary["largest_prefixes"]] == [("a/", 2), ("", 1)]
    assert summary["prefix_depth"] == 3


@pytest.mark.parametrize("depth", [0, 33, -1])
def test_prefix_depth_out_of_range_is_refused(depth: int) -> None:
    from inventory_contract.rollups import check_prefix_depth

    with pytest.raises(ValueError, match=f"rollup prefix depth must be 1 to 32, got {depth}"):
        check_prefix_depth(depth)


def _big_part(path: Path, rows: int) -> Path:
    """``rows`` objects of S3's largest size, 5 TiB, in one Parquet part of the table's columns."""
    from inventory_contract.schema import MAX_OBJECT_SIZE

    frame = pl.DataFrame({"key": [f"big/{i}" for i in range(rows)]}).with_columns(
        pl.lit("src").alias("bucket"),
        pl.lit(MAX_OBJECT_SIZE, pl.Int64).alias("size"),
        pl.lit(True).alias("is_latest"),
        pl.lit(False).alias("is_delete_marker"),
        pl.lit("DEEP_ARCHIVE").alias("storage_class"),
        pl.lit("SSE-S3").alias("encryption_status"),
        pl.lit(at("2020-01-01T00:00:00")).alias("last_modified_date"),
    )
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in TABLE.items() if name not in frame.columns]
    frame.with_columns(missing).select(TABLE.names()).cast(TABLE).write_parquet(path)
    return path


@pytest.mark.parametrize(
    "children",
    [
        (1_700_000,),  # one child's sum passes 2^63: both sides of a 64-bit check would wrap alike
        (1_000_000, 1_000_000),  # no child's does, their merge does: the two sides would differ
    ],
    ids=["one-child-past-2^63", "children-past-2^63-together"],
)
def test_byte_totals_are_exact_past_2_to_the_63(tmp_path: Path, children: tuple[int, ...]) -> None:
    from batch_jobs.convert import part_stats
    from inventory_contract.schema import MAX_OBJECT_SIZE

    # GIVEN children whose parts hold objects of 5 TiB each, 2^63 bytes passed in total
    parts = [_big_part(tmp_path / f"part-{i}.parquet", n) for i, n in enumerate(children)]
    exact = sum(children) * MAX_OBJECT_SIZE  # Python's integers: the oracle
    assert exact > 2**63
    # WHEN each child sums its part and rolls it up, and finalize merges and reconciles them
    stats = [part_stats(p, columns_for(TABLE_FIELDS)) for p in parts]
    merged: dict[str, list[Path]] = {}
    for rollup in ROLLUPS:
        inputs = []
        for i, part in enumerate(parts):
            inputs.append(tmp_path / f"{rollup.name}-{i}.parquet")
            rollups.partials(part, RUN_DATE, 1)[rollup.name].write_parquet(inputs[-1])
        (tmp_path / "merged").mkdir(exist_ok=True)
        merged[rollup.name] = rollups.merge(rollup, inputs, tmp_path / "merged")
    size_sum = sum(s["size_sum"] for s in stats)
    # THEN every total is the exact one, and the run reconciles
    assert [s["size_sum"] for s in stats] == [n * MAX_OBJECT_SIZE for n in children]
    assert size_sum == exact
    assert rollups.reconcile(merged, rows=sum(children), size_sum=size_sum) == []
    report = rollups.summary(merged)
    assert [r["bytes"] for r in report["storage_class"]] == [exact]
    assert [r["bytes"] for r in report["largest_prefixes"]] == [exact]
    assert isinstance(report["storage_class"][0]["bytes"], int)  # a JSON number, not a string
    assert json.loads(json.dumps(report))["encryption"][0]["bytes"] == exact


def test_the_local_summarys_total_bytes_are_exact_past_2_to_the_63(tmp_path: Path) -> None:
    from inventory_contract.schema import MAX_OBJECT_SIZE
    from pipeline.local.summary import render, summarize

    (tmp_path / "parts").mkdir()
    _big_part(tmp_path / "parts" / "part-000000.parquet", 1_700_000)
    summary = summarize(tmp_path / "parts", {})
    assert summary["total_size"] == 1_700_000 * MAX_OBJECT_SIZE
    assert f"total bytes:      {1_700_000 * MAX_OBJECT_SIZE:,}" in render(summary)
