"""``python -m pipeline run-local MANIFEST --out DIR``: convert a downloaded inventory locally.

MANIFEST sits in a folder laid out like the destination bucket (ROOT). The real handler decides
the run against the stand-in's S3 and Batch APIs (it reads only the manifest and its checksum),
and the real jobs it submitted run here, on the local storage backend: they read the delivery
where it is, with no copy, and write the run's outputs (``processed/``, ``run-state/`` and
``run-reports/`` of the run) aside, where they are published into DIR, the marker last
(``pipeline/local/publish.py``).

Reruns: a run whose ``_COMPLETE`` marker and every part it lists are in DIR is done, and is run
again only with ``force``. Anything else (an earlier run that failed, was interrupted, or lost a
part) is run again from the start: every run starts in a fresh stand-in, so nothing an earlier
run left half-way can block or leak into it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch_jobs.storage import LOCAL_INPUTS_ENV, LOCAL_OUT_ENV, LocalStorage
from inventory_contract.delivery import CHECKSUM_NAME, Delivery, check_creation_time, parse_delivery_key
from inventory_contract.errors import ContractError
from inventory_contract.jsonlog import JsonLogger
from inventory_contract.layout import RunLayout
from inventory_contract.manifest import Manifest, parse_manifest
from lambdas.runs import RunResult
from pipeline.errors import PipelineError, UsageError
from pipeline.local.executor import die_with_parent
from pipeline.local.flow import trigger_and_run
from pipeline.local.locks import partition_lock, staging
from pipeline.local.publish import completed, publish
from pipeline.local.stand_in import StandIn, stand_in
from pipeline.local.warm import WarmPool

MiB = 1024 * 1024


LOCAL_CHUNK_MIB_MAX = 128
"""The local default's largest chunk, in MiB of gzip (about 1.6 million rows): a child's memory
grows with its part's rows (its rollups and identity hashes read the part back), about 80 MiB a
million rows over a base of about 370 MiB, so the whole tree stays near 1.2 GB at any size."""


def auto_target_chunk_mib(compressed_bytes: int, workers: int) -> int:
    """The local default: one chunk per worker (whole files where they balance, as the plan
    decides), since a local child starts in under a second and each chunk gets a core; at most
    ``LOCAL_CHUNK_MIB_MAX``, so that memory does not grow with the delivery."""
    return min(max(1, -(-compressed_bytes // (MiB * max(workers, 1)))), LOCAL_CHUNK_MIB_MAX)


@dataclass(frozen=True)
class LocalDelivery:
    """A downloaded delivery: its manifest, the folder that stands for the bucket, and its run."""

    manifest: Manifest
    manifest_path: Path
    root: Path
    delivery: Delivery

    @property
    def layout(self) -> RunLayout:
        return RunLayout.of(self.delivery)

    @property
    def manifest_uri(self) -> str:
        """Where the run finds the manifest: its key in the destination bucket."""
        return f"s3://{self.manifest.destination_bucket}/{self.delivery.manifest_key}"

    def control_files(self) -> list[Path]:
        """What the trigger reads: the manifest, and its checksum when it is there."""
        checksum = self.root / self.delivery.checksum_key
        return [self.manifest_path, *([checksum] if checksum.is_file() else [])]


@dataclass(frozen=True)
class LocalRun:
    layout: RunLayout
    out: Path
    result: RunResult | None  # None: the run was complete in ``out`` already, nothing was run

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


def check_out(out: Path, flag: str = "--out") -> None:
    """``out`` can hold the run: a folder (made if need be) in which this user can write."""
    if out.exists() and not out.is_dir():
        msg = f"{flag} {out} is a file; give a folder for the output"
        raise UsageError(msg)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        msg = f"{flag} {out}: cannot write there ({err.strerror}); give a folder you can write to"
        raise UsageError(msg) from err


def open_delivery(manifest_path: Path, bucket_root: Path | None = None) -> LocalDelivery:
    """Validate a downloaded delivery before anything runs; errors name the path or the flag."""
    if not manifest_path.exists():
        msg = f"MANIFEST {manifest_path} does not exist"
        raise UsageError(msg)
    if not manifest_path.is_file():
        msg = f"MANIFEST {manifest_path} is a folder; give the path of a manifest.json"
        raise UsageError(msg)
    checksum_path = manifest_path.with_name(CHECKSUM_NAME)
    checksum = checksum_path.read_bytes() if checksum_path.is_file() else None
    manifest = parse_manifest(manifest_path.read_bytes(), source=str(manifest_path), checksum=checksum)
    path = _absolute(manifest_path)  # not resolved: a symlinked manifest keeps its place in the layout
    if bucket_root is None:
        root = _find_bucket_root(path, manifest)
    else:
        root = _absolute(bucket_root)
        if not root.is_dir():
            msg = f"--bucket-root {bucket_root} is not a folder"
            raise UsageError(msg)
        if not path.is_relative_to(root):
            msg = (
                f"--bucket-root {bucket_root} does not contain MANIFEST {manifest_path}; give the folder that "
                "stands for the destination bucket, the one that holds PREFIX/SOURCE/CONFIG/TIMESTAMP/manifest.json"
            )
            raise UsageError(msg)
    delivery = parse_delivery_key(path.relative_to(root).as_posix())
    check_creation_time(delivery, manifest.created_at, source=str(manifest_path))
    missing = [f.key for f in manifest.files if not (root / f.key).is_file()]
    if missing:
        msg = (
            f"{manifest_path}: {len(missing)} of its {len(manifest.files)} data files are not under {root}, "
            f"e.g. {missing[0]}; download every file the manifest lists"
        )
        raise ContractError(msg)
    return LocalDelivery(manifest, path, root, delivery)


def _absolute(path: Path) -> Path:
    """``path`` made absolute and normalised (``..`` removed), symlinks kept."""
    return Path(os.path.abspath(path))  # noqa: PTH100 - resolve() would follow the symlinks


def _find_bucket_root(manifest_path: Path, manifest: Manifest) -> Path:
    """The folder that holds the manifest's data files at their keys."""
    first = manifest.files[0].key
    for folder in manifest_path.parents:
        if (folder / first).is_file():
            return folder
    msg = (
        f"{manifest_path}: no parent folder holds its first data file {first}; keep the delivery in its "
        "bucket layout (ROOT/PREFIX/SOURCE/CONFIG/...) or pass --bucket-root ROOT"
    )
    raise ContractError(msg)


