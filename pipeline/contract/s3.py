"""How S3 answers that an object does not exist, in one place (GetObject and HeadObject differ)."""

from __future__ import annotations

from typing import Any

_MISSING = {"NoSuchKey", "404", "NotFound"}  # GetObject: NoSuchKey; HeadObject: 404 / NotFound


def is_missing(err: Any) -> bool:
    """True when ``err`` (a botocore ``ClientError``) says the key does not exist."""
    response = getattr(err, "response", {}) or {}
    return response.get("Error", {}).get("Code") in _MISSING
