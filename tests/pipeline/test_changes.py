"""``python -m pipeline changes``: two days converted with run-local, compared against the
generator's known changes; and every misuse answered in one line, with nothing written."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from batch_jobs.changes import KINDS, OUTPUT_COLUMNS
from pipeline.cli import main
from pipeline.errors import EXIT_BAD_INPUT, EXIT_OK
from pipeline.synthetic import generate_delivery
from pipeline.synthetic_changes import Change, ChangeTruth
from tests.two_days import BUCKET, DAY1, DAY2, TwoDays, two_days

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def unversioned(tmp_path_factory: pytest.TempPathFactory) -> TwoDays:
    return two_days(tmp_path_factory.mktemp("unversioned"), versions=False)


@pytest.fixture(scope="module")
def versioned(tmp_path_factory: pytest.TempPathFactory) -> TwoDays:
    return two_days(tmp_path_factory.mktemp("versioned"), versions=True)


def changes(capsys: pytest.CaptureFixture[str], out: Path, target: Path, *extra: str, **dates: str):  # type: ignore[no-untyped-def]
    args = ["changes", str(out), "--source-bucket", BUCKET, "--from", dates.get("start", DAY1)]
    args += ["--to", dates.get("end", DAY2), "--out", str(target), *extra]
    code = main(args)
    said = capsys.readouterr()
    return code, said.out, said.err


def printed_totals(stdout: str) -> dict[str, tuple[int, int, int]]:
    found = {}
    for line in stdout.splitlines():
        words = line.split()
        if words and words[0] in KINDS:
            found[words[0]] = tuple(int(w.replace(",", "")) for w in words[1:])
    return found


def truth_totals(truth: ChangeTruth) -> dict[str, tuple[int, int, int]]:
    return {k: (truth.objects[k], truth.bytes_before[k], truth.bytes_after[k]) for k in KINDS}


def truth_rows(truth: ChangeTruth) -> pl.DataFrame:
    assert truth.rows is not None
    schema = {
        f.name: pl.Int64 if f.name.startswith("size") else pl.String for f in dataclasses.fields(Change)
    }
    return pl.DataFrame([dataclasses.asdict(r) for r in truth.rows], schema=schema).sort("key", "version_id")


COMPARED = [f.name for f in dataclasses.fields(Change)]


@pytest.mark.parametrize("bucket", ["unversioned", "versioned"])
def test_changes_match_the_generated_truth(request, capsys, tmp_path, bucket):
    days: TwoDays = request.getfixturevalue(bucket)
    truth = days.day2.truth
    target = tmp_path / "changes"

    code, stdout, stderr = changes(capsys, days.out, target)

    assert code == EXIT_OK, stderr
    assert printed_totals(stdout) == truth_totals(truth)
    summary = json.loads((target / "summary.json").read_text())
    assert summary["from"] == DAY1 and summary["to"] == DAY2 and summary["source_bucket"] == BUCKET
    assert {k: tuple(v.values()) for k, v in summary["changes"].items()} == truth_totals(truth)
    rows = pl.read_parquet(target / "changes.parquet")
    assert rows.columns == list(OUTPUT_COLUMNS)
    assert_frame_equal(rows.select(COMPARED).sort("key", "version_id"), truth_rows(truth))
    assert sorted(p.name for p in target.iterdir()) == ["changes.parquet", "summary.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["changes"]  # no staging folder left beside it


def test_every_kind_of_change_is_planted(unversioned, versioned):
    for days in (unversioned, versioned):
        plan, truth = days.plan, days.day2.truth
        assert truth.objects["added"] == plan.added + plan.copies + plan.multipart_copies
        assert truth.objects["deleted"] == plan.deleted + plan.delete_marked
        assert truth.objects["modified"] == plan.modified + plan.modified_and_moved
        assert truth.objects["storage_class_changed"] == plan.moved
    assert versioned.plan.delete_marked and versioned.plan.noncurrent_moved  # hidden and ignored versions


def test_modified_wins_over_a_storage_class_move(capsys, tmp_path, unversioned):
    changes(capsys, unversioned.out, tmp_path / "changes")
    rows = pl.read_parquet(tmp_path / "changes" / "changes.parquet")
    both = rows.filter(
        (pl.col("storage_class_before") != pl.col("storage_class_after"))
        & (
            (pl.col("size_before") != pl.col("size_after"))
            | (pl.col("e_tag_before") != pl.col("e_tag_after"))
        )
    )
    assert both["change"].to_list() == ["modified"] * unversioned.plan.modified_and_moved
    moved = rows.filter(pl.col("change") == "storage_class_changed")
    assert (moved["size_before"] == moved["size_after"]).all() and (
        moved["e_tag_before"] == moved["e_tag_after"]
    ).all()


def test_unversioned_objects_join_on_null_version_ids(capsys, tmp_path, unversioned):
    changes(capsys, unversioned.out, tmp_path / "changes")
    rows = pl.read_parquet(tmp_path / "changes" / "changes.parquet")
    assert rows["version_id"].null_count() == rows.height > 0
    plan = unversioned.plan
    assert rows.filter(pl.col("change") == "modified").height == plan.modified + plan.modified_and_moved


def test_a_key_behind_a_new_delete_marker_is_deleted_and_noncurrent_moves_are_not_reported(
    capsys, tmp_path, versioned
):
    changes(capsys, versioned.out, tmp_path / "changes")
    rows = pl.read_parquet(tmp_path / "changes" / "changes.parquet")
    parts = pl.scan_parquet(versioned.out / versioned.layout(DAY2).processed_prefix / "*.parquet")
    markers = parts.filter(pl.col("is_delete_marker") & pl.col("is_latest")).select("key").collect()
    hidden = rows.join(markers, on="key").filter(pl.col("change") == "deleted")
    assert hidden.height == versioned.plan.delete_marked
    assert hidden["size_after"].null_count() == hidden.height and hidden["size_before"].is_not_null().all()


def test_force_replaces_a_non_empty_folder_and_the_result_is_the_same(capsys, tmp_path, unversioned):
    target = tmp_path / "changes"
    target.mkdir()
    (target / "old.txt").write_text("an earlier result")

    code, stdout, _ = changes(capsys, unversioned.out, target, "--force")

    assert code == EXIT_OK
    assert sorted(p.name for p in target.iterdir()) == ["changes.parquet", "summary.json"]
    assert printed_totals(stdout) == truth_totals(unversioned.day2.truth)
    assert [p.name for p in tmp_path.iterdir()] == ["changes"]


def test_a_failure_while_writing_leaves_the_folder_as_it_was(capsys, tmp_path, unversioned, monkeypatch):
    target = tmp_path / "changes"
    target.mkdir()
    (target / "old.txt").write_text("an earlier result")

    def broken(before: Path, after: Path, into: Path) -> None:
        into.write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pipeline.changes_command.write_changes", broken)
    with pytest.raises(OSError, match="No space left"):
        changes(capsys, unversioned.out, target, "--force")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["changes"]


def _copy(days: TwoDays, root: Path, name: str) -> Path:
    """A copy of the two days' output to break one thing in."""
    out = root / name
    shutil.copytree(days.out, out)
    return out


