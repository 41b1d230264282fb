"""Every key the pipeline reads or writes in the destination bucket, in one place.

    inventory/...                                   S3 Inventory deliveries (written by S3)
    processed/source_bucket=B/run_date=D/           Parquet parts: the analytics table
    run-state/source_bucket=B/run_date=D/           claim, plan, part stats (expire)
    run-reports/source_bucket=B/run_date=D/         run report and _COMPLETE marker (kept)
    rollups/NAME/source_bucket=B/run_date=D/        the run's rollup tables (inventory_contract/rollups.py)
    reports/source_bucket=B/run_date=D/report.html  the storage report of the runs up to D (finalize writes it)
    reports/source_bucket=B/latest.html             the same page of the newest complete run

``run-state/`` and ``run-reports/`` sit outside ``processed/`` so that Athena, which reads every
object under a table's location, never reads them. ``inventory-chunks/`` held the uncompressed
copies of the delivery that versions before the plan (docs/adr/0013) wrote; nothing writes it now,
and the stack's lifecycle rule still expires what an earlier version left there.
"""

from __future__ import annotations

from dataclasses import dataclass

from inventory_contract.delivery import Delivery

INVENTORY_PREFIX = "inventory"
CHUNKS_ROOT = "inventory-chunks"  # written by earlier versions only: see the docstring
PROCESSED_ROOT = "processed"
STATE_ROOT = "run-state"
REPORTS_ROOT = "run-reports"
ROLLUPS_ROOT = "rollups"
STORAGE_REPORTS_ROOT = "reports"
PARTITION_KEYS = ("source_bucket", "run_date")
_INDEX_WIDTH = 6


@dataclass(frozen=True)
class RunLayout:
    """The keys of one run: one source bucket on one date."""

    source_bucket: str
    run_date: str

    @classmethod
    def of(cls, delivery: Delivery) -> RunLayout:
        return cls(source_bucket=delivery.source_bucket, run_date=delivery.run_date)

    @property
    def partition(self) -> str:
        return f"source_bucket={self.source_bucket}/run_date={self.run_date}"

    @property
    def processed_prefix(self) -> str:
        return f"{PROCESSED_ROOT}/{self.partition}/"

    def part_key(self, index: int) -> str:
        return f"{self.processed_prefix}part-{_number(index)}.parquet"

    @property
    def state_prefix(self) -> str:
        return f"{STATE_ROOT}/{self.partition}/"

    @property
    def claim_key(self) -> str:
        return f"{self.state_prefix}claim.json"

    @property
    def failure_key(self) -> str:
        return f"{self.state_prefix}rejected.json"

    @property
    def plan_key(self) -> str:
        """The splitter's plan: which rows of which data files each child reads
        (``inventory_contract/plan.py``)."""
        return f"{self.state_prefix}plan.json"

    @property
    def part_stats_prefix(self) -> str:
        return f"{self.state_prefix}parts/"

    def part_stats_key(self, index: int) -> str:
        return f"{self.part_stats_prefix}part-{_number(index)}.json"

    def rollup_partial_key(self, rollup: str, index: int) -> str:
        """One child's partial aggregate of one rollup, beside its part stats."""
        return f"{self.part_stats_prefix}part-{_number(index)}.{rollup}.parquet"

    def identity_partial_key(self, index: int) -> str:
        """One child's sorted identity hashes, for finalize's count of repeated objects."""
        return f"{self.part_stats_prefix}part-{_number(index)}.identities.parquet"

    def rollup_prefix(self, rollup: str) -> str:
        return f"{ROLLUPS_ROOT}/{rollup}/{self.partition}/"

    def rollup_key(self, rollup: str, index: int = 0) -> str:
        """A rollup table's file ``index``: one for most, more for a prefix rollup too large to
        merge in one pass (``batch_jobs/rollups.py``)."""
        return f"{self.rollup_prefix(rollup)}part-{_number(index)}.parquet"

    @property
    def storage_report_key(self) -> str:
        """The storage report (HTML) of the bucket's runs up to this one."""
        return f"{STORAGE_REPORTS_ROOT}/{self.partition}/report.html"

    @property
    def latest_storage_report_key(self) -> str:
        """The storage report of the bucket's newest complete run, replaced as each newer run
        completes: one key to bookmark (the stack outputs it)."""
        return latest_storage_report_key(self.source_bucket)

    @property
    def reports_prefix(self) -> str:
        return f"{REPORTS_ROOT}/{self.partition}/"

    @property
    def run_report_key(self) -> str:
        return f"{self.reports_prefix}run-report.json"

    @property
    def complete_marker_key(self) -> str:
        return f"{self.reports_prefix}_COMPLETE"


def latest_storage_report_key(source_bucket: str) -> str:
    return f"{STORAGE_REPORTS_ROOT}/source_bucket={source_bucket}/latest.html"


def _number(index: int) -> str:
    if not 0 <= index < 10**_INDEX_WIDTH:
        msg = f"chunk index {index} is outside 0..{10**_INDEX_WIDTH - 1}"
        raise ValueError(msg)
    return f"{index:0{_INDEX_WIDTH}d}"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")``."""
    bucket, sep, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not sep or not key:
        msg = f"{uri!r} is not an S3 object URI like s3://BUCKET/KEY"
        raise ValueError(msg)
    return bucket, key
