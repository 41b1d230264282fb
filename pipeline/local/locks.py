"""Runs side by side in one ``--out``: a lock per run partition, a staging folder per run.

Two runs of different deliveries (days, buckets) proceed together; a second run of the same
partition (source bucket and date) is refused at once, naming the run that holds it. Each run
assembles its outputs in a staging folder of its own, under a lock it holds until it is done, so
starting a run removes only what a run that is gone (crashed, killed) left behind. Locks are
``flock`` locks: the system releases them when the process ends, however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from inventory_contract.layout import RunLayout
from pipeline.errors import PipelineError

STAGING = ".staging"
"""Folder under ``--out`` where each run is assembled before it is published."""
LOCKS = ".locks"
"""Folder under ``--out`` holding one lock file per run partition."""


class RunBusyError(PipelineError):
    """Another run of the same partition is in progress in this ``--out``."""


@contextlib.contextmanager
def partition_lock(out: Path, layout: RunLayout, manifest_uri: str) -> Iterator[None]:
    """Hold the run partition of ``layout`` in ``out`` for this process, or refuse at once."""
    path = out / LOCKS / f"{layout.partition.replace('/', '__')}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as held:
        if not _try_lock(held):
            held.seek(0)
            holder = held.read().strip() or "another process"
            msg = (
                f"{out} is converting {layout.source_bucket}/{layout.run_date} already ({holder}); wait "
                "for that run to end, or give another --out"
            )
            raise RunBusyError(msg)
        held.seek(0)
        held.truncate()
        held.write(json.dumps({"pid": os.getpid(), "manifest": manifest_uri, "since": _now()}))
        held.flush()
        try:
            yield
        finally:  # a lock file that names a holder names a run in progress (``converting``)
            held.seek(0)
            held.truncate()


def converting(out: Path) -> dict[str, dict[str, object]]:
    """The partitions (``SOURCE/DATE``) being converted in ``out`` now, each with its holder (pid,
    manifest, since), read without taking any lock: a holder clears its lock file when it ends,
    and one that was killed is known by its pid being gone."""
    found: dict[str, dict[str, object]] = {}
    for path in sorted((out / LOCKS).glob("source_bucket=*.lock")):
        try:
            holder = json.loads(path.read_text() or "null")
        except (OSError, ValueError):
            continue
        if isinstance(holder, dict) and _alive(holder.get("pid")):
            bucket, _, day = path.stem.partition("__")
            found[f"{bucket.removeprefix('source_bucket=')}/{day.removeprefix('run_date=')}"] = holder
    return found


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextlib.contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A fresh folder, under ``out``'s staging folder, to assemble one run in, locked while the run
    lasts; what runs that are gone left there is removed first, and this one's when it ends.

    Creating and removing staging folders happens under one lock per ``--out`` (held for those few
    file operations only), so runs starting and ending at the same moment never take each other's
    new folder or lock file for stale, nor remove the staging folder under one another."""
    root = out / STAGING
    run_id = uuid.uuid4().hex
    with _bookkeeping(out):
        root.mkdir(parents=True, exist_ok=True)
        held = (root / f"{run_id}.lock").open("w")
        fcntl.flock(held, fcntl.LOCK_EX)  # free: nobody else knows the name yet
        remove_stale(root)
        staged = root / run_id
        staged.mkdir()
    try:
        yield staged
    finally:
        with _bookkeeping(out):
            shutil.rmtree(staged, ignore_errors=True)
            (root / f"{run_id}.lock").unlink(missing_ok=True)
            held.close()
            with contextlib.suppress(OSError):  # the staging folder, once no run is assembled in it
                root.rmdir()


@contextlib.contextmanager
def _bookkeeping(out: Path) -> Iterator[None]:
    path = out / LOCKS / "staging.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as mutex:
        fcntl.flock(mutex, fcntl.LOCK_EX)  # waits: the holder is doing a few file operations
        yield


def remove_stale(root: Path) -> list[str]:
    """Remove the staging folders of runs that no longer hold their lock; returns their names.
    Called under the ``--out``'s bookkeeping lock."""
    removed = []
    for lock in sorted(root.glob("*.lock")):
        with lock.open("a") as probe:
            if not _try_lock(probe):
                continue  # a live run
            shutil.rmtree(root / lock.stem, ignore_errors=True)
            lock.unlink(missing_ok=True)
            removed.append(lock.stem)
    for pending in root.glob(".*.lock-new"):  # an earlier version's lock, never put in place
        pending.unlink(missing_ok=True)
    live = {lock.stem for lock in root.glob("*.lock")}
    for folder in root.iterdir():  # left by a version without locks, or a run that lost its lock file
        if folder.is_dir() and folder.name not in live:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
