"""A second synthetic day derived from a first, with known changes, for tests and the benchmark.

``next_day`` reads a delivery written by ``pipeline.synthetic.generate_delivery`` and writes the
next day's delivery of the same bucket: the same rows byte for byte, except the ones it changes on
purpose. ``ChangeTruth`` records those changes as the ``changes`` command must report them, under
the rules stated in ``batch_jobs/changes.py``: only current versions that are not delete markers are
compared, an object is identified by (key, version id), and a change of size or ETag is
``modified`` even when the storage class moved too.

On purpose, in place (same key and version id): ``modified`` (new ETag, half of them a new size
too), ``moved`` (new storage class), ``modified_and_moved`` (both, reported as ``modified``).
``deleted`` rows are left out of day 2; ``delete_marked`` rows (versioned inventories only) stay as
noncurrent versions behind a new delete marker, which the rules report as deleted; ``added`` rows
are new keys, some needing URL-decoding. ``copies`` are new keys holding the same bytes as an
untouched single-part object (same size and ETag): duplicate candidates, recorded in
``NextDay.duplicates``; ``multipart_copies`` copy multipart objects, whose ETags (with ``-``) are
not MD5s of the content, so they are not candidates. Both kinds of copy are ``added``.
``noncurrent_moved`` (versioned only) moves noncurrent versions to another class, which the rules
do not report.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from isal import igzip

from inventory_contract.delivery import Delivery
from inventory_contract.schema import encode_key
from pipeline.synthetic import GeneratedDelivery, Truth

CHANGE_KINDS = ("added", "deleted", "modified", "storage_class_changed")
MOVE_TO = ("STANDARD_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
ADDED_KEYS = ("added/new object {n}.bin", "added/café+{n}%.txt", "added/plain-{n:06d}.json")


@dataclass(frozen=True)
class Change:
    """One object-level change, as the ``changes`` command writes it (decoded key)."""

    change: str
    key: str
    version_id: str | None
    size_before: int | None
    size_after: int | None
    e_tag_before: str | None
    e_tag_after: str | None
    storage_class_before: str | None
    storage_class_after: str | None


@dataclass
class ChangeTruth:
    """Per kind of change: objects, and the bytes before and after; the rows when keys are known."""

    objects: Counter[str] = field(default_factory=Counter)
    bytes_before: Counter[str] = field(default_factory=Counter)
    bytes_after: Counter[str] = field(default_factory=Counter)
    rows: list[Change] | None = None  # only when day 1 kept its decoded keys (keep_keys=True)

    def record(self, change: Change) -> None:
        self.objects[change.change] += 1
        self.bytes_before[change.change] += change.size_before or 0
        self.bytes_after[change.change] += change.size_after or 0
        if self.rows is not None:
            self.rows.append(change)


@dataclass(frozen=True)
class NextDay:
    delivery: GeneratedDelivery
    truth: ChangeTruth
    duplicates: dict[tuple[int, str], int]  # (size, single-part ETag) -> objects, planted in day 2


@dataclass(frozen=True)
class Plan:
    """How many of each change to make (each row gets at most one)."""

    added: int = 0
    deleted: int = 0
    modified: int = 0
    moved: int = 0
    modified_and_moved: int = 0
    delete_marked: int = 0
    noncurrent_moved: int = 0
    copies: int = 0
    multipart_copies: int = 0


class _Row:
    """One CSV line of a delivery, its fields unquoted, addressed by field name."""

    def __init__(self, line: str, positions: dict[str, int]) -> None:
        self.values = line[1:-2].split('","')  # every field quoted, none holds a quote (S3 encodes)
        self._at = positions

    def get(self, name: str) -> str:
        return self.values[self._at[name]] if name in self._at else ""

    def set(self, name: str, value: str) -> None:
        if name in self._at:
            self.values[self._at[name]] = value

    @property
    def current(self) -> bool:
        return self.get("IsLatest") != "false" and self.get("IsDeleteMarker") != "true"

    @property
    def noncurrent_version(self) -> bool:
        return self.get("IsLatest") == "false" and self.get("IsDeleteMarker") != "true"

    def line(self) -> str:
        return '"' + '","'.join(self.values) + '"\n'


def next_day(day1: GeneratedDelivery, root: Path, plan: Plan, *, seed: int = 11) -> NextDay:
    """Write under ``root`` the delivery of the day after ``day1`` with ``plan``'s changes."""
    manifest = json.loads(day1.manifest_path.read_bytes())
    fields = [f.strip() for f in manifest["fileSchema"].split(",")]
    positions = {name: i for i, name in enumerate(fields)}
    survey = _survey(day1, positions)
    if not survey.versioned and (plan.delete_marked or plan.noncurrent_moved):
        msg = "delete_marked and noncurrent_moved need a versioned inventory (versions=True)"
        raise ValueError(msg)
    wanted = plan.deleted + plan.modified + plan.moved + plan.modified_and_moved + plan.delete_marked
    if wanted > len(survey.current) or plan.noncurrent_moved > len(survey.noncurrent):
        msg = (
            f"{day1.manifest_path} has {len(survey.current)} current and {len(survey.noncurrent)} "
            f"noncurrent rows: too few for {plan}"
        )
        raise ValueError(msg)
    rng = random.Random(seed)
    picked = iter(rng.sample(survey.current, wanted))
    action: dict[int, str] = {}
    for name in ("deleted", "modified", "moved", "modified_and_moved", "delete_marked"):
        action.update((next(picked), name) for _ in range(getattr(plan, name)))
    action.update(dict.fromkeys(rng.sample(survey.noncurrent, plan.noncurrent_moved), "noncurrent_moved"))
    untouched = [n for n in survey.current if n not in action]
    single = [n for n in untouched if n not in survey.multipart]
    multipart = [n for n in untouched if n in survey.multipart]
    if plan.copies > len(single) or plan.multipart_copies > len(multipart):
        msg = f"{day1.manifest_path} has {len(single)} single-part and {len(multipart)} multipart objects to copy"
        raise ValueError(msg)
    copied = {*rng.sample(single, plan.copies), *rng.sample(multipart, plan.multipart_copies)}
    originals: list[str] = []

    when = day1.delivery.timestamp + timedelta(days=1)
    delivery = Delivery(
        prefix=day1.delivery.prefix,
        source_bucket=day1.delivery.source_bucket,
        config_id=day1.delivery.config_id,
        timestamp=when,
    )
    truth = ChangeTruth(rows=[] if day1.truth.keys is not None else None)
    changer = _Changer(rng, truth, positions, when, survey.versioned)
    entries, data_keys = [], []
    rows = enumerate(_lines(day1))
    for i, count in enumerate(survey.rows_per_file):
        key = day1.data_keys[i].rsplit("/", 1)[0] + f"/next-{when:%Y%m%d}-{i:04d}.csv.gz"
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with igzip.open(path, "wb", compresslevel=1) as out:
            for _ in range(count):
                n, line = next(rows)
                decoded = day1.truth.keys[n] if day1.truth.keys is not None else ""
                out.write("".join(changer.apply(action.get(n), line, decoded)).encode())
                if n in copied:
                    originals.append(line)
            if i == len(day1.data_keys) - 1:
                out.write("".join(changer.add(plan.added, fields, delivery.source_bucket)).encode())
                out.write("".join(changer.copy(line) for line in originals).encode())
        data = path.read_bytes()
        entries.append({"key": key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()})
        data_keys.append(key)
    _write_manifest(root, delivery, manifest, entries, day1.destination_bucket)
    generated = GeneratedDelivery(root, delivery, day1.destination_bucket, tuple(data_keys), Truth())
    duplicates = {
        (int(r.get("Size")), r.get("ETag")): 2 for r in (_Row(line, positions) for line in originals)
    }
    return NextDay(generated, truth, {k: v for k, v in duplicates.items() if "-" not in k[1]})


