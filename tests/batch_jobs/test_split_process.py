"""The two jobs end to end against a moto S3 server, each in its own process."""

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


def _split(env, gen, bucket, chunks: int):
    return run_job(env, "split", *_run_args(gen, bucket), "--chunks", str(chunks))


def _process(env, gen, bucket, index: int):
    return run_job(env, "process", *_run_args(gen, bucket), "--index", str(index))


def _report(s3, bucket: str, gen: GeneratedDelivery) -> dict:
    key = RunLayout.of(gen.delivery).split_report_key
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _read_part(s3, bucket: str, key: str, tmp_path: Path) -> Path:
    local = tmp_path / key.replace("/", "_")
    s3.download_file(bucket, key, str(local))
    return local


def test_round_trip_of_a_versioned_inventory_with_tricky_keys(s3, bucket, aws_env, tmp_path):
    # GIVEN a versioned inventory with every optional field and 30% keys that need decoding
    gen = _deliver(s3, tmp_path, bucket, objects=6000, files=3, tricky_share=0.3)
    layout = RunLayout.of(gen.delivery)

    # WHEN it is split into 4 chunks and every chunk is processed
    split = _split(aws_env, gen, bucket, 4)
    assert split.returncode == 0, split.stderr
    for i in range(4):
        done = _process(aws_env, gen, bucket, i)
        assert done.returncode == 0, done.stderr

    # THEN rows in = rows in chunks = rows in parts, chunks are balanced
    report = _report(s3, bucket, gen)
    assert report["rows"] == gen.truth.rows == 6000
    assert sum(c["rows"] for c in report["chunks"]) == 6000
    assert [f["md5"] for f in report["files"]] == [
        hashlib.md5(s3.get_object(Bucket=bucket, Key=k)["Body"].read()).hexdigest() for k in gen.data_keys
    ]
    sizes = [c["bytes"] for c in report["chunks"]]
    assert max(sizes) <= 1.10 * (sum(sizes) / len(sizes)), sizes
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
    gen = _deliver(s3, tmp_path, bucket, objects=500, files=2)
    layout = RunLayout.of(gen.delivery)

    def snapshot() -> list[bytes]:
        keys = [layout.chunk_key(i) for i in range(3)] + [layout.part_key(i) for i in range(3)]
        return [s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys]

    for _ in range(2):
        assert _split(aws_env, gen, bucket, 3).returncode == 0
        for i in range(3):
            assert _process(aws_env, gen, bucket, i).returncode == 0
        if _ == 0:
            first = snapshot()
    assert snapshot() == first


def test_a_rerun_with_fewer_chunks_leaves_exactly_its_own_parts_and_state(s3, bucket, aws_env, tmp_path):
    # GIVEN a complete run of 3 chunks
    gen = _deliver(s3, tmp_path, bucket, objects=500, files=2)
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
    # WHEN it is rerun with 2 chunks: the split retires the earlier run first
    assert _split(aws_env, gen, bucket, 2).returncode == 0
    assert keys(layout.reports_prefix) == []  # no _COMPLETE while the partition is rewritten
    assert keys(layout.processed_prefix) == [layout.part_key(0), layout.part_key(1)]
    assert keys(layout.part_stats_prefix) == sorted(
        [layout.part_stats_key(i) for i in range(2)]
        + [layout.identity_partial_key(i) for i in range(2)]
        + [layout.rollup_partial_key(r.name, i) for r in ROLLUPS for i in range(2)]
    )
    assert keys(layout.chunk_prefix) == [layout.chunk_key(0), layout.chunk_key(1)]
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


