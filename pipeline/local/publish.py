"""A local run's outputs in ``--out``: when a run counts as done, and how a new one replaces it.

A run is done only when its ``_COMPLETE`` marker is there and every part and rollup table the
marker lists is there at the size it lists. A new run is assembled aside, in a staging folder of its
own under ``--out`` (``pipeline/local/locks.py``; the same file system, so every move is a rename),
and published, under its partition's lock, in an order that never shows a marker
without its data: the old marker goes first, then the run's partition of ``processed/``, of each
rollup table and its run state (each replaced whole, so no part of an earlier run with more chunks survives), then the
run report, and the marker last. An interruption leaves the previous complete run or no marker.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from inventory_contract.layout import RunLayout
from inventory_contract.rollups import ROLLUPS


def completed(out: Path, layout: RunLayout, manifest_uri: str) -> dict[str, Any] | None:
    """The run's ``_COMPLETE`` marker if the run of ``manifest_uri`` in ``out`` is whole, else None.

    Another delivery of the same bucket and day (another inventory configuration) writes the same
    partition: its marker does not count for this one."""
    marker, _ = _check(out, layout, manifest_uri)
    return marker


def why_incomplete(out: Path, layout: RunLayout, manifest_uri: str) -> str | None:
    """Why the run of ``manifest_uri`` in ``out`` is not whole, in words; None when it is."""
    return _check(out, layout, manifest_uri)[1]


def _check(out: Path, layout: RunLayout, manifest_uri: str) -> tuple[dict[str, Any] | None, str | None]:
    marker_path = out / layout.complete_marker_key
    try:
        marker = json.loads(marker_path.read_text())
    except (OSError, ValueError):
        return None, f"{marker_path} is missing or unreadable"
    if not isinstance(marker, dict) or marker.get("manifest") != manifest_uri:
        found = marker.get("manifest") if isinstance(marker, dict) else None
        return None, f"{marker_path} is for another delivery ({found})"
    parts, tables = marker.get("parts"), marker.get("rollups")
    if not isinstance(parts, dict):
        return None, f"{marker_path} lists no parts"
    if not isinstance(tables, dict):
        return None, f"{marker_path} lists no rollup tables: an earlier version converted it"
    for key, size in {**parts, **tables}.items():
        path = out / key
        if not path.is_file():
            return None, f"{path}, listed by {marker_path}, is missing"
        if path.stat().st_size != size:
            return None, f"{path} is {path.stat().st_size} bytes, but {marker_path} lists {size}"
    present = {p.relative_to(out).as_posix() for p in (out / layout.processed_prefix).glob("*")}
    if present != set(parts):
        extra = sorted(present - set(parts))
        return None, f"{out / layout.processed_prefix} holds files {marker_path} does not list: {extra}"
    return marker, None


def publish(staged: Path, out: Path, layout: RunLayout) -> None:
    """Move the run assembled in ``staged`` into ``out``: data first, the marker last."""
    (out / layout.complete_marker_key).unlink(missing_ok=True)
    rollups = (layout.rollup_prefix(r.name) for r in ROLLUPS)
    for prefix in (layout.processed_prefix, *rollups, layout.state_prefix):
        _replace_dir(staged / prefix, out / prefix, staged)
    for key in (layout.run_report_key, layout.complete_marker_key):
        source = staged / key
        if source.is_file():
            (out / key).parent.mkdir(parents=True, exist_ok=True)
            source.replace(out / key)


def _replace_dir(new: Path, target: Path, staged: Path) -> None:
    """``target`` becomes ``new`` (or disappears if ``new`` does not exist), by renames; what it
    held goes through this run's own staging folder."""
    old = staged / f".old-{uuid.uuid4().hex}"
    if target.exists():
        old.parent.mkdir(parents=True, exist_ok=True)
        target.replace(old)
    if new.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        new.replace(target)
    shutil.rmtree(old, ignore_errors=True)
