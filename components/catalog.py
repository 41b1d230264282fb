"""The analytics table: Glue database and table over ``processed/`` with partition projection, and
an Athena workgroup with its own results bucket, enforced settings, a scan limit and named queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.buckets import secure_bucket
from components.queries import NAMED_QUERIES
from pipeline.contract.layout import PARTITION_KEYS, PROCESSED_ROOT
from pipeline.contract.schema import GLUE_TYPES, TABLE_FIELDS, columns_for

PROJECTION_DATE_FORMAT = "yyyy-MM-dd"  # Java date format of run_date=YYYY-MM-DD partitions
PROJECTION_START = "2020-01-01"
RESULTS_RETENTION_DAYS = 30
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


def glue_columns() -> list[dict[str, str]]:
    return [{"name": c.name, "type": GLUE_TYPES[c.type]} for c in columns_for(TABLE_FIELDS)]


def projection_parameters(bucket: str, source_buckets: list[str]) -> dict[str, str]:
    return {
        "classification": "parquet",
        "EXTERNAL": "TRUE",
        "projection.enabled": "true",
        "projection.source_bucket.type": "enum",
        "projection.source_bucket.values": ",".join(source_buckets),
        "projection.run_date.type": "date",
        "projection.run_date.format": PROJECTION_DATE_FORMAT,
        "projection.run_date.range": f"{PROJECTION_START},NOW",
        "projection.run_date.interval": "1",
        "projection.run_date.interval.unit": "DAYS",
        "storage.location.template": (
            f"s3://{bucket}/{PROCESSED_ROOT}/source_bucket=${{source_bucket}}/run_date=${{run_date}}/"
        ),
    }


@dataclass(frozen=True)
class AnalyticsCatalogArgs:
    bucket: pulumi.Input[str]
    source_buckets: pulumi.Input[list[str]]
    database_name: str
    table_name: str
    bytes_scanned_cutoff: int
    force_destroy: bool


class AnalyticsCatalog(pulumi.ComponentResource):
    database: pulumi.Output[str]
    table: pulumi.Output[str]
    workgroup: pulumi.Output[str]
    results_bucket: pulumi.Output[str]

    def __init__(
        self, name: str, args: AnalyticsCatalogArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("s3inventory:index:AnalyticsCatalog", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        database = aws.glue.CatalogDatabase(f"{name}-database", name=args.database_name, opts=child)
        parameters: Any = pulumi.Output.all(args.bucket, args.source_buckets).apply(
            lambda v: projection_parameters(v[0], list(v[1]))
        )
        descriptor: Any = {
            "location": pulumi.Output.format("s3://{0}/{1}/", args.bucket, PROCESSED_ROOT),
            "input_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "output_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "ser_de_info": {"serialization_library": PARQUET_SERDE},
            "columns": glue_columns(),
        }
        table = aws.glue.CatalogTable(
            f"{name}-table",
            name=args.table_name,
            database_name=database.name,
            table_type="EXTERNAL_TABLE",
            parameters=parameters,
            partition_keys=[{"name": key, "type": "string"} for key in PARTITION_KEYS],
            storage_descriptor=descriptor,
            opts=child,
        )
        results = secure_bucket(f"{name}-athena-results", parent=self, force_destroy=args.force_destroy)
        expire: list[Any] = [
            {
                "id": "expire-results",
                "status": "Enabled",
                "filter": {"prefix": ""},
                "expiration": {"days": RESULTS_RETENTION_DAYS},
            }
        ]
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-athena-results-lifecycle", bucket=results.id, rules=expire, opts=child
        )
        workgroup = aws.athena.Workgroup(
            f"{name}-workgroup",
            force_destroy=args.force_destroy,
            configuration={
                "enforce_workgroup_configuration": True,
                "publish_cloudwatch_metrics_enabled": True,
                "bytes_scanned_cutoff_per_query": args.bytes_scanned_cutoff,
                "engine_version": {"selected_engine_version": "Athena engine version 3"},
                "result_configuration": {
                    "output_location": pulumi.Output.format("s3://{0}/", results.bucket),
                    "encryption_configuration": {"encryption_option": "SSE_S3"},
                },
            },
            opts=child,
        )
        qualified = pulumi.Output.format('"{0}"."{1}"', database.name, table.name)
        for query_name, (description, sql) in NAMED_QUERIES.items():

            def with_table(table_name: str, sql: str = sql) -> str:
                return sql.format(table=table_name)

            aws.athena.NamedQuery(
                f"{name}-{query_name}",
                name=query_name,
                description=description,
                database=database.name,
                workgroup=workgroup.name,
                query=qualified.apply(with_table),
                opts=child,
            )
        self.database = database.name
        self.table = table.name
        self.workgroup = workgroup.name
        self.results_bucket = results.bucket
        self.register_outputs({"database": self.database, "table": self.table, "workgroup": self.workgroup})
