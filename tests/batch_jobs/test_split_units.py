"""The splitter's cutting and progress, in process, without S3."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys

import pytest

import batch_jobs.split as split_module
from batch_jobs.cli import _parser
from batch_jobs.split import _ChunkRouter
from inventory_contract.jobs import JOB_SPECS, PROCESS, SPLIT, render_command, run_parameters


class _Sink:
    def __init__(self, index: int) -> None:
        self.key, self.data, self.closed = f"chunk-{index}", bytearray(), False

    def write(self, block: bytes) -> None:
        self.data += block

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:  # pragma: no cover - not reached here
        raise AssertionError


def _rows(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [b'"b","' + b"k" * rng.randint(20, 400) + b'"\n' for _ in range(n)]


def _route(rows: list[bytes], n: int, estimate, block: int = 65536) -> list[_Sink]:
    sinks: list[_Sink] = []

    def open_chunk(i: int) -> _Sink:
        sinks.append(_Sink(i))
        return sinks[-1]

    router = _ChunkRouter(n, open_chunk, estimate)  # type: ignore[arg-type]
    stream = b"".join(rows)
    for start in range(0, len(stream), block):
        router.feed(stream[start : start + block])
    router.finish()
    assert all(s.closed for s in sinks)
    return sinks


@pytest.mark.parametrize("n", [2, 7, 64])
@pytest.mark.parametrize("error", [1.0, 0.8, 1.25])
def test_chunks_are_balanced_whole_rows_even_when_the_estimate_is_off(n, error):
    rows = _rows(40_000)
    total = sum(map(len, rows))
    sinks = _route(rows, n, lambda: int(total * error))
    sizes = [len(s.data) for s in sinks]
    assert len(sinks) == n
    assert b"".join(s.data for s in sinks) == b"".join(rows)  # every row once, in order, byte for byte
    assert all(s.data.endswith(b"\n") for s in sinks if s.data)  # never a split row
    mean = total / n
    if error == 1.0:
        assert max(sizes) <= 1.10 * mean, sizes
    else:  # a wrong estimate is absorbed by the last chunk; the others stay near their share
        assert max(sizes[:-1]) <= 1.10 * mean * error + 400, sizes


def test_fewer_rows_than_chunks_gives_one_row_each_then_empty_chunks():
    rows = _rows(3)
    sinks = _route(rows, 5, lambda: sum(map(len, rows)), block=7)
    assert [bytes(s.data) for s in sinks] == [*rows, b"", b""]


def test_progress_is_logged_as_json_lines(monkeypatch):
    monkeypatch.setattr(split_module, "PROGRESS_SECONDS", 0.0)
    stream = io.StringIO()
    from inventory_contract.jsonlog import JsonLogger

    class _Estimate:
        compressed_seen, total_compressed, uncompressed_seen = 10, 20, 80

    progress = split_module._Progress(
        JsonLogger(stream, job="split"), _Estimate(), type("R", (), {"stats": []})()
    )  # type: ignore[arg-type]
    progress.maybe_log()
    line = json.loads(stream.getvalue())
    assert line["message"] == "split progress"
    assert (line["job"], line["compressed_bytes_done"], line["uncompressed_bytes"]) == ("split", 10, 80)
    assert {"rows", "mb_per_s", "seconds"} <= line.keys()


@pytest.mark.parametrize("spec", JOB_SPECS, ids=lambda s: s.name)
def test_job_definition_commands_parse_with_the_jobs_cli(spec):
    params = {
        **spec.default_parameters,
        **run_parameters("s3://d/inv/b/c/2024-01-01T00-00Z/manifest.json", "b", "2024-01-01", 3),
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
        assert args.chunks == 3
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
