"""Catalog, Athena and private networking under Pulumi mocks (the saved queries run in test_saved_queries)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from components.catalog import PROJECTION_DATE_FORMAT
from components.queries import NAMED_QUERIES
from inventory_contract.layout import RunLayout
from inventory_contract.schema import KNOWN_FIELDS, TABLE_FIELDS, columns_for
from tests.components.conftest import deploy, project_defaults, run_program, settings
from tests.parts import convert_rows

DATABASE, TABLE = settings().catalog_database, settings().catalog_table  # derived / Pulumi.yaml's default

ARROW_TO_GLUE = {
    "string": "string",
    "large_string": "string",
    "int64": "bigint",
    "bool": "boolean",
    "timestamp[ms, tz=UTC]": "timestamp",
    "decimal128(38, 0)": "decimal(38,0)",
}


def _parquet_glue_columns(tmp_path: Path, fields: tuple[str, ...]) -> list[dict[str, str]]:
    """The columns of a Parquet part the processor really writes, in Glue's terms."""
    values = {"Size": "7", "IsLatest": "true", "IsDeleteMarker": "false", "IsMultipartUploaded": "false"}
    for field in fields:
        if field.endswith("Date") and field != "IntelligentTieringReferenceDate":
            values.setdefault(field, "2026-01-01T00:00:00.000Z")
    row = ",".join(f'"{values.get(f, "x")}"' for f in fields)
    convert_rows((row + "\n").encode(), tmp_path / "part.parquet", columns_for(fields))
    schema = pq.read_schema(tmp_path / "part.parquet")
    return [{"name": f.name, "type": ARROW_TO_GLUE[str(f.type)]} for f in schema]


def test_glue_columns_match_the_parquet_the_processor_writes(tmp_path):
    table = deploy(settings()).one("aws:glue/catalogTable:CatalogTable", "analytics-table")
    glue = table.inputs["storageDescriptor"]["columns"]
    assert glue == _parquet_glue_columns(tmp_path, TABLE_FIELDS)
    assert [c["name"] for c in glue[:2]] == ["bucket", "key"] and len(glue) == len(TABLE_FIELDS)
    assert table.inputs["partitionKeys"] == [
        {"name": "source_bucket", "type": "string"},
        {"name": "run_date", "type": "string"},
    ]
    assert table.inputs["storageDescriptor"]["serDeInfo"]["serializationLibrary"].endswith("ParquetHiveSerDe")
    assert set(KNOWN_FIELDS) <= set(TABLE_FIELDS)  # whatever a delivery holds, the table has a column for it


def test_partition_projection_resolves_to_the_paths_the_processor_writes():
    stack = deploy(settings(existingSourceBuckets=["legacy-data"]))
    table = stack.one("aws:glue/catalogTable:CatalogTable", "analytics-table")
    params = table.inputs["parameters"]
    destination = stack.one("aws:s3/bucket:Bucket", "inventory-destination").outputs["bucket"]
    sources = stack.outputs["sourceBuckets"]
    assert params["projection.enabled"] == "true"
    assert params["projection.source_bucket.type"] == "enum"
    assert params["projection.source_bucket.values"].split(",") == sources
    assert params["projection.run_date.type"] == "date"
    assert params["projection.run_date.format"] == PROJECTION_DATE_FORMAT == "yyyy-MM-dd"
    start, end = params["projection.run_date.range"].split(",")
    assert date.fromisoformat(start) and end == "NOW"  # the range is written in the same format
    java_to_python = {"yyyy": "%Y", "MM": "%m", "dd": "%d"}
    python_format = PROJECTION_DATE_FORMAT
    for java, py in java_to_python.items():
        python_format = python_format.replace(java, py)
    day = date(2026, 11, 24).strftime(python_format)
    resolved = (
        params["storage.location.template"]
        .replace("${source_bucket}", "legacy-data")
        .replace("${run_date}", day)
    )
    assert resolved == f"s3://{destination}/{RunLayout('legacy-data', '2026-11-24').processed_prefix}"
    assert table.inputs["storageDescriptor"]["location"] == f"s3://{destination}/processed/"


