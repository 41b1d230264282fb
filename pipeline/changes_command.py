"""``python -m pipeline changes RUNS --source-bucket B --from D1 --to D2 --out DIR``.

Compares two complete runs of one source bucket in RUNS, the output folder of run-local or demo (the rules are in
``batch_jobs/changes.py``), prints objects and bytes per kind of change, and writes the changed
objects to ``DIR/changes.parquet`` with ``DIR/summary.json``. Every argument is checked before
anything is written. DIR is assembled in a staging folder beside it and renamed into place, so a
failure leaves DIR as it was; a DIR that is not empty is replaced only with ``--force``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import uuid
from dataclasses import asdict
from pathlib import Path

from batch_jobs.changes import (
    Duplicates,
    KindTotals,
    PartsNotComparableError,
    duplicates,
    fields_differ,
    totals,
    write_changes,
)
from inventory_contract.layout import PROCESSED_ROOT, REPORTS_ROOT, RunLayout
from pipeline.arguments import add_command, path, run_date
from pipeline.errors import EXIT_OK, UsageError
from pipeline.local.publish import why_incomplete

CHANGES_FILE, SUMMARY_FILE = "changes.parquet", "summary.json"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands,
        "changes",
        summary="day-over-day changes between two complete local runs",
        description="""\
Compare two complete runs of one source bucket in RUNS, the folder run-local or demo wrote them in
(their --out). Only current objects count: delete markers and noncurrent versions are left out, so
a key whose current version became a delete marker is deleted. Objects are matched on key and
version id; a size or ETag change is 'modified' even if the storage class moved too.

