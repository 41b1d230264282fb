"""``python -m pipeline demo``: the whole pipeline on a synthetic inventory, on this machine.

With ``days`` above 1, each day after the first is derived from the day before with known changes
(``pipeline/synthetic_changes.py``, about 3.5% of the objects a day), every day is converted, and the
demo ends with the ``changes`` command between the last two days.

The demo owns what it writes in ``--out`` and nothing else: a folder it made carries a marker file,
and a new demo replaces only the entries it writes. It refuses a folder that holds anything else.
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.changes_command import compare
from pipeline.errors import UsageError
from pipeline.local.locks import LOCKS, STAGING
from pipeline.local.run_local import LOGS, LocalRun, check_out, open_delivery, progress_printer, run_local
from pipeline.local.stand_in import StandIn
from pipeline.local.summary import render, render_reconciliation, summarize, what_next
from pipeline.synthetic import GeneratedDelivery, generate_delivery
from pipeline.synthetic_changes import Plan, next_day

SOURCE_BUCKET = "demo-source-bucket"
DESTINATION_BUCKET = "demo-inventory-destination"
MARKER = ".s3-inventory-demo"
CHANGES = "changes"
"""Under ``--out``: what ``changes`` wrote for the last two days."""
OWNED = (
    MARKER,
    "bucket",
    "processed",
    "rollups",
    "run-state",
    "run-reports",
    LOGS,
    CHANGES,
    "summary.json",
    STAGING,
    LOCKS,
)
"""Everything a demo writes in its folder."""
PROGRESS_SECONDS = 2.0
"""How often generation reports its progress, as often as run-local relays the splitter's."""


def prepare(out: Path) -> None:
    """Make ``out`` the demo's: new or empty, or an earlier demo's (whose entries are removed)."""
    check_out(out)
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            msg = (
                f"--out {out} is not empty and was not made by demo; give a new or empty folder "
                "(demo replaces its folder's contents)"
            )
            raise UsageError(msg)
        for name in OWNED:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("a folder made by `python -m pipeline demo`; the next demo replaces it\n")


def generation_progress(
    progress: Callable[[str], None],
    total: int,
    *,
    every: float = PROGRESS_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[int], None]:
    """A counter of generated rows that shows, at most every ``every`` seconds, how far it got."""
    started = last = clock()

    def written(rows: int) -> None:
        nonlocal last
        now = clock()
        if now - last < every or rows >= total:  # the end is said by the caller, with the time taken
            return
        last = now
        rate = rows / max(now - started, 1e-9)
        progress(
            f"generating: {rows:,} of {total:,} objects, {rows / total:.0%} of the inventory, {rate:,.0f} objects/s"
        )

    return written


def daily_changes(objects: int) -> Plan:
    """A day's changes, in proportion to the inventory: per 1,000 objects, 10 added, 5 deleted,
    5 modified, 10 moved to another class, 2 modified and moved, 2 current versions deleted (a delete
    marker), 2 noncurrent versions moved, 1 copy of a single-part and 1 of a multipart object."""
    n = objects // 1000
    return Plan(
        added=10 * n,
        deleted=5 * n,
        modified=5 * n,
        moved=10 * n,
        modified_and_moved=2 * n,
        delete_marked=2 * n,
        noncurrent_moved=2 * n,
        copies=n,
        multipart_copies=n,
    )


MIN_OBJECTS_FOR_DAYS = 1000
"""The smallest inventory ``--days`` derives days from: at least one of each change a day."""


def demo(
    out: Path,
    *,
    objects: int,
    files: int,
    days: int = 1,
    target_chunk_mib: int | None = None,
    workers: int = 0,
) -> dict[str, object]:
    if days > 1 and objects < MIN_OBJECTS_FOR_DAYS:
        msg = f"--days {days} needs --objects of at least {MIN_OBJECTS_FOR_DAYS:,} (each day changes 1 in 1,000 of them at least), got {objects:,}"
        raise UsageError(msg)
    progress = progress_printer()
    prepare(out)
    started = time.monotonic()
    progress(f"generating a synthetic inventory of {objects:,} objects in {files} data files")
    generated = generate_delivery(
        out / "bucket",
        objects=objects,
        files=files,
        source_bucket=SOURCE_BUCKET,
        destination_bucket=DESTINATION_BUCKET,
        on_rows=generation_progress(progress, objects),
    )
    progress(f"generated {generated.manifest_path.relative_to(out)} in {time.monotonic() - started:.1f}s")

    def create_source_bucket(aws: StandIn) -> None:
        aws.client("s3").create_bucket(Bucket=SOURCE_BUCKET)

    def convert(day: GeneratedDelivery) -> LocalRun:
        return run_local(
            open_delivery(day.manifest_path),
            out,
            force=True,
            target_chunk_mib=target_chunk_mib,
            workers=workers,
            progress=progress,
            before_trigger=create_source_bucket,
        )

    run = convert(generated)
    run_dates = [run.layout.run_date]
    for day in range(2, days + 1):
        plan = daily_changes(objects)
        said = ", ".join(
            f"{getattr(plan, name):,} {name.replace('_', ' ')}" for name in plan.__dataclass_fields__
        )
        progress(f"day {day} of {days}: deriving it from day {day - 1}: {said}")
        generated = next_day(generated, out / "bucket", plan, seed=day).delivery
        progress(f"generated {generated.manifest_path.relative_to(out)}")
        run = convert(generated)
        run_dates.append(run.layout.run_date)
    summary = summarize(run.parts_dir, run.run_report())
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["run_dates"] = run_dates
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(render(summary))
    print(render_reconciliation(run.run_report()))
    print(f"run state:        {out / run.layout.state_prefix}")
    print(f"finished in {summary['seconds']}s")
    print(what_next(run.parts_dir, out / run.layout.run_report_key))
    if days > 1:
        _show_changes(out, *run_dates[-2:])
    return summary


def _show_changes(out: Path, before: str, after: str) -> None:
    """Run ``changes`` between the last two days, printing the command first, as a user would type it."""
    target = out / CHANGES
    command = [
        "changes",
        str(out),
        "--source-bucket",
        SOURCE_BUCKET,
        "--from",
        before,
        "--to",
        after,
        "--out",
        str(target),
        "--force",  # the demo wrote it: the command as printed runs again, replacing it
    ]
    print(f"\nthe changes between the last two days, by:\n  python -m pipeline {shlex.join(command)}")
    compare(out, SOURCE_BUCKET, before, after, target, force=True)