def test_a_child_whose_run_was_replaced_meanwhile_writes_no_part(s3, bucket, aws_env, tmp_path, monkeypatch):
    # GIVEN a split run, and a child converting chunk 0
    import io

    from batch_jobs import process as process_module
    from batch_jobs.run import load_run
    from inventory_contract.jsonlog import JsonLogger

    gen = _deliver(s3, tmp_path, bucket, objects=300, files=2)
    assert _split(aws_env, gen, bucket, 2).returncode == 0
    layout = RunLayout.of(gen.delivery)
    convert = process_module.convert_chunk

    def rerun_splits_meanwhile(*args, **kwargs):
        stats = convert(*args, **kwargs)
        assert _split(aws_env, gen, bucket, 1).returncode == 0  # a forced rerun's splitter
        return stats

    monkeypatch.setattr(process_module, "convert_chunk", rerun_splits_meanwhile)
    from batch_jobs.storage import S3Storage

    store = S3Storage(bucket, s3)
    run = load_run(
        store, f"s3://{bucket}/{gen.delivery.manifest_key}", gen.delivery.source_bucket, gen.delivery.run_date
    )
    # WHEN it finishes, THEN it refuses to write the earlier run's part into the new run
    with pytest.raises(process_module.RunSupersededError, match="a rerun replaced this run's split"):
        process_module.process(store, run, 0, log=JsonLogger(io.StringIO()), workdir=tmp_path)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=layout.processed_prefix)


def test_more_chunks_than_rows_writes_empty_chunks_and_empty_parts(s3, bucket, aws_env, tmp_path):
    gen = _deliver(s3, tmp_path, bucket, objects=5, files=2)
    assert _split(aws_env, gen, bucket, 8).returncode == 0
    report = _report(s3, bucket, gen)
    assert [c["rows"] for c in report["chunks"]] == [1, 1, 1, 1, 1, 0, 0, 0]
    done = _process(aws_env, gen, bucket, 7)
    assert done.returncode == 0, done.stderr
    empty = pl.read_parquet(_read_part(s3, bucket, RunLayout.of(gen.delivery).part_key(7), tmp_path))
    assert_frame_equal(empty, pl.DataFrame(schema=output_schema(columns_for(KNOWN_FIELDS))))


def test_one_chunk_and_an_empty_inventory(s3, bucket, aws_env, tmp_path):
    gen = _deliver(s3, tmp_path / "a", bucket, objects=0, files=2)
    assert _split(aws_env, gen, bucket, 1).returncode == 0
    assert _report(s3, bucket, gen)["chunks"] == [
        {"index": 0, "key": RunLayout.of(gen.delivery).chunk_key(0), "rows": 0, "bytes": 0, "sources": []}
    ]
    done = _process(aws_env, gen, bucket, 0)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stderr.splitlines()[-1])["rows"] == 0
    part = _read_part(s3, bucket, RunLayout.of(gen.delivery).part_key(0), tmp_path)
    assert pl.read_parquet(part).height == 0


def _rewrite_file(s3, bucket: str, gen: GeneratedDelivery, index: int, data: bytes, *, update_manifest: bool):
    """Replace data file ``index`` with ``data``; with update_manifest, the manifest agrees with it."""
    key = gen.data_keys[index]
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    if update_manifest:
        manifest = json.loads(gen.manifest_path.read_bytes())
        manifest["files"][index].update(size=len(data), MD5checksum=hashlib.md5(data).hexdigest())
        s3.put_object(Bucket=bucket, Key=gen.delivery.manifest_key, Body=json.dumps(manifest).encode())


def _original(gen: GeneratedDelivery, index: int) -> bytes:
    return (gen.root / gen.data_keys[index]).read_bytes()


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("md5", r"MD5 is [0-9a-f]{32} but the manifest says [0-9a-f]{32}"),
        (
            "size",
            r"size is more than the \d+ bytes the manifest says|size is \d+ bytes but the manifest says \d+",
        ),
        ("truncated", r"gzip stream is truncated \(it ends inside a member, after \d+ compressed bytes\)"),
        ("corrupt", r"corrupt gzip in the \d+ compressed bytes from offset \d+"),
        ("missing", r"data file listed in the manifest does not exist"),
    ],
)
def test_a_bad_data_file_fails_the_split_naming_the_file(s3, bucket, aws_env, tmp_path, damage, expected):
    gen = _deliver(s3, tmp_path, bucket, objects=3000, files=2)
    data = _original(gen, 1)
    if damage == "md5":  # same size, one byte changed in the gzip trailer's CRC: only MD5 can tell
        _rewrite_file(
            s3, bucket, gen, 1, data[:-8] + bytes([data[-8] ^ 1]) + data[-7:], update_manifest=False
        )
    elif damage == "size":
        _rewrite_file(s3, bucket, gen, 1, data + b"\0", update_manifest=False)
    elif damage == "truncated":
        _rewrite_file(s3, bucket, gen, 1, data[: len(data) // 2], update_manifest=True)
    elif damage == "corrupt":
        middle = len(data) // 2
        _rewrite_file(
            s3, bucket, gen, 1, data[:middle] + b"\xff" * 64 + data[middle + 64 :], update_manifest=True
        )
    else:
        s3.delete_object(Bucket=bucket, Key=gen.data_keys[1])

    result = _split(aws_env, gen, bucket, 2)

    assert result.returncode == 2, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: s3://{bucket}/{gen.data_keys[1]}: ")
    assert re.search(expected, error), error
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=RunLayout.of(gen.delivery).state_prefix)
    blocked = _process(aws_env, gen, bucket, 0)  # the processors never run on an unsplit run
    assert blocked.returncode == 2 and "the splitter has not completed" in blocked.stderr


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
    chunk = f"s3://{bucket}/{layout.chunk_key(0)}"
    where = f"s3://{bucket}/{gen.data_keys[0]}: line 11 (chunk {chunk} line 11)"
    assert f"error: {where}: {expected}" in result.stderr
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=layout.processed_prefix)


