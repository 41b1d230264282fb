"""How S3 answers that an object does not exist, in one place (GetObject and HeadObject differ).

S3 answers a missing key with 404 only to a caller that may list the bucket. The stack's roles may
list only the prefixes they work under (``s3:ListBucket`` with an ``s3:prefix`` condition), which
AWS does not document as counting for that rule: the code assumes a missing key may answer them 403
(the tests' stand-in does) and works either way. Given the client, bucket and key, ``is_missing``
tells the two apart with a listing of exactly that key, which those roles are allowed.
"""

from __future__ import annotations

from typing import Any

_MISSING = {"NoSuchKey", "404", "NotFound"}  # GetObject: NoSuchKey; HeadObject: 404 / NotFound
_DENIED = {"AccessDenied", "403", "Forbidden"}  # GetObject: AccessDenied; HeadObject: 403


def is_missing(err: Any, *, s3: Any = None, bucket: str = "", key: str = "") -> bool:
    """True when ``err`` (a botocore ``ClientError`` of a read of ``key``) means the key does not exist.

    A 403 counts as missing only when ``s3`` is given and a listing of exactly ``key`` finds nothing;
    a 403 for a key that exists, or a listing that is denied too, is a real permission error.
    """
    code = (getattr(err, "response", {}) or {}).get("Error", {}).get("Code")
    if code in _MISSING:
        return True
    if code not in _DENIED or s3 is None:
        return False
    try:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
    except Exception as denied:  # a botocore ClientError; the contract imports the standard library only
        if getattr(denied, "response", None) is None:
            raise
        return False
    return not any(item["Key"] == key for item in listed)
