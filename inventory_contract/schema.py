"""Map an inventory's ``fileSchema`` to typed output columns.

Column names are the snake_case names that S3 Inventory's own Parquet output uses, so Athena
queries written for that output work unchanged. A field this contract does not know yet is kept
as a string column under its snake_case name, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote_plus, unquote


class ColumnType(StrEnum):
    """The logical type of an output column; each job maps it to its engine's type."""

    STRING = "string"
    INT64 = "int64"
    BOOLEAN = "boolean"
    TIMESTAMP_MS_UTC = "timestamp_ms_utc"
    BYTE_TOTAL = "byte_total"
    """A sum of object sizes: exact past 2^63 (a 64-bit sum wraps at 8 EiB, which 1.7 million
    objects of S3's 5 TiB maximum reach), as a decimal of 38 digits."""


@dataclass(frozen=True)
class Column:
    field: str  # the CSV field name in fileSchema, e.g. "LastModifiedDate"
    name: str  # the output column name, e.g. "last_modified_date"
    type: ColumnType


S = ColumnType.STRING
_KNOWN: dict[str, tuple[str, ColumnType]] = {
    "Bucket": ("bucket", S),
    "Key": ("key", S),
    "VersionId": ("version_id", S),
    "IsLatest": ("is_latest", ColumnType.BOOLEAN),
    "IsDeleteMarker": ("is_delete_marker", ColumnType.BOOLEAN),
    "Size": ("size", ColumnType.INT64),
    "LastModifiedDate": ("last_modified_date", ColumnType.TIMESTAMP_MS_UTC),
    "ETag": ("e_tag", S),
    "StorageClass": ("storage_class", S),
    "IsMultipartUploaded": ("is_multipart_uploaded", ColumnType.BOOLEAN),
    "ReplicationStatus": ("replication_status", S),
    "EncryptionStatus": ("encryption_status", S),
    "ObjectLockRetainUntilDate": ("object_lock_retain_until_date", ColumnType.TIMESTAMP_MS_UTC),
    "ObjectLockMode": ("object_lock_mode", S),
    "ObjectLockLegalHoldStatus": ("object_lock_legal_hold_status", S),
    "IntelligentTieringAccessTier": ("intelligent_tiering_access_tier", S),
    "BucketKeyStatus": ("bucket_key_status", S),
    "ChecksumAlgorithm": ("checksum_algorithm", S),
    "ObjectAccessControlList": ("object_access_control_list", S),
    "ObjectOwner": ("object_owner", S),
    "LifecycleExpirationDate": ("lifecycle_expiration_date", ColumnType.TIMESTAMP_MS_UTC),
}
KNOWN_FIELDS: tuple[str, ...] = tuple(_KNOWN)
"""Every field the contract types, in the order S3 writes them when all are selected."""

INVENTORY_OPTIONAL_FIELDS: tuple[str, ...] = (
    *(f for f in KNOWN_FIELDS if f not in ("Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker")),
    # Offered by the S3 API but not typed above yet: kept as string columns (see column_for).
    "ObjectLockEventHoldStatus",
    "ObjectLockEventHoldDuration",
    "IntelligentTieringReferenceDate",
)
"""Every optional field an inventory configuration can select: the stack selects them all."""

TABLE_FIELDS: tuple[str, ...] = (
    "Bucket",
    "Key",
    "VersionId",
    "IsLatest",
    "IsDeleteMarker",
    *INVENTORY_OPTIONAL_FIELDS,
)
"""The columns of the analytics table, in its order: every field an inventory of all versions can
have. Every part has all of them (null where the delivery lacks the field), so runs with different
``fileSchema`` read as one table without schema merging (``table_columns``)."""

GLUE_TYPES: dict[ColumnType, str] = {
    ColumnType.STRING: "string",
    ColumnType.INT64: "bigint",
    ColumnType.BOOLEAN: "boolean",
    ColumnType.TIMESTAMP_MS_UTC: "timestamp",
    ColumnType.BYTE_TOTAL: "decimal(38,0)",
}
"""Hive/Glue type of each column type, as Athena and Spark read the Parquet the processor writes."""

KEY_FIELD = "Key"
SIZE_FIELD = "Size"
MAX_OBJECT_SIZE = 5 * 1024**4
"""S3's largest object, 5 TiB: a larger Size is a value S3 never writes."""
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"
"""How inventory CSV writes dates (ISO 8601, UTC, optional fraction), in chrono/strftime form."""
TRUE, FALSE = "true", "false"

_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(field: str) -> str:
    """``LastModifiedDate`` -> ``last_modified_date``, ``ETag`` -> ``e_tag``, ``SSEKMSKeyId`` -> ``ssekms_key_id``."""
    return _WORD_BOUNDARY.sub("_", field).lower()


def column_for(field: str) -> Column:
    name, kind = _KNOWN.get(field, (snake_case(field), ColumnType.STRING))
    return Column(field=field, name=name, type=kind)


def columns_for(file_schema: Sequence[str]) -> tuple[Column, ...]:
    """The output columns of a delivery, in the manifest's field order."""
    return tuple(column_for(field) for field in file_schema)


def table_columns(file_schema: Sequence[str]) -> tuple[Column, ...]:
    """The columns of every part: the table's, in its order, then any field of this delivery the
    contract does not know yet (kept as a string, in the manifest's order)."""
    known = set(TABLE_FIELDS)
    return columns_for([*TABLE_FIELDS, *(f for f in file_schema if f not in known)])


def encode_key(key: str) -> str:
    """Encode a key as S3 Inventory does: form style, ``+`` for space, ``%2B`` for ``+``, ``/`` kept."""
    return quote_plus(key, safe="/")


def decode_key(raw: str) -> str:
    """A key as S3 Inventory encodes it, decoded: ``+`` -> space, then ``%XX`` -> UTF-8 bytes.

    A literal ``+`` arrives as ``%2B``; ``/`` may or may not be encoded. Invalid UTF-8 raises.
    The processor applies the same rule vectorised (batch_jobs/convert.py); this is the reference.
    """
    return unquote(raw.replace("+", " "), errors="strict")


IDENTITY = ("key", "version_id")
"""What identifies an object across runs (a null version id, unversioned, equal to a null one)."""
KEEP_ORDER = ("last_modified_date", "size", "e_tag", "storage_class")
"""Of an identity one run lists more than once, the row that counts: the first in this order,
descending, nulls last (the ``changes`` command and the Athena day-over-day queries alike)."""