def _edit_json(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    written = json.loads(path.read_text())
    edit(written)
    path.write_text(json.dumps(written))


def _incomplete(days: TwoDays, root: Path) -> Path:
    out = _copy(days, root, "incomplete")
    (out / days.layout(DAY2).complete_marker_key).unlink()
    return out


def _lost_part(days: TwoDays, root: Path) -> Path:
    out = _copy(days, root, "lost-part")
    next((out / days.layout(DAY1).processed_prefix).glob("*.parquet")).unlink()
    return out


def _earlier_version(days: TwoDays, root: Path) -> Path:
    out = _copy(days, root, "earlier")
    # as a version without rollups wrote it
    _edit_json(out / days.layout(DAY1).complete_marker_key, lambda marker: marker.pop("rollups"))
    return out


def _other_fields(days: TwoDays, root: Path) -> Path:
    out = _copy(days, root, "other-fields")

    def drop_etag(report: dict[str, Any]) -> None:
        report["file_schema"] = [f for f in report["file_schema"] if f != "ETag"]

    _edit_json(out / days.layout(DAY2).plan_key, drop_etag)
    return out


MISUSE = {
    "a bad date": (lambda d, r: d.out, {"start": "2026-11-31"}, "argument --from: must be a date YYYY-MM-DD, got '2026-11-31'"),
    "a date written otherwise": (lambda d, r: d.out, {"end": "20261125"}, "argument --to: must be a date YYYY-MM-DD"),
    "--from after --to": (lambda d, r: d.out, {"start": DAY2, "end": DAY1}, f"--from {DAY2} is not before --to {DAY1}"),
    "--from equal to --to": (lambda d, r: d.out, {"end": DAY1}, f"--from {DAY1} is not before --to {DAY1}"),
    "OUT missing": (lambda d, r: r / "nowhere", {}, "nowhere does not exist; give the folder run-local or demo wrote the runs in"),
    "a run partition missing": (
        lambda d, r: d.out,
        {"end": "2026-11-26"},
        f"no run partition {{out}}/processed/source_bucket={BUCKET}/run_date=2026-11-26/; convert that day first",
    ),
    "a run without its _COMPLETE marker": (
        _incomplete,
        {},
        f"run {BUCKET}/{DAY2} is not complete: {{out}}/run-reports/source_bucket={BUCKET}/run_date={DAY2}/_COMPLETE is missing",
    ),
    "a run that lost a part": (_lost_part, {}, f"run {BUCKET}/{DAY1} is not complete: {{out}}/processed/source_bucket={BUCKET}/run_date={DAY1}/part-"),
    "a run converted before rollups": (_earlier_version, {}, "_COMPLETE lists no rollup tables: an earlier version converted it; only complete runs are compared: run that day's delivery again with run-local (a run that is not complete runs again from the start, no --force needed)"),
    "runs with different fields": (_other_fields, {}, f"the runs were delivered with different fields (['ETag'] only on {DAY1}): every object would show as changed"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MISUSE))
def test_misuse_of_the_inputs_is_one_line_and_writes_nothing(capsys, tmp_path, unversioned, case):
    make_out, dates, expected = MISUSE[case]
    out = make_out(unversioned, tmp_path)
    target = tmp_path / "results" / "changes"
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))

    code, stdout, stderr = changes(capsys, out, target, **dates)

    assert code == EXIT_BAD_INPUT
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert expected.format(out=out) in stderr
    assert stdout == ""
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing created


