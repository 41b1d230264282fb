"""The finalize job against a moto S3 server, in its own process: a run whose plan cuts one of
its two data files into pieces, reconciled against the manifest, the plan and the parts."""

from __future__ import annotations

import json

import pytest

from inventory_contract.layout import RunLayout
from tests.batch_jobs.test_split_process import _deliver, _plan, _process, _run_args, _split
from tests.conftest import run_job

pytestmark = pytest.mark.slow
CHUNKS = 4  # two data files in four chunks: each file is cut in two pieces


@pytest.fixture
def finished_run(s3, bucket, aws_env, tmp_path):
    gen = _deliver(s3, tmp_path, bucket, objects=2000, files=2)
    assert _split(aws_env, gen, bucket, CHUNKS).returncode == 0
    assert any(f["pieces"] > 1 for f in _plan(s3, bucket, gen)["files"])
    for i in range(CHUNKS):
        assert _process(aws_env, gen, bucket, i).returncode == 0
    return gen


def _finalize(env, gen, bucket, chunks=CHUNKS):
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
        CHUNKS,
    )
    assert report["size_sum"] == finished_run.truth.total_size
    assert report["problems"] == []
    marker = _json(s3, bucket, layout.complete_marker_key)
    assert marker["rows"] == 2000 and marker["run_report"] == layout.run_report_key
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=layout.processed_prefix)["Contents"]
    assert marker["parts"] == {o["Key"]: o["Size"] for o in listed} and len(listed) == CHUNKS
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


def _edit_stats(s3, bucket, gen, index, change) -> dict:  # type: ignore[no-untyped-def]
    key = RunLayout.of(gen.delivery).part_stats_key(index)
    stats = _json(s3, bucket, key)
    change(stats)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(stats).encode())
    return stats


@pytest.mark.parametrize(("delta", "word"), [(1, "extra"), (-1, "lost")])
def test_an_extra_or_lost_row_fails_with_the_numbers(s3, bucket, aws_env, finished_run, delta, word):
    stats = _edit_stats(s3, bucket, finished_run, 2, lambda s: s.update(rows=s["rows"] + delta))
    read = ", ".join(source["key"] for source in stats["sources"])
    _fails_with(
        s3,
        bucket,
        aws_env,
        finished_run,
        f"part 2: {stats['rows']} rows in the part but {stats['rows_counted']} read from {read} ({word} rows)",
        f"rows in = 2000 but rows out = {2000 + delta} (difference {delta:+d})",
    )


def test_pieces_that_do_not_hold_every_row_of_their_file_fail_naming_file_and_chunks(
    s3, bucket, aws_env, finished_run
):
    # GIVEN a child of a cut file that counted (and converted) one row fewer than its piece holds
    plan = _plan(s3, bucket, finished_run)
    cut = next(i for i, f in enumerate(plan["files"]) if f["pieces"] > 1)
    chunk = next(
        c["index"] for c in plan["chunks"] if c["sources"][0]["file"] == cut and c["sources"][0]["piece"] == 0
    )

    def one_row_fewer(stats: dict) -> None:
        stats["sources"][0]["rows"] -= 1
        stats["rows_counted"] -= 1
        stats["rows"] -= 1

    _edit_stats(s3, bucket, finished_run, chunk, one_row_fewer)
    chunks = sorted(c["index"] for c in plan["chunks"] if any(s["file"] == cut for s in c["sources"]))
    # THEN the file, its pieces' chunks and the numbers are named; rows out fall short of rows in
    file_rows = plan["files"][cut]
    _fails_with(
        s3,
        bucket,
        aws_env,
        finished_run,
        f"data file {file_rows['key']}: its {file_rows['pieces']} piece(s) in chunks {chunks} hold",
        "(lost rows)",
    )


def test_a_file_nobody_read_to_its_end_fails(s3, bucket, aws_env, finished_run):
    plan = _plan(s3, bucket, finished_run)
    last = next(c for c in plan["chunks"] if any(s["piece"] == s["pieces"] - 1 for s in c["sources"]))
    source = next(s for s in last["sources"] if s["piece"] == s["pieces"] - 1)

    def unverified(stats: dict) -> None:
        for read in stats["sources"]:
            if read["file"] == source["file"]:
                read["verified"] = False

    _edit_stats(s3, bucket, finished_run, last["index"], unverified)
    _fails_with(
        s3,
        bucket,
        aws_env,
        finished_run,
        f"data file {source['key']}: chunk {last['index']} did not read it to its end with its size and MD5",
    )


def test_a_child_that_read_other_sources_than_its_chunk_fails(s3, bucket, aws_env, finished_run):
    stats = _edit_stats(
        s3, bucket, finished_run, 0, lambda s: s["sources"].reverse() or s["sources"].append(s["sources"][0])
    )
    assert stats["sources"]
    _fails_with(s3, bucket, aws_env, finished_run, "part 0: its child read [", "but chunk 0 is [")


def test_a_plan_that_does_not_cover_the_manifest_fails(s3, bucket, aws_env, finished_run):
    # GIVEN a plan edited to leave out a chunk's sources (every other file of the manifest)
    layout = RunLayout.of(finished_run.delivery)
    plan = _plan(s3, bucket, finished_run)
    dropped = plan["chunks"][1]["sources"].pop(0)
    s3.put_object(Bucket=bucket, Key=layout.plan_key, Body=json.dumps(plan).encode())
    what = (
        f"data file {dropped['file']} is read by no chunk"
        if dropped["pieces"] == 1
        else f"data file {dropped['file']} is not read exactly once"
    )
    _fails_with(s3, bucket, aws_env, finished_run, f"plan: {what}")


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


def test_a_disk_too_small_for_the_identity_hashes_fails_before_the_download(
    s3, bucket, aws_env, finished_run, monkeypatch, tmp_path
):
    """On AWS finalize downloads every child's identity hashes (16 bytes an object) to the task's
    disk: when they would not fit, the run fails naming the config key, and nothing is downloaded."""
    import io
    from collections import namedtuple

    from batch_jobs import finalize as finalize_module
    from batch_jobs.finalize import ReconciliationError
    from batch_jobs.run import load_run
    from batch_jobs.storage import S3Storage
    from inventory_contract.jsonlog import JsonLogger

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(finalize_module.shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 100, 100))
    fetched: list[str] = []
    store = S3Storage(bucket, s3)
    original = store.fetch
    monkeypatch.setattr(store, "fetch", lambda key, path: (fetched.append(key), original(key, path)))
    d = finished_run.delivery
    run = load_run(store, f"s3://{bucket}/{d.manifest_key}", d.source_bucket, d.run_date)
    needs = r"finalize needs 0\.0 GB of disk for the children's identity hashes but has 0\.0 GB free"
    with pytest.raises(ReconciliationError, match=needs + ": raise ephemeralStorageGib"):
        finalize_module.finalize(store, run, CHUNKS, log=JsonLogger(io.StringIO()))
    assert fetched and not any(".identities." in key for key in fetched)  # the rollups were fetched
    layout = RunLayout.of(d)
    assert _json(s3, bucket, layout.run_report_key)["status"] == "failed"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=layout.complete_marker_key)
