"""One contract, two backends: S3 (a moto server on loopback) and a local folder behave alike."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batch_jobs.storage import (
    LOCAL_INPUTS_ENV,
    LOCAL_OUT_ENV,
    LocalStorage,
    MissingObjectError,
    S3Storage,
    Storage,
    storage_for,
)

MiB = 1024 * 1024


@pytest.fixture(params=["s3", "local"])
def store(request, tmp_path) -> Storage:
    if request.param == "s3":
        s3 = request.getfixturevalue("s3")
        return S3Storage(request.getfixturevalue("bucket"), s3)
    inputs = tmp_path / "delivery"
    return LocalStorage("dest", out=tmp_path / "out", inputs=inputs)


def test_write_read_open_tail(store: Storage) -> None:
    store.write("run-state/a.json", b'{"x": 1}')
    assert store.read("run-state/a.json") == b'{"x": 1}'
    with store.open("run-state/a.json") as stream:
        assert stream.read() == b'{"x": 1}'
    assert store.tail("run-state/a.json", 3) == b" 1}"
    assert store.tail("run-state/a.json", 100) == b'{"x": 1}'


def test_a_missing_key_is_missing_for_every_read(store: Storage, tmp_path: Path) -> None:
    for read in (
        store.read,
        store.open,
        lambda k: store.tail(k, 4),
        store.size,
        lambda k: store.fetch(k, tmp_path / "x"),
    ):
        with pytest.raises(MissingObjectError, match="nothing/here does not exist"):
            read("nothing/here")
    assert store.version("nothing/here") is None


def test_size_of_an_object_and_of_a_missing_one(store: Storage) -> None:
    store.write("inventory/b/c/data/x.csv.gz", b"12345")
    assert store.size("inventory/b/c/data/x.csv.gz") == 5
    with pytest.raises(MissingObjectError, match=r"inventory/b/c/data/gone\.csv\.gz does not exist"):
        store.size("inventory/b/c/data/gone.csv.gz")


def test_fetch_store_list_delete_and_version(store: Storage, tmp_path: Path) -> None:
    local = tmp_path / "part.parquet"
    local.write_bytes(b"parquet bytes")
    store.store(local, "processed/p=1/part-000000.parquet")
    store.write("processed/p=1/part-000001.parquet", b"12")
    store.write("processed/p=10/part-000000.parquet", b"other partition")
    assert list(store.list("processed/p=1/")) == [
        ("processed/p=1/part-000000.parquet", 13),
        ("processed/p=1/part-000001.parquet", 2),
    ]
    fetched = tmp_path / "fetched"
    store.fetch("processed/p=1/part-000000.parquet", fetched)
    assert fetched.read_bytes() == b"parquet bytes"
    before = store.version("processed/p=1/part-000001.parquet")
    store.write("processed/p=1/part-000001.parquet", b"345")
    after = store.version("processed/p=1/part-000001.parquet")
    assert before and after and before != after
    store.delete("processed/p=1/part-000001.parquet")
    assert [key for key, _ in store.list("processed/p=1/")] == ["processed/p=1/part-000000.parquet"]


def test_local_reads_fall_back_on_the_delivery_and_never_write_into_it(tmp_path: Path) -> None:
    inputs, out = tmp_path / "delivery", tmp_path / "out"
    (inputs / "inventory").mkdir(parents=True)
    (inputs / "inventory" / "manifest.json").write_bytes(b"{}")
    store = LocalStorage("dest", out=out, inputs=inputs)
    assert store.read("inventory/manifest.json") == b"{}"
    assert store.uri("inventory/manifest.json") == str(inputs / "inventory" / "manifest.json")
    store.write("run-state/x.json", b"1")
    assert sorted(p.relative_to(inputs).as_posix() for p in inputs.rglob("*") if p.is_file()) == [
        "inventory/manifest.json"
    ]
    assert list(store.list("inventory/")) == []  # listings are of what the run wrote


def test_the_backend_is_chosen_once_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(LOCAL_OUT_ENV, raising=False)
    assert isinstance(storage_for("s3://dest/inventory/m.json"), S3Storage)
    monkeypatch.setenv(LOCAL_OUT_ENV, str(tmp_path / "out"))
    monkeypatch.setenv(LOCAL_INPUTS_ENV, str(tmp_path / "in"))
    local = storage_for("s3://dest/inventory/m.json")
    assert isinstance(local, LocalStorage)
    assert (local.bucket, local.out, local.inputs) == ("dest", tmp_path / "out", tmp_path / "in")


def test_json_is_written_as_json_and_local_files_follow_the_umask(store: Storage, tmp_path: Path) -> None:
    from batch_jobs.storage import write_json

    write_json(store, "run-reports/p/_COMPLETE", {"rows": 1})
    if isinstance(store, S3Storage):
        head = store.client.head_object(Bucket=store.bucket, Key="run-reports/p/_COMPLETE")
        assert head["ContentType"] == "application/json"
    else:
        assert isinstance(store, LocalStorage)
        mask = os.umask(0o022)
        os.umask(mask)
        assert (store.out / "run-reports/p/_COMPLETE").stat().st_mode & 0o777 == 0o666 & ~mask


def test_what_a_run_writes_is_never_read_from_the_delivery_folder(tmp_path: Path) -> None:
    inputs, out = tmp_path / "delivery", tmp_path / "out"
    stale = inputs / "run-state" / "source_bucket=b" / "run_date=d" / "split-report.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")  # an old run's state in a downloaded copy of the bucket
    store = LocalStorage("dest", out=out, inputs=inputs)
    key = "run-state/source_bucket=b/run_date=d/split-report.json"
    with pytest.raises(MissingObjectError, match=str(out / key)):
        store.read(key)
    assert store.uri(key) == str(out / key)


@pytest.mark.parametrize("method", ["write", "create"])
def test_a_local_write_that_fails_leaves_no_partial_file(tmp_path: Path, monkeypatch, method: str) -> None:
    store = LocalStorage("dest", tmp_path / "out")
    store.write("reports/a.html", b"the page before")

    def full(self: Path, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError, match="No space left"):
        getattr(store, method)("reports/b.html" if method == "create" else "reports/a.html", b"x" * 100)
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "out" / "reports").iterdir()) == ["a.html"]
    assert store.read("reports/a.html") == b"the page before"