def test_a_non_empty_folder_is_refused_without_force_and_kept(capsys, tmp_path, unversioned):
    target = tmp_path / "changes"
    target.mkdir()
    (target / "old.txt").write_text("an earlier result")

    code, _, stderr = changes(capsys, unversioned.out, target)

    assert code == EXIT_BAD_INPUT
    assert (
        stderr
        == f"error: --out {target} is not empty; give a new or empty folder, or --force to replace it\n"
    )
    assert [p.name for p in target.iterdir()] == ["old.txt"] and [p.name for p in tmp_path.iterdir()] == [
        "changes"
    ]


def test_an_empty_folder_is_used(capsys, tmp_path, unversioned):
    (tmp_path / "changes").mkdir()
    code, _, _ = changes(capsys, unversioned.out, tmp_path / "changes")
    assert code == EXIT_OK and (tmp_path / "changes" / "changes.parquet").is_file()


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("a-file", "--out {target} is a file; give a folder"),
        ("a-file/below", "--out {target}: cannot write in {tmp}/a-file (Not a directory)"),
        ("OUT", "--out {target} overlaps RUNS {out}'s table or run reports"),
        ("OUT/processed/mine", "--out {target} overlaps RUNS {out}'s table or run reports"),
    ],
)
def test_an_unusable_output_folder_is_refused(capsys, tmp_path, unversioned, where, expected):
    (tmp_path / "a-file").write_text("not a folder")
    target = unversioned.out / where.removeprefix("OUT/") if where.startswith("OUT") else tmp_path / where
    if where == "OUT":
        target = unversioned.out
    listing = sorted(unversioned.out.rglob("*"))

    code, _, stderr = changes(capsys, unversioned.out, target, "--force")

    assert code == EXIT_BAD_INPUT and stderr.count("\n") == 1
    assert expected.format(target=target, tmp=tmp_path, out=unversioned.out) in stderr
    assert (
        sorted(unversioned.out.rglob("*")) == listing and (tmp_path / "a-file").read_text() == "not a folder"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_folder_without_write_permission_is_refused(capsys, tmp_path, unversioned):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    code, _, stderr = changes(capsys, unversioned.out, locked / "changes")
    assert code == EXIT_BAD_INPUT and "cannot write in" in stderr and not (locked / "changes").exists()


# ---------- an identity listed more than once ----------


def _rows(gen) -> tuple[list[str], list[list[str]]]:
    """The field names and the rows of a one-file delivery, as Python's csv module reads them."""
    import csv
    import gzip
    import io

    fields = json.loads(gen.manifest_path.read_bytes())["fileSchema"].split(", ")
    text = gzip.decompress((gen.root / gen.data_keys[0]).read_bytes()).decode()
    return fields, list(csv.reader(io.StringIO(text)))


def _write_rows(gen, rows: list[list[str]]) -> None:
    import csv
    import io

    from tests.pipeline.test_cli_cases import rewrite

    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    rewrite(gen, 0, lambda _: buffer.getvalue().encode())


def _oracle(fields: list[str], before: list[list[str]], after: list[list[str]]) -> dict[str, int]:
    """The README's rules in plain Python: one row per key (the latest last-modified date, then the
    largest size), then added, deleted, modified (size or ETag) and class moves."""
    from urllib.parse import unquote_plus

    at = {name: fields.index(name) for name in ("Key", "Size", "ETag", "StorageClass", "LastModifiedDate")}

    def once(rows: list[list[str]]) -> dict[str, list[str]]:
        kept: dict[str, list[str]] = {}
        for row in rows:
            key = unquote_plus(row[at["Key"]])
            rank = (row[at["LastModifiedDate"]], int(row[at["Size"]] or 0))
            if key not in kept or rank > (kept[key][at["LastModifiedDate"]], int(kept[key][at["Size"]] or 0)):
                kept[key] = row
        return kept

    old, new = once(before), once(after)
    counts = dict.fromkeys(KINDS, 0)
    counts["added"] = len(new.keys() - old.keys())
    counts["deleted"] = len(old.keys() - new.keys())
    for key in old.keys() & new.keys():
        a, b = old[key], new[key]
        if (a[at["Size"]], a[at["ETag"]]) != (b[at["Size"]], b[at["ETag"]]):
            counts["modified"] += 1
        elif a[at["StorageClass"]] != b[at["StorageClass"]]:
            counts["storage_class_changed"] += 1
    return counts


@pytest.mark.parametrize("listed_twice_on", ["the first day", "the second day", "both days"])
def test_an_object_listed_twice_in_a_day_counts_once(capsys, tmp_path, listed_twice_on):
    from datetime import UTC, datetime

    from pipeline.synthetic import generate_delivery
    from tests.two_days import UNVERSIONED_FIELDS

    # GIVEN two days of one bucket, q modified, p deleted and k added between them, where the days
    # list q, p and k twice (the adversarial pass's case) on one day or both
    days = [
        generate_delivery(
            tmp_path / f"day{n}",
            objects=40,
            files=1,
            source_bucket=BUCKET,
            versions=False,
            fields=UNVERSIONED_FIELDS,
            tricky_share=0,
            timestamp=datetime(2026, 11, 24 + n, 1, 0, tzinfo=UTC),
        )
        for n in (0, 1)
    ]
    fields, rows = _rows(days[0])
    size, key = fields.index("Size"), fields.index("Key")
    q, p, k = rows[0], rows[1], [*rows[2][:key], "k-added", *rows[2][key + 1 :]]
    bigger_q = [*q[:size], str(int(q[size]) + 1), *q[size + 1 :]]
    twice_first = listed_twice_on in ("the first day", "both days")
    twice_second = listed_twice_on in ("the second day", "both days")
    first = rows + ([q, p] if twice_first else [])
    second = [bigger_q, *rows[2:], k] + ([bigger_q, k] if twice_second else [])
    _write_rows(days[0], first)
    _write_rows(days[1], second)
    out = tmp_path / "out"
    for gen in days:
        assert main(["run-local", str(gen.manifest_path), "--out", str(out), "--workers", "1"]) == 0
    capsys.readouterr()
    # WHEN the days are compared
    code, stdout, stderr = changes(capsys, out, tmp_path / "changes")
    # THEN each object counts once, as plain Python over the CSV counts it, and the repeats are named
    assert code == EXIT_OK, stderr
    expected = _oracle(fields, first, second)
    assert expected == {"added": 1, "deleted": 1, "modified": 1, "storage_class_changed": 0}
    assert {kind: objects for kind, (objects, *_) in printed_totals(stdout).items()} == expected
    rows_out = pl.read_parquet(tmp_path / "changes" / "changes.parquet")
    assert rows_out.height == 3 and rows_out["key"].n_unique() == 3
    summary = json.loads((tmp_path / "changes" / "summary.json").read_text())["listed_more_than_once"]
    assert summary[DAY1]["identities"] == (2 if twice_first else 0)
    assert summary[DAY2]["identities"] == (2 if twice_second else 0)
    assert ("note: 2026-11-24 lists 2 objects more than once" in stdout) == twice_first
    assert ("note: 2026-11-25 lists 2 objects more than once" in stdout) == twice_second
    # and the saved Athena queries (transpiled to DuckDB) count the same, and list the repeats
    by_kind = {row[1]: row[2] for row in _athena(out, "changes-by-kind", DAY1, DAY2)}
    assert by_kind == {kind: n for kind, n in expected.items() if n}
    for day, twice in ((DAY1, twice_first), (DAY2, twice_second)):
        assert len(_athena(out, "listed-more-than-once", day)) == (2 if twice else 0)


def test_of_an_object_listed_twice_the_latest_listing_counts(capsys, tmp_path):
    from datetime import UTC, datetime

    from pipeline.synthetic import generate_delivery
    from tests.two_days import UNVERSIONED_FIELDS

    # GIVEN day 1 listing q and r twice each, the copies differing in last-modified date, size and
    # ETag, and day 2 listing each once, as the later of its two copies
    days = [
        generate_delivery(
            tmp_path / f"day{n}",
            objects=20,
            files=1,
            source_bucket=BUCKET,
            versions=False,
            fields=UNVERSIONED_FIELDS,
            tricky_share=0,
            timestamp=datetime(2026, 11, 24 + n, 1, 0, tzinfo=UTC),
        )
        for n in (0, 1)
    ]
    fields, rows = _rows(days[0])
    at = {name: fields.index(name) for name in ("Size", "ETag", "LastModifiedDate")}

    def copy(row: list[str], *, when: str, grow: int) -> list[str]:
        changed = list(row)
        changed[at["LastModifiedDate"]] = when
        changed[at["Size"]] = str(int(row[at["Size"]]) + grow)
        changed[at["ETag"]] = f"{grow:032x}"
        return changed

    q, r = rows[0], rows[1]
    q_older = copy(q, when="2001-01-01T00:00:00.000Z", grow=5)  # q itself is the later copy
    r_later = copy(r, when="2099-01-01T00:00:00.000Z", grow=7)  # r itself is the earlier copy
    _write_rows(days[0], [*rows, q_older, r_later])
    _write_rows(days[1], [q, r_later, *rows[2:]])
    out = tmp_path / "out"
    for gen in days:
        assert main(["run-local", str(gen.manifest_path), "--out", str(out), "--workers", "1"]) == 0
    capsys.readouterr()
    # WHEN the days are compared
    code, stdout, stderr = changes(capsys, out, tmp_path / "changes")
    # THEN nothing changed: the later copy of each counted on day 1, and is what day 2 lists (were
    # the earlier copy to count, q and r would both be modified), in the command and in Athena
    assert code == EXIT_OK, stderr
    assert {kind: objects for kind, (objects, *_) in printed_totals(stdout).items()} == dict.fromkeys(
        KINDS, 0
    )
    assert _athena(out, "changes-by-kind", DAY1, DAY2) == []
    assert sorted(row[1] for row in _athena(out, "listed-more-than-once", DAY1)) == sorted(
        [q[fields.index("Key")], r[fields.index("Key")]]
    )


def _athena(out: Path, name: str, *params: str) -> list[tuple[Any, ...]]:
    import duckdb
    import sqlglot

    from components.queries import NAMED_QUERIES
    from inventory_contract.layout import PROCESSED_ROOT

    db = duckdb.connect()
    db.execute(
        "CREATE VIEW inventory AS SELECT * FROM "
        f"read_parquet('{out}/{PROCESSED_ROOT}/*/*/*.parquet', hive_partitioning = true)"
    )
    sql = sqlglot.transpile(NAMED_QUERIES[name][1].format(table="inventory"), read="trino", write="duckdb")[0]
    return db.execute(sql, list(params)).fetchall()


def _replace_part(out: Path, layout: Any, frame: pl.DataFrame) -> Path:
    """Put ``frame`` in place of the run's first part, and list it in the run's marker at its size."""
    part = sorted((out / layout.processed_prefix).glob("*.parquet"))[0]
    frame.write_parquet(part)
    marker = out / layout.complete_marker_key
    listed = json.loads(marker.read_text())
    listed["parts"][part.relative_to(out).as_posix()] = part.stat().st_size
    marker.write_text(json.dumps(listed))
    return part


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda f: f.drop("e_tag"), "has no column 'e_tag'"),
        (lambda f: f.with_columns(pl.col("size").cast(pl.String)), "column 'size' is String, not the Int64"),
        (lambda f: f.with_columns(pl.col("is_latest").cast(pl.String)), "column 'is_latest' is String"),
    ],
    ids=["a column missing", "size as text", "is_latest as text"],
)
def test_parts_that_cannot_be_compared_are_refused_in_one_line_naming_part_and_column(
    capsys, tmp_path, unversioned, edit, said
):
    # GIVEN a copy of the output where one part of day 1 predates the stable table, or was written
    # by something else with another type
    out = tmp_path / "out"
    shutil.copytree(unversioned.out, out)
    layout = unversioned.layout(DAY1)
    first = sorted((out / layout.processed_prefix).glob("*.parquet"))[0]
    part = _replace_part(out, layout, edit(pl.read_parquet(first)))
    # WHEN the days are compared
    code, _, stderr = changes(capsys, out, tmp_path / "changes")
    # THEN bad input, said once, naming the part and the column; nothing written
    assert code == EXIT_BAD_INPUT
    assert stderr.count("\n") == 1 and stderr.startswith("error: "), stderr
    assert f"{part}" in stderr and said in stderr, stderr
    assert not (tmp_path / "changes").exists()


