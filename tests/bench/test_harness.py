"""`make bench` on a tiny inventory: every task runs and the report holds every number."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_the_benchmark_runs_end_to_end_and_writes_its_report(tmp_path):
    results = tmp_path / "results.md"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--rows",
            "3000",
            "--runs",
            "3",
            "--data",
            str(tmp_path / "data"),
            "--results",
            str(results),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = results.read_text()
    for task in (
        "gzip -dc",
        "split (batch_jobs.split)",
        "process (batch_jobs.convert)",
        "DuckDB COPY, same transform",
        "pyarrow CSV -> Parquet",
        "run-local",
        "DuckDB COPY over the gzip files",
    ):
        row = next(line for line in report.splitlines() if line.startswith(f"| {task}"))
        found = re.search(r"\| \d+\.\d\d \| \d+\.\d\d-\d+\.\d\d \| \d+ \| (\d+) \| (\d+) \|$", row)
        assert found, row
        assert int(found[2]) >= int(found[1]) > 0  # the whole tree holds at least its largest process
    targets = [
        line
        for line in report.splitlines()
        if line.startswith(
            (
                "| split MB/s",
                "| split peak",
                "| process wall",
                "| process peak",
                "| run-local wall",
                "| run-local peak",
            )
        )
    ]
    assert len(targets) == 6 and all(("yes" in t) or ("missed by" in t) for t in targets)
    scratch = next(line for line in report.splitlines() if line.startswith("| run-local scratch disk"))
    assert re.search(r"\| \d+\.\d\d \| reported \| - \|$", scratch), scratch
    assert "3,000 rows in 4 gzip files" in report
    assert "run-local, last run, by stage" in report


def test_the_changes_benchmark_runs_and_reports_memory_growth(tmp_path):
    results = tmp_path / "results-changes.md"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--changes-only", "--rows", "2000", "--files", "2", "--runs", "3",
         "--data", str(tmp_path / "data"), "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    report = results.read_text()
    for task in ("changes, 1,000 rows a day", "DuckDB same query, 1,000 rows a day",
                 "changes, 2,000 rows a day", "DuckDB same query, 2,000 rows a day"):  # fmt: skip
        row = next(line for line in report.splitlines() if line.startswith(f"| {task} |"))
        found = re.search(r"\| \d+\.\d\d \| \d+\.\d\d-\d+\.\d\d \| (\d+) \| (\d+) \|$", row)
        assert found and int(found[2]) >= int(found[1]) > 0, row
    growth = next(line for line in report.splitlines() if line.startswith("| changes RSS growth"))
    assert re.search(r"\| \d+\.\d\d \| <= 1.0 \| (yes|\*\*no\*\*) \|$", growth), growth
    assert "2,000 rows a day: two complete run-local runs" in report
    assert re.search(
        r"\| changes peak RSS, 2,000 rows a day \(MiB\) \| \d+\.\d\d \| reported \| - \|", report
    )
