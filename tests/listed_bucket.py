"""A source bucket the tests fill, and what they wrote into it: the oracle of a listing.

What the bucket should list is recorded from the writes themselves (the version IDs S3 answered, in
the order of the writes), never from a listing.
"""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count()

TRICKY = (
    "photos/summer 2024/beach day.jpg",
    "math/a+b=c.txt",
    "reports/100%/q3 50% done.csv",
    "unicode/café/naïve résumé.pdf",
    "emoji/😀/party 🎉.png",
    "tabs/col\there.tsv",
    "trailing/space ",
    "plus/+leading and trailing+",
    "escapes/%2541 stays %41",
    "/".join(f"level{i}" for i in range(12)) + "/deep.txt",
    'quotes/"quoted", name.txt',
)


@dataclass
class Written:
    """What the test wrote, version by version, in the order S3 stacks them."""

    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, version_id: str | None, size: int | None, storage_class: str | None) -> None:
        with self.lock:
            self.versions.setdefault(key, []).append(
                {"version_id": version_id, "size": size, "storage_class": storage_class}
            )

    def rows(self) -> set[tuple[Any, ...]]:
        """(key, version_id, is_latest, is_delete_marker, size, storage_class) of every version."""
        found = set()
        for key, stack in self.versions.items():
            for position, v in enumerate(stack):
                latest = position == len(stack) - 1
                marker = v["size"] is None
                found.add((key, v["version_id"], latest, marker, v["size"], v["storage_class"]))
        return found

    def current(self) -> set[tuple[Any, ...]]:
        return {
            (key, stack[-1]["size"], stack[-1]["storage_class"])
            for key, stack in self.versions.items()
            if stack[-1]["size"] is not None
        }


def new_bucket(s3: Any, *, versioned: bool) -> str:
    name = f"snap-{os.getpid()}-{next(_ids)}"
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def put(
    s3: Any, bucket: str, written: Written, key: str, body: bytes, storage_class: str = "STANDARD"
) -> None:
    response = s3.put_object(Bucket=bucket, Key=key, Body=body, StorageClass=storage_class)
    written.add(key, response.get("VersionId"), len(body), storage_class)


def fill_versioned(s3: Any, bucket: str) -> Written:
    """Tricky keys, classes, versions, delete markers, 1,100 keys under one prefix, 30 prefixes."""
    written = Written()
    classes = ("STANDARD", "STANDARD_IA", "GLACIER_IR", "INTELLIGENT_TIERING")
    for n, key in enumerate(TRICKY):
        put(s3, bucket, written, key, b"x" * (n + 1), classes[n % len(classes)])
    first = [(f"big/object-{n:05d}", b"y" * (n % 7)) for n in range(1_100)]
    first += [(f"fan{n:02d}/a/b/c-{n}", b"z" * n) for n in range(30)]
    with ThreadPoolExecutor(8) as pool:  # distinct keys: their order does not matter
        list(pool.map(lambda item: put(s3, bucket, written, *item), first))
    for key in ("math/a+b=c.txt", "big/object-00000", "fan03/a/b/c-3"):  # new versions
        put(s3, bucket, written, key, b"second version", "STANDARD_IA")
    for key in ("trailing/space ", "big/object-00500", "fan07/a/b/c-7"):  # delete markers
        response = s3.delete_object(Bucket=bucket, Key=key)
        written.add(key, response["VersionId"], None, None)
    return written