def _lines(day1: GeneratedDelivery) -> Iterator[str]:
    for key in day1.data_keys:
        with igzip.open(day1.root / key, "rt", encoding="utf-8", newline="\n") as data:
            yield from data


@dataclass(frozen=True)
class _Survey:
    current: list[int]  # row numbers of current versions with a size of at least 1
    multipart: set[int]  # those of them with a multipart ETag
    noncurrent: list[int]  # row numbers of noncurrent versions
    rows_per_file: list[int]
    versioned: bool


def _survey(day1: GeneratedDelivery, positions: dict[str, int]) -> _Survey:
    current, noncurrent, per_file, versioned, n = [], [], [], False, 0
    multipart = set()
    for key in day1.data_keys:
        start = n
        with igzip.open(day1.root / key, "rt", encoding="utf-8", newline="\n") as data:
            for line in data:
                row = _Row(line, positions)
                versioned = versioned or bool(row.get("VersionId"))
                if row.current and row.get("Size") not in ("", "0"):
                    current.append(n)
                    if "-" in row.get("ETag"):
                        multipart.add(n)
                elif row.noncurrent_version:
                    noncurrent.append(n)
                n += 1
        per_file.append(n - start)
    return _Survey(current, multipart, noncurrent, per_file, versioned)


class _Changer:
    def __init__(
        self,
        rng: random.Random,
        truth: ChangeTruth,
        positions: dict[str, int],
        when: datetime,
        versioned: bool,
    ) -> None:
        self._rng, self._truth, self._at, self._versioned = rng, truth, positions, versioned
        self._stamp = (when - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        self._added = 0

    def apply(self, action: str | None, line: str, key: str) -> list[str]:
        """Day 2's lines for day 1's ``line`` (its decoded ``key``) under ``action``."""
        if action is None:
            return [line]
        row = _Row(line, self._at)
        before = _state(row)
        if action == "noncurrent_moved":
            self._move(row)
            return [row.line()]
        if action in ("deleted", "delete_marked"):
            self._record("deleted", key, row, before, (None, None, None))
            if action == "deleted":
                return []
            row.set("IsLatest", "false")
            return [row.line(), self._delete_marker(row).line()]
        if action in ("modified", "modified_and_moved"):
            self._modify(row)
        if action in ("moved", "modified_and_moved"):
            self._move(row)
        kind = "storage_class_changed" if action == "moved" else "modified"  # modified wins
        self._record(kind, key, row, before, _state(row))
        return [row.line()]

    def add(self, count: int, fields: list[str], bucket: str) -> list[str]:
        """``count`` new current objects under new keys, some of which need decoding."""
        lines = []
        positions = {name: i for i, name in enumerate(fields)}
        for _ in range(count):
            self._added += 1
            key = self._rng.choice(ADDED_KEYS).format(n=self._added)
            row = _Row('"' + '","'.join([""] * len(fields)) + '"\n', positions)
            for name, value in (
                ("Bucket", bucket),
                ("Key", encode_key(key)),
                ("IsLatest", "true"),
                ("IsDeleteMarker", "false"),
                ("StorageClass", "STANDARD"),
                ("VersionId", f"{self._rng.getrandbits(128):032x}" if self._versioned else ""),
            ):
                row.set(name, value)
            self._modify(row)
            self._record("added", key, row, (None, None, None), _state(row))
            lines.append(row.line())
        return lines

    def copy(self, line: str) -> str:
        """A new current object under a new key with the bytes (size and ETag) of ``line``'s."""
        self._added += 1
        row = _Row(line, self._at)
        key = f"copies/{self._added} copy of an object.bin"
        row.set("Key", encode_key(key))
        row.set("VersionId", f"{self._rng.getrandbits(128):032x}" if self._versioned else "")
        row.set("LastModifiedDate", self._stamp)
        self._record("added", key, row, (None, None, None), _state(row))
        return row.line()

    def _modify(self, row: _Row) -> None:
        """A new ETag, and for half of the rows (and every new one) a new size."""
        size = _int(row.get("Size")) or 0
        if not size or self._rng.random() < 0.5:
            size += 1 + int(self._rng.lognormvariate(8, 2))
        row.set("Size", str(size))
        row.set("ETag", f"{self._rng.getrandbits(128):032x}")
        row.set("IsMultipartUploaded", "false")
        row.set("LastModifiedDate", self._stamp)

    def _move(self, row: _Row) -> None:
        row.set("StorageClass", self._rng.choice([c for c in MOVE_TO if c != row.get("StorageClass")]))
        row.set("IntelligentTieringAccessTier", "")

    def _delete_marker(self, row: _Row) -> _Row:
        marker = _Row(row.line(), self._at)
        for name, value in (("VersionId", f"{self._rng.getrandbits(128):032x}"), ("IsLatest", "true"),
                            ("IsDeleteMarker", "true"), ("LastModifiedDate", self._stamp)):  # fmt: skip
            marker.set(name, value)
        for name in ("Size", "ETag", "StorageClass", "IsMultipartUploaded", "IntelligentTieringAccessTier"):
            marker.set(name, "")
        return marker

    def _record(self, kind: str, key: str, row: _Row, before: _State, after: _State) -> None:
        version = row.get("VersionId") or None
        self._truth.record(
            Change(kind, key, version, before[0], after[0], before[1], after[1], before[2], after[2])
        )


_State = tuple[int | None, str | None, str | None]


def _state(row: _Row) -> _State:
    """Size, ETag and storage class of a row."""
    return _int(row.get("Size")), row.get("ETag") or None, row.get("StorageClass") or None


def _int(text: str) -> int | None:
    return int(text) if text else None


def _write_manifest(
    root: Path,
    delivery: Delivery,
    day1_manifest: dict[str, object],
    entries: list[dict[str, object]],
    bucket: str,
) -> None:
    """Day 1's manifest with day 2's files and time, its checksum and the Hive symlink file."""
    manifest = {
        **day1_manifest,
        "creationTimestamp": str(int(delivery.timestamp.timestamp() * 1000)),
        "files": entries,
    }
    raw = json.dumps(manifest, indent=2).encode()
    (root / delivery.manifest_key).parent.mkdir(parents=True, exist_ok=True)
    (root / delivery.manifest_key).write_bytes(raw)
    (root / delivery.checksum_key).write_text(hashlib.md5(raw).hexdigest())
    base = delivery.manifest_key.rsplit("/", 2)[0]
    hive = root / base / "hive" / f"dt={delivery.timestamp:%Y-%m-%d-%H-%M}" / "symlink.txt"
    hive.parent.mkdir(parents=True, exist_ok=True)
    hive.write_text("".join(f"s3://{bucket}/{entry['key']}\n" for entry in entries))