def test_the_workgroup_enforces_its_own_results_location_and_a_scan_limit():
    stack = deploy(settings(athenaScanLimitGib=50))
    workgroup = stack.one("aws:athena/workgroup:Workgroup")
    config = workgroup.inputs["configuration"]
    results = stack.one("aws:s3/bucket:Bucket", "analytics-athena-results").outputs["bucket"]
    assert config["enforceWorkgroupConfiguration"] is True
    assert config["bytesScannedCutoffPerQuery"] == 50 * 1024**3
    assert config["resultConfiguration"]["outputLocation"] == f"s3://{results}/"
    assert config["resultConfiguration"]["encryptionConfiguration"] == {"encryptionOption": "SSE_S3"}
    queries = {q.inputs["name"]: q for q in stack.of_type("aws:athena/namedQuery:NamedQuery")}
    assert (
        set(queries)
        == set(NAMED_QUERIES)
        == {
            "storage-by-class",
            "largest-prefixes",
            "not-modified-for-a-year",
            "delete-markers",
            "changes-by-kind",
            "changed-objects",
            "largest-changes",
            "duplicate-candidates",
            "listed-more-than-once",
        }
    )
    database = stack.one("aws:glue/catalogDatabase:CatalogDatabase").inputs["name"]
    table = stack.one("aws:glue/catalogTable:CatalogTable", "analytics-table")
    assert (database, table.inputs["name"], table.inputs["databaseName"]) == (
        "s3_inventory_test",  # derived from the stack's name
        "inventory",
        database,
    )
    for query in queries.values():
        assert query.inputs["database"] == database
        assert query.inputs["workgroup"] == workgroup.outputs["name"]
        assert f'FROM "{database}"."inventory"' in query.inputs["query"]


def test_private_networking_keeps_the_jobs_off_the_internet():
    stack = deploy(settings(privateNetworking=True, privateSubnetCount=3))
    subnets = stack.of_type("aws:ec2/subnet:Subnet")
    assert len(subnets) == 3 and len({s.inputs["availabilityZone"] for s in subnets}) == 3
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    endpoints = {e.inputs["serviceName"]: e.inputs for e in stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert endpoints["com.amazonaws.us-east-1.s3"]["vpcEndpointType"] == "Gateway"
    for service in ("ecr.api", "ecr.dkr", "logs"):
        endpoint = endpoints[f"com.amazonaws.us-east-1.{service}"]
        assert endpoint["vpcEndpointType"] == "Interface" and endpoint["privateDnsEnabled"] is True
        assert sorted(endpoint["subnetIds"]) == sorted(s.id for s in subnets)
    for absent in ("aws:ec2/natGateway:NatGateway", "aws:ec2/internetGateway:InternetGateway"):
        assert stack.of_type(absent) == []
    compute = stack.one("aws:batch/computeEnvironment:ComputeEnvironment")
    assert sorted(compute.inputs["computeResources"]["subnets"]) == sorted(s.id for s in subnets)
    for definition in stack.of_type("aws:batch/jobDefinition:JobDefinition"):
        assert json.loads(definition.inputs["containerProperties"])["networkConfiguration"] == {
            "assignPublicIp": "DISABLED"
        }
    assert stack.outputs["privateSubnetIds"] == [s.id for s in subnets]
    from tests.components.conftest import MOCKS

    [zones] = [args for token, args in MOCKS.calls if token.endswith("getAvailabilityZones")][-1:]
    assert zones["state"] == "available"  # and the Region's own zones only, no opted-in Local Zone
    assert zones["filters"] == [{"name": "opt-in-status", "values": ["opt-in-not-required"]}]


@pytest.mark.parametrize(
    ("count", "said"),
    [
        (
            4,
            "config key s3-inventory-pipeline:privateSubnetCount is 4, but us-east-1 has 3 Availability "
            "Zones available (us-east-1a, us-east-1b, us-east-1c): set it to at most 3",
        ),
        (
            17,
            "config key s3-inventory-pipeline:privateSubnetCount is 17, but the VPC's 10.42.0.0/16 holds "
            "at most 16 /20 subnets",
        ),
    ],
)
def test_more_private_subnets_than_zones_or_address_space_fail_at_preview(count, said):
    # a program that fails runs in a process of its own (its pending registrations would fail the next)
    values = {**project_defaults(), "privateNetworking": True, "privateSubnetCount": count}
    done = run_program("dev", values)
    assert done.returncode != 0
    assert said in done.stderr


def test_private_networking_refuses_subnets_of_its_own():
    from components.config import ConfigError

    with pytest.raises(ConfigError, match="privateNetworking: creates its own VPC"):
        settings(privateNetworking=True, subnetIds=["subnet-1"])
