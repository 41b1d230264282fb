"""A bucket the stack owns: default encryption, all four public-access blocks, ACLs disabled, TLS only."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.policies import deny_insecure_transport, document


def secure_bucket(
    name: str,
    *,
    parent: pulumi.Resource,
    force_destroy: bool,
    extra_statements: list[dict[str, Any]] | None = None,
    policy: bool = True,
) -> aws.s3.Bucket:
    """Create the bucket and its baseline. ``policy=False`` when the caller writes the policy itself
    (one BucketPolicy per bucket) and includes ``deny_insecure_transport`` in it."""
    child = pulumi.ResourceOptions(parent=parent)
    bucket = aws.s3.Bucket(name, force_destroy=force_destroy, opts=child)
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
        opts=child,
    )
    aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    aws.s3.BucketOwnershipControls(
        f"{name}-ownership", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child
    )
    if policy:
        statements = [*(extra_statements or []), deny_insecure_transport(bucket.arn)]
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=pulumi.Output.json_dumps(document(*statements)),
            opts=child,
        )
    return bucket
