"""Buckets and inventory: the destination bucket, the source buckets and their daily inventories."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.buckets import bucket_options, secure_bucket
from components.config import StackSettings
from components.policies import deny_insecure_transport, document, objects
from inventory_contract.layout import CHUNKS_ROOT, STATE_ROOT
from inventory_contract.schema import INVENTORY_OPTIONAL_FIELDS


@dataclass(frozen=True)
class InventoryStorageArgs:
    settings: StackSettings
    account_id: pulumi.Input[str]
    source_provider: pulumi.ProviderResource | None = None


@dataclass(frozen=True)
class _Source:
    logical: str
    name: pulumi.Input[str]
    arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    provider: pulumi.ProviderResource | None


class InventoryStorage(pulumi.ComponentResource):
    destination_bucket: pulumi.Output[str]
    destination_arn: pulumi.Output[str]
    destination_id: pulumi.Output[str]
    source_buckets: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: InventoryStorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("s3inventory:index:InventoryStorage", name, None, opts)
        s = args.settings
        keep = not s.force_destroy  # the buckets hold data: `pulumi destroy` keeps them unless forced
        kept = bucket_options(self, keep)  # the destination's policy and lifecycle stay with it
        destination = secure_bucket(f"{name}-destination", parent=self, keep_on_destroy=keep, policy=False)

        # aws, aws-cn or aws-us-gov: the ARNs of buckets this stack does not create are built here
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition

        def bucket_arn(bucket: str) -> pulumi.Output[str]:
            return pulumi.Output.concat("arn:", partition, ":s3:::", bucket)

        sources: list[_Source] = []
        if s.create_source_bucket:
            source = secure_bucket(f"{name}-source", parent=self, keep_on_destroy=keep)
            sources.append(_Source(f"{name}-source", source.bucket, source.arn, args.account_id, None))
        for bucket in s.existing_source_buckets:
            sources.append(_Source(f"{name}-{bucket}", bucket, bucket_arn(bucket), args.account_id, None))
        for bucket in s.cross_account_source_buckets:
            account = s.cross_account_id or ""
            sources.append(
                _Source(f"{name}-{bucket}", bucket, bucket_arn(bucket), account, args.source_provider)
            )

        for src in sources:
            aws.s3.Inventory(
                f"{src.logical}-inventory",
                bucket=src.name,
                # (bucket, ID) identifies a configuration: a PUT with an ID that exists replaces it
                name=s.inventory_config_id,
                enabled=True,
                included_object_versions=s.include_object_versions,
                schedule={"frequency": "Daily"},
                optional_fields=list(INVENTORY_OPTIONAL_FIELDS),
                destination={
                    "bucket": {
                        "bucket_arn": destination.arn,
                        "format": "CSV",
                        "prefix": s.inventory_prefix,
                        "account_id": args.account_id,
                    }
                },
                opts=pulumi.ResourceOptions(parent=self, provider=src.provider),
            )

        delivery = {
            "Sid": "AllowInventoryDelivery",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": objects(destination.arn, f"{s.inventory_prefix}/"),
            "Condition": {
                "ArnLike": {"aws:SourceArn": [src.arn for src in sources]},
                "StringEquals": {
                    "aws:SourceAccount": [src.account_id for src in sources],
                    "s3:x-amz-acl": "bucket-owner-full-control",
                },
            },
        }
        aws.s3.BucketPolicy(
            f"{name}-destination-policy",
            bucket=destination.id,
            policy=pulumi.Output.json_dumps(document(delivery, deny_insecure_transport(destination.arn))),
            opts=kept,
        )
        rules: list[Any] = [
            _expire(f"expire-{CHUNKS_ROOT}", f"{CHUNKS_ROOT}/", s.state_retention_days),
            _expire(f"expire-{STATE_ROOT}", f"{STATE_ROOT}/", s.state_retention_days),
        ]
        if s.inventory_retention_days:  # the raw deliveries; the validated prefix is never empty
            rules.append(
                _expire("expire-inventory-deliveries", f"{s.inventory_prefix}/", s.inventory_retention_days)
            )
        rules += [
            {
                "id": "abort-incomplete-multipart-uploads",
                "status": "Enabled",
                "filter": {"prefix": ""},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
            },
        ]
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-destination-lifecycle", bucket=destination.id, rules=rules, opts=kept
        )
        self.destination_bucket = destination.bucket
        self.destination_arn = destination.arn
        self.destination_id = destination.id
        self.source_buckets = pulumi.Output.all(*[src.name for src in sources])
        self.register_outputs(
            {"destination_bucket": self.destination_bucket, "source_buckets": self.source_buckets}
        )


def _expire(rule_id: str, prefix: str, days: int) -> dict[str, Any]:
    return {"id": rule_id, "status": "Enabled", "filter": {"prefix": prefix}, "expiration": {"days": days}}
