"""What a newcomer meets in the first hour: a two-day demo and its changes, `status` of a local
folder, a closed stdout, reruns' logs, a delivery under the wrong folder, `inspect`'s columns."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from inventory_contract.layout import RunLayout
from pipeline.cli import main
from pipeline.local.demo import SOURCE_BUCKET, daily_changes
from pipeline.local.locks import lock_file, partition_lock
from pipeline.local.run_local import logs_of
from pipeline.synthetic import generate_delivery
from pipeline.synthetic_changes import next_day
from tests.oracles import changes_by_kind

pytestmark = pytest.mark.slow

OBJECTS = 3000
DAYS = ("2026-11-24", "2026-11-25", "2026-11-26")


@pytest.fixture(scope="module")
def three_days(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """`demo --days 3`, run once: its folder, stdout and stderr."""
    out = tmp_path_factory.mktemp("demo") / "demo-output"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "demo",
            "--objects",
            str(OBJECTS),
            "--days",
            "3",
            "--out",
            str(out),
            "--workers",
            "2",
            "--target-chunk-mib",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out, done.stdout, done.stderr


def _oracle_changes(out: Path, before: str, after: str) -> dict[str, int]:
    """Objects per kind of change, by DuckDB over the two partitions (none of the product's code)."""
    folder = {day: out / RunLayout(SOURCE_BUCKET, day).processed_prefix for day in (before, after)}
    return {kind: n for kind, (n, _, _) in changes_by_kind(folder[before], folder[after]).items()}


def test_demo_days_converts_each_day_and_ends_with_the_changes_of_the_last_two(three_days) -> None:
    out, printed, progress = three_days
    plan = daily_changes(OBJECTS)
    expected = {
        "added": plan.added + plan.copies + plan.multipart_copies,  # copies are new keys
        "deleted": plan.deleted + plan.delete_marked,  # a current version behind a delete marker is gone
        "modified": plan.modified + plan.modified_and_moved,
        "storage_class_changed": plan.moved,
    }
    written = json.loads((out / "changes" / "summary.json").read_text())
    assert {kind: t["objects"] for kind, t in written["changes"].items()} == expected
    assert _oracle_changes(out, DAYS[1], DAYS[2]) == expected
    assert (written["from"], written["to"]) == DAYS[1:]

    # the command it printed is the one that gave that result: run again elsewhere, it says the same
    command = printed.split("the changes between the last two days, by:\n  python -m pipeline ", 1)[
        1
    ].splitlines()[0]
    argv = shlex.split(command)
    assert argv[argv.index("--out") + 1] == str(out / "changes")
    (out / "changes" / "summary.json").unlink()
    assert main(argv) == 0  # as printed, in a shell: python -m pipeline ...
    again = json.loads((out / "changes" / "summary.json").read_text())
    assert again["changes"] == written["changes"]
    assert "day 2 of 3: deriving it from day 1: 30 added, 15 deleted" in progress
    for step in (
        "rows converted; its rollups",
        "checking the plan and the",
        "merging the rollups of",
        "storing 4 rollup",
    ):
        assert progress.count(step) >= 3, step  # each day's conversion and finalize said how far it got


def test_status_of_a_local_folder_lists_every_run_with_figures_from_its_parquet(three_days, capsys) -> None:
    out, _, _ = three_days
    assert main(["status", str(out), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["run_date"] for r in runs] == list(reversed(DAYS))
    for run in runs:
        folder = out / RunLayout(SOURCE_BUCKET, run["run_date"]).processed_prefix
        rows, size = duckdb.sql(
            f"select count(*), sum(size::hugeint) from read_parquet('{folder}/*.parquet')"
        ).fetchall()[0]
        assert (run["state"], run["kind"], run["rows"], run["bytes"]) == (
            "complete",
            "s3-inventory",
            rows,
            size,
        )
        parquet = sum(p.stat().st_size for p in folder.glob("*.parquet"))
        assert run["parquet_bytes"] == parquet
        top_class = duckdb.sql(
            f"select storage_class from read_parquet('{folder}/*.parquet') where storage_class is not null "
            "group by 1 order by sum(size) desc limit 1"
        ).fetchall()[0][0]
        assert run["largest_class"].startswith(f"{top_class} ")
    assert main(["status", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["run", "state", "kind"]
    assert [line.split()[:2] for line in table[1:]] == [
        [f"{SOURCE_BUCKET}/{d}", "complete"] for d in reversed(DAYS)
    ]


def test_status_of_a_local_folder_says_why_a_run_is_not_complete(three_days, tmp_path, capsys) -> None:
    out = tmp_path / "copy"
    shutil.copytree(three_days[0], out, ignore=shutil.ignore_patterns("bucket"))
    first, second, third = (RunLayout(SOURCE_BUCKET, d) for d in DAYS)
    next((out / first.processed_prefix).glob("*.parquet")).unlink()
    (out / second.complete_marker_key).unlink()
    fourth = RunLayout(SOURCE_BUCKET, "2026-11-27")  # converting for the first time: nothing published yet
    with partition_lock(out, third, "s3://d/m"), partition_lock(out, fourth, "s3://d/n"):
        assert main(["status", str(out), "--json"]) == 0
    runs = {r["run_date"]: r for r in json.loads(capsys.readouterr().out)}
    assert runs[DAYS[0]]["state"] == "incomplete"
    assert "part-" in runs[DAYS[0]]["detail"] and "is missing" in runs[DAYS[0]]["detail"]
    assert runs[DAYS[1]]["state"] == "incomplete"
    assert runs[DAYS[1]]["detail"].startswith(f"no {second.complete_marker_key}")
    assert runs[DAYS[2]]["state"] == "converting"
    assert runs[DAYS[2]]["detail"].startswith(f"pid {os.getpid()} since ")
    assert runs[DAYS[2]]["detail"].endswith(": s3://d/m")
    assert (runs["2026-11-27"]["state"], runs["2026-11-27"]["rows"]) == ("converting", None)

    # a lock file that names a live process which does not hold the lock (a reused pid) is no run
    lock_file(out, third).write_text(json.dumps({"pid": os.getpid(), "manifest": "s3://d/m", "since": "x"}))
    (out / second.complete_marker_key).write_text('{"manif')
    assert main(["status", str(out), "--json"]) == 0
    runs = {r["run_date"]: r for r in json.loads(capsys.readouterr().out)}
    assert runs[DAYS[2]]["state"] == "complete"
    assert runs[DAYS[1]]["detail"].endswith(
        "_COMPLETE is unreadable (not JSON): run its delivery again with run-local"
    )
    assert runs["2026-11-27"]["state"] == "incomplete"  # started, never published

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["status", str(empty)]) == 0
    assert capsys.readouterr().out.startswith(f"no runs in {empty}")


@pytest.fixture
def delivery(tmp_path: Path):
    return generate_delivery(tmp_path / "bucket", objects=2000, files=2)


def _closed_stdout(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a command whose stdout is a pipe nobody reads any more (``| head -1`` after its line)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "pipeline", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        os.close(write_end)


def test_a_closed_stdout_ends_the_command_quietly_with_141(delivery, tmp_path) -> None:
    done = _closed_stdout(["inspect", str(delivery.manifest_path)])
    assert (done.returncode, done.stderr) == (141, "")
    done = _closed_stdout(["--help"])
    assert done.stderr == ""  # argparse swallows the error of its own write, and exits 0

    out = tmp_path / "out"
    done = _closed_stdout(["run-local", str(delivery.manifest_path), "--out", str(out), "--workers", "1"])
    assert done.returncode == 141
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
    assert "published processed/" in done.stderr  # the run was done; only its summary had no reader
    assert (
        out / RunLayout(delivery.delivery.source_bucket, delivery.delivery.run_date).complete_marker_key
    ).is_file()


def test_force_replaces_the_runs_logs_and_each_run_has_its_own_trigger_log(
    delivery, tmp_path, capsys
) -> None:
    out = tmp_path / "out"
    argv = ["run-local", str(delivery.manifest_path), "--out", str(out), "--workers", "1"]
    assert main(argv) == 0
    logs = logs_of(out, RunLayout(delivery.delivery.source_bucket, delivery.delivery.run_date))
    first = sorted(p.name for p in logs.iterdir())
    assert "trigger.log" in first and any(name.startswith("s3inv-split-") for name in first)
    (logs / "s3inv-process-from-an-earlier-run.log").write_text("old\n")
    assert main([*argv, "--force"]) == 0
    assert sorted(p.name for p in logs.iterdir()) == first
    handled = [json.loads(line) for line in (logs / "trigger.log").read_text().splitlines()]
    assert sum(1 for entry in handled if entry.get("message") == "run submitted") == 1, handled

    day2 = next_day(delivery, delivery.root, daily_changes(2000)).delivery
    assert main(["run-local", str(day2.manifest_path), "--out", str(out), "--workers", "1"]) == 0
    other = logs_of(out, RunLayout(day2.delivery.source_bucket, day2.delivery.run_date))
    assert other != logs and (other / "trigger.log").is_file()
    assert (logs / "trigger.log").read_text().count("run submitted") == 1
    capsys.readouterr()


def _moved(delivery, tmp_path: Path, folder: str) -> Path:
    """The delivery's manifest and checksum copied under another timestamp folder (data files stay)."""
    target = delivery.root / delivery.manifest_path.parent.parent.relative_to(delivery.root) / folder
    target.mkdir()
    for name in ("manifest.json", "manifest.checksum"):
        shutil.copy(delivery.manifest_path.with_name(name), target / name)
    return target / "manifest.json"


@pytest.mark.parametrize("folder", ["2026-11-25T01-00Z", "2026-11-23T01-00Z", "2026-11-24T13-01Z"])
def test_a_delivery_under_another_days_folder_is_refused_naming_both(
    delivery, tmp_path, capsys, folder
) -> None:
    moved = _moved(delivery, tmp_path, folder)  # the next day's folder, the day before's, 12 h 1 min later
    for argv in (["run-local", str(moved), "--out", str(tmp_path / "out")], ["inspect", str(moved)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert (
            f"its folder {folder} says {folder[:10]}, but its creationTimestamp says 2026-11-24T01:00:00Z"
            in err
        )
    assert not (tmp_path / "out" / "processed").exists()


def test_a_delivery_whose_folder_is_within_12_hours_of_its_creation_runs_on_the_folders_date(
    delivery, tmp_path, capsys
) -> None:
    near = _moved(delivery, tmp_path, "2026-11-23T13-00Z")  # 12 hours before: a scan across midnight
    assert main(["inspect", str(near)]) == 0
    assert json.loads(capsys.readouterr().out)["run_date"] == "2026-11-23"


def test_inspect_verifies_the_checksum_beside_the_manifest_and_lists_the_parts_columns(
    delivery, tmp_path, capsys
) -> None:
    assert main(["inspect", str(delivery.manifest_path)]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["checksum_verified"] is True
    assert found["checksum_file"] == str(delivery.manifest_path.with_name("manifest.checksum"))

    out = tmp_path / "out"
    assert main(["run-local", str(delivery.manifest_path), "--out", str(out), "--workers", "1"]) == 0
    capsys.readouterr()
    parts = out / RunLayout(delivery.delivery.source_bucket, delivery.delivery.run_date).processed_prefix
    schema = pl.read_parquet_schema(next(parts.glob("*.parquet")))
    assert list(found["columns"]) == list(schema)  # every column of the parts, in their order
    assert len(found["delivery_fields"]) < len(found["columns"])
    frame = pl.read_parquet(list(parts.glob("*.parquet")))
    never_delivered = [
        "object_lock_event_hold_status",
        "object_lock_event_hold_duration",
        "intelligent_tiering_reference_date",
    ]
    assert found["null_columns"] == never_delivered  # S3's newest fields, which the generator does not write
    assert all(frame[name].null_count() == frame.height for name in never_delivered)

    tampered = tmp_path / "tampered" / delivery.manifest_path.relative_to(delivery.root)
    tampered.parent.mkdir(parents=True)
    shutil.copy(delivery.manifest_path, tampered)
    tampered.with_name("manifest.checksum").write_text("0" * 32)
    assert main(["inspect", str(tampered)]) == 2
    err = capsys.readouterr().err
    assert f"(checked against {tampered.with_name('manifest.checksum')}): MD5 is " in err, err

    renamed = tampered.with_name("day1.json")  # another file's checksum beside a renamed manifest: not used
    tampered.rename(renamed)
    assert main(["inspect", str(renamed)]) == 0
    found = json.loads(capsys.readouterr().out)
    assert (found["checksum_verified"], found["checksum_file"]) == (False, None)


def test_a_first_run_that_failed_is_listed_by_status_as_incomplete_with_its_logs(
    delivery, tmp_path, capsys
) -> None:
    data = delivery.root / delivery.data_keys[0]
    data.write_bytes(data.read_bytes()[:-10])  # not the size nor the MD5 its manifest lists
    out = tmp_path / "out"
    assert main(["run-local", str(delivery.manifest_path), "--out", str(out), "--workers", "1"]) == 2
    capsys.readouterr()
    assert main(["status", str(out), "--json"]) == 0
    [run] = json.loads(capsys.readouterr().out)
    logs = logs_of(out, RunLayout(delivery.delivery.source_bucket, delivery.delivery.run_date))
    assert (run["state"], run["rows"]) == ("incomplete", None)
    assert run["detail"].endswith(f"none completed (its logs: {logs}); run its delivery again with run-local")


def test_a_run_given_with_a_bucket_is_asked_of_aws_even_where_a_folder_of_that_name_exists(
    tmp_path, monkeypatch, capsys
) -> None:
    import pipeline.status

    (tmp_path / "src" / "2026-11-24").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    asked: list[tuple[str, str | None]] = []

    def statuses(s3: object, batch: object, bucket: str, *, run: str | None, limit: int) -> list[object]:
        asked.append((bucket, run))
        return []

    monkeypatch.setattr(pipeline.status, "run_statuses", statuses)
    assert main(["status", "src/2026-11-24", "--bucket", "dest", "--json"]) == 0
    assert asked == [("dest", "src/2026-11-24")]
    monkeypatch.delenv("DESTINATION_BUCKET", raising=False)
    assert main(["status", "src/2026-11-24", "--json"]) == 0  # no bucket: the folder
    assert asked == [("dest", "src/2026-11-24")]
    capsys.readouterr()


def test_an_interrupt_whose_exception_python_dropped_still_stops_the_command(monkeypatch, capsys) -> None:
    import argparse
    import signal

    import pipeline.cli

    def swallowed(args: argparse.Namespace) -> int:
        with contextlib.suppress(KeyboardInterrupt):  # as Python drops it in a finalizer or weakref callback
            signal.raise_signal(signal.SIGINT)
        return 0

    class _Parser:
        def parse_args(self, argv: object) -> argparse.Namespace:
            return argparse.Namespace(handler=swallowed)

    monkeypatch.setattr(pipeline.cli, "_parser", lambda prog="": _Parser())
    assert main(["anything"]) == 130
    assert capsys.readouterr().err == "interrupted: stopped the stand-in and every job\n"
