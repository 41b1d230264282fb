"""IAM policy documents as plain dicts; components serialise them with ``Output.json_dumps``."""

from __future__ import annotations

from typing import Any

import pulumi


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(sid: str, actions: list[str], resources: list[Any], **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def assume_role(service: str) -> str:
    return pulumi.Output.json_dumps(
        document({"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"})
    )  # type: ignore[return-value]


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
