"""The storage report's page from figures made here: what it shows when prefixes go, when runs pile
up, when the inventory has no sizes, and how long labels are cut. (The page of real runs, in a
browser and against DuckDB: tests/pipeline/test_report.py.)"""

from __future__ import annotations

import json
import random
from html.parser import HTMLParser
from typing import Any

import polars as pl

from batch_jobs.report_charts import _short
from batch_jobs.report_figures import PREFIX_SCHEMA, ReportFigures, RunFigures, prefix_rows
from batch_jobs.report_page import render
from inventory_contract.prices import prices_for


def run(day: str, prefixes: dict[str, int], classes: dict[str, tuple[int, int]] | None = None) -> RunFigures:
    classes = classes if classes is not None else {"STANDARD": (len(prefixes), sum(prefixes.values()))}
    rows = sum(n for n, _ in classes.values())
    return RunFigures(
        day,
        {"status": "complete", "rows_in": rows, "rows_out": rows, "inventory_kind": "s3-inventory"},
        {
            "storage_class": [
                {
                    "storage_class": c,
                    "version_kind": "current",
                    "intelligent_tiering_access_tier": None,
                    "objects": n,
                    "bytes": b,
                }
                for c, (n, b) in classes.items()
            ],
            "age": [],
            "encryption": [],
        },
        pl.DataFrame(
            {"depth": [1] * len(prefixes), "prefix": list(prefixes), "bytes": list(prefixes.values())},
            schema=PREFIX_SCHEMA,
        ),
    )


