"""``python -m pipeline run-local MANIFEST --out DIR``: convert a downloaded inventory locally.

MANIFEST sits in a folder laid out like the destination bucket (ROOT). The delivery is put into
the stand-in's bucket, the real handler starts its run, the real jobs run, and the destination's
resulting prefixes (``processed/`` and ``run-state/`` of the run) are copied under DIR.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdas.runs import RunResult
from pipeline.contract.delivery import parse_delivery_key
from pipeline.contract.errors import ContractError
from pipeline.contract.layout import RunLayout
from pipeline.contract.manifest import Manifest, parse_manifest
from pipeline.local.flow import trigger_and_run
from pipeline.local.stand_in import StandIn, stand_in

DEFAULT_TARGET_CHUNK_MIB = 32


@dataclass(frozen=True)
class LocalRun:
    result: RunResult
    layout: RunLayout
    out: Path

    @property
    def parts_dir(self) -> Path:
        return self.out / self.layout.processed_prefix

    def run_report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.out / self.layout.run_report_key).read_text())
        return report


def progress_printer() -> Callable[[str], None]:
    started = time.monotonic()

    def show(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    return show


def find_bucket_root(manifest_path: Path, manifest: Manifest) -> Path:
    """The folder that holds the manifest's data files at their keys."""
    first = manifest.files[0].key
    for folder in manifest_path.resolve().parents:
        if (folder / first).is_file():
            return folder
    msg = f"{manifest_path}: no parent folder holds its first data file {first}; pass --bucket-root"
    raise ContractError(msg)


def run_local(
    manifest_path: Path,
    out: Path,
    *,
    bucket_root: Path | None = None,
    force: bool = False,
    target_chunk_mib: int = DEFAULT_TARGET_CHUNK_MIB,
    workers: int = 0,
    progress: Callable[[str], None] | None = None,
    before_trigger: Callable[[StandIn], None] | None = None,
) -> LocalRun:
    progress = progress or progress_printer()
    checksum_path = manifest_path.with_name("manifest.checksum")
    checksum = checksum_path.read_bytes() if checksum_path.is_file() else None
    manifest = parse_manifest(manifest_path.read_bytes(), source=str(manifest_path), checksum=checksum)
    root = (bucket_root or find_bucket_root(manifest_path, manifest)).resolve()
    key = manifest_path.resolve().relative_to(root).as_posix()
    delivery = parse_delivery_key(key)
    layout = RunLayout.of(delivery)
    bucket = manifest.destination_bucket
    with stand_in() as aws:
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=bucket)
        if before_trigger:
            before_trigger(aws)
        for name in (key, delivery.checksum_key, *(f.key for f in manifest.files)):
            if (root / name).is_file():
                s3.upload_file(str(root / name), bucket, name)
        progress(
            f"stand-in at {aws.endpoint}: delivered {len(manifest.files)} data file(s) into s3://{bucket}"
        )
        claim = out / layout.claim_key
        if claim.is_file():  # the run state of an earlier local run of this delivery
            s3.upload_file(str(claim), bucket, layout.claim_key)
        try:
            result = trigger_and_run(
                aws,
                bucket,
                delivery,
                work_dir=out,
                progress=progress,
                target_chunk_mib=target_chunk_mib,
                force=force,
                workers=workers,
            )
        finally:
            _download(s3, bucket, layout.state_prefix, out)
            _download(s3, bucket, layout.reports_prefix, out)
        if result.status == "submitted":
            shutil.rmtree(out / layout.processed_prefix, ignore_errors=True)
            _download(s3, bucket, layout.processed_prefix, out)
    return LocalRun(result=result, layout=layout, out=out)


def _download(s3: Any, bucket: str, prefix: str, out: Path) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            target = out / item["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(target))