def test_a_row_that_is_not_utf8_is_named_by_its_data_file_and_line(s3, bucket, aws_env, tmp_path):
    gen = _deliver(s3, tmp_path, bucket, objects=10, files=1)
    bad = ",".join(_row(StorageClass="STANDARD\udcff")).encode("utf-8", "surrogateescape") + b"\n"
    data = gzip.decompress(_original(gen, 0)) + bad
    _rewrite_file(s3, bucket, gen, 0, gzip.compress(data), update_manifest=True)
    assert _split(aws_env, gen, bucket, 1).returncode == 0
    result = _process(aws_env, gen, bucket, 0)
    assert result.returncode == 2, result.stderr
    assert f"error: s3://{bucket}/{gen.data_keys[0]}: line 11 " in result.stderr
    assert "is not UTF-8 (byte 0xff at column" in result.stderr


def test_a_bad_row_in_a_later_file_and_chunk_is_named_by_its_own_file_and_line(s3, bucket, aws_env, tmp_path):
    # GIVEN two data files of 40 rows each, the second with a bad 30th row, split into 2 chunks
    gen = _deliver(s3, tmp_path, bucket, objects=80, files=2)
    rows = gzip.decompress(_original(gen, 1)).decode().splitlines(keepends=True)
    rows[29] = ",".join(_row(Size="-1")) + "\n"
    _rewrite_file(s3, bucket, gen, 1, gzip.compress("".join(rows).encode()), update_manifest=True)
    assert _split(aws_env, gen, bucket, 2).returncode == 0
    [_, second] = _report(s3, bucket, gen)["chunks"]
    # WHEN the child of the chunk that holds it converts
    result = _process(aws_env, gen, bucket, 1)
    # THEN the error names the delivered file's line, not only the chunk's
    assert result.returncode == 2
    from_first = sum(src["rows"] for src in second["sources"] if src["key"] == gen.data_keys[0])
    assert second["sources"][-1] == {"key": gen.data_keys[1], "first_line": 1, "rows": 40}
    chunk_line = from_first + 30
    assert (
        f"error: s3://{bucket}/{gen.data_keys[1]}: line 30 "
        f"(chunk s3://{bucket}/{RunLayout.of(gen.delivery).chunk_key(1)} line {chunk_line}): field Size"
    ) in result.stderr


def test_a_data_file_that_starts_with_a_byte_order_mark_is_refused(s3, bucket, aws_env, tmp_path):
    gen = _deliver(s3, tmp_path, bucket, objects=20, files=2)
    data = b"\xef\xbb\xbf" + gzip.decompress(_original(gen, 1))
    _rewrite_file(s3, bucket, gen, 1, gzip.compress(data), update_manifest=True)
    result = _split(aws_env, gen, bucket, 1)
    assert result.returncode == 2
    assert (
        f"error: s3://{bucket}/{gen.data_keys[1]}: line 1 starts with a UTF-8 byte-order mark, "
        "which S3 Inventory never writes"
    ) in result.stderr
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=RunLayout.of(gen.delivery).state_prefix)


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
    result = run_job(aws_env, "split", *args, "--chunks", "2")
    assert result.returncode == 2
    assert "but the job was given --source-bucket demo-source-bucket --run-date 1999-01-01" in result.stderr
