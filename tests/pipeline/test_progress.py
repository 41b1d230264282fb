"""The console's progress lines, from what the jobs log, and the hints a run ends with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from pipeline.local.demo import generation_progress
from pipeline.local.executor import _progress_line, _rows_written
from pipeline.local.summary import query_command
from pipeline.synthetic import generate_delivery


def test_the_plan_and_each_childs_progress_are_relayed() -> None:
    plan = {"level": "INFO", "message": "plan written", "chunks": 9, "files": 4, "cut_files": 1}
    assert _progress_line(json.dumps(plan)) == "planned 9 chunk(s) over 4 data file(s), 1 cut in pieces"
    child = {
        "level": "INFO",
        "message": "process progress",
        "chunk": 3,
        "rows": 5_300_000,
        "rows_per_s": 812_345,
        "compressed_bytes_done": 400_000_000,
        "compressed_bytes_total": 1_600_000_000,
    }
    said = _progress_line(json.dumps(child))
    assert said == "chunk 3: 5,300,000 rows, 25% of its 1,600 MB of gzip read, 812,345 rows/s"
    assert _progress_line(json.dumps({"message": "part written"})) is None
    assert _progress_line("Traceback (most recent call last):") is None


def test_a_childs_rows_come_from_its_last_part_written_line(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    log.write_text(
        json.dumps({"message": "chunk fetched", "bytes": 10})
        + "\nnot json\n"
        + json.dumps({"message": "part written", "rows": 1234})
        + "\n"
    )
    assert _rows_written(log) == 1234
    log.write_text("error: bad input\n")
    assert _rows_written(log) is None


def test_generation_reports_rows_at_most_every_interval_with_share_and_rate() -> None:
    said: list[str] = []
    now = iter([100.0, 100.5, 102.0, 103.0, 104.5, 107.0])  # started, then one reading per call
    written = generation_progress(said.append, 1_000_000, every=2.0, clock=lambda: next(now))
    for rows in (10_000, 50_000, 80_000, 110_000, 1_000_000):
        written(rows)
    assert said == [
        "generating: 50,000 of 1,000,000 objects, 5% of the inventory, 25,000 objects/s",
        "generating: 110,000 of 1,000,000 objects, 11% of the inventory, 24,444 objects/s",
    ]  # the last call is the end, which the demo reports itself with the time taken


def test_the_generator_counts_its_rows_up_to_the_total(tmp_path: Path) -> None:
    counts: list[int] = []
    generated = generate_delivery(tmp_path, objects=25_000, files=2, on_rows=counts.append)
    assert counts == [10_000, 12_500, 22_500, 25_000]  # blocks of 10,000 rows, and each file's end
    assert generated.truth.rows == 25_000


def test_the_suggested_query_runs_in_a_shell_whatever_the_folders_name(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    parts = tmp_path / 'it\'s a "folder" $HOME' / "run_date=2026-11-24"
    parts.mkdir(parents=True)
    pl.DataFrame({"storage_class": ["STANDARD", "GLACIER_IR", "STANDARD"], "size": [5, 7, 1]}).write_parquet(
        parts / "part-000000.parquet"
    )
    command = query_command(parts)
    assert command.startswith((f"{sys.executable} -c ", ".venv/bin/python -c "))
    done = subprocess.run(command, shell=True, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "shape: (2, 3)" in done.stdout
    assert [line.split("┆")[1].strip() for line in done.stdout.splitlines() if "STANDARD " in line] == ["2"]


def test_in_an_activated_virtualenv_the_query_says_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIRTUAL_ENV", sys.prefix)
    assert query_command(Path("out/processed")).startswith("python -c 'import polars as pl; ")


def test_an_arrays_status_line_counts_the_rows_its_running_children_have_read(tmp_path: Path) -> None:
    """Before any child is done, the array's line moves with what the children logged so far."""
    from pipeline.local.executor import ARRAY_STATUS_SECONDS, Executor, PlannedJob

    child = (
        "import json, os, sys, time\n"
        "index = int(os.environ['AWS_BATCH_JOB_ARRAY_INDEX'])\n"
        "print(json.dumps({'message': 'process progress', 'chunk': index, 'rows': 1000 * (index + 1),"
        " 'rows_per_s': 10, 'compressed_bytes_done': 1, 'compressed_bytes_total': 4}), flush=True)\n"
        f"time.sleep({ARRAY_STATUS_SECONDS * 2.5})\n"
        "print(json.dumps({'message': 'part written', 'rows': 5000 * (index + 1)}), flush=True)\n"
    )
    job = PlannedJob("j1", "fake-array", ["python", "-c", child], array_size=2, depends_on=())
    said: list[str] = []
    Executor({}, tmp_path / "logs", said.append, workers=2).run([job])
    status = [line.removeprefix("fake-array: ") for line in said if "children done" in line]
    assert status[0].startswith("0/2 children done, 2 running, 3,000 rows read so far"), said
    assert status[-1].startswith("2/2 children done, 0 running, 15,000 rows read so far"), said
    assert "fake-array: chunk 1: 2,000 rows, 25% of its 0 MB of gzip read, 10 rows/s" in said


def test_finalize_steps_and_a_converted_part_are_relayed() -> None:
    assert _progress_line(
        json.dumps({"message": "finalize step", "step": "merging the rollups of 3 part(s)"})
    ) == ("merging the rollups of 3 part(s)")
    converted = {"message": "part converted", "chunk": 2, "rows": 1_234_567}
    assert _progress_line(json.dumps(converted)) == (
        "chunk 2: all 1,234,567 rows converted; its rollups and identity hashes next"
    )
