"""The rollup tables in the Glue catalog: one per rollup, its columns those of the Parquet that
finalize writes, its projection resolving to the run's rollup folder."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from batch_jobs import rollups
from batch_jobs.convert import output_schema
from components.catalog import rollup_table_name
from inventory_contract.layout import RunLayout
from inventory_contract.rollups import ROLLUPS, Rollup
from inventory_contract.schema import TABLE_FIELDS, columns_for
from tests.components.conftest import deploy, settings
from tests.components.test_analytics import ARROW_TO_GLUE


@pytest.fixture(scope="module")
def stack():
    return deploy(settings(existingSourceBuckets=["legacy-data"], catalogTable="objects"))


@pytest.mark.parametrize("rollup", ROLLUPS, ids=lambda r: r.name)
def test_each_rollup_is_a_table_over_its_own_folder(stack, rollup: Rollup, tmp_path: Path):
    table = stack.one(
        "aws:glue/catalogTable:CatalogTable", f"analytics-{rollup_table_name('objects', rollup)}"
    )
    assert table.inputs["name"] == f"objects_rollup_{rollup.name}"
    assert (
        table.inputs["databaseName"] == stack.one("aws:glue/catalogDatabase:CatalogDatabase").inputs["name"]
    )
    assert table.inputs["partitionKeys"] == [
        {"name": "source_bucket", "type": "string"},
        {"name": "run_date", "type": "string"},
    ]
    destination = stack.one("aws:s3/bucket:Bucket", "inventory-destination").outputs["bucket"]
    template = table.inputs["parameters"]["storage.location.template"]
    resolved = template.replace("${source_bucket}", "legacy-data").replace("${run_date}", "2026-11-24")
    assert (
        resolved == f"s3://{destination}/{RunLayout('legacy-data', '2026-11-24').rollup_prefix(rollup.name)}"
    )
    assert table.inputs["parameters"]["projection.source_bucket.values"] == ",".join(
        stack.outputs["sourceBuckets"]
    )

    # the columns Glue declares are those of the file finalize writes, in its order
    part = tmp_path / "part.parquet"
    pl.DataFrame(
        [{"bucket": "b", "key": "a/b/c", "size": 1, "last_modified_date": None}],
        schema=output_schema(columns_for(TABLE_FIELDS)),
    ).write_parquet(part)
    partial = tmp_path / "partial.parquet"
    rollups.partials(part, "2026-11-24", 2)[rollup.name].write_parquet(partial)
    [merged] = rollups.merge(rollup, [partial], tmp_path)
    written = [{"name": f.name, "type": ARROW_TO_GLUE[str(f.type)]} for f in pq.read_schema(merged)]
    assert table.inputs["storageDescriptor"]["columns"] == written


def test_the_stack_exports_the_rollup_table_names(stack):
    assert stack.outputs["glueRollupTables"] == [f"objects_rollup_{r.name}" for r in ROLLUPS]


def test_the_prefix_depth_reaches_the_processor_job_definition():
    deployed = deploy(settings(rollupPrefixDepth=7))
    process = deployed.one("aws:batch/jobDefinition:JobDefinition", "batch-process")
    assert process.inputs["parameters"] == {"index": "array", "prefix_depth": "7"}


@pytest.mark.parametrize("depth", [0, 33])
def test_a_prefix_depth_out_of_range_fails_at_preview(depth):
    from components.config import ConfigError

    with pytest.raises(ConfigError, match=f"rollupPrefixDepth: must be 1 to 32, got {depth}"):
        settings(rollupPrefixDepth=depth)


def test_a_table_name_too_long_for_its_rollup_tables_fails_at_preview():
    from components.config import ConfigError

    longest = max(len(f"_rollup_{r.name}") for r in ROLLUPS)
    assert settings(catalogTable="t" * (255 - longest)).catalog_table  # the longest that fits
    with pytest.raises(ConfigError, match=f"catalogTable: must be at most {255 - longest} characters"):
        settings(catalogTable="t" * (256 - longest))
