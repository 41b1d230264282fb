"""Bucket policy statements that hold Pulumi outputs; components serialise them with
``Output.json_dumps``. The role policies are plain functions in ``components/role_policies.py``."""

from __future__ import annotations

from typing import Any

import pulumi

from components.role_policies import document

__all__ = ["deny_insecure_transport", "document", "objects"]


def deny_insecure_transport(bucket_arn: pulumi.Input[str]) -> dict[str, Any]:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def objects(bucket_arn: pulumi.Input[str], prefix: str) -> pulumi.Output[str]:
    """``arn:aws:s3:::BUCKET/PREFIX*``: the objects under one prefix."""
    return pulumi.Output.concat(bucket_arn, "/", prefix, "*")
