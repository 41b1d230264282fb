"""A bucket the stack owns: default encryption, all four public-access blocks, ACLs disabled, TLS only.

What ``pulumi destroy`` does with it is the caller's choice: a bucket of data (the inventory and its
Parquet, a source bucket the stack created) is kept (``keep_on_destroy``: retained, so Pulumi
forgets it and leaves it in the account with its objects and this baseline, never a bucket left
without its public-access block); a bucket of derived files (Athena's results) is deleted with its
objects. Either way ``pulumi destroy`` succeeds on a bucket that holds objects.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.policies import deny_insecure_transport, document


def secure_bucket(
    name: str,
    *,
    parent: pulumi.Resource,
    keep_on_destroy: bool,
    extra_statements: list[dict[str, Any]] | None = None,
    policy: bool = True,
) -> aws.s3.Bucket:
    """Create the bucket and its baseline. ``policy=False`` when the caller writes the policy itself
    (one BucketPolicy per bucket) and includes ``deny_insecure_transport`` in it."""
    child = bucket_options(parent, keep_on_destroy)
    bucket = aws.s3.Bucket(name, force_destroy=not keep_on_destroy, opts=child)
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


def bucket_options(parent: pulumi.Resource, keep_on_destroy: bool) -> pulumi.ResourceOptions:
    """Options for a bucket and for the configuration that must stay with it when it is kept."""
    return pulumi.ResourceOptions(parent=parent, retain_on_delete=keep_on_destroy)