def test_byte_totals_of_changes_are_exact_past_2_to_the_63(capsys, tmp_path, unversioned):
    # GIVEN day 1 holding 1,700,000 objects of S3's largest size (5 TiB) that day 2 does not list:
    # their sum, 9.35e18 bytes, is past 2^63 (an Int64 sum would wrap to a negative number)
    out = tmp_path / "out"
    shutil.copytree(unversioned.out, out)
    layout = unversioned.layout(DAY1)
    template = pl.read_parquet(sorted((out / layout.processed_prefix).glob("*.parquet"))[0]).head(1)
    count, largest = 1_700_000, 5 * 2**40
    huge = pl.concat([template] * count).with_columns(
        pl.format("gone/{}", pl.int_range(count)).alias("key"), pl.lit(largest, pl.Int64).alias("size")
    )
    for part in sorted((out / layout.processed_prefix).glob("*.parquet")):  # day 1 is one part of these
        part.unlink()
    part = out / layout.part_key(0)
    huge.write_parquet(part)
    marker = out / layout.complete_marker_key
    listed = json.loads(marker.read_text())
    listed["parts"] = {part.relative_to(out).as_posix(): part.stat().st_size}
    marker.write_text(json.dumps(listed))
    # WHEN the days are compared
    code, stdout, stderr = changes(capsys, out, tmp_path / "changes")
    # THEN the deleted bytes are exact, in the printout and in summary.json (Python's integers: the oracle)
    assert code == EXIT_OK, stderr
    expected = count * largest
    assert expected > 2**63
    deleted = printed_totals(stdout)["deleted"]
    assert deleted[0] == count and deleted[1] == expected
    summary = json.loads((tmp_path / "changes" / "summary.json").read_text())
    assert summary["changes"]["deleted"] == {"objects": count, "bytes_before": expected, "bytes_after": 0}


