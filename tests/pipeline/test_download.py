"""``run-local s3://...``: exactly one delivery is downloaded, with progress, then converted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from inventory_contract.layout import RunLayout
from pipeline.cli import main
from pipeline.synthetic import generate_delivery
from tests.conftest import upload_tree

pytestmark = pytest.mark.slow


def test_run_local_of_an_s3_manifest_downloads_that_delivery_only(s3, bucket, tmp_path, capsys):
    # GIVEN two days of one inventory in the destination bucket
    days = [
        generate_delivery(
            tmp_path / f"day{day}",
            objects=400,
            files=2,
            destination_bucket=bucket,
            timestamp=datetime(2026, 11, day, 1, 0, tzinfo=UTC),
        )
        for day in (23, 24)
    ]
    for gen in days:
        upload_tree(s3, gen.root, bucket)
    wanted = days[1]
    out = tmp_path / "out"
    # WHEN run-local is given the second day's manifest in S3
    code = main(["run-local", f"s3://{bucket}/{wanted.delivery.manifest_key}", "--out", str(out)])
    said = capsys.readouterr()
    # THEN exactly that delivery was downloaded, and converted
    assert code == 0, said.err
    assert "download: 2 of 2 data file(s)" in said.err and "MB/s" in said.err
    root = out / "downloads" / bucket
    downloaded = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert downloaded == sorted(
        [wanted.delivery.manifest_key, wanted.delivery.checksum_key, *wanted.data_keys]
    )
    layout = RunLayout.of(wanted.delivery)
    assert (out / layout.complete_marker_key).is_file()
    assert "objects (rows):   400" in said.out
    # AND a rerun finds the data files already there
    assert (
        main(["run-local", f"s3://{bucket}/{wanted.delivery.manifest_key}", "--out", str(out), "--force"])
        == 0
    )
    assert "download: 0 of 2 data file(s), 0 MB" in capsys.readouterr().err


def test_an_s3_manifest_that_does_not_exist_is_one_line_naming_it(s3, bucket, tmp_path, capsys):
    code = main(
        [
            "run-local",
            f"s3://{bucket}/inventory/src/cfg/2026-11-24T01-00Z/manifest.json",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(
        f"error: MANIFEST s3://{bucket}/inventory/src/cfg/2026-11-24T01-00Z/manifest.json does not exist"
    )
    assert not Path(tmp_path / "o" / "processed").exists()


def test_a_missing_data_file_or_manifest_in_s3_is_bad_input_naming_it(s3, bucket, tmp_path, capsys):
    gen = generate_delivery(tmp_path / "d", objects=100, files=2, destination_bucket=bucket)
    upload_tree(s3, gen.root, bucket)
    s3.delete_object(Bucket=bucket, Key=gen.data_keys[1])
    out = tmp_path / "out"
    code = main(["run-local", f"s3://{bucket}/{gen.delivery.manifest_key}", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    assert err == f"error: s3://{bucket}/{gen.data_keys[1]}: data file listed in the manifest does not exist"
    assert not list((out / "downloads").rglob("*.partial-*"))
