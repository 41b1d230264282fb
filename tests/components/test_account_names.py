"""Account- and Region-level names derive from the Pulumi stack, so two stacks never share one.

S3 Inventory identifies a configuration by (source bucket, ID) and replaces it on a PUT with the
same ID; Glue database and table names are unique per account and Region; a CloudWatch metric is
(namespace, name). Two stacks of this program in one account, or on one shared source bucket,
must therefore differ in all of them, or one overwrites (and on destroy deletes) the other's.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from components.config import (
    ConfigError,
    derived_catalog_database,
    derived_inventory_config_id,
    load_settings,
)
from tests.components.conftest import deploy, project_defaults, run_program, settings

SHARED_SOURCE = "shared-source-bucket"
# Names that are unique only within another resource: (type) -> the input naming that scope.
SCOPED_BY = {
    "aws:s3/inventory:Inventory": "bucket",
    "aws:glue/catalogTable:CatalogTable": "databaseName",
    "aws:athena/namedQuery:NamedQuery": "workgroup",
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": "logGroupName",
}


def run_stack(stack: str, **overrides: Any) -> dict[str, Any]:
    """The whole program as stack ``stack`` under the mocks, in a process of its own."""
    done = run_program(stack, {**project_defaults(), "existingSourceBuckets": [SHARED_SOURCE], **overrides})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def account_level_names(deployed: dict[str, Any]) -> set[tuple[Any, ...]]:
    """Every explicit name-like input, with the scope it is unique in; auto-named resources (no
    name input: Pulumi appends a random suffix per stack) have none."""
    names: set[tuple[Any, ...]] = set()
    for r in deployed["resources"]:
        if r["type"].startswith(("pulumi:", "s3inventory:")):
            continue
        keys = ["name", "namePrefix"]
        if r["type"] == "aws:s3/bucket:Bucket":
            keys += ["bucket", "bucketPrefix"]
        scope = SCOPED_BY.get(r["type"])
        for key in keys:
            if key in r["inputs"]:
                names.add((r["type"], key, r["inputs"][scope] if scope else None, r["inputs"][key]))
        metric = r["inputs"].get("metricTransformation")
        if metric:  # a metric filter's metric: (namespace, name) is account-wide
            names.add(("metric", metric["namespace"], metric["name"]))
    return names


@pytest.fixture(scope="module")
def two_stacks() -> tuple[dict[str, Any], dict[str, Any]]:
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(run_stack, ("dev", "team-b.prod"))
    return first, second


def test_two_stacks_on_one_source_bucket_share_no_account_level_name(two_stacks):
    dev, prod = two_stacks
    dev_names, prod_names = account_level_names(dev), account_level_names(prod)
    assert dev_names & prod_names == set()
    named_types = {n[0] for n in dev_names}
    assert {
        "aws:s3/inventory:Inventory",
        "aws:glue/catalogDatabase:CatalogDatabase",
        "aws:glue/catalogTable:CatalogTable",
        "metric",
    } <= named_types  # what the check covers, so that it can fail
    inventories = {(n[2], n[3]) for n in dev_names | prod_names if n[0] == "aws:s3/inventory:Inventory"}
    assert {
        (SHARED_SOURCE, "s3-inventory-pipeline-dev"),
        (SHARED_SOURCE, "s3-inventory-pipeline-team-b.prod"),
    } <= inventories
    assert dev["outputs"]["glueDatabase"] == "s3_inventory_dev"
    assert prod["outputs"]["glueDatabase"] == "s3_inventory_team_b_prod"


def test_the_backfill_command_names_the_stacks_own_inventory_configuration(two_stacks):
    for deployed, config_id in zip(
        two_stacks, ("s3-inventory-pipeline-dev", "s3-inventory-pipeline-team-b.prod"), strict=True
    ):
        command = deployed["outputs"]["backfillCommand"]
        destination = deployed["outputs"]["destinationBucket"]
        assert (
            f" s3://{destination}/inventory/SOURCE-BUCKET/{config_id}/YYYY-MM-DDTHH-MMZ/manifest.json"
            in command
        )


def test_the_check_finds_names_that_config_fixes_for_both_stacks():
    # GIVEN two stacks whose config pins the same ID and database, as fixed names used to
    fixed = {"inventoryConfigId": "s3-inventory-pipeline", "catalogDatabase": "s3_inventory"}
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda stack: run_stack(stack, **fixed), ("dev", "prod"))
    # THEN the check reports exactly what they would fight over
    shared = account_level_names(first) & account_level_names(second)
    assert {n[0] for n in shared} == {
        "aws:s3/inventory:Inventory",
        "aws:glue/catalogDatabase:CatalogDatabase",
        "aws:glue/catalogTable:CatalogTable",
    }


@pytest.mark.parametrize(
    ("stack", "database", "config_id"),
    [
        ("dev", "s3_inventory_dev", "s3-inventory-pipeline-dev"),
        ("Team-B.prod_2", "s3_inventory_team_b_prod_2", "s3-inventory-pipeline-Team-B.prod_2"),
    ],
)
def test_names_derive_from_the_stack(stack, database, config_id):
    derived = load_settings(project_defaults(), region="us-east-1", stack=stack)
    assert (derived.catalog_database, derived.inventory_config_id) == (database, config_id)
    assert derived.catalog_table == "inventory"  # within the stack's own database
    assert derived.metric_namespace == f"s3-inventory-pipeline/{stack}"


def test_a_long_stack_name_still_gives_a_valid_and_distinct_inventory_id():
    first, second = "a" * 60 + "-one", "a" * 60 + "-two"
    ids = {derived_inventory_config_id(first), derived_inventory_config_id(second)}
    assert len(ids) == 2 and all(len(i) <= 64 for i in ids)
    assert load_settings(project_defaults(), region="us-east-1", stack=first).inventory_config_id in ids
    assert derived_catalog_database(first) == "s3_inventory_" + "a" * 60 + "_one"


def test_config_overrides_the_derived_names():
    stack = deploy(
        settings(inventoryConfigId="daily-all", catalogDatabase="analytics", catalogTable="objects")
    )
    assert stack.one("aws:s3/inventory:Inventory").inputs["name"] == "daily-all"
    assert stack.one("aws:glue/catalogDatabase:CatalogDatabase").inputs["name"] == "analytics"
    table = stack.one("aws:glue/catalogTable:CatalogTable", "analytics-table")
    assert (table.inputs["databaseName"], table.inputs["name"]) == ("analytics", "objects")
    assert "/SOURCE-BUCKET/daily-all/" in stack.outputs["backfillCommand"]
    assert (stack.outputs["glueDatabase"], stack.outputs["glueTable"]) == ("analytics", "objects")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"inventoryConfigId": "daily inventory"}, "inventoryConfigId: must be 1 to 64 letters, digits"),
        ({"inventoryConfigId": "x" * 65}, "inventoryConfigId: must be 1 to 64 letters, digits"),
        ({"catalogDatabase": "My-Db"}, "catalogDatabase: must be 1 to 255 lower-case letters"),
        ({"catalogTable": "inventory-v2"}, "catalogTable: must be 1 to 255 lower-case letters"),
    ],
)
def test_bad_names_are_rejected_naming_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        settings(**overrides)
