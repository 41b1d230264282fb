"""The finalize job against a moto S3 server, in its own process."""

from __future__ import annotations

import json

import pytest

from inventory_contract.layout import RunLayout
from tests.batch_jobs.test_split_process import _deliver, _process, _run_args, _split
from tests.conftest import run_job

pytestmark = pytest.mark.slow


@pytest.fixture
def finished_run(s3, bucket, aws_env, tmp_path):
    gen = _deliver(s3, tmp_path, bucket, objects=2000, files=2)
    assert _split(aws_env, gen, bucket, 3).returncode == 0
    for i in range(3):
        assert _process(aws_env, gen, bucket, i).returncode == 0
    return gen


def _finalize(env, gen, bucket, chunks=3):
    return run_job(env, "finalize", *_run_args(gen, bucket), "--chunks", str(chunks))


def _json(s3, bucket, key):
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_a_complete_run_is_reconciled_and_marked(s3, bucket, aws_env, finished_run):
    result = _finalize(aws_env, finished_run, bucket)
    assert result.returncode == 0, result.stderr
    layout = RunLayout.of(finished_run.delivery)
    report = _json(s3, bucket, layout.run_report_key)
    assert (report["status"], report["rows_in"], report["rows_out"], report["chunks"]) == (
        "complete",
        2000,
        2000,
        3,
    )
    assert report["size_sum"] == finished_run.truth.total_size
    assert report["problems"] == []
    marker = _json(s3, bucket, layout.complete_marker_key)
    assert marker["rows"] == 2000 and marker["run_report"] == layout.run_report_key
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=layout.processed_prefix)["Contents"]
    assert marker["parts"] == {o["Key"]: o["Size"] for o in listed} and len(listed) == 3
    assert not layout.complete_marker_key.startswith("processed/")


def _fails_with(s3, bucket, env, gen, *expected: str) -> None:
    result = _finalize(env, gen, bucket)
    assert result.returncode == 3, result.stderr  # does not reconcile: not bad input, not retried
    for text in expected:
        assert text in result.stderr, result.stderr
    layout = RunLayout.of(gen.delivery)
    assert _json(s3, bucket, layout.run_report_key)["status"] == "failed"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=layout.complete_marker_key)


def test_a_missing_part_fails_with_the_numbers(s3, bucket, aws_env, finished_run):
    layout = RunLayout.of(finished_run.delivery)
    rows_1 = _json(s3, bucket, layout.part_stats_key(1))["rows"]
    s3.delete_object(Bucket=bucket, Key=layout.part_key(1))
    _fails_with(
        s3,
        bucket,
        aws_env,
        finished_run,
        f"part 1: missing ({layout.part_key(1)} does not exist)",
        f"rows in = 2000 but rows out = {2000 - rows_1} (difference -{rows_1})",
    )


@pytest.mark.parametrize(("delta", "word"), [(1, "extra"), (-1, "lost")])
def test_an_extra_or_lost_row_fails_with_the_numbers(s3, bucket, aws_env, finished_run, delta, word):
    layout = RunLayout.of(finished_run.delivery)
    stats = _json(s3, bucket, layout.part_stats_key(2))
    chunk_rows = stats["rows"]
    stats["rows"] += delta
    s3.put_object(Bucket=bucket, Key=layout.part_stats_key(2), Body=json.dumps(stats).encode())
    _fails_with(
        s3,
        bucket,
        aws_env,
        finished_run,
        f"part 2: {chunk_rows + delta} rows but chunk 2 has {chunk_rows} ({word} rows)",
        f"rows in = 2000 but rows out = {2000 + delta} (difference {delta:+d})",
    )


def test_a_part_this_run_did_not_write_fails(s3, bucket, aws_env, finished_run):
    layout = RunLayout.of(finished_run.delivery)
    s3.put_object(Bucket=bucket, Key=layout.part_key(7), Body=b"stale")
    _fails_with(
        s3, bucket, aws_env, finished_run, f"unexpected object {layout.part_key(7)}: not written by this run"
    )


def test_the_rollups_are_merged_from_every_child_and_add_up(s3, bucket, aws_env, finished_run):
    import io

    import polars as pl

    from inventory_contract.rollups import ROLLUPS

    assert _finalize(aws_env, finished_run, bucket).returncode == 0
    layout = RunLayout.of(finished_run.delivery)
    marker = _json(s3, bucket, layout.complete_marker_key)
    tables = {}
    for rollup in ROLLUPS:
        obj = s3.get_object(Bucket=bucket, Key=layout.rollup_key(rollup.name))
        tables[rollup.name] = pl.read_parquet(io.BytesIO(obj["Body"].read()))
        assert marker["rollups"][layout.rollup_key(rollup.name)] == obj["ContentLength"]
    truth = finished_run.truth
    classes = tables["storage_class"]
    assert classes["objects"].sum() == truth.rows == 2000
    assert classes.filter(pl.col("version_kind") == "delete_marker")["objects"].sum() == truth.delete_markers
    by_class = classes.group_by("storage_class").agg(pl.col("bytes").sum()).drop_nulls()
    assert dict(by_class.iter_rows()) == dict(truth.size_by_class)
    stored = truth.rows - truth.delete_markers
    for depth in (1, 2, 3):
        at_depth = tables["prefix"].filter(pl.col("depth") == depth)
        assert (at_depth["objects"].sum(), at_depth["bytes"].sum()) == (stored, truth.total_size)
        assert at_depth["prefix"].n_unique() == at_depth.height  # one row per prefix: the children merged
    report = _json(s3, bucket, layout.run_report_key)
    assert report["rollups"]["prefix_depth"] == 3
    assert report["rollups"]["storage_class"] == classes.to_dicts()


def test_a_missing_partial_rollup_fails_and_writes_no_rollup(s3, bucket, aws_env, finished_run):
    layout = RunLayout.of(finished_run.delivery)
    s3.delete_object(Bucket=bucket, Key=layout.rollup_partial_key("prefix", 1))
    _fails_with(s3, bucket, aws_env, finished_run, "part 1: its prefix rollup is missing")
    for name in ("storage_class", "prefix", "age", "encryption"):
        assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=layout.rollup_prefix(name))


def test_a_partial_rollup_that_does_not_add_up_fails_with_the_numbers(s3, bucket, aws_env, finished_run):
    import io

    import polars as pl

    layout = RunLayout.of(finished_run.delivery)
    key = layout.rollup_partial_key("encryption", 0)
    partial = pl.read_parquet(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    buffer = io.BytesIO()
    partial.with_columns(pl.col("objects") + 1).write_parquet(buffer)
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    _fails_with(s3, bucket, aws_env, finished_run, "rollup encryption: ")
