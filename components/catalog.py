"""The analytics tables: a Glue database, the inventory table over ``processed/`` and one table per
rollup over ``rollups/NAME/``, each with partition projection, and an Athena workgroup with its own results bucket, enforced settings, a scan limit and named queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.buckets import secure_bucket
from components.queries import NAMED_QUERIES
from inventory_contract.layout import PARTITION_KEYS, PROCESSED_ROOT, ROLLUPS_ROOT
from inventory_contract.rollups import ROLLUPS, Rollup, rollup_table_suffix
from inventory_contract.schema import GLUE_TYPES, TABLE_FIELDS, Column, columns_for

PROJECTION_DATE_FORMAT = "yyyy-MM-dd"  # Java date format of run_date=YYYY-MM-DD partitions
PROJECTION_START = "2020-01-01"
RESULTS_RETENTION_DAYS = 30
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


def glue_columns(columns: Sequence[Column] | None = None) -> list[dict[str, str]]:
    """The Glue columns of the inventory table (default) or of a rollup table."""
    return [{"name": c.name, "type": GLUE_TYPES[c.type]} for c in columns or columns_for(TABLE_FIELDS)]


def rollup_table_name(table: str, rollup: Rollup) -> str:
    return f"{table}{rollup_table_suffix(rollup)}"


def projection_parameters(
    bucket: str, source_buckets: list[str], root: str = PROCESSED_ROOT
) -> dict[str, str]:
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
            f"s3://{bucket}/{root}/source_bucket=${{source_bucket}}/run_date=${{run_date}}/"
        ),
    }


@dataclass(frozen=True)
class AnalyticsCatalogArgs:
    bucket: pulumi.Input[str]
    source_buckets: pulumi.Input[list[str]]
    database_name: str
    table_name: str
    bytes_scanned_cutoff: int


class AnalyticsCatalog(pulumi.ComponentResource):
    database: pulumi.Output[str]
    table: pulumi.Output[str]
    rollup_tables: pulumi.Output[list[str]]
    workgroup: pulumi.Output[str]
    results_bucket: pulumi.Output[str]

    def __init__(
        self, name: str, args: AnalyticsCatalogArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("s3inventory:index:AnalyticsCatalog", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        database = aws.glue.CatalogDatabase(f"{name}-database", name=args.database_name, opts=child)
        tables: list[tuple[str, str, Sequence[Column] | None, str]] = [
            (args.table_name, PROCESSED_ROOT, None, "S3 Inventory rows, one per object version")
        ]
        tables += [
            (rollup_table_name(args.table_name, r), f"{ROLLUPS_ROOT}/{r.name}", r.columns, r.description)
            for r in ROLLUPS
        ]
        created = []
        for table_name, root, columns, description in tables:

            def parameters(v: list[Any], root: str = root) -> dict[str, str]:
                return projection_parameters(v[0], list(v[1]), root)

            descriptor: Any = {
                "location": pulumi.Output.format("s3://{0}/{1}/", args.bucket, root),
                "input_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "output_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "ser_de_info": {"serialization_library": PARQUET_SERDE},
                "columns": glue_columns(columns),
            }
            created.append(
                aws.glue.CatalogTable(
                    f"{name}-table" if root == PROCESSED_ROOT else f"{name}-{table_name}",
                    name=table_name,
                    description=description,
                    database_name=database.name,
                    table_type="EXTERNAL_TABLE",
                    parameters=pulumi.Output.all(args.bucket, args.source_buckets).apply(parameters),
                    partition_keys=[{"name": key, "type": "string"} for key in PARTITION_KEYS],
                    storage_descriptor=descriptor,
                    opts=child,
                )
            )
        table = created[0]
        results = secure_bucket(f"{name}-athena-results", parent=self, keep_on_destroy=False)
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
            # Athena refuses to delete a workgroup that has run queries ("WorkGroup is not empty")
            # unless recursively: it is the stack's own, and its queries' results are derived.
            force_destroy=True,
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
        self.rollup_tables = pulumi.Output.all(*(t.name for t in created[1:]))
        self.workgroup = workgroup.name
        self.results_bucket = results.bucket
        self.register_outputs({"database": self.database, "table": self.table, "workgroup": self.workgroup})
