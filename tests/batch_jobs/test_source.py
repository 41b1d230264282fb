"""Reading a planned source from the delivery: row ranges, batches and checks; and the job
commands. In process, on the local storage backend (tests/batch_jobs/test_storage.py holds both
backends to one contract)."""

from __future__ import annotations

import gzip
import hashlib
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from batch_jobs.cli import _parser
from batch_jobs.source import Source, SourceError, SourceStats, read_source
from batch_jobs.storage import LocalStorage
from inventory_contract.jobs import JOB_SPECS, PROCESS, SPLIT, render_command, run_parameters
from inventory_contract.plan import piece_offsets

KEY = "inventory/b/c/data/one.csv.gz"


def _rows(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [b'"b","' + b"k" * rng.randint(1, 300) + b'","' + str(i).encode() + b'"\n' for i in range(n)]


def _deliver(tmp_path: Path, data: bytes, *, members: int = 1) -> tuple[LocalStorage, Source]:
    """``data`` gzipped at KEY (in ``members`` gzip members) under a delivery folder."""
    inputs = tmp_path / "in"
    (inputs / KEY).parent.mkdir(parents=True, exist_ok=True)
    step = -(-len(data) // members) if data else 1
    compressed = b"".join(gzip.compress(data[i : i + step]) for i in range(0, max(len(data), 1), step))
    (inputs / KEY).write_bytes(compressed)
    store = LocalStorage("dest", tmp_path / "out", inputs)
    return store, Source(0, KEY, len(compressed), hashlib.md5(compressed).hexdigest())


def _read(store: LocalStorage, source: Source, batch_bytes: int = 4096) -> tuple[list[bytes], SourceStats]:
    stats = SourceStats(source.file, source.key, source.piece, source.pieces)
    batches = list(read_source(store, source, stats, batch_bytes=batch_bytes))
    lines = []
    expected_line = stats.first_line
    for batch in batches:
        assert batch.data.endswith(b"\n") and batch.first_line == expected_line
        assert batch.rows == batch.data.count(b"\n") and len(batch.data) < batch_bytes + 400
        lines += batch.data.splitlines(keepends=True)
        expected_line += batch.rows
    return lines, stats


def _piece(source: Source, piece: int, pieces: int, start: int, end: int | None) -> Source:
    return Source(source.file, source.key, source.size, source.md5, piece, pieces, start, end)


@pytest.mark.parametrize("pieces", [1, 2, 3, 7, 40])
@pytest.mark.parametrize("members", [1, 3])
def test_the_pieces_of_a_file_hold_every_row_once_in_order(tmp_path, pieces, members):
    rows = _rows(3000)
    data = b"".join(rows)
    store, whole = _deliver(tmp_path, data, members=members)
    got, first_lines = [], []
    for p, (start, end) in enumerate(piece_offsets(len(data), pieces)):
        lines, stats = _read(store, _piece(whole, p, pieces, start, end))
        if lines:
            first_lines.append(stats.first_line)
            assert lines[0] == rows[stats.first_line - 1]  # the line number is the file's
        assert stats.rows == len(lines)
        if p == pieces - 1:  # the last piece reads to the end and checks (an earlier one may, ahead)
            assert stats.verified and stats.file_rows == len(rows)
        got += lines
    assert got == rows
    assert first_lines == sorted(first_lines) and first_lines[0] == 1


@pytest.mark.parametrize("seed", range(25))
def test_any_cut_offsets_give_each_row_to_exactly_one_piece(tmp_path, seed):
    # the cuts only balance: wherever they fall (mid-row, on a newline, past the end, twice at one
    # place), a row belongs to the piece its first byte lies in
    rng = random.Random(seed)
    rows = _rows(rng.randint(1, 400), seed)
    data = b"".join(rows)
    store, whole = _deliver(tmp_path, data)
    cuts = sorted(rng.randint(0, len(data) + 50) for _ in range(rng.randint(1, 6)))
    starts = [0, *cuts]
    got = []
    for p, start in enumerate(starts):
        end = starts[p + 1] if p + 1 < len(starts) else None
        lines, _ = _read(store, _piece(whole, p, len(starts), start, end), batch_bytes=rng.choice([64, 4096]))
        expected = [
            r for r, at in zip(rows, _starts(rows), strict=True) if start <= at and (end is None or at < end)
        ]
        assert lines == expected
        got += lines
    assert got == rows


def _starts(rows: list[bytes]) -> list[int]:
    offsets, at = [], 0
    for row in rows:
        offsets.append(at)
        at += len(row)
    return offsets


def test_a_file_without_a_final_newline_gets_one_and_counts_its_last_row(tmp_path):
    rows = _rows(50)
    data = b"".join(rows)[:-1]
    store, whole = _deliver(tmp_path, data)
    lines, stats = _read(store, whole)
    assert lines == rows and stats.rows == stats.file_rows == 50
    half = len(data) // 2
    head, _ = _read(store, _piece(whole, 0, 2, 0, half))
    tail, tail_stats = _read(store, _piece(whole, 1, 2, half, None))
    assert head + tail == rows and tail_stats.file_rows == 50


def test_an_empty_file_is_zero_rows_and_checked(tmp_path):
    store, whole = _deliver(tmp_path, b"")
    lines, stats = _read(store, whole)
    assert (lines, stats.rows, stats.file_rows, stats.verified) == ([], 0, 0, True)


def test_a_piece_stops_reading_after_its_range(tmp_path):
    rng = random.Random(3)  # rows that hardly compress: a file of many read blocks
    rows = [b'"b","' + rng.randbytes(150).hex().encode() + b'"\n' for _ in range(60_000)]
    store, whole = _deliver(tmp_path, b"".join(rows))
    assert whole.size > 8 * 2**20
    before = threading.active_count()
    _, stats = _read(store, _piece(whole, 0, 4, 0, 10_000))
    assert stats.compressed_bytes < whole.size  # it read only the head of the file
    assert not stats.verified and stats.file_rows is None
    assert threading.active_count() == before  # and its reading thread is gone


@pytest.mark.parametrize(
    ("spoil", "said"),
    [
        (
            lambda s: Source(s.file, s.key, s.size + 1, s.md5),
            "size is {size} bytes but the manifest says {more}",
        ),
        (
            lambda s: Source(s.file, s.key, s.size - 1, s.md5),
            "size is more than the {less} bytes the manifest says",
        ),
        (lambda s: Source(s.file, s.key, s.size, "0" * 32), "MD5 is {md5} but the manifest says 00000000"),
        (lambda s: Source(s.file, "inventory/b/c/data/gone.csv.gz", s.size, s.md5), "does not exist"),
    ],
    ids=["short", "long", "md5", "missing"],
)
def test_a_file_that_is_not_what_the_manifest_says_is_named(tmp_path, spoil, said):
    store, whole = _deliver(tmp_path, b"".join(_rows(100)))
    with pytest.raises(SourceError) as err:
        _read(store, spoil(whole))
    expected = said.format(size=whole.size, more=whole.size + 1, less=whole.size - 1, md5=whole.md5)
    assert expected in str(err.value)
    assert "inventory/b/c/data/" in str(err.value)  # names the data file


def test_corrupt_and_truncated_gzip_and_a_byte_order_mark_are_named(tmp_path):
    data = b"".join(_rows(2000))
    store, whole = _deliver(tmp_path, data)
    path = tmp_path / "in" / KEY
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    corrupt = Source(0, KEY, len(raw), hashlib.md5(raw).hexdigest())
    with pytest.raises(SourceError, match="corrupt gzip"):
        _read(store, corrupt)
    cut = gzip.compress(data)[:-100]
    path.write_bytes(cut)
    with pytest.raises(SourceError, match=r"truncated|corrupt gzip"):
        _read(store, Source(0, KEY, len(cut), hashlib.md5(cut).hexdigest()))
    store, whole = _deliver(tmp_path, b"\xef\xbb\xbf" + data)
    with pytest.raises(SourceError, match="line 1 starts with a UTF-8 byte-order mark"):
        _read(store, whole)
    lines, _ = _read(store, _piece(whole, 1, 2, len(data) // 2, None))  # a later piece never sees line 1
    assert lines and lines[-1] == _rows(2000)[-1]


@pytest.mark.parametrize("spec", JOB_SPECS, ids=lambda s: s.name)
def test_job_definition_commands_parse_with_the_jobs_cli(spec):
    params = {
        **spec.default_parameters,
        **run_parameters("s3://d/inv/b/c/2024-01-01T00-00Z/manifest.json", "b", "2024-01-01", 3, 1024),
    }
    command = render_command(spec.command, params)
    assert command[:3] == ["python", "-m", "batch_jobs"]
    args = _parser().parse_args(command[3:])
    assert (args.command, args.manifest, args.source_bucket, args.run_date) == (
        spec.name,
        "s3://d/inv/b/c/2024-01-01T00-00Z/manifest.json",
        "b",
        "2024-01-01",
    )
    if spec is SPLIT:
        assert (args.chunks, args.target_chunk_bytes) == (3, 1024)
    if spec is PROCESS:
        assert args.index == "array"


def test_render_command_rejects_an_unknown_reference():
    with pytest.raises(KeyError, match="references parameter 'chunks'"):
        render_command(SPLIT.command, {"manifest": "m", "source_bucket": "b", "run_date": "d"})


@pytest.mark.parametrize("job", ["split", "process"])
def test_the_image_commands_run_from_the_installed_package(job, tmp_path):
    # the same entry point the job definitions call, run from outside the source tree
    result = subprocess.run(
        [sys.executable, "-m", "batch_jobs", job, "--help"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert f"usage: python -m batch_jobs {job}" in result.stdout
    assert "--manifest" in result.stdout


def test_array_index_comes_from_the_environment(monkeypatch):
    from batch_jobs.cli import _chunk_index

    monkeypatch.setenv("AWS_BATCH_JOB_ARRAY_INDEX", "41")
    assert _chunk_index("array") == 41
    assert _chunk_index("3") == 3
    monkeypatch.delenv("AWS_BATCH_JOB_ARRAY_INDEX")
    with pytest.raises(ValueError, match="needs AWS_BATCH_JOB_ARRAY_INDEX"):
        _chunk_index("array")


def test_a_row_without_an_end_is_refused_before_it_fills_memory(tmp_path, monkeypatch):
    from batch_jobs import source as source_module

    monkeypatch.setattr(source_module, "MAX_ROW_BYTES", 1000)
    store, whole = _deliver(tmp_path, b"".join(_rows(5)) + b'"b","' + b"k" * 50_000 + b'"')
    with pytest.raises(SourceError, match=r"line 6 runs past 1,000 bytes without a newline"):
        _read(store, whole, batch_bytes=4096)
