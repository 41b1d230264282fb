"""Parse the key of a delivered ``manifest.json`` into the run it starts.

S3 Inventory writes ``PREFIX/SOURCE-BUCKET/CONFIG-ID/YYYY-MM-DDTHH-MMZ/manifest.json``, where
PREFIX is the configured destination prefix (it may be empty or hold slashes) and the
timestamp folder is when the scan started (its hour is not always 00).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from inventory_contract.errors import ContractError, DeliveryKeyError

MANIFEST_NAME = "manifest.json"
CHECKSUM_NAME = "manifest.checksum"
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H-%MZ"
CREATION_SKEW = timedelta(hours=12)
"""How far a manifest's ``creationTimestamp`` may be from its timestamp folder. S3 writes both for
the start of one scan; a delivery copied under a neighbouring day's folder is 24 hours off (daily
deliveries are a day apart), which a tolerance of a day would let through."""
BUCKET_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]"
"""A source bucket's name: today's (3-63 of a-z 0-9 . -) and us-east-1's legacy ones (up to 255,
upper case and _)."""
_DELIVERY_KEY = re.compile(
    r"^(?:(?P<prefix>.+)/)?"
    rf"(?P<source_bucket>{BUCKET_NAME})/"
    r"(?P<config_id>[^/]+)/"
    r"(?P<timestamp>\d{4}-\d{2}-\d{2}T\d{2}-\d{2}Z)/"
    r"manifest\.json$"
)


@dataclass(frozen=True)
class Delivery:
    """One inventory delivery, identified by its manifest key."""

    prefix: str
    source_bucket: str
    config_id: str
    timestamp: datetime

    @property
    def run_date(self) -> str:
        """The run's date, ``YYYY-MM-DD``: the day the inventory scan started (UTC)."""
        return self.timestamp.strftime("%Y-%m-%d")

    @property
    def folder(self) -> str:
        parts = [self.prefix] if self.prefix else []
        parts += [self.source_bucket, self.config_id, self.timestamp.strftime(_TIMESTAMP_FORMAT)]
        return "/".join(parts)

    @property
    def manifest_key(self) -> str:
        return f"{self.folder}/{MANIFEST_NAME}"

    @property
    def checksum_key(self) -> str:
        return f"{self.folder}/{CHECKSUM_NAME}"


def parse_delivery_key(key: str) -> Delivery:
    """Return the delivery that ``key`` (already URL-decoded) is the manifest of."""
    match = _DELIVERY_KEY.match(key)
    if match is None:
        msg = (
            f"{key!r} is not an S3 Inventory manifest key; expected "
            "PREFIX/SOURCE-BUCKET/CONFIG-ID/YYYY-MM-DDTHH-MMZ/manifest.json"
        )
        raise DeliveryKeyError(msg)
    try:
        timestamp = datetime.strptime(match["timestamp"], _TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError as err:
        msg = f"{key!r}: delivery timestamp {match['timestamp']!r} is not a real date and time"
        raise DeliveryKeyError(msg) from err
    return Delivery(
        prefix=match["prefix"] or "",
        source_bucket=match["source_bucket"],
        config_id=match["config_id"],
        timestamp=timestamp,
    )


def check_creation_time(delivery: Delivery, created_at: datetime, *, source: str) -> None:
    """Refuse a delivery whose folder says another day than its manifest's ``creationTimestamp``
    (more than ``CREATION_SKEW`` apart): its run would carry the folder's date, and be wrong."""
    if abs(created_at - delivery.timestamp) > CREATION_SKEW:
        msg = (
            f"{source}: its folder {delivery.timestamp.strftime(_TIMESTAMP_FORMAT)} says "
            f"{delivery.run_date}, but its creationTimestamp says {created_at:%Y-%m-%dT%H:%M:%SZ} (more "
            "than 12 hours apart); a delivery copied under another timestamp folder would run with the "
            "wrong date: keep it in the folder S3 wrote it in"
        )
        raise ContractError(msg)
