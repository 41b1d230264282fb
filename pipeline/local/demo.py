"""``python -m pipeline demo``: the whole pipeline on a synthetic inventory, on this machine.

The demo owns what it writes in ``--out`` and nothing else: a folder it made carries a marker file,
and a new demo replaces only the entries it writes. It refuses a folder that holds anything else.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import UsageError
from pipeline.local.locks import LOCKS, STAGING
from pipeline.local.run_local import check_out, open_delivery, progress_printer, run_local
from pipeline.local.stand_in import StandIn
from pipeline.local.summary import render, render_reconciliation, summarize, what_next
from pipeline.synthetic import generate_delivery

SOURCE_BUCKET = "demo-source-bucket"
DESTINATION_BUCKET = "demo-inventory-destination"
MARKER = ".s3-inventory-demo"
OWNED = (MARKER, "bucket", "processed", "run-state", "run-reports", "logs", "summary.json", STAGING, LOCKS)
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


def demo(
    out: Path, *, objects: int, files: int, target_chunk_mib: int | None = None, workers: int = 0
) -> dict[str, object]:
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

    run = run_local(
        open_delivery(generated.manifest_path),
        out,
        force=True,
        target_chunk_mib=target_chunk_mib,
        workers=workers,
        progress=progress,
        before_trigger=create_source_bucket,
    )
    summary = summarize(run.parts_dir, run.run_report())
    summary["seconds"] = round(time.monotonic() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(render(summary))
    print(render_reconciliation(run.run_report()))
    print(f"run state:        {out / run.layout.state_prefix}")
    print(f"finished in {summary['seconds']}s")
    print(what_next(run.parts_dir, out / run.layout.run_report_key))
    return summary
