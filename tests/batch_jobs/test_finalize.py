"""The finalize job against a moto S3 server, in its own process."""

from __future__ import annotations

import json

import pytest

from pipeline.contract.layout import RunLayout
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