Prints objects and bytes per kind of change, and writes into --out DIR: changes.parquet (one row
per changed object, with a 'change' column and the size, ETag, storage class and last-modified
date before and after) and summary.json. DIR is replaced whole, only when it is empty or --force.""",
        examples=[
            "changes demo-output --source-bucket demo-source-bucket --from 2026-11-24 --to 2026-11-25 "
            "--out changes-2026-11-25",
        ],
    )
    parser.add_argument(
        "out",
        metavar="RUNS",
        type=path,
        help="the folder that holds the runs (the --out of run-local or demo)",
    )
    parser.add_argument("--source-bucket", required=True, help="the inventoried bucket")
    parser.add_argument(
        "--from", dest="from_date", required=True, type=run_date, help="earlier run, YYYY-MM-DD"
    )
    parser.add_argument("--to", dest="to_date", required=True, type=run_date, help="later run, YYYY-MM-DD")
    parser.add_argument(
        "--out",
        dest="target",
        metavar="DIR",
        required=True,
        type=path,
        help="the folder to write changes.parquet and summary.json in",
    )
    parser.add_argument("--force", action="store_true", help="replace DIR if it is not empty")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    compare(args.out, args.source_bucket, args.from_date, args.to_date, args.target, force=args.force)
    return EXIT_OK


def compare(runs: Path, bucket: str, from_date: str, to_date: str, target: Path, *, force: bool) -> None:
    """The command: check every argument, write the changes into ``target``, print what changed."""
    before, after = _check_runs(runs, bucket, from_date, to_date)
    _check_target(target, runs, force=force)
    run = {"source_bucket": bucket, "from": from_date, "to": to_date}
    try:
        found, repeated = _write(before, after, target, run)
    except PartsNotComparableError as err:
        raise UsageError(str(err)) from err
    print(render(bucket, from_date, to_date, found))
    for day, dups in zip((from_date, to_date), repeated, strict=True):
        if dups.identities:
            shown = ", ".join(f"{e['key']!r} ({e['version_id'] or 'null'})" for e in dups.examples[:3])
            print(
                f"note: {day} lists {dups.identities:,} objects more than once ({dups.extra_rows:,} extra "
                f"rows), each counted once, e.g. {shown}; see {SUMMARY_FILE}"
            )
    print(f"object-level rows: {target / CHANGES_FILE}")


def render(bucket: str, from_date: str, to_date: str, found: dict[str, KindTotals]) -> str:
    lines = [
        f"changes in {bucket} from {from_date} to {to_date} (current objects only):",
        f"  {'change':<24} {'objects':>12} {'bytes before':>20} {'bytes after':>20}",
    ]
    for kind, t in found.items():
        lines.append(f"  {kind:<24} {t.objects:>12,} {t.bytes_before:>20,} {t.bytes_after:>20,}")
    return "\n".join(lines)


def _check_runs(out: Path, bucket: str, from_date: str, to_date: str) -> tuple[Path, Path]:
    """The partition folders of two complete runs, the earlier first."""
    if from_date >= to_date:
        msg = f"--from {from_date} is not before --to {to_date}; give the earlier run date first"
        raise UsageError(msg)
    if not out.is_dir():
        msg = (
            f"RUNS {out} {'is a file' if out.exists() else 'does not exist'}; give the folder run-local or demo "
            "wrote the runs in"
        )
        raise UsageError(msg)
    if not bucket or "/" in bucket:
        msg = f"--source-bucket {bucket!r} is not a bucket name"
        raise UsageError(msg)
    layouts = RunLayout(bucket, from_date), RunLayout(bucket, to_date)
    runs = _complete_run(out, layouts[0]), _complete_run(out, layouts[1])
    _check_same_fields(out, *layouts)
    return runs


def _check_same_fields(out: Path, before: RunLayout, after: RunLayout) -> None:
    def fields(layout: RunLayout) -> list[str]:
        plan = out / layout.plan_key
        if not plan.exists():  # a run converted by a version before the plan kept its split report
            plan = plan.with_name("split-report.json")
        return list(json.loads(plan.read_text())["file_schema"])

    try:
        first, second = fields(before), fields(after)
    except (OSError, ValueError, KeyError, TypeError) as err:
        msg = f"cannot read the fields of the runs from their plans under {out}/run-state/: {err}"
        raise UsageError(msg) from err
    differ = fields_differ(first, second, before.run_date, after.run_date)
    if differ:
        raise UsageError(differ)


def _complete_run(out: Path, layout: RunLayout) -> Path:
    parts = out / layout.processed_prefix
    if not parts.is_dir():
        msg = f"no run partition {parts}/; convert that day first (python -m pipeline run-local)"
        raise UsageError(msg)
    marker = out / layout.complete_marker_key
    try:
        manifest = json.loads(marker.read_text()).get("manifest", "")
    except (OSError, ValueError, AttributeError):
        manifest = None
    problem = (
        f"{marker} is missing or unreadable" if manifest is None else why_incomplete(out, layout, manifest)
    )
    if problem:
        msg = (
            f"run {layout.source_bucket}/{layout.run_date} is not complete: {problem}; "
            "only complete runs are compared: run that day's delivery again with run-local (a run that is "
            "not complete runs again from the start, no --force needed)"
        )
        raise UsageError(msg)
    return parts


def _check_target(target: Path, out: Path, *, force: bool) -> None:
    """DIR can receive the result: a new or empty folder (any folder with --force), outside the
    table and the run reports, whose parent can hold a staging folder. Creates nothing."""
    if target.exists() and not target.is_dir():
        msg = f"--out {target} is a file; give a folder"
        raise UsageError(msg)
    absolute, inventory = target.resolve(), out.resolve()
    if inventory.is_relative_to(absolute) or any(
        absolute.is_relative_to(inventory / root) for root in (PROCESSED_ROOT, REPORTS_ROOT)
    ):
        msg = f"--out {target} overlaps RUNS {out}'s table or run reports; give a folder outside them"
        raise UsageError(msg)
    if target.is_dir() and any(target.iterdir()) and not force:
        msg = f"--out {target} is not empty; give a new or empty folder, or --force to replace it"
        raise UsageError(msg)
    existing = next(p for p in absolute.parents if p.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "Not a directory")
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        msg = f"--out {target}: cannot write in {existing} ({err.strerror}); give a folder you can write to"
        raise UsageError(msg) from err


def _write(
    before: Path, after: Path, target: Path, run: dict[str, str]
) -> tuple[dict[str, KindTotals], tuple[Duplicates, Duplicates]]:
    """Assemble the result beside ``target``, then rename it into place; a failure changes nothing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.parent / f".{target.name}.staging-{uuid.uuid4().hex}"
    staged.mkdir()
    try:
        write_changes(before, after, staged / CHANGES_FILE)
        found = totals(staged / CHANGES_FILE)
        repeated = duplicates(before), duplicates(after)
        summary = {
            **run,
            "changes": {kind: asdict(t) for kind, t in found.items()},
            "listed_more_than_once": {run["from"]: asdict(repeated[0]), run["to"]: asdict(repeated[1])},
        }
        (staged / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        _replace(staged, target)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return found, repeated


def _replace(staged: Path, target: Path) -> None:
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
    if target.exists():
        target.replace(old)
    try:
        staged.replace(target)
    except BaseException:
        if old.exists():
            old.replace(target)
        raise
    shutil.rmtree(old, ignore_errors=True)
