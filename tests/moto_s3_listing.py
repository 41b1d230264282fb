"""Make moto's ListObjectVersions start after a ``KeyMarker`` as S3 does.

S3: "If a keyMarker is used without a version ID marker, results begin immediately after that
key's last version" (the AWS SDK's ListVersionsRequest; S3's API reference: the key to start
with). moto 5 instead skips the first version at or after the marker and returns the marker key's
other versions: a listing that starts a key range at a boundary would lose a version against moto
and not against S3 (``test_moto_drops_the_first_version_after_a_key_marker`` shows it). While
``s3_key_marker_as_aws()`` is active, a request with a key marker and no version marker is
answered from the full listing, cut after the marker's last version; every other request is
moto's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.core.utils import unix_time_millis
from moto.s3.models import S3Backend


@contextmanager
def s3_key_marker_as_aws() -> Iterator[None]:
    original = S3Backend.list_object_versions

    def list_object_versions(
        self: S3Backend,
        bucket_name: str,
        delimiter: str | None = None,
        key_marker: str | None = None,
        max_keys: int | None = 1000,
        prefix: str = "",
        version_id_marker: str | None = None,
    ) -> Any:
        if not key_marker or version_id_marker or delimiter:
            return original(self, bucket_name, delimiter, key_marker, max_keys, prefix, version_id_marker)
        versions, _, markers, _, _ = original(self, bucket_name, None, None, None, prefix, None)
        entries = sorted([*versions, *markers], key=lambda v: (v.name, -unix_time_millis(v.last_modified)))
        after = [v for v in entries if v.name > key_marker]
        page = after if max_keys is None else after[:max_keys]
        truncated = len(page) < len(after)
        next_key = page[-1].name if truncated else None
        next_version = page[-1].version_id if truncated else None
        is_version = {id(v) for v in versions}
        kept_versions = [v for v in page if id(v) in is_version]
        kept_markers = [v for v in page if id(v) not in is_version]
        return kept_versions, [], kept_markers, next_key, next_version

    S3Backend.list_object_versions = list_object_versions  # type: ignore[method-assign]
    try:
        yield
    finally:
        S3Backend.list_object_versions = original  # type: ignore[method-assign]
