"""A listing of a bucket written as an S3 Inventory delivery: which fields, which rows, where.

``snapshot`` lists a bucket (ListObjectVersions, or ListObjectsV2 for current objects only) and
writes what S3 Inventory would have delivered, so the same trigger and jobs convert it. This
module says what such a delivery holds; ``batch_jobs/snapshot.py`` does the listing.

A listing is not a point-in-time snapshot (objects written while it runs may or may not appear)
and lacks the fields a listing does not return (IsMultipartUploaded, ReplicationStatus,
EncryptionStatus, Object Lock, Intelligent-Tiering's access tier, BucketKeyStatus, the ACL,
LifecycleExpirationDate): the table holds them as null for its runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from inventory_contract.delivery import Delivery
from inventory_contract.errors import ListingSourceError
from inventory_contract.schema import encode_key

LISTING_CONFIG_ID = "s3-inventory-pipeline-listing"
"""The configuration ID a listing's delivery is filed under: S3 never delivers under it unless a
user names a configuration so, and every reader tells a listing from an inventory by it."""

VERSIONS_FIELDS = (
    "Bucket",
    "Key",
    "VersionId",
    "IsLatest",
    "IsDeleteMarker",
    "Size",
    "LastModifiedDate",
    "ETag",
    "StorageClass",
    "ChecksumAlgorithm",
    "ObjectOwner",
)
"""The ``fileSchema`` of a listing of every version: what ListObjectVersions returns of each, in
S3 Inventory's field order."""
CURRENT_FIELDS = tuple(f for f in VERSIONS_FIELDS if f not in ("VersionId", "IsLatest", "IsDeleteMarker"))
"""The ``fileSchema`` of a listing of current objects (ListObjectsV2 with FetchOwner), as an
inventory of current versions has no version columns."""

LISTING = "listing"
INVENTORY = "s3-inventory"


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def parse_bucket_uri(uri: str) -> tuple[str, str]:
    """``s3://BUCKET[/PREFIX]`` -> ``(BUCKET, PREFIX)``; anything else raises ``ListingSourceError``."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not _BUCKET.fullmatch(bucket) or ".." in bucket:
        msg = f"{uri!r} is not a bucket URI like s3://BUCKET or s3://BUCKET/PREFIX"
        if uri.startswith("s3://") and bucket:
            msg += f" ({bucket!r} is not a bucket name: 3-63 of a-z 0-9 . -)"
        raise ListingSourceError(msg)
    return bucket, prefix


def partition_of(region: str | None) -> str:
    """The ARN partition of a Region: ``aws-cn`` for cn-*, ``aws-us-gov`` for us-gov-*, else ``aws``."""
    region = region or ""
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


def is_listing_manifest(uri: str) -> bool:
    """Whether ``s3://DEST/.../manifest.json`` is the manifest of a listing's delivery."""
    return f"/{LISTING_CONFIG_ID}/" in uri


def is_listing(delivery: Delivery) -> bool:
    return delivery.config_id == LISTING_CONFIG_ID


def inventory_kind(delivery: Delivery) -> str:
    """``listing`` for a delivery a listing wrote, ``s3-inventory`` for one S3 delivered."""
    return LISTING if is_listing(delivery) else INVENTORY


def listing_delivery(prefix: str, source_bucket: str, started: datetime) -> Delivery:
    """The delivery a listing started at ``started`` (UTC) writes: its timestamp folder is the
    start's minute, as S3 names a delivery by when its scan started."""
    return Delivery(
        prefix=prefix,
        source_bucket=source_bucket,
        config_id=LISTING_CONFIG_ID,
        timestamp=started.replace(second=0, microsecond=0),
    )


def data_key(delivery: Delivery, name: str) -> str:
    """Where a listing's data file goes: ``PREFIX/SOURCE/CONFIG/data/NAME``, as S3 files them."""
    base = "/".join(part for part in (delivery.prefix, delivery.source_bucket, delivery.config_id) if part)
    return f"{base}/data/{name}"


def csv_row(values: Sequence[str]) -> str:
    """One line of inventory CSV: every field quoted, a quote doubled (RFC 4180), as S3 writes it."""
    return ",".join('"' + v.replace('"', '""') + '"' for v in values) + "\n"


_ISO_UTC = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z")


def _timestamp(value: datetime | str) -> str:
    """A LastModified as inventory CSV writes it, ``2026-11-24T01:00:00.000Z``: from a datetime,
    or from the text S3 answered (the listing client keeps it unparsed: ``listing_client``)."""
    if isinstance(value, str):
        match = _ISO_UTC.fullmatch(value)
        if match:
            return f"{match[1]}.{(match[2] or '').ljust(3, '0')[:3]}Z"
        value = datetime.fromisoformat(value)
    value = value.astimezone(UTC) if value.tzinfo else value
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def version_values(bucket: str, entry: Mapping[str, Any], *, delete_marker: bool) -> list[str]:
    """A ``Versions`` or ``DeleteMarkers`` entry of ListObjectVersions as ``VERSIONS_FIELDS``.

    S3 answers ``null`` for the version of an object written while versioning was never enabled
    or suspended; an inventory leaves that field empty. A delete marker has no size, ETag or class.
    """
    version = entry.get("VersionId") or ""
    common = [
        bucket,
        encode_key(entry["Key"]),
        "" if version == "null" else version,
        "true" if entry.get("IsLatest") else "false",
        "true" if delete_marker else "false",
    ]
    if delete_marker:
        return [*common, "", _timestamp(entry["LastModified"]), "", "", "", _owner(entry)]
    return [*common, *_object_values(entry)]


def current_values(bucket: str, entry: Mapping[str, Any]) -> list[str]:
    """A ``Contents`` entry of ListObjectsV2 (with FetchOwner) as ``CURRENT_FIELDS``."""
    return [bucket, encode_key(entry["Key"]), *_object_values(entry)]


def _object_values(entry: Mapping[str, Any]) -> list[str]:
    return [
        str(entry["Size"]),
        _timestamp(entry["LastModified"]),
        str(entry.get("ETag", "")).strip('"'),  # the API quotes the ETag; an inventory does not
        entry.get("StorageClass") or "STANDARD",
        ",".join(entry.get("ChecksumAlgorithm") or ()),
        _owner(entry),
    ]


def _owner(entry: Mapping[str, Any]) -> str:
    return str((entry.get("Owner") or {}).get("ID", ""))
