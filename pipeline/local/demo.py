"""``python -m pipeline demo``: the whole pipeline on a synthetic inventory, on this machine."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from pipeline.local.run_local import progress_printer, run_local
from pipeline.local.stand_in import StandIn
from pipeline.local.summary import render, render_reconciliation, summarize
from pipeline.synthetic import generate_delivery

SOURCE_BUCKET = "demo-source-bucket"
DESTINATION_BUCKET = "demo-inventory-destination"


def demo(
    out: Path, *, objects: int, files: int, target_chunk_mib: int, workers: int = 0
) -> dict[str, object]:
    progress = progress_printer()
    shutil.rmtree(out, ignore_errors=True)  # the demo owns its folder: every demo is a fresh run
    started = time.monotonic()
    progress(f"generating a synthetic inventory of {objects:,} objects in {files} data files")
    generated = generate_delivery(
        out / "bucket",
        objects=objects,
        files=files,
        source_bucket=SOURCE_BUCKET,
        destination_bucket=DESTINATION_BUCKET,
    )
    progress(f"generated {generated.manifest_path.relative_to(out)} in {time.monotonic() - started:.1f}s")

    def create_source_bucket(aws: StandIn) -> None:
        aws.client("s3").create_bucket(Bucket=SOURCE_BUCKET)

    run = run_local(
        generated.manifest_path,
        out,
        target_chunk_mib=target_chunk_mib,
        workers=workers,
        progress=progress,
        before_trigger=create_source_bucket,
    )
    summary = summarize(run.parts_dir)
    summary["seconds"] = round(time.monotonic() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(render(summary))
    print(render_reconciliation(run.run_report()))
    print(f"run state:        {out / run.layout.state_prefix}")
    print(f"finished in {summary['seconds']}s")
    return summary
