"""Repeated objects: each child's identity hashes and the run-wide merge in hash-range buckets."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from batch_jobs import duplicates
from batch_jobs.duplicates import Repeats, merge, write_partial

ROOT = Path(__file__).resolve().parents[2]


def _part(tmp_path: Path, name: str, identities: list[tuple[str, str | None]]) -> Path:
    path = tmp_path / f"{name}.parquet"
    pl.DataFrame(identities, schema={"key": pl.String, "version_id": pl.String}, orient="row").write_parquet(
        path
    )
    return path


PARTS = {
    # chunk 0 lists a twice and shares c/v1 with chunk 2; chunk 1 lists b three times; a null version
    # id equals a null one, and differs from a version id
    0: [("a", None), ("a", None), ("c", "v1"), ("d", None), ("d", "v1")],
    1: [("b", None), ("b", None), ("b", None), ("e", None)],
    2: [("c", "v1"), ("f", None), *[(f"g{i}", None) for i in range(50)]],
}


def _oracle() -> tuple[int, int]:
    listed = Counter(identity for rows in PARTS.values() for identity in rows)
    repeated = {identity: n for identity, n in listed.items() if n > 1}
    return len(repeated), sum(n - 1 for n in repeated.values())


@pytest.mark.parametrize("bucket_rows", [1_000_000, 7, 1], ids=["one bucket", "several", "one row each"])
def test_the_run_wide_count_matches_plain_python_whatever_the_buckets(tmp_path, monkeypatch, bucket_rows):
    monkeypatch.setattr(duplicates, "BUCKET_ROWS", bucket_rows)
    per_chunk, partials = [], []
    for index, rows in PARTS.items():
        partial = tmp_path / f"ids-{index}.parquet"
        per_chunk.append(write_partial(_part(tmp_path, f"part-{index}", rows), partial))
        partials.append(partial)
    # each child names what its own part repeats
    assert [(r.identities, r.extra_rows) for r in per_chunk] == [(1, 1), (1, 2), (0, 0)]
    assert per_chunk[0].examples == [{"key": "a", "version_id": None, "listed": 2}]
    assert per_chunk[1].examples == [{"key": "b", "version_id": None, "listed": 3}]
    # the merge counts the whole run, as plain Python does, and names the chunks sharing c/v1
    found = merge(partials, list(PARTS), per_chunk)
    assert (found.identities, found.extra_rows) == _oracle() == (3, 4)
    assert found.across_chunks == [{"chunks": [0, 2], "identities": 1}]
    assert [e["key"] for e in found.examples] == ["a", "b"]


def test_a_run_that_lists_each_object_once_has_nothing_to_report(tmp_path):
    partial = tmp_path / "ids.parquet"
    assert (
        write_partial(_part(tmp_path, "part", [("a", None), ("a", "v1"), ("b", None)]), partial) == Repeats()
    )
    assert merge([partial], [0], [Repeats()]) == Repeats()
    assert merge([], [], []) == Repeats()


def test_identity_hashes_are_the_same_in_every_process(tmp_path):
    # children and finalize hash in processes of their own: the hashes must agree across processes
    probe = (
        "import polars as pl, sys; from batch_jobs.duplicates import identity_hashes; "
        "f = pl.DataFrame({'key': ['a', 'b/c d'], 'version_id': [None, 'v']}, "
        "schema={'key': pl.String, 'version_id': pl.String}); print(f.select(identity_hashes()).rows())"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    }
    assert len(runs) == 1 and runs.pop().count("(") == 2


def test_two_identities_that_share_a_first_hash_are_not_one(tmp_path):
    """The merge sorts first hashes only, then groups by both: a first-hash collision (a few per
    cent of billion-object runs have one) is not a repeat; a repeat across partials still is."""
    first = tmp_path / "0.parquet"
    second = tmp_path / "1.parquet"
    schema = {"h1": pl.UInt64, "h2": pl.UInt64}
    pl.DataFrame({"h1": [5, 7, 2**64 - 1], "h2": [1, 9, 4]}, schema=schema).write_parquet(first)
    pl.DataFrame({"h1": [5, 7, 8], "h2": [2, 9, 3]}, schema=schema).write_parquet(second)
    found = merge([first, second], [0, 3], [Repeats(), Repeats()])
    assert (found.identities, found.extra_rows) == (1, 1)  # (7, 9) twice; (5, 1) and (5, 2) differ
    assert found.across_chunks == [{"chunks": [0, 3], "identities": 1}]
