"""The splitter and the processor end to end against a moto S3 server, each in its own process."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from batch_jobs.convert import output_schema
from inventory_contract.layout import RunLayout
from inventory_contract.plan import plan_chunks
from inventory_contract.rollups import ROLLUPS
from inventory_contract.schema import KNOWN_FIELDS, columns_for
from pipeline.synthetic import GeneratedDelivery, generate_delivery
from tests.conftest import run_job, upload_tree

pytestmark = pytest.mark.slow


def _deliver(s3, tmp_path: Path, bucket: str, **kwargs) -> GeneratedDelivery:
    gen = generate_delivery(tmp_path / "root", destination_bucket=bucket, keep_keys=True, **kwargs)
    upload_tree(s3, gen.root, bucket)
    return gen


def _run_args(gen: GeneratedDelivery, bucket: str) -> list[str]:
    d = gen.delivery
    return [
        "--manifest",
        f"s3://{bucket}/{d.manifest_key}",
        "--source-bucket",
        d.source_bucket,
        "--run-date",
        d.run_date,
    ]


def target_for(gen: GeneratedDelivery, chunks: int) -> int:
    """A target chunk size for which the plan of ``gen`` has exactly ``chunks`` chunks."""
    sizes = [f["size"] for f in json.loads(gen.manifest_path.read_bytes())["files"]]
    total = sum(sizes)
    for target in sorted({max(-(-total // n), 1) for n in range(1, 4 * chunks + 2)}, reverse=True):
        if plan_chunks(sizes, target).count == chunks:
            return target
    msg = f"no target chunk size plans {chunks} chunks for files of {sizes} bytes"
    raise AssertionError(msg)


def _split(env, gen, bucket, chunks: int):
    target = target_for(gen, chunks)
    return run_job(
        env, "split", *_run_args(gen, bucket), "--chunks", str(chunks), "--target-chunk-bytes", str(target)
    )


def _process(env, gen, bucket, index: int):
    return run_job(env, "process", *_run_args(gen, bucket), "--index", str(index))


def _plan(s3, bucket: str, gen: GeneratedDelivery) -> dict:
    key = RunLayout.of(gen.delivery).plan_key
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _stats(s3, bucket: str, gen: GeneratedDelivery, index: int) -> dict:
    key = RunLayout.of(gen.delivery).part_stats_key(index)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _read_part(s3, bucket: str, key: str, tmp_path: Path) -> Path:
    local = tmp_path / key.replace("/", "_")
    s3.download_file(bucket, key, str(local))
    return local


def test_round_trip_of_a_versioned_inventory_with_tricky_keys(s3, bucket, aws_env, tmp_path):
    # GIVEN a versioned inventory with every optional field and 30% keys that need decoding
    gen = _deliver(s3, tmp_path, bucket, objects=6000, files=4, tricky_share=0.3)
    layout = RunLayout.of(gen.delivery)

    # WHEN it is planned in 4 chunks (a file each) and every chunk is processed
    split = _split(aws_env, gen, bucket, 4)
    assert split.returncode == 0, split.stderr
    for i in range(4):
        done = _process(aws_env, gen, bucket, i)
        assert done.returncode == 0, done.stderr

    # THEN the plan reads every file once, balanced; rows counted in = rows in the parts
    plan = _plan(s3, bucket, gen)
    assert [f["md5"] for f in plan["files"]] == [
        hashlib.md5(s3.get_object(Bucket=bucket, Key=k)["Body"].read()).hexdigest() for k in gen.data_keys
    ]
    sizes = [c["compressed_bytes"] for c in plan["chunks"]]
    assert max(sizes) <= 1.5 * (sum(sizes) / len(sizes)), sizes
    counted = [_stats(s3, bucket, gen, i)["rows_counted"] for i in range(4)]
    assert sum(counted) == gen.truth.rows == 6000
    parts = [_read_part(s3, bucket, layout.part_key(i), tmp_path) for i in range(4)]
    frame = pl.concat([pl.read_parquet(p) for p in parts])
    assert frame.height == 6000

    # keys decode exactly, sizes add up, delete markers are kept with null size
    assert Counter(frame["key"].to_list()) == Counter(gen.truth.keys)
    assert frame["size"].sum() == gen.truth.total_size
    markers = frame.filter(pl.col("is_delete_marker"))
    assert markers.height == gen.truth.delete_markers > 0
    assert markers["size"].null_count() == markers.height
    assert markers["e_tag"].null_count() == markers.height
    by_class = frame.group_by("storage_class").agg(pl.col("size").sum()).drop_nulls("storage_class")
    assert dict(by_class.iter_rows()) == dict(gen.truth.size_by_class)

    # the schema is the contract's, in the manifest's order; timestamps INT64 millis UTC
    assert frame.schema == output_schema(columns_for(KNOWN_FIELDS))
    arrow = pq.read_schema(parts[0])
    assert str(arrow.field("last_modified_date").type) == "timestamp[ms, tz=UTC]"
    parquet_column = pq.ParquetFile(parts[0]).metadata.schema.column(6)
    assert (parquet_column.name, parquet_column.physical_type) == ("last_modified_date", "INT64")
    meta = pq.ParquetFile(parts[0]).metadata.row_group(0).column(6)
    assert meta.compression == "ZSTD" and meta.statistics.has_min_max

    # part stats are written for reconciliation
    stats = [
        json.loads(s3.get_object(Bucket=bucket, Key=layout.part_stats_key(i))["Body"].read())
        for i in range(4)
    ]
    assert sum(s["rows"] for s in stats) == 6000
    assert sum(s["size_sum"] for s in stats) == gen.truth.total_size
    earliest = frame["last_modified_date"].min()
    assert min(s["min_last_modified_date"] for s in stats) == earliest.isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")


def test_rerunning_split_and_process_rewrites_identical_objects(s3, bucket, aws_env, tmp_path):
    gen = _deliver(s3, tmp_path, bucket, objects=500, files=3)
    layout = RunLayout.of(gen.delivery)

    def snapshot() -> list[bytes]:  # the plan, less how long it took, and the parts
        keys = [layout.plan_key] + [layout.part_key(i) for i in range(3)]
        found = [s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys]
        return [re.sub(rb'"duration_seconds": [0-9.]+', b"", found[0]), *found[1:]]

    for _ in range(2):
        assert _split(aws_env, gen, bucket, 3).returncode == 0
        for i in range(3):
            assert _process(aws_env, gen, bucket, i).returncode == 0
        if _ == 0:
            first = snapshot()
    assert snapshot() == first


def test_a_rerun_with_fewer_chunks_leaves_exactly_its_own_parts_and_state(s3, bucket, aws_env, tmp_path):
    # GIVEN a complete run of 3 chunks
    gen = _deliver(s3, tmp_path, bucket, objects=500, files=3)
    layout = RunLayout.of(gen.delivery)

    def keys(prefix: str) -> list[str]:
        return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]

    def run(chunks: int) -> None:
        assert _split(aws_env, gen, bucket, chunks).returncode == 0
        for i in range(chunks):
            assert _process(aws_env, gen, bucket, i).returncode == 0
        done = run_job(aws_env, "finalize", *_run_args(gen, bucket), "--chunks", str(chunks))
        assert done.returncode == 0, done.stderr

    run(3)
    assert len(keys(layout.processed_prefix)) == 3 and keys(layout.reports_prefix)
    assert all(keys(layout.rollup_prefix(r.name)) == [layout.rollup_key(r.name)] for r in ROLLUPS)
    pages = [layout.latest_storage_report_key, layout.storage_report_key]
    assert keys("reports/") == pages  # finalize's storage report, and the newest's
    # WHEN it is rerun with 2 chunks: the split retires the earlier run first
    assert _split(aws_env, gen, bucket, 2).returncode == 0
    assert keys(layout.reports_prefix) == []  # no _COMPLETE while the partition is rewritten
    assert keys("reports/") == []  # nor a page showing the run being replaced
    assert keys(layout.processed_prefix) == [layout.part_key(0), layout.part_key(1)]
    assert keys(layout.part_stats_prefix) == sorted(
        [layout.part_stats_key(i) for i in range(2)]
        + [layout.identity_partial_key(i) for i in range(2)]
        + [layout.rollup_partial_key(r.name, i) for r in ROLLUPS for i in range(2)]
    )
    assert all(keys(layout.rollup_prefix(r.name)) == [] for r in ROLLUPS)  # no earlier run's rollups shown
    # THEN the rerun completes and reconciles, with exactly its own parts
    for i in range(2):
        assert _process(aws_env, gen, bucket, i).returncode == 0
    done = run_job(aws_env, "finalize", *_run_args(gen, bucket), "--chunks", "2")
    assert done.returncode == 0, done.stderr
    report = json.loads(s3.get_object(Bucket=bucket, Key=layout.run_report_key)["Body"].read())
    assert (report["status"], report["chunks"], report["rows_out"]) == ("complete", 2, 500)
    body = s3.get_object(Bucket=bucket, Key=layout.rollup_key("storage_class"))["Body"].read()
    classes = pl.read_parquet(io.BytesIO(body))
    assert classes["objects"].sum() == 500  # the rerun's rollups, not the earlier run's added in
    assert keys("reports/") == pages
    page = s3.get_object(Bucket=bucket, Key=layout.latest_storage_report_key)
    assert (
        page["ContentType"] == "text/html; charset=utf-8" and b"One complete run only" in page["Body"].read()
    )


def test_a_child_whose_run_was_replaced_meanwhile_writes_no_part(s3, bucket, aws_env, tmp_path, monkeypatch):
    # GIVEN a split run, and a child converting chunk 0
    import io

    from batch_jobs import process as process_module
    from batch_jobs.run import load_run
    from inventory_contract.jsonlog import JsonLogger

    gen = _deliver(s3, tmp_path, bucket, objects=300, files=2)
    assert _split(aws_env, gen, bucket, 2).returncode == 0
    layout = RunLayout.of(gen.delivery)
    convert = process_module.write_part

    def rerun_splits_meanwhile(*args, **kwargs):
        stats = convert(*args, **kwargs)
        assert _split(aws_env, gen, bucket, 1).returncode == 0  # a forced rerun's splitter
        return stats

    monkeypatch.setattr(process_module, "write_part", rerun_splits_meanwhile)
    from batch_jobs.storage import S3Storage

    store = S3Storage(bucket, s3)
    run = load_run(
        store, f"s3://{bucket}/{gen.delivery.manifest_key}", gen.delivery.source_bucket, gen.delivery.run_date
    )
    # WHEN it finishes, THEN it refuses to write the earlier run's part into the new run
    with pytest.raises(process_module.RunSupersededError, match="a rerun replaced this run's plan"):
        process_module.process(store, run, 0, log=JsonLogger(io.StringIO()), workdir=tmp_path)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=layout.processed_prefix)


def test_pieces_that_hold_no_row_write_empty_parts(s3, bucket, aws_env, tmp_path):
    # GIVEN one data file of 5 rows cut into 8 pieces: some ranges hold no row's first byte
    gen = _deliver(s3, tmp_path, bucket, objects=5, files=1)
    assert _split(aws_env, gen, bucket, 8).returncode == 0
    plan = _plan(s3, bucket, gen)
    assert [len(c["sources"]) for c in plan["chunks"]] == [1] * 8 and plan["files"][0]["pieces"] == 8
    for i in range(8):
        done = _process(aws_env, gen, bucket, i)
        assert done.returncode == 0, done.stderr
    stats = [_stats(s3, bucket, gen, i) for i in range(8)]
    assert sum(s["rows"] for s in stats) == 5 and stats[-1]["sources"][0]["file_rows"] == 5
    empty = next(i for i, s in enumerate(stats) if s["rows"] == 0)
    part = pl.read_parquet(_read_part(s3, bucket, RunLayout.of(gen.delivery).part_key(empty), tmp_path))
    assert_frame_equal(part, pl.DataFrame(schema=output_schema(columns_for(KNOWN_FIELDS))))


def test_one_chunk_and_an_empty_inventory(s3, bucket, aws_env, tmp_path):
    gen = _deliver(s3, tmp_path / "a", bucket, objects=0, files=2)
    assert _split(aws_env, gen, bucket, 1).returncode == 0
    [chunk] = _plan(s3, bucket, gen)["chunks"]
    assert [(s["file"], s["piece"], s["pieces"]) for s in chunk["sources"]] == [(0, 0, 1), (1, 0, 1)]
    done = _process(aws_env, gen, bucket, 0)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stderr.splitlines()[-1])["rows"] == 0
    part = _read_part(s3, bucket, RunLayout.of(gen.delivery).part_key(0), tmp_path)
    assert pl.read_parquet(part).height == 0


def test_a_count_other_than_the_plans_is_refused(s3, bucket, aws_env, tmp_path):
    # the trigger and the splitter plan with one function; a job given another count is wrong input
    gen = _deliver(s3, tmp_path, bucket, objects=300, files=2)
    target = target_for(gen, 2)
    result = run_job(
        aws_env, "split", *_run_args(gen, bucket), "--chunks", "5", "--target-chunk-bytes", str(target)
    )
    assert result.returncode == 2
    assert (
        f"the plan has 2 chunks at {target} bytes a chunk, but the job was given --chunks 5" in result.stderr
    )


def _rewrite_file(s3, bucket: str, gen: GeneratedDelivery, index: int, data: bytes, *, update_manifest: bool):
    """Replace data file ``index`` with ``data``; with update_manifest, the manifest agrees with it."""
    key = gen.data_keys[index]
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    if update_manifest:
        manifest = json.loads(gen.manifest_path.read_bytes())
        manifest["files"][index].update(size=len(data), MD5checksum=hashlib.md5(data).hexdigest())
        s3.put_object(Bucket=bucket, Key=gen.delivery.manifest_key, Body=json.dumps(manifest).encode())
        gen.manifest_path.write_text(json.dumps(manifest))  # what target_for plans from


def _original(gen: GeneratedDelivery, index: int) -> bytes:
    return (gen.root / gen.data_keys[index]).read_bytes()


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("size", r"size is \d+ bytes but the manifest says \d+"),
        ("missing", r"data file listed in the manifest does not exist"),
    ],
)
def test_a_data_file_missing_or_of_another_size_fails_the_split_naming_it(
    s3, bucket, aws_env, tmp_path, damage, expected
):
    gen = _deliver(s3, tmp_path, bucket, objects=3000, files=2)
    if damage == "size":
        _rewrite_file(s3, bucket, gen, 1, _original(gen, 1) + b"\0", update_manifest=False)
    else:
        s3.delete_object(Bucket=bucket, Key=gen.data_keys[1])

    result = _split(aws_env, gen, bucket, 2)

    assert result.returncode == 2, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: s3://{bucket}/{gen.data_keys[1]}: ")
    assert re.search(expected, error), error
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=RunLayout.of(gen.delivery).state_prefix)
    blocked = _process(aws_env, gen, bucket, 0)  # the processors never run on an unplanned run
    assert blocked.returncode == 2 and "the splitter has not completed" in blocked.stderr


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("md5", r"MD5 is [0-9a-f]{32} but the manifest says [0-9a-f]{32}"),
        ("truncated", r"gzip stream is truncated \(it ends inside a member, after \d+ compressed bytes\)"),
        ("corrupt", r"corrupt gzip in the \d+ compressed bytes from offset \d+"),
        ("byte-order mark", r"line 1 starts with a UTF-8 byte-order mark, which S3 Inventory never writes"),
    ],
)
def test_a_bad_data_file_fails_the_child_that_reads_it_naming_the_file(
    s3, bucket, aws_env, tmp_path, damage, expected
):
    gen = _deliver(s3, tmp_path, bucket, objects=3000, files=2)
    data = _original(gen, 1)
    if damage == "md5":  # same size, one byte changed in the gzip trailer's CRC: only MD5 can tell
        _rewrite_file(
            s3, bucket, gen, 1, data[:-8] + bytes([data[-8] ^ 1]) + data[-7:], update_manifest=False
        )
    elif damage == "truncated":
        _rewrite_file(s3, bucket, gen, 1, data[: len(data) // 2], update_manifest=True)
    elif damage == "corrupt":
        middle = len(data) // 2
        _rewrite_file(
            s3, bucket, gen, 1, data[:middle] + b"\xff" * 64 + data[middle + 64 :], update_manifest=True
        )
    else:
        _rewrite_file(
            s3, bucket, gen, 1, gzip.compress(b"\xef\xbb\xbf" + gzip.decompress(data)), update_manifest=True
        )
    assert _split(aws_env, gen, bucket, 2).returncode == 0
    reader = next(i for i, c in enumerate(_plan(s3, bucket, gen)["chunks"]) if c["sources"][0]["file"] == 1)

    result = _process(aws_env, gen, bucket, reader)

    assert result.returncode == 2, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: s3://{bucket}/{gen.data_keys[1]}: ")
    assert re.search(expected, error), error
    layout = RunLayout.of(gen.delivery)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=layout.part_key(reader))
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=layout.part_stats_key(reader))


def _hand_made_delivery(s3, bucket: str, tmp_path: Path, lines: list[str]) -> GeneratedDelivery:
    gen = _deliver(s3, tmp_path, bucket, objects=10, files=1)
    data = gzip.decompress(_original(gen, 0)) + "".join(lines).encode()
    _rewrite_file(s3, bucket, gen, 0, gzip.compress(data), update_manifest=True)
    return gen


def _row(**changes: str) -> list[str]:
    values = dict.fromkeys(KNOWN_FIELDS, "")
    values.update(Bucket="demo-source-bucket", Key="ok", IsLatest="true", IsDeleteMarker="false", Size="1")
    values.update(LastModifiedDate="2024-01-01T00:00:00.000Z", StorageClass="STANDARD")
    values.update(changes)
    return [f'"{values[f]}"' for f in KNOWN_FIELDS]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (",".join(_row(Size="12x")), "field Size (size) is not an integer: '12x'"),
        (",".join(_row(Size="-5")), "field Size (size) is negative: '-5'"),
        (",".join(_row(Key="")), "field Key (key) is empty: S3 keys are 1 to 1,024 bytes: ''"),
        (
            ",".join([_row()[0], "", *_row()[2:]]),
            "field Key (key) is empty: S3 keys are 1 to 1,024 bytes: ''",
        ),
        (",".join(_row(Key="caf%FF")), "field Key (key) does not URL-decode to UTF-8: 'caf%FF'"),
        (
            ",".join(_row(LastModifiedDate="yesterday")),
            "field LastModifiedDate (last_modified_date) is not a UTC timestamp",
        ),
        (",".join(_row(IsLatest="maybe")), "field IsLatest (is_latest) is not true or false: 'maybe'"),
        (",".join(_row()[:5]), "5 fields, expected 21"),
        (",".join([*_row(), '"extra"']), "22 fields, expected 21"),
    ],
)
def test_a_malformed_row_fails_the_child_naming_the_data_file_line_and_value(
    s3, bucket, aws_env, tmp_path, line, expected
):
    gen = _hand_made_delivery(s3, bucket, tmp_path, [line + "\n", ",".join(_row()) + "\n"])
    assert _split(aws_env, gen, bucket, 1).returncode == 0
    result = _process(aws_env, gen, bucket, 0)
    layout = RunLayout.of(gen.delivery)
    assert result.returncode == 2, result.stderr
    assert f"error: s3://{bucket}/{gen.data_keys[0]}: line 11: {expected}" in result.stderr
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=layout.processed_prefix)


def test_a_row_that_is_not_utf8_is_named_by_its_data_file_and_line(s3, bucket, aws_env, tmp_path):
    gen = _deliver(s3, tmp_path, bucket, objects=10, files=1)
    bad = ",".join(_row(StorageClass="STANDARD\udcff")).encode("utf-8", "surrogateescape") + b"\n"
    data = gzip.decompress(_original(gen, 0)) + bad
    _rewrite_file(s3, bucket, gen, 0, gzip.compress(data), update_manifest=True)
    assert _split(aws_env, gen, bucket, 1).returncode == 0
    result = _process(aws_env, gen, bucket, 0)
    assert result.returncode == 2, result.stderr
    assert (
        f"error: s3://{bucket}/{gen.data_keys[0]}: line 11: is not UTF-8 (byte 0xff at column"
        in result.stderr
    )


def test_a_bad_row_in_a_later_file_of_a_chunk_is_named_by_its_own_file_and_line(
    s3, bucket, aws_env, tmp_path
):
    # GIVEN two data files of 40 rows each in one chunk, the second with a bad 30th row
    gen = _deliver(s3, tmp_path, bucket, objects=80, files=2)
    rows = gzip.decompress(_original(gen, 1)).decode().splitlines(keepends=True)
    rows[29] = ",".join(_row(Size="-1")) + "\n"
    _rewrite_file(s3, bucket, gen, 1, gzip.compress("".join(rows).encode()), update_manifest=True)
    assert _split(aws_env, gen, bucket, 1).returncode == 0
    # WHEN the child converts THEN the error names the delivered file and its line
    result = _process(aws_env, gen, bucket, 0)
    assert result.returncode == 2
    assert (
        f"error: s3://{bucket}/{gen.data_keys[1]}: line 30: field Size (size) is negative: '-1'"
        in result.stderr
    )


def test_a_bad_row_in_a_later_piece_is_named_by_the_files_line(s3, bucket, aws_env, tmp_path):
    # GIVEN one data file of 400 rows with a bad 350th row, cut into 4 pieces
    gen = _deliver(s3, tmp_path, bucket, objects=400, files=1)
    rows = gzip.decompress(_original(gen, 0)).decode().splitlines(keepends=True)
    rows[349] = ",".join(_row(Size="-1")) + "\n"
    _rewrite_file(s3, bucket, gen, 0, gzip.compress("".join(rows).encode()), update_manifest=True)
    assert _split(aws_env, gen, bucket, 4).returncode == 0
    # WHEN every piece is converted THEN only the piece that holds it fails, naming the file's line
    failed = [r for r in (_process(aws_env, gen, bucket, i) for i in range(4)) if r.returncode]
    assert len(failed) == 1 and failed[0].returncode == 2
    assert (
        f"error: s3://{bucket}/{gen.data_keys[0]}: line 350: field Size (size) is negative"
        in failed[0].stderr
    )


def test_unquoted_empty_fields_are_accepted_as_null(s3, bucket, aws_env, tmp_path):
    row = _row(Key="unquoted+last")
    row[-1] = ""  # LifecycleExpirationDate written as an unquoted empty field
    row[2] = ""  # VersionId too
    gen = _hand_made_delivery(s3, bucket, tmp_path, [",".join(row) + "\n"])
    assert _split(aws_env, gen, bucket, 1).returncode == 0
    result = _process(aws_env, gen, bucket, 0)
    assert result.returncode == 0, result.stderr
    frame = pl.read_parquet(_read_part(s3, bucket, RunLayout.of(gen.delivery).part_key(0), tmp_path))
    last = frame.filter(pl.col("key") == "unquoted last")
    assert last["lifecycle_expiration_date"].to_list() == [None]
    assert last["version_id"].to_list() == [None]


def test_job_parameters_must_match_the_manifest_key(s3, bucket, aws_env, tmp_path):
    gen = _deliver(s3, tmp_path, bucket, objects=10, files=1)
    args = _run_args(gen, bucket)
    args[args.index("--run-date") + 1] = "1999-01-01"
    result = run_job(aws_env, "split", *args, "--chunks", "2", "--target-chunk-bytes", "1024")
    assert result.returncode == 2
    assert "but the job was given --source-bucket demo-source-bucket --run-date 1999-01-01" in result.stderr
