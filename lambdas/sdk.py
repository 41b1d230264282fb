"""The SDK the trigger needs: S3 conditional writes on PutObject, checked once at cold start.

The claim protocol (``lambdas/runs.py``) writes with ``IfNoneMatch`` and ``IfMatch``. botocore
knows ``IfNoneMatch`` from 1.35.2 and ``IfMatch`` from 1.35.69; an older SDK would reject the
parameter only when a run is claimed. The bundle ships a pinned SDK (``requirements/lambda.lock``,
ADR 0006); this check makes a bundle without it fail on the first event, saying so.
"""

from __future__ import annotations

from typing import Any

import botocore

REQUIRED_BOTOCORE = "1.35.69"
CONDITIONAL_WRITES = ("IfMatch", "IfNoneMatch")


class SdkError(RuntimeError):
    """The SDK this function runs with cannot make the conditional writes the claim needs."""


def missing_conditional_writes(s3: Any) -> list[str]:
    """The conditional-write parameters that this S3 client's PutObject does not know."""
    members = s3.meta.service_model.operation_model("PutObject").input_shape.members
    return [name for name in CONDITIONAL_WRITES if name not in members]


def require_conditional_writes(s3: Any) -> None:
    if missing := missing_conditional_writes(s3):
        msg = (
            f"S3 PutObject lacks {', '.join(missing)} in botocore {botocore.__version__}; "
            f"conditional writes need botocore >= {REQUIRED_BOTOCORE}: the Lambda bundle must ship "
            "the SDK pinned in requirements/lambda.lock (components/lambda_bundle.py)"
        )
        raise SdkError(msg)