def test_a_run_reports_the_objects_it_lists_more_than_once(capsys, tmp_path):
    import csv
    import gzip
    import io
    from collections import Counter
    from urllib.parse import unquote_plus

    from pipeline.synthetic import generate_delivery
    from tests.pipeline.test_cli_cases import rewrite

    # GIVEN a delivery of two data files (a chunk each) where file 0 lists one version twice and
    # file 1 lists again a version of file 0
    gen = generate_delivery(
        tmp_path / "bucket", objects=30_000, files=2, source_bucket=BUCKET, tricky_share=0.3
    )
    first = gzip.decompress((gen.root / gen.data_keys[0]).read_bytes()).decode().splitlines(keepends=True)
    rewrite(gen, 0, lambda data: data + first[3].encode())
    rewrite(gen, 1, lambda data: data + first[10].encode())
    # WHEN it is converted in two chunks
    out = tmp_path / "out"
    assert main(["run-local", str(gen.manifest_path), "--out", str(out), "--target-chunk-mib", "1"]) == 0
    printed = capsys.readouterr().out
    # THEN the run report counts them as plain Python over the CSV does, and the summary says so
    fields = json.loads(gen.manifest_path.read_bytes())["fileSchema"].split(", ")
    key, version = fields.index("Key"), fields.index("VersionId")
    listed: Counter[tuple[str, str]] = Counter()
    for data_key in gen.data_keys:
        text = gzip.decompress((gen.root / data_key).read_bytes()).decode()
        listed.update((unquote_plus(row[key]), row[version]) for row in csv.reader(io.StringIO(text)))
    repeated = {identity: n for identity, n in listed.items() if n > 1}
    assert len(repeated) == 2
    report = json.loads((out / gen_layout(gen).run_report_key).read_text())
    assert report["chunks"] >= 2
    found = report["duplicates"]
    assert (found["identities"], found["extra_rows"]) == (2, 2)
    # each named once: with its key when one chunk lists it twice, by its chunks and their data
    # files when two chunks do (which it is depends on where the chunks begin)
    repeated_keys = {k for k, _ in repeated}
    assert {e["key"] for e in found["examples"]} <= repeated_keys
    assert all(e["listed"] == 2 for e in found["examples"])
    assert len(found["examples"]) + sum(a["identities"] for a in found["across_chunks"]) == 2
    for shared in found["across_chunks"]:
        assert len(shared["chunks"]) == 2 and set(shared["data_files"]) <= set(gen.data_keys)
    assert "note: 2 object(s) (key and version id) listed more than once, 2 extra row(s)" in printed


