"""The local pipeline end to end: the real handler and jobs against the stand-in."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from inventory_contract.layout import RunLayout
from inventory_contract.schema import KNOWN_FIELDS, ColumnType, table_columns
from pipeline.cli import main
from pipeline.synthetic import generate_delivery

pytestmark = pytest.mark.slow

ARROW_TYPES = {
    ColumnType.STRING: pa.large_string(),
    ColumnType.INT64: pa.int64(),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.TIMESTAMP_MS_UTC: pa.timestamp("ms", tz="UTC"),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("bucket")
    return generate_delivery(root, objects=40_000, files=3, tricky_share=0.2, keep_keys=True)


def test_run_local_converts_every_row_exactly_once(generated, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run-local", str(generated.manifest_path), "--out", str(out), "--target-chunk-mib", "1"])
    assert code == 0, capsys.readouterr().err
    layout = RunLayout.of(generated.delivery)
    parts = sorted((out / layout.processed_prefix).glob("*.parquet"))
    plan = json.loads((out / layout.plan_key).read_text())
    assert len(parts) == plan["chunk_count"] >= 3
    assert [p.name for p in parts] == [f"part-{i:06d}.parquet" for i in range(len(parts))]
    assert (out / layout.claim_key).is_file()
    assert len(list((out / layout.state_prefix / "parts").glob("*.json"))) == len(parts)
    run_report = json.loads((out / layout.run_report_key).read_text())  # finalize ran locally too
    assert (run_report["status"], run_report["rows_in"], run_report["rows_out"]) == (
        "complete",
        40_000,
        40_000,
    )
    assert (out / layout.complete_marker_key).is_file()
    printed = capsys.readouterr().out
    assert "reconciliation:   complete: rows in 40,000 = rows out 40,000" in printed
    assert printed.splitlines()[-4:-1] == [  # then a query to try, run in the demo's test
        "next:",
        f"  Parquet:    {out / layout.processed_prefix}",
        f"  run report: {out / layout.run_report_key}",
    ]

    # pyarrow: the schema is exactly the contract's, every key decoded exactly, once
    table = ds.dataset(parts, format="parquet").to_table()
    expected = pa.schema([(c.name, ARROW_TYPES[c.type]) for c in table_columns(KNOWN_FIELDS)])
    assert table.schema.remove_metadata() == expected
    assert Counter(table.column("key").to_pylist()) == Counter(generated.truth.keys)

    # DuckDB: sums, delete markers with null size
    glob = str(out / layout.processed_prefix / "*.parquet")
    [(rows, total, markers, marker_sizes)] = duckdb.sql(
        f"SELECT count(*), sum(size), count(*) FILTER (WHERE is_delete_marker), "
        f"count(size) FILTER (WHERE is_delete_marker) FROM read_parquet('{glob}')"
    ).fetchall()
    assert (rows, total, markers, marker_sizes) == (
        generated.truth.rows,
        generated.truth.total_size,
        generated.truth.delete_markers,
        0,
    )


def test_a_complete_run_is_not_run_again_without_force(generated, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["run-local", str(generated.manifest_path), "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    part = out / RunLayout.of(generated.delivery).part_key(0)
    first = part.read_bytes()

    assert main(args) == 0
    said = capsys.readouterr()
    assert f"demo-source-bucket/2026-11-24 is complete in {out}" in said.out
    assert "nothing was run. Use --force to run it again." in said.out
    assert "trigger:" not in said.err

    assert main([*args, "--force"]) == 0
    assert "trigger: submitted run demo-source-bucket/2026-11-24/g1" in capsys.readouterr().err
    assert part.read_bytes() == first  # a rerun rewrites identical parts


def test_a_run_that_lost_a_rollup_table_is_not_done_and_is_run_again(generated, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["run-local", str(generated.manifest_path), "--out", str(out)]
    assert main(args) == 0
    layout = RunLayout.of(generated.delivery)
    table = out / layout.rollup_key("age")
    size = table.stat().st_size
    table.unlink()
    capsys.readouterr()

    assert main(args) == 0  # not "complete": the plain command converts it again

    assert "trigger: submitted run" in capsys.readouterr().err
    assert table.stat().st_size == size
    marker = json.loads((out / layout.complete_marker_key).read_text())
    assert set(marker["rollups"]) == {
        layout.rollup_key(r) for r in ("storage_class", "prefix", "age", "encryption")
    }


def test_a_data_file_with_the_wrong_md5_fails_and_leaves_no_parquet(generated, tmp_path, capsys):
    root = tmp_path / "bucket"
    import shutil

    shutil.copytree(generated.root, root)
    manifest_path = root / generated.delivery.manifest_key
    manifest = json.loads(manifest_path.read_bytes())
    manifest["files"][1]["MD5checksum"] = "0" * 32
    raw = json.dumps(manifest).encode()
    manifest_path.write_bytes(raw)
    (root / generated.delivery.checksum_key).write_text(hashlib.md5(raw).hexdigest())
    out = tmp_path / "out"

    code = main(["run-local", str(manifest_path), "--out", str(out)])

    err = capsys.readouterr().err
    assert code == 2  # bad input, found by the child that read the file to its end
    assert re.search(
        r"s3inv-process-demo-source-bucket-[0-9a-f]{8}-20261124-g1 child \d+ failed \(exit 2\)", err
    )
    assert f"{manifest['files'][1]['key']}: MD5 is " in err and f"but the manifest says {'0' * 32}" in err
    assert not (out / "processed").exists()
    assert not list(out.rglob("*.parquet"))


def test_a_manifest_outside_a_bucket_layout_is_reported(tmp_path, capsys, generated):
    lonely = tmp_path / "manifest.json"
    lonely.write_bytes(generated.manifest_path.read_bytes())
    assert main(["run-local", str(lonely), "--out", str(tmp_path / "out")]) == 2
    assert "no parent folder holds its first data file" in capsys.readouterr().err


def test_the_demo_summary_matches_the_generated_inventory(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)  # the suggested query names this interpreter
    out = tmp_path / "demo"
    code = main(
        ["demo", "--objects", "30000", "--out", str(out), "--target-chunk-mib", "1", "--workers", "2"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    truth = generate_delivery(tmp_path / "again", objects=30000, files=4, destination_bucket="x").truth
    assert (summary["rows"], summary["delete_markers"], summary["total_size"]) == (
        truth.rows,
        truth.delete_markers,
        truth.total_size,
    )
    assert summary["size_by_class"] == dict(truth.size_by_class)
    assert summary["parts"] >= 2
    assert f"objects (rows):   {truth.rows:,}" in printed
    assert f"total bytes:      {truth.total_size:,}" in printed
    assert Path(summary["location"]).is_dir()

    # WHEN the user runs the query the demo ends with, THEN it answers from the demo's Parquet
    layout = RunLayout(source_bucket="demo-source-bucket", run_date="2026-11-24")
    ending = printed.splitlines()[-4:]
    assert ending[:3] == [
        "next:",
        f"  Parquet:    {out / layout.processed_prefix}",
        f"  run report: {out / layout.run_report_key}",
    ]
    assert ending[3].startswith("  try:        ")
    query = ending[3].removeprefix("  try:        ")
    done = subprocess.run(query, shell=True, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    cells = [[c.strip("│ ") for c in line.split("┆")] for line in done.stdout.splitlines()]
    by_class = {c[0]: (int(c[1]), int(c[2])) for c in cells if len(c) == 3 and c[1].isdigit()}
    assert {cls: size for cls, (_, size) in by_class.items()} == {**truth.size_by_class, "null": 0}
    assert by_class["null"][0] == truth.delete_markers  # a delete marker has no storage class
    assert sum(objects for objects, _ in by_class.values()) == truth.rows
