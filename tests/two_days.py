"""Two days of one bucket's inventory, converted with run-local, and the changes between them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inventory_contract.layout import RunLayout
from inventory_contract.schema import KNOWN_FIELDS
from pipeline.cli import main
from pipeline.synthetic import GeneratedDelivery, generate_delivery
from pipeline.synthetic_changes import NextDay, Plan, next_day

BUCKET = "demo-source-bucket"
DAY1, DAY2 = "2026-11-24", "2026-11-25"
UNVERSIONED_FIELDS = tuple(f for f in KNOWN_FIELDS if f not in ("VersionId", "IsLatest", "IsDeleteMarker"))
PLAN = Plan(added=40, deleted=30, modified=25, moved=20, modified_and_moved=10, copies=6, multipart_copies=3)
VERSIONED_PLAN = Plan(
    added=35,
    deleted=15,
    modified=20,
    moved=25,
    modified_and_moved=8,
    delete_marked=12,
    noncurrent_moved=10,
    copies=5,
    multipart_copies=2,
)


@dataclass(frozen=True)
class TwoDays:
    out: Path  # run-local's --out, with both runs complete
    day1: GeneratedDelivery
    day2: NextDay
    plan: Plan

    def layout(self, run_date: str) -> RunLayout:
        return RunLayout(BUCKET, run_date)


def two_days(root: Path, *, versions: bool, objects: int = 2500) -> TwoDays:
    """Day 1 generated (tricky keys included), day 2 derived with a known plan, both run locally."""
    plan = VERSIONED_PLAN if versions else PLAN
    day1 = generate_delivery(
        root / "bucket",
        objects=objects,
        files=2,
        source_bucket=BUCKET,
        versions=versions,
        fields=KNOWN_FIELDS if versions else UNVERSIONED_FIELDS,
        tricky_share=0.2,
        keep_keys=True,
    )
    day2 = next_day(day1, root / "bucket", plan)
    out = root / "out"
    for manifest in (day1.manifest_path, day2.delivery.manifest_path):
        code = main(["run-local", str(manifest), "--out", str(out), "--workers", "1"])
        assert code == 0, manifest
    return TwoDays(out, day1, day2, plan)
