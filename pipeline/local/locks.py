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
import re
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
    path = lock_file(out, layout)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as held:
        if not _try_lock(held, patience=LOCK_PATIENCE_SECONDS):
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


LOCK_PATIENCE_SECONDS = 0.5
"""How long a run waits for its partition's lock before it refuses: a run holds it for the whole
run, ``status`` probes it for microseconds."""
_LOCK_NAME = re.compile(r"^source_bucket=(?P<bucket>.+)__run_date=(?P<day>\d{4}-\d{2}-\d{2})\.lock$")


def lock_file(out: Path, layout: RunLayout) -> Path:
    return out / LOCKS / f"{layout.partition.replace('/', '__')}.lock"


def started(out: Path) -> list[tuple[str, str]]:
    """(source bucket, run date) of every partition a run ever started converting in ``out``."""
    found = []
    for path in (out / LOCKS).glob("source_bucket=*.lock"):
        match = _LOCK_NAME.match(path.name)
        if match:
            found.append((match["bucket"], match["day"]))
    return found


def converting(out: Path, layout: RunLayout) -> dict[str, object] | None:
    """The holder (pid, manifest, since) of the run converting ``layout``'s partition in ``out`` now,
    or None. The lock is probed, shared and without waiting (a run starting at that moment waits
    ``LOCK_PATIENCE_SECONDS`` for it), so a killed holder or a reused pid is never taken for a run."""
    path = lock_file(out, layout)
    try:
        probe = path.open("r")
    except OSError:
        return None
    with probe:
        try:
            fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(probe.read() or "null")
            except ValueError:
                holder = None
            return holder if isinstance(holder, dict) else {"pid": None, "manifest": None, "since": None}
        fcntl.flock(probe, fcntl.LOCK_UN)
    return None


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


def _try_lock(handle: IO[str], *, patience: float = 0.0) -> bool:
    """Take the lock if it is free, or frees within ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        else:
            return True


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
