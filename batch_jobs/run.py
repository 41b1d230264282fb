"""What both jobs load first: the run's manifest and identity, checked against the job's parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batch_jobs.storage import MissingObjectError, Storage, maybe_json, read_json
from inventory_contract.delivery import Delivery, parse_delivery_key
from inventory_contract.layout import REPORTS_ROOT, RunLayout, parse_s3_uri
from inventory_contract.manifest import Manifest, parse_manifest


class JobInputError(ValueError):
    """The job's parameters or inputs are wrong: retrying will not help."""


@dataclass(frozen=True)
class Run:
    bucket: str  # the destination bucket: where the manifest is and the run writes
    manifest_key: str
    delivery: Delivery
    layout: RunLayout
    manifest: Manifest

    @property
    def manifest_uri(self) -> str:
        return f"s3://{self.bucket}/{self.manifest_key}"


def load_run(store: Storage, manifest_uri: str, source_bucket: str, run_date: str) -> Run:
    bucket, key = parse_s3_uri(manifest_uri)
    delivery = parse_delivery_key(key)
    if (delivery.source_bucket, delivery.run_date) != (source_bucket, run_date):
        msg = (
            f"{manifest_uri} is the delivery of {delivery.source_bucket} on {delivery.run_date}, "
            f"but the job was given --source-bucket {source_bucket} --run-date {run_date}"
        )
        raise JobInputError(msg)
    try:
        raw = store.read(key)
    except MissingObjectError as err:
        msg = f"{manifest_uri} does not exist"
        raise JobInputError(msg) from err
    manifest = parse_manifest(raw, source=manifest_uri)
    if manifest.source_bucket != delivery.source_bucket:
        msg = f"{manifest_uri}: sourceBucket {manifest.source_bucket!r} does not match its key"
        raise JobInputError(msg)
    return Run(bucket, key, delivery, RunLayout.of(delivery), manifest)


def load_plan(store: Storage, run: Run) -> dict[str, Any]:
    """The splitter's plan for this run; it exists only if the split succeeded."""
    try:
        plan: dict[str, Any] = read_json(store, run.layout.plan_key)
    except MissingObjectError as err:
        msg = f"{store.uri(run.layout.plan_key)} is missing: the splitter has not completed for {run.manifest_uri}"
        raise JobInputError(msg) from err
    if plan.get("manifest") != run.manifest_uri:
        msg = f"the plan for this run was written for {plan.get('manifest')}, not {run.manifest_uri}"
        raise JobInputError(msg)
    return plan


def claimed_since(claim: dict[str, Any] | None, marker: Any) -> bool:
    """A forced rerun claimed the run after its marker was written: the marker is the earlier run's
    until the rerun's splitter deletes it."""
    completed_at = marker.get("completed_at") if isinstance(marker, dict) else None
    return bool(claim and completed_at and str(claim.get("claimed_at", "")) > str(completed_at))


def is_complete(store: Storage, layout: RunLayout) -> bool:
    """The run has its ``_COMPLETE`` marker, and no rerun claimed it since."""
    marker = maybe_json(store, layout.complete_marker_key)
    return isinstance(marker, dict) and not claimed_since(maybe_json(store, layout.claim_key), marker)


def run_days(store: Storage, source_bucket: str) -> list[str]:
    """The run dates that have anything under ``run-reports/`` (complete or not), oldest first."""
    root = f"{REPORTS_ROOT}/source_bucket={source_bucket}/"
    return sorted(
        {
            key.removeprefix(root).split("/", 1)[0].removeprefix("run_date=")
            for key, _ in store.list(root)
            if key.removeprefix(root).startswith("run_date=")
        }
    )


def newer_complete_run(store: Storage, layout: RunLayout) -> str | None:
    """The newest run date of the bucket that is complete and later than ``layout``'s, if any."""
    later = [d for d in run_days(store, layout.source_bucket) if d > layout.run_date]
    return next((d for d in reversed(later) if is_complete(store, RunLayout(layout.source_bucket, d))), None)


def newer_marked_run(store: Storage, layout: RunLayout) -> str | None:
    """The newest later run date of the bucket that has a ``_COMPLETE`` marker, by one listing (no
    marker is read: the split's role may list run reports but not read them)."""
    root = f"{REPORTS_ROOT}/source_bucket={layout.source_bucket}/"
    marked = [
        key.removeprefix(root).split("/", 1)[0].removeprefix("run_date=")
        for key, _ in store.list(root)
        if key.endswith("/_COMPLETE")
    ]
    return max((day for day in marked if day > layout.run_date), default=None)
