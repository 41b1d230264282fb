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
        "process (batch_jobs, gzip in)",
        "process, the child's whole work",
        "DuckDB COPY, same transform",
        "pyarrow CSV -> Parquet",
        "run-local",
        "DuckDB COPY over the gzip files",
    ):
        row = next(line for line in report.splitlines() if line.startswith(f"| {task}"))
        found = re.search(r"\| \d+\.\d\d \| \d+\.\d\d-\d+\.\d\d \| \d+ \| (\d+) \| (\d+) \|$", row)
        assert found, row
        assert int(found[2]) >= int(found[1]) > 0  # the whole tree holds at least its largest process
    judged = (
        "| processor throughput vs DuckDB",
        "| run-local wall / DuckDB query wall",
        "| run-local peak memory, whole tree",
        "| run-local scratch disk beyond the output",
    )
    targets = [line for line in report.splitlines() if line.startswith(judged)]
    assert len(targets) == len(judged), targets
    for line in targets:  # a measured ratio, and a verdict that agrees with it and its goal
        found = re.search(
            r"\| (\d+\.\d\d) \| (<=|>=) (\d+(?:\.\d+)?) \| (yes|\*\*no\*\*, missed by \d+%) \|$", line
        )
        assert found, line
        value, goal = float(found[1]), float(found[3])
        met = value <= goal if found[2] == "<=" else value >= goal
        assert (found[4] == "yes") == met, line
    assert "3,000 rows in 4 gzip data files" in report
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
