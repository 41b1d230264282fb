"""Synthetic inventories in S3's exact delivery format, for the demo, the tests and the benchmark.

Writes, under a folder laid out like the destination bucket::

    inventory/SOURCE/CONFIG/data/<uuid>.csv.gz           gzip CSV, no header, every field quoted
    inventory/SOURCE/CONFIG/YYYY-MM-DDTHH-MMZ/manifest.json
    inventory/SOURCE/CONFIG/YYYY-MM-DDTHH-MMZ/manifest.checksum
    inventory/SOURCE/CONFIG/hive/dt=YYYY-MM-DD-HH-MM/symlink.txt

Rows carry every optional field, versions and delete markers, and keys that need decoding
(spaces, ``+``, ``%``, non-ASCII, emoji, quotes, commas, tabs, newlines), encoded the way S3
Inventory encodes them. ``Truth`` records what was generated, from the unencoded values, so a
test can check the pipeline's output against it without reusing the pipeline's decoder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from isal import igzip

from inventory_contract.delivery import Delivery
from inventory_contract.schema import KNOWN_FIELDS, encode_key

STORAGE_CLASSES = (
    "STANDARD",
    "STANDARD",
    "STANDARD",
    "STANDARD_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "DEEP_ARCHIVE",
)
TIERS = ("FREQUENT", "INFREQUENT", "ARCHIVE_INSTANT_ACCESS")
TRICKY_KEYS = (
    "photos/summer 2024/beach day.jpg",
    "math/a+b=c.txt",
    "reports/100%/q3 50% done.csv",
    "unicode/café/naïve résumé.pdf",
    "emoji/😀/party 🎉.png",
    'quotes/"quoted" name.txt',
    "commas/a,b,c.csv",
    "tabs/col\there.tsv",
    "newlines/line1\nline2.txt",
    "percent-literal/%41 is not A.txt",
    "plus/+leading and trailing+",
    "japanese/日本語/ファイル.txt",
    "lake/year=2024/month=11/part (1).parquet",
    "escapes/%2541 stays %41 and %252B stays %2B",
)
PLAIN_PREFIXES = ("logs/app/2024/11/", "data/warehouse/events/", "images/thumbs/", "backups/db/")


@dataclass
class Truth:
    """What was generated, computed from the unencoded values."""

    rows: int = 0
    delete_markers: int = 0
    total_size: int = 0  # sum of Size over rows that have one
    size_by_class: Counter[str] = field(default_factory=Counter)
    keys: list[str] | None = None  # every decoded key in row order, when asked for


@dataclass(frozen=True)
class GeneratedDelivery:
    root: Path
    delivery: Delivery
    destination_bucket: str
    data_keys: tuple[str, ...]
    truth: Truth

    @property
    def manifest_path(self) -> Path:
        return self.root / self.delivery.manifest_key


def generate_delivery(
    root: Path,
    *,
    objects: int,
    source_bucket: str = "demo-source-bucket",
    destination_bucket: str = "demo-inventory-destination",
    config_id: str = "daily-all-fields",
    files: int = 4,
    timestamp: datetime = datetime(2026, 11, 24, 1, 0, tzinfo=UTC),
    versions: bool = True,
    tricky_share: float = 0.05,
    seed: int = 7,
    keep_keys: bool = False,
    fields: Sequence[str] = KNOWN_FIELDS,
    prefix: str = "inventory",
    on_rows: Callable[[int], None] | None = None,
) -> GeneratedDelivery:
    """Write a delivery of about ``objects`` rows in ``files`` data files under ``root``.

    ``fields`` is the delivery's ``fileSchema`` (a subset of the known fields, in S3's order: an
    inventory of current versions only has no version columns); ``prefix`` is the inventory
    configuration's destination prefix, of any depth, or "" for none. ``on_rows`` is told the rows
    written so far after every block of rows written.
    """
    unknown = [f for f in fields if f not in KNOWN_FIELDS]
    if unknown or not {"Bucket", "Key"} <= set(fields):
        msg = f"fields must include Bucket and Key and be known fields, got {list(fields)}"
        raise ValueError(msg)
    rng = random.Random(seed)
    delivery = Delivery(prefix=prefix, source_bucket=source_bucket, config_id=config_id, timestamp=timestamp)
    base = "/".join(part for part in (prefix, source_bucket, config_id) if part)
    truth = Truth(keys=[] if keep_keys else None)
    rows = _Rows(rng, source_bucket, timestamp, versions, tricky_share, fields)
    entries, data_keys = [], []
    per_file = [objects // files + (1 if i < objects % files else 0) for i in range(files)]
    for count in per_file:
        key = f"{base}/data/{uuid.UUID(int=rng.getrandbits(128), version=4)}.csv.gz"
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with igzip.open(path, "wb", compresslevel=1) as out:
            lines = []
            for _ in range(count):
                lines.append(rows.next(truth))
                if len(lines) == 10_000:
                    out.write("".join(lines).encode())
                    lines.clear()
                    if on_rows:
                        on_rows(truth.rows)
            out.write("".join(lines).encode())
            if on_rows:
                on_rows(truth.rows)
        data = path.read_bytes()
        entries.append({"key": key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()})
        data_keys.append(key)
    manifest = {
        "sourceBucket": source_bucket,
        "destinationBucket": f"arn:aws:s3:::{destination_bucket}",
        "version": "2016-11-30",
        "creationTimestamp": str(int(timestamp.timestamp() * 1000)),
        "fileFormat": "CSV",
        "fileSchema": ", ".join(fields),
        "files": entries,
    }
    raw = json.dumps(manifest, indent=2).encode()
    manifest_path = root / delivery.manifest_key
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_bytes(raw)
    (root / delivery.checksum_key).write_text(hashlib.md5(raw).hexdigest())
    hive = root / base / "hive" / f"dt={timestamp:%Y-%m-%d-%H-%M}" / "symlink.txt"
    hive.parent.mkdir(parents=True, exist_ok=True)
    hive.write_text("".join(f"s3://{destination_bucket}/{k}\n" for k in data_keys))
    return GeneratedDelivery(root, delivery, destination_bucket, tuple(data_keys), truth)


class _Rows:
    def __init__(
        self,
        rng: random.Random,
        bucket: str,
        when: datetime,
        versions: bool,
        tricky: float,
        fields: Sequence[str] = KNOWN_FIELDS,
    ) -> None:
        self._rng, self._bucket, self._versions, self._tricky = rng, bucket, versions, tricky
        positions = [KNOWN_FIELDS.index(f) for f in fields]
        self._pick = None if tuple(fields) == KNOWN_FIELDS else positions
        self._start = when - timedelta(days=3 * 365)
        self._span = int((when - self._start).total_seconds())
        self._owner = hashlib.sha256(bucket.encode()).hexdigest()
        acl = [{"grantee": {"type": "CanonicalUser", "id": self._owner}, "permission": "FULL_CONTROL"}]
        self._acl = base64.b64encode(
            json.dumps({"version": "2022-11-10", "status": "AVAILABLE", "grants": acl}).encode()
        ).decode()
        self._n = 0

    def next(self, truth: Truth) -> str:
        rng = self._rng
        self._n += 1
        if rng.random() < self._tricky:
            key = f"{rng.choice(TRICKY_KEYS)}.{self._n}"
        else:
            key = f"{rng.choice(PLAIN_PREFIXES)}object-{self._n:09d}.json"
        encoded = encode_key(key)
        if rng.random() < 0.01:  # S3 may or may not encode "/": decoding must handle both
            encoded = encoded.replace("/", "%2F")
        marker = self._versions and rng.random() < 0.03
        latest = (not self._versions) or rng.random() < 0.8
        modified = self._start + timedelta(
            seconds=rng.randrange(self._span), milliseconds=rng.randrange(1000)
        )
        lmd = modified.strftime("%Y-%m-%dT%H:%M:%S.") + f"{modified.microsecond // 1000:03d}Z"
        truth.rows += 1
        if truth.keys is not None:
            truth.keys.append(key)
        if marker:
            truth.delete_markers += 1
            size = etag = storage = multipart = tier = ""
        else:
            storage = rng.choice(STORAGE_CLASSES)
            size_int = int(rng.lognormvariate(10, 2.5))
            truth.total_size += size_int
            truth.size_by_class[storage] += size_int
            size = str(size_int)
            is_mp = size_int > 16 * 1024 * 1024
            multipart = "true" if is_mp else "false"
            etag = f"{rng.getrandbits(128):032x}" + (f"-{size_int // (8 * 1024 * 1024) + 1}" if is_mp else "")
            tier = rng.choice(TIERS) if storage == "INTELLIGENT_TIERING" else ""
        locked = rng.random() < 0.02
        fields = (
            self._bucket,
            encoded,
            f"{rng.getrandbits(160):040x}"[:32] if self._versions else "",
            "true" if latest else "false",
            "true" if marker else "false",
            size,
            lmd,
            etag,
            storage,
            multipart,
            rng.choice(("", "", "COMPLETED", "REPLICA")),
            rng.choice(("SSE-S3", "SSE-S3", "SSE-KMS", "NOT-SSE")),
            "2030-01-01T00:00:00.000Z" if locked else "",
            "GOVERNANCE" if locked else "",
            "ON" if locked and rng.random() < 0.5 else "OFF",
            tier,
            rng.choice(("ENABLED", "DISABLED")),
            rng.choice(("", "CRC32", "CRC64NVME", "SHA256")),
            self._acl,
            self._owner,
            "2027-01-01T00:00:00.000Z" if rng.random() < 0.1 else "",
        )
        chosen = fields if self._pick is None else [fields[i] for i in self._pick]
        return ",".join(f'"{f}"' for f in chosen) + "\n"