def run_local(
    source: LocalDelivery,
    out: Path,
    *,
    force: bool = False,
    target_chunk_mib: int | None = None,
    workers: int = 0,
    progress: Callable[[str], None] | None = None,
    before_trigger: Callable[[StandIn], None] | None = None,
) -> LocalRun:
    """Run the delivery's pipeline and publish its outputs into ``out``; a failure publishes nothing."""
    progress = progress or progress_printer()
    workers = workers or os.cpu_count() or 1
    if target_chunk_mib is None:
        target_chunk_mib = auto_target_chunk_mib(source.manifest.total_size, workers)
    layout = source.layout
    out.mkdir(parents=True, exist_ok=True)
    with partition_lock(out, layout, source.manifest_uri), staging(out) as staged:
        if not force and completed(out, layout, source.manifest_uri):
            return LocalRun(layout, out, None)
        result = _run(source, out, staged, target_chunk_mib, workers, progress, before_trigger)
        report = json.loads((staged / layout.run_report_key).read_text())
        if report["status"] != "complete":
            msg = f"the run did not reconcile: {'; '.join(report['problems'])}"
            raise PipelineError(msg)
        publish(staged, out, layout)
        progress(f"published {layout.processed_prefix} and its run report into {out}")
        _storage_report(out, layout, progress)
    return LocalRun(layout, out, result)


def _storage_report(out: Path, layout: RunLayout, progress: Callable[[str], None]) -> None:
    """The storage report of the runs in ``out`` up to this one, as finalize writes it on AWS (here
    after publishing: the run was staged apart from the others); its log beside the jobs' logs."""
    from batch_jobs.storage_report import write_storage_report

    store = LocalStorage(f"{layout.source_bucket}-destination", out)
    with (logs_of(out, layout) / "report.log").open("a", encoding="utf-8") as stream:
        log = JsonLogger(stream, job="report", source_bucket=layout.source_bucket, run_date=layout.run_date)
        key = write_storage_report(store, layout, where=str(out), log=log)
    with contextlib.suppress(OSError):
        (out / ".scratch").rmdir()  # the local storage's scratch, if the report left it empty
    if key:
        progress(f"storage report: {out / key}")
    else:
        progress(f"storage report not written: see {logs_of(out, layout) / 'report.log'}")


LOGS = "logs"
"""Under ``--out``: each run's logs (the trigger's and every job's), in ``LOGS/PARTITION/``."""


def logs_of(out: Path, layout: RunLayout) -> Path:
    return out / LOGS / layout.partition


def _fresh_logs(out: Path, layout: RunLayout) -> Path:
    """The run's log folder, emptied: a rerun's logs replace the earlier run's (under the lock)."""
    folder = logs_of(out, layout)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _run(
    source: LocalDelivery,
    out: Path,
    staged: Path,
    target_chunk_mib: int,
    workers: int,
    progress: Callable[[str], None],
    before_trigger: Callable[[StandIn], None] | None,
) -> RunResult:
    """The trigger decides the run in the stand-in (it needs only the manifest and its checksum);
    the jobs then read the delivery where it is and write into ``staged``, on local storage."""
    bucket = source.manifest.destination_bucket
    with contextlib.closing(WarmPool(dict(os.environ), preexec=die_with_parent)) as pool:
        pool.warm(1 + workers)  # the jobs' processes import while the stand-in starts and the trigger runs
        with stand_in() as aws:
            s3 = aws.client("s3")
            s3.create_bucket(Bucket=bucket)
            if before_trigger:
                before_trigger(aws)
            for path in source.control_files():
                s3.upload_file(str(path), bucket, path.relative_to(source.root).as_posix())
            result = trigger_and_run(
                aws,
                bucket,
                source.delivery,
                log_dir=_fresh_logs(out, source.layout),
                progress=progress,
                target_chunk_mib=target_chunk_mib,
                workers=workers,
                storage_env={LOCAL_OUT_ENV: str(staged), LOCAL_INPUTS_ENV: str(source.root)},
                pool=pool,
            )
            claim = staged / source.layout.claim_key  # the run state as on AWS: the claim names the jobs
            claim.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, source.layout.claim_key, str(claim))
            return result
