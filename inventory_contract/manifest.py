"""Parse and validate an S3 Inventory ``manifest.json``.

Every field that AWS documents is checked for presence and type; the first problem found is
reported with the manifest's location and the field's path, e.g. ``files[3].MD5checksum``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inventory_contract.errors import ManifestError, UnsupportedFormatError
from inventory_contract.schema import MAX_OBJECT_SIZE

SUPPORTED_FORMATS = ("CSV",)
KNOWN_FORMATS = ("CSV", "ORC", "Parquet")
_MD5_HEX = re.compile(r"^[0-9a-fA-F]{32}$")
_EPOCH_MS = re.compile(r"[0-9]{1,16}")  # ASCII digits only (str.isdigit also takes "²" and "١")

_BUCKET_ARN = re.compile(r"^arn:aws(?:-[a-z]+)*:s3:::(?P<name>[^/]+)$")  # aws, aws-cn, aws-us-gov, ...


@dataclass(frozen=True)
class DataFile:
    """One gzip CSV data file of a delivery, as the manifest lists it."""

    key: str
    size: int
    md5: str


@dataclass(frozen=True)
class Manifest:
    """A validated ``manifest.json``."""

    source_bucket: str
    destination_bucket_arn: str
    version: str
    creation_timestamp_ms: int
    file_format: str
    file_schema: tuple[str, ...]
    files: tuple[DataFile, ...]

    @property
    def destination_bucket(self) -> str:
        match = _BUCKET_ARN.match(self.destination_bucket_arn)
        assert match is not None  # checked when the manifest was parsed
        return match["name"]

    @property
    def total_size(self) -> int:
        """Compressed bytes of all data files."""
        return sum(f.size for f in self.files)

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.creation_timestamp_ms / 1000, tz=UTC)


def parse_manifest(
    raw: bytes | str, *, source: str = "manifest.json", checksum: bytes | str | None = None
) -> Manifest:
    """Validate ``raw`` (the bytes of manifest.json) and return it as a ``Manifest``.

    ``source`` names the manifest in error messages (an ``s3://`` URI or a path).
    ``checksum`` is the content of ``manifest.checksum`` when it is available.
    """
    raw_bytes = raw.encode() if isinstance(raw, str) else raw
    if checksum is not None:
        verify_checksum(raw_bytes, checksum, source=source)
    try:
        doc = json.loads(
            raw_bytes, object_pairs_hook=_unique_keys(source), parse_constant=_no_constant(source)
        )
    except ManifestError:
        raise
    except RecursionError as err:  # the parser recurses once per level; a manifest nests three
        msg = f"{source}: not valid JSON for a manifest (nested too deeply to parse)"
        raise ManifestError(msg) from err
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        problem = "a number of more than 4,300 digits" if "integer string conversion" in str(err) else err
        msg = f"{source}: not valid JSON ({problem})"
        raise ManifestError(msg) from err
    if not isinstance(doc, dict):
        msg = f"{source}: expected a JSON object, got {type(doc).__name__}"
        raise ManifestError(msg)
    return _from_document(doc, source)


def verify_checksum(raw: bytes, checksum: bytes | str, *, source: str = "manifest.json") -> None:
    """Check ``raw`` against the MD5 hex digest held in ``manifest.checksum``."""
    text = checksum.decode("ascii", "replace") if isinstance(checksum, bytes) else checksum
    expected = text.strip().lower()
    if not _MD5_HEX.match(expected):
        msg = f"{source}: manifest.checksum does not hold an MD5 hex digest: {text[:64]!r}"
        raise ManifestError(msg)
    actual = hashlib.md5(raw, usedforsecurity=False).hexdigest()
    if actual != expected:
        msg = f"{source}: MD5 is {actual} but manifest.checksum says {expected}"
        raise ManifestError(msg)


def _from_document(doc: dict[str, Any], source: str) -> Manifest:
    file_format = _field(doc, "fileFormat", str, source)
    if file_format not in SUPPORTED_FORMATS:
        known = "a known" if file_format in KNOWN_FORMATS else "an unknown"
        msg = (
            f"{source}: fileFormat {file_format!r} is {known} S3 Inventory format but not "
            f"supported; this pipeline converts {', '.join(SUPPORTED_FORMATS)} inventories "
            "(set the inventory configuration's output format to CSV)"
        )
        raise UnsupportedFormatError(msg)
    destination = _field(doc, "destinationBucket", str, source)
    if not _BUCKET_ARN.match(destination):
        msg = f"{source}: destinationBucket must be a bucket ARN like arn:aws:s3:::NAME, got {destination!r}"
        raise ManifestError(msg)
    created = _field(doc, "creationTimestamp", str, source)
    if not _EPOCH_MS.fullmatch(created) or not _representable(int(created)):
        msg = f"{source}: creationTimestamp must be epoch milliseconds as a string, got {created!r}"
        raise ManifestError(msg)
    return Manifest(
        source_bucket=_nonempty(doc, "sourceBucket", source),
        destination_bucket_arn=destination,
        version=_nonempty(doc, "version", source),
        creation_timestamp_ms=int(created),
        file_format=file_format,
        file_schema=_file_schema(_field(doc, "fileSchema", str, source), source),
        files=_files(doc, source),
    )


def _representable(epoch_ms: int) -> bool:
    try:
        datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return False
    return True


def _file_schema(text: str, source: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        msg = f"{source}: fileSchema has an empty field name: {text!r}"
        raise ManifestError(msg)
    duplicates = sorted(name for name, times in Counter(names).items() if times > 1)
    if duplicates:
        msg = f"{source}: fileSchema names {', '.join(duplicates)} more than once"
        raise ManifestError(msg)
    for required in ("Bucket", "Key"):
        if required not in names:
            msg = f"{source}: fileSchema lacks the required field {required!r}: {text!r}"
            raise ManifestError(msg)
    return names


def _files(doc: dict[str, Any], source: str) -> tuple[DataFile, ...]:
    entries = _field(doc, "files", list, source)
    if not entries:
        msg = f"{source}: files is empty; a delivery lists at least one data file"
        raise ManifestError(msg)
    files = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        where = f"files[{i}]"
        if not isinstance(entry, dict):
            msg = f"{source}: {where} must be an object, got {type(entry).__name__}"
            raise ManifestError(msg)
        key = _nonempty(entry, "key", source, where)
        if key in seen:
            msg = f"{source}: {where}.key {key!r} is listed already, as files[{seen[key]}]"
            raise ManifestError(msg)
        seen[key] = i
        size = _field(entry, "size", int, source, where)
        if size <= 0:
            msg = f"{source}: {where}.size must be positive (a gzip data file is never empty), got {size!r}"
            raise ManifestError(msg)
        if size > MAX_OBJECT_SIZE:
            msg = (
                f"{source}: {where}.size {size} is larger than an S3 object can be ({MAX_OBJECT_SIZE} bytes)"
            )
            raise ManifestError(msg)
        md5 = _field(entry, "MD5checksum", str, source, where)
        if not _MD5_HEX.match(md5):
            msg = f"{source}: {where}.MD5checksum must be 32 hex digits, got {md5!r}"
            raise ManifestError(msg)
        files.append(DataFile(key=key, size=size, md5=md5.lower()))
    return tuple(files)


def _field(doc: dict[str, Any], name: str, kind: type, source: str, where: str = "") -> Any:
    path = f"{where}.{name}" if where else name
    if name not in doc:
        msg = f"{source}: required field {path} is missing"
        raise ManifestError(msg)
    value = doc[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        msg = f"{source}: {path} must be {_TYPE_NAMES[kind]}, got {type(value).__name__} {value!r:.80}"
        raise ManifestError(msg)
    return value


def _nonempty(doc: dict[str, Any], name: str, source: str, where: str = "") -> str:
    value: str = _field(doc, name, str, source, where)
    if not value:
        path = f"{where}.{name}" if where else name
        msg = f"{source}: {path} is empty"
        raise ManifestError(msg)
    return value


_TYPE_NAMES: dict[type, str] = {str: "a string", int: "an integer", list: "a list"}


def _unique_keys(source: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in items]
        repeated = sorted(key for key, times in Counter(keys).items() if times > 1)  # linear, any size
        if repeated:  # json.loads would keep the last one silently: which one S3 meant is unknown
            msg = f"{source}: the key {repeated[0]!r} appears more than once in one JSON object"
            raise ManifestError(msg)
        return dict(items)

    return pairs


def _no_constant(source: str) -> Any:
    def refuse(name: str) -> None:
        msg = f"{source}: not valid JSON ({name} is not a JSON number)"
        raise ManifestError(msg)

    return refuse