class Tables(HTMLParser):
    """Each table's rows as (text, data-value) per cell, by the table's id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[tuple[str, str | None]]]] = {}
        self.notes: set[str] = set()
        self._table: str | None = None
        self._cell: list[Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and found.get("id"):
            self._table = found["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag == "td" and self._table:
            self._cell = ["", found.get("data-value")]
        if tag == "p" and found.get("id"):
            self.notes.add(str(found["id"]))

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[0] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._table:
            self.tables[self._table][-1].append((self._cell[0], self._cell[1]))
            self._cell = None
        elif tag == "tr" and self._table and not self.tables[self._table][-1]:
            self.tables[self._table].pop()  # the header: th cells only
        elif tag == "table":
            self._table = None


def page(*runs: RunFigures) -> Tables:
    parsed = Tables()
    parsed.feed(render(ReportFigures("b", list(runs)), prices_for("us-east-1"), source="test"))
    return parsed


def test_a_prefix_that_went_has_a_row_and_the_changes_add_up() -> None:
    before = run("2026-11-24", {"a/": 100, "b/": 50, "gone/": 30, "also-gone/": 1})
    after = run("2026-11-25", {"a/": 120, "b/": 50, "new/": 5})
    rows = page(before, after).tables["prefixes-1"]
    assert [[text for text, _ in row] for row in rows] == [
        ["a/", "120.0 B", "+20.0 B"],
        ["b/", "50.0 B", "+0.0 B"],
        ["new/", "5.0 B", "new"],
        ["gone since the previous run (2 prefixes)", "0.0 B", "-31.0 B"],
    ]
    assert sum(int(row[-1][1] or 0) for row in rows) == 175 - 181


def test_with_many_prefixes_the_rows_still_add_up_to_the_change() -> None:
    rng = random.Random(5)
    names = [f"p{i:03d}/" for i in range(60)]
    for _ in range(50):
        before = {n: rng.randrange(1, 10**6) for n in rng.sample(names, rng.randrange(0, 60))}
        after = {n: rng.randrange(1, 10**6) for n in rng.sample(names, rng.randrange(1, 60))}
        rows = prefix_rows(run("2026-11-25", after), run("2026-11-24", before), 1) if before else None
        rows = rows or prefix_rows(run("2026-11-25", after), None, 1)
        assert sum(r.bytes for r in rows) == sum(after.values())
        if before:
            assert sum(r.change or 0 for r in rows) == sum(after.values()) - sum(before.values())
            assert {r.label for r in rows if r.kind == "new"} <= set(after) - set(before)
        assert len(rows) <= 12 + 2  # the largest, the rest summed, the gone


def test_forty_runs_make_forty_rows_not_forty_columns() -> None:
    days = [f"2026-10-{d:02d}" for d in range(1, 32)] + [f"2026-11-{d:02d}" for d in range(1, 10)]
    classes = {"STANDARD": (3, 300), "GLACIER": (1, 7)}
    rows = page(*(run(d, {"a/": 307}, classes) for d in days)).tables["classes-by-run"]
    assert [row[0][0] for row in rows] == days
    assert {len(row) for row in rows} == {1 + len(classes)}
    assert [v for _, v in rows[-1][1:]] == ["300", "7"]


def test_an_inventory_without_sizes_says_its_zero_bytes_are_not_measured() -> None:
    assert "no-sizes" in page(run("2026-11-24", {"a/": 0}, {"STANDARD": (4, 0)})).notes
    assert "no-sizes" not in page(run("2026-11-24", {"a/": 9}, {"STANDARD": (4, 9)})).notes
    assert "no-sizes" not in page(run("2026-11-24", {}, {})).notes  # an empty bucket is not unsized


def test_a_long_label_keeps_its_start_and_its_end() -> None:
    first, second = (
        "logs/2026/an-application-with-a-long-name/eu-west-1/",
        "logs/2026/an-application-with-a-long-name/us-east-1/",
    )
    assert _short(first) != _short(second)
    assert (
        len(_short(first)) == 40
        and _short(first).startswith("logs/2026/")
        and _short(first).endswith("eu-west-1/")
    )
    assert _short("short/") == "short/" and _short("new\nline/") == "new?line/"


def test_a_hundred_daily_runs_show_the_last_sixty_and_say_so(tmp_path) -> None:
    from datetime import date, timedelta

    from batch_jobs.report_figures import HISTORY_RUNS, store_figures
    from batch_jobs.rollups import schema
    from batch_jobs.storage import LocalStorage
    from inventory_contract.layout import RunLayout
    from inventory_contract.rollups import STORAGE_CLASS

    days = [(date(2025, 12, 1) + timedelta(days=i)).isoformat() for i in range(100)]
    for i, day in enumerate(days):  # a run as finalize leaves it: its storage class table, report, marker
        layout = RunLayout("b", day)
        table = tmp_path / layout.rollup_key(STORAGE_CLASS.name)
        table.parent.mkdir(parents=True)
        rows = [
            {
                "storage_class": c,
                "version_kind": "current",
                "intelligent_tiering_access_tier": None,
                "objects": 1,
                "bytes": i,
            }
            for c in (
                "STANDARD",
                "STANDARD_IA",
                "INTELLIGENT_TIERING",
                "GLACIER_IR",
                "GLACIER",
                "DEEP_ARCHIVE",
            )
        ]
        pl.DataFrame(rows, schema=schema(STORAGE_CLASS)).write_parquet(table)
        (tmp_path / layout.run_report_key).parent.mkdir(parents=True)
        (tmp_path / layout.run_report_key).write_text('{"status": "complete", "rows_in": 6, "rows_out": 6}')
        marker = {"completed_at": f"{day}T01:00:00+00:00", "rows": 6, "parts": {}, "rollups": {
            layout.rollup_key(STORAGE_CLASS.name): table.stat().st_size}}  # fmt: skip
        (tmp_path / layout.complete_marker_key).write_text(json.dumps(marker))
    figures = store_figures(LocalStorage("dest", tmp_path), "b")
    assert [r.run_date for r in figures.runs] == days[
        -HISTORY_RUNS:
    ] and figures.earlier_runs == 100 - HISTORY_RUNS
    text = render(figures, prices_for("us-east-1"), source="test")
    assert (
        f'100 complete runs kept; the last <span id="runs-shown">{HISTORY_RUNS}</span> shown, from {days[-HISTORY_RUNS]}'
        in text
    )
    assert len(text.encode()) < 400 * 1024, len(text.encode())  # a few hundred KB, however many runs are kept
    parsed = Tables()
    parsed.feed(text)
    assert [row[0][0] for row in parsed.tables["classes-by-run"]] == days[-HISTORY_RUNS:]


def test_control_characters_of_keys_are_shown_as_escapes() -> None:
    text = render(
        ReportFigures("b", [run("2026-11-24", {"a\x00b/": 5, "bell\x07/": 3, "<script>/": 1})]),
        prices_for("us-east-1"),
        source="test",
    )
    assert "\x00" not in text and "\x07" not in text and "<script>/" not in text
    parsed = Tables()
    parsed.feed(text)
    assert [row[0][0] for row in parsed.tables["prefixes-1"]] == ["a\\x00b/", "bell\\x07/", "<script>/"]