def gen_layout(gen):  # type: ignore[no-untyped-def]
    from inventory_contract.layout import RunLayout

    return RunLayout.of(gen.delivery)


def test_runs_that_list_version_ids_differently_are_not_compared(tmp_path, capsys):
    # day 1 lists every version with its id (a snapshot's default); day 2 is an inventory of the same
    # objects without the VersionId field: every object would be "deleted" and "added"
    from datetime import UTC, datetime

    from inventory_contract.schema import KNOWN_FIELDS
    from tests.two_days import UNVERSIONED_FIELDS

    same = {
        "objects": 300,
        "files": 1,
        "source_bucket": "bkt",
        "versions": True,
        "seed": 3,
        "tricky_share": 0,
    }
    out = tmp_path / "out"
    for day, fields in ((24, KNOWN_FIELDS), (25, UNVERSIONED_FIELDS)):
        delivered = generate_delivery(
            tmp_path / f"d{day}", timestamp=datetime(2026, 11, day, 1, tzinfo=UTC), fields=fields, **same
        )
        assert main(["run-local", str(delivered.manifest_path), "--out", str(out), "--workers", "1"]) == 0
    capsys.readouterr()
    argv = ["changes", str(out), "--source-bucket", "bkt", "--from", "2026-11-24", "--to", "2026-11-25"]
    assert main([*argv, "--out", str(tmp_path / "changes")]) == 2
    err = capsys.readouterr().err
    assert (
        "the runs were delivered with different fields (['IsDeleteMarker', 'IsLatest', 'VersionId'] only on 2026-11-24)"
        in err
    )
    assert not (tmp_path / "changes" / "changes.parquet").exists()
    page = (out / "reports" / "source_bucket=bkt" / "latest.html").read_text()
    assert 'id="changes-left-out"' in page and "the runs were delivered with different fields" in page


