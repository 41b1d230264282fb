"""What one smoke run owns in the destination bucket, how it is removed, and the IAM it needs.

A smoke run delivers an inventory for a source bucket name that can never be a bucket of anyone:
``amzn-s3-demo-smoke-YYYYMMDD-HHMMSS-XXXXXX``. S3 refuses to create any bucket whose name starts
with ``amzn-s3-demo-`` (a prefix AWS reserves for the names in its documentation), so no real
inventory can ever be delivered, claimed or converted under it. The time and six random hex
digits make each smoke run's name its own: its run claim, job names and every key it causes are
apart from any earlier smoke run and from another deployer's smoke run at the same moment, with no
forced rerun. Everything is removed by those names' exact prefixes, so nothing else can match.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from components.role_policies import allow, document
from inventory_contract.layout import (
    PROCESSED_ROOT,
    REPORTS_ROOT,
    ROLLUPS_ROOT,
    STATE_ROOT,
    STORAGE_REPORTS_ROOT,
    RunLayout,
)
from inventory_contract.rollups import ROLLUPS

RESERVED_PREFIX = "amzn-s3-demo-"
"""S3 refuses to create a general purpose bucket whose name starts with this (bucket naming rules)."""
SMOKE_SOURCE_PREFIX = f"{RESERVED_PREFIX}smoke-"
_SMOKE_SOURCE = re.compile(rf"^{re.escape(SMOKE_SOURCE_PREFIX)}\d{{8}}-\d{{6}}-[0-9a-f]{{6}}$")


def smoke_source(now: datetime, token: str | None = None) -> str:
    """A reserved source bucket name of its own for the smoke run started at ``now`` (UTC)."""
    return f"{SMOKE_SOURCE_PREFIX}{now:%Y%m%d-%H%M%S}-{token or secrets.token_hex(3)}"


def is_smoke_source(name: str) -> bool:
    return _SMOKE_SOURCE.match(name) is not None


@dataclass(frozen=True)
class SmokeScope:
    """The keys one smoke run may write and remove: its delivery and its run's partitions."""

    bucket: str
    inventory_prefix: str
    source_bucket: str
    run_date: str

    def __post_init__(self) -> None:
        if not is_smoke_source(self.source_bucket):  # the one guard between cleanup and real data
            msg = f"{self.source_bucket!r} is not a smoke test's reserved source name"
            raise ValueError(msg)

    @property
    def delivery_prefix(self) -> str:
        return f"{self.inventory_prefix}/{self.source_bucket}/"

    @property
    def prefixes(self) -> tuple[str, ...]:
        """The delivery, then the run's Parquet, run state, run report, rollup tables and storage
        report pages (the run's and latest.html: the smoke source bucket has no other run)."""
        layout = RunLayout(self.source_bucket, self.run_date)
        return (
            self.delivery_prefix,
            layout.processed_prefix,
            layout.state_prefix,
            layout.reports_prefix,
            *(layout.rollup_prefix(rollup.name) for rollup in ROLLUPS),
            f"{STORAGE_REPORTS_ROOT}/source_bucket={self.source_bucket}/",
        )


def remove(s3: Any, scope: SmokeScope, progress: Callable[[str], None]) -> list[str]:
    """Delete every object under the scope's prefixes, one key at a time (``s3:DeleteObject`` on
    exactly that key); returns the problems, one per prefix that could not be emptied."""
    removed, problems = 0, []
    for prefix in scope.prefixes:
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=scope.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    s3.delete_object(Bucket=scope.bucket, Key=item["Key"])
                    removed += 1
        except ClientError as err:
            error = err.response.get("Error", {})
            problems.append(f"s3://{scope.bucket}/{prefix}: {error.get('Code')}: {error.get('Message')}")
    progress(f"removed {removed} object(s) under {len(scope.prefixes)} prefixes of {scope.source_bucket}")
    return problems


def smoke_policy(*, bucket_arn: str, inventory_prefix: str, partition: str = "aws") -> dict[str, Any]:
    """What ``pipeline smoke`` does with the deployer's credentials, and nothing more: deliver,
    follow and remove under the reserved source names only, follow and stop the run's jobs."""
    source = f"source_bucket={SMOKE_SOURCE_PREFIX}*"
    delivery = f"{inventory_prefix}/{SMOKE_SOURCE_PREFIX}*"
    owned = [
        delivery,
        *(f"{root}/{source}" for root in (PROCESSED_ROOT, STATE_ROOT, REPORTS_ROOT, STORAGE_REPORTS_ROOT)),
        f"{ROLLUPS_ROOT}/*/{source}",
    ]
    return document(
        allow(
            "ListSmokeKeys",
            ["s3:ListBucket"],
            [bucket_arn],
            Condition={"StringLike": {"s3:prefix": owned}},
        ),
        allow("DeliverSmokeInventory", ["s3:PutObject"], [f"{bucket_arn}/{delivery}"]),
        allow(
            "FollowSmokeRun",
            ["s3:GetObject"],
            [f"{bucket_arn}/{STATE_ROOT}/{source}", f"{bucket_arn}/{REPORTS_ROOT}/{source}"],
        ),
        allow("RemoveSmokeKeys", ["s3:DeleteObject"], [f"{bucket_arn}/{key}" for key in owned]),
        # DescribeJobs has no resource-level permissions: "*" is the only form.
        allow("FollowSmokeJobs", ["batch:DescribeJobs"], ["*"]),
        allow("StopSmokeJobs", ["batch:TerminateJob"], [f"arn:{partition}:batch:*:*:job/*"]),
    )
