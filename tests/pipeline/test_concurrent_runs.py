"""Several ``run-local`` processes into one ``--out``: different deliveries side by side, the same
partition refused at once, and what a killed run left removed by the next, never another's."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from inventory_contract.layout import RunLayout
from pipeline.local.publish import why_incomplete
from pipeline.synthetic import GeneratedDelivery, generate_delivery

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _day(tmp_path: Path, day: int, objects: int) -> GeneratedDelivery:
    return generate_delivery(
        tmp_path / f"bucket-{day}",
        objects=objects,
        files=3,
        timestamp=datetime(2026, 11, day, 1, 0, tzinfo=UTC),
    )


def _start(gen: GeneratedDelivery, out: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "pipeline", "run-local", str(gen.manifest_path), "--out", str(out)]
    return subprocess.Popen(
        [*command, "--workers", "1", "--target-chunk-mib", "1", *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _staging(out: Path) -> list[Path]:
    return [p for p in (out / ".staging").glob("*") if p.is_dir()] if (out / ".staging").is_dir() else []


def _wait(
    out: Path, ready, running: tuple[subprocess.Popen[str], ...], what: str, timeout: float = 120
) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready(_staging(out)):
            return
        for process in running:
            assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError(f"the runs never {what}")


def _when_converting(out: Path, *running: subprocess.Popen[str]) -> None:
    """Wait until each of ``running`` has written run state into its own staging folder: its jobs
    are converting (a folder alone is not enough: a run still in its trigger has nothing to lose)."""
    _wait(
        out,
        lambda folders: sum(any((f / "run-state").rglob("*.json")) for f in folders) >= len(running),
        running,
        "converted",
    )


def _when_staging(out: Path, *running: subprocess.Popen[str]) -> None:
    """Wait until each of ``running`` holds a staging folder of its own, all at once."""
    _wait(out, lambda folders: len(folders) >= len(running), running, "staged side by side")


def _complete(out: Path, gen: GeneratedDelivery) -> None:
    layout = RunLayout.of(gen.delivery)
    uri = f"s3://demo-inventory-destination/{gen.delivery.manifest_key}"
    assert why_incomplete(out, layout, uri) is None
    rows = pl.scan_parquet(out / layout.processed_prefix / "*.parquet").select(pl.len()).collect().item()
    assert rows == gen.truth.rows


@pytest.mark.parametrize("first", [0, 1], ids=["day-24-first", "day-25-first"])
def test_two_days_converted_at_once_into_one_out_both_complete(tmp_path: Path, first: int) -> None:
    days = [_day(tmp_path, 24, 200_000), _day(tmp_path, 25, 200_000)]
    out = tmp_path / "out"
    # GIVEN one day converting, WHEN another starts into the same --out while it still is
    running = _start(days[first], out)
    _when_converting(out, running)
    second = _start(days[1 - first], out)
    _when_staging(out, running, second)  # the second set up its staging while the first converted
    # THEN both finish, and both runs are whole; no staging is left
    for process in (running, second):
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    for gen in days:
        _complete(out, gen)
    assert not (out / ".staging").exists()


_SESSIONS = """
import sys, time
from pathlib import Path
from pipeline.local.locks import staging
out, sessions = Path(sys.argv[1]), int(sys.argv[2])
for n in range(sessions):
    with staging(out) as staged:
        (staged / "work").write_text(str(n))
        time.sleep(0.001)
        assert (staged / "work").read_text() == str(n), "a live run's staging folder was removed"
"""


def test_runs_starting_and_ending_at_the_same_moment_never_take_each_others_staging(tmp_path: Path) -> None:
    # GIVEN six processes, each starting and ending 150 runs' staging as fast as it can in one --out
    out = tmp_path / "out"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _SESSIONS, str(out), "150"], cwd=ROOT, stderr=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    # THEN none saw its folder or lock file removed, or the staging folder vanish under it
    for racer in racers:
        _, err = racer.communicate(timeout=300)
        assert racer.returncode == 0, err[-2000:]
    assert not (out / ".staging").exists()


def test_the_same_day_twice_at_once_is_refused_in_one_line_naming_the_run(tmp_path: Path) -> None:
    gen = _day(tmp_path, 24, 30_000)
    out = tmp_path / "out"
    running = _start(gen, out, "--force")
    _when_staging(out, running)

    again = _start(gen, out, "--force")
    _, err = again.communicate(timeout=60)

    assert again.returncode == 1
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "is converting demo-source-bucket/2026-11-24 already (" in err
    assert f'"pid": {running.pid}' in err
    _, first_err = running.communicate(timeout=300)
    assert running.returncode == 0, first_err
    _complete(out, gen)


def test_a_killed_runs_staging_is_removed_by_the_next_run_and_a_live_runs_is_not(tmp_path: Path) -> None:
    days = [_day(tmp_path, 24, 200_000), _day(tmp_path, 25, 200_000)]
    out = tmp_path / "out"
    # GIVEN a run killed while converting (no cleanup can run), and another run converting
    killed = _start(days[0], out)
    _when_converting(out, killed)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    left = {p.name for p in (out / ".staging").iterdir()}
    assert left  # its staging folder and lock, with nobody holding the lock
    live = _start(days[1], out)
    _when_converting(out, live)
    # WHEN the killed day is run again
    again = _start(days[0], out)
    _, err = again.communicate(timeout=300)
    # THEN the killed run's leftovers are gone, the live run was left alone, and both complete
    assert again.returncode == 0, err
    _, live_err = live.communicate(timeout=300)
    assert live.returncode == 0, live_err
    for gen in days:
        _complete(out, gen)
    assert not (out / ".staging").exists()