def test_without_the_plans_objects_listed_with_and_without_their_version_id_are_not_compared(tmp_path):
    # on AWS the plans expire with the run state; the objects themselves say it: an object version's
    # id never changes, so the same key, ETag and last-modified with an id on one day and none on the
    # next means the runs list version ids differently
    from datetime import UTC, datetime

    from batch_jobs.changes import _SCHEMA, PartsNotComparableError, write_changes

    def write_parts(folder: Path, rows: list[dict[str, Any]]) -> None:
        folder.mkdir()
        full = [
            {"is_latest": True, "is_delete_marker": False, "storage_class": "STANDARD", **r} for r in rows
        ]
        pl.DataFrame(full, schema=_SCHEMA).write_parquet(folder / "part-000000.parquet")

    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {"key": f"k{i}", "version_id": f"v{i}", "size": i, "e_tag": f"e{i}", "last_modified_date": at}
        for i in range(5)
    ]
    write_parts(tmp_path / "before", rows)
    write_parts(tmp_path / "after", [{**r, "version_id": None} for r in rows])
    with pytest.raises(PartsNotComparableError, match="5 objects are the same in both runs"):
        write_changes(tmp_path / "before", tmp_path / "after", tmp_path / "changes.parquet")
    assert not (tmp_path / "changes.parquet").exists()
    # versioning turned on: the objects from before keep no id; new uploads have one (another time)
    later = datetime(2026, 1, 2, tzinfo=UTC)
    write_parts(tmp_path / "enabled", [{**r, "version_id": None} for r in rows])
    write_parts(
        tmp_path / "next",
        [*({**r, "version_id": None} for r in rows[:4]), {**rows[4], "last_modified_date": later}],
    )
    write_changes(tmp_path / "enabled", tmp_path / "next", tmp_path / "changes.parquet")
    found = pl.read_parquet(tmp_path / "changes.parquet")
    assert sorted(found["change"].to_list()) == ["added", "deleted"]
