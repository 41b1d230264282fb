"""Wire the components into the whole stack; ``__main__.py`` calls ``build_stack`` with the settings."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.alerts import PipelineAlerts, PipelineAlertsArgs
from components.batch import BatchPipeline, BatchPipelineArgs
from components.catalog import AnalyticsCatalog, AnalyticsCatalogArgs
from components.config import StackSettings
from components.image import JobImage, JobImageArgs
from components.network import PrivateNetwork, PrivateNetworkArgs
from components.storage import InventoryStorage, InventoryStorageArgs
from components.trigger import InventoryTrigger, InventoryTriggerArgs
from inventory_contract.layout import latest_storage_report_key


def build_stack(settings: StackSettings) -> dict[str, pulumi.Output[str] | pulumi.Output[list[str]]]:
    account_id = aws.get_caller_identity_output().account_id
    partition = aws.get_partition_output().partition
    source_provider = None
    if settings.cross_account_source_buckets:
        source_provider = aws.Provider(
            "source-account",
            region=settings.region,
            assume_roles=[
                {"role_arn": settings.cross_account_role_arn, "session_name": "s3-inventory-pipeline"}
            ],
        )
    storage = InventoryStorage(
        "inventory",
        InventoryStorageArgs(settings=settings, account_id=account_id, source_provider=source_provider),
    )
    network = None
    if settings.private_networking:
        network = PrivateNetwork(
            "network", PrivateNetworkArgs(region=settings.region, subnet_count=settings.private_subnet_count)
        )
    image = JobImage("jobs", JobImageArgs(platform=settings.image_platform))
    batch = BatchPipeline(
        "batch",
        BatchPipelineArgs(
            settings=settings,
            image_uri=image.image_digest_uri,
            repository_arn=image.repository_arn,
            bucket_arn=storage.destination_arn,
            account_id=account_id,
            partition=partition,
            source_bucket_arns=pulumi.Output.all(partition, storage.source_buckets).apply(
                lambda v: [f"arn:{v[0]}:s3:::{bucket}" for bucket in v[1]]
            ),
            private_vpc_id=network.vpc_id if network else None,
            private_subnet_ids=network.subnet_ids if network else None,
        ),
    )
    trigger = InventoryTrigger(
        "trigger",
        InventoryTriggerArgs(
            settings=settings,
            account_id=account_id,
            bucket_id=storage.destination_id,
            bucket_arn=storage.destination_arn,
            queue_arn=batch.queue_arn,
            process_queue_arn=batch.process_queue_arn,
            split_job_definition_arn=batch.job_definition_arns["split"],
            process_job_definition_arn=batch.job_definition_arns["process"],
            finalize_job_definition_arn=batch.job_definition_arns["finalize"],
        ),
    )
    catalog = AnalyticsCatalog(
        "analytics",
        AnalyticsCatalogArgs(
            bucket=storage.destination_bucket,
            source_buckets=storage.source_buckets,
            database_name=settings.catalog_database,
            table_name=settings.catalog_table,
            bytes_scanned_cutoff=settings.athena_scan_limit_gib * 1024**3,
        ),
    )
    alerts = PipelineAlerts(
        "alerts",
        PipelineAlertsArgs(
            account_id=account_id,
            queue_arns=batch.queue_arns,
            function_name=trigger.function_name,
            trigger_log_group_name=trigger.log_group_name,
            failed_events_queue_name=trigger.failed_events_queue_name,
            metric_namespace=settings.metric_namespace,
            email=settings.alert_email,
        ),
    )
    backfill = pulumi.Output.format(
        "JOB_QUEUE={0} PROCESS_JOB_QUEUE={7} SPLIT_JOB_DEFINITION={1} PROCESS_JOB_DEFINITION={2} "
        "FINALIZE_JOB_DEFINITION={3} TARGET_CHUNK_MIB={8} "
        "python -m pipeline trigger s3://{4}/{5}/SOURCE-BUCKET/{6}/YYYY-MM-DDTHH-MMZ/manifest.json",
        batch.queue_arn,
        batch.job_definition_arns["split"],
        batch.job_definition_arns["process"],
        batch.job_definition_arns["finalize"],
        storage.destination_bucket,
        settings.inventory_prefix,
        settings.inventory_config_id,
        batch.process_queue_arn,
        settings.target_chunk_mib,
    )
    return {
        "destinationBucket": storage.destination_bucket,
        "inventoryPrefix": pulumi.Output.from_input(settings.inventory_prefix),
        "sourceBuckets": storage.source_buckets,
        "imageUri": image.image_uri,
        "jobQueueArn": batch.queue_arn,
        "processJobQueueArn": batch.process_queue_arn,
        "splitJobDefinitionArn": batch.job_definition_arns["split"],
        "processJobDefinitionArn": batch.job_definition_arns["process"],
        "finalizeJobDefinitionArn": batch.job_definition_arns["finalize"],
        "snapshotJobDefinitionArn": batch.job_definition_arns["snapshot"],
        "snapshotRoleArn": batch.snapshot_role_arn,
        "triggerFunctionName": trigger.function_name,
        "failedEventsQueueArn": trigger.failed_events_queue_arn,
        "backfillCommand": backfill,
        # each source bucket's newest storage report, replaced by finalize as each newer run completes
        "storageReports": pulumi.Output.all(storage.destination_bucket, storage.source_buckets).apply(
            lambda found: [f"s3://{found[0]}/{latest_storage_report_key(b)}" for b in found[1]]
        ),
        "glueDatabase": catalog.database,
        "glueTable": catalog.table,
        "glueRollupTables": catalog.rollup_tables,
        "athenaWorkgroup": catalog.workgroup,
        "athenaResultsBucket": catalog.results_bucket,
        "alertsTopicArn": alerts.topic_arn,
        **({"privateSubnetIds": network.subnet_ids} if network else {}),
    }
