"""Where the stand-in differs from AWS, and the tests make it behave as AWS (tests/moto_s3_listing.py)."""

from __future__ import annotations

from tests.aws_fixtures import DEST
from tests.moto_s3_listing import s3_key_marker_as_aws


def _keys_after(s3, marker: str) -> list[str]:
    page = s3.list_object_versions(Bucket=DEST, KeyMarker=marker)
    return [v["Key"] for v in page.get("Versions", [])]


def test_moto_drops_the_first_version_after_a_key_marker(aws):
    for key in ("a/1", "a/2", "b/1"):  # no key is the marker itself, as with a common prefix
        aws.s3.put_object(Bucket=DEST, Key=key, Body=b"x")
    # S3 starts right after the marker's last version: a/1, a/2, b/1. moto loses a/1.
    assert _keys_after(aws.s3, "a/") == ["a/2", "b/1"]
    with s3_key_marker_as_aws():
        assert _keys_after(aws.s3, "a/") == ["a/1", "a/2", "b/1"]
        page = aws.s3.list_object_versions(Bucket=DEST, KeyMarker="a/", MaxKeys=2)
        assert [v["Key"] for v in page["Versions"]] == ["a/1", "a/2"]
        assert page["IsTruncated"] and page["NextKeyMarker"] == "a/2"
