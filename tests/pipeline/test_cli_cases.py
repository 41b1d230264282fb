"""Every command with wrong input, interrupted runs and reruns: exit code, message, and --out after.

Exit codes (pipeline/errors.py): 0 only with complete output, 1 failure, 2 bad input or usage,
130 interrupted, 143 terminated.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from inventory_contract.layout import RunLayout
from inventory_contract.rollups import ROLLUPS
from inventory_contract.schema import KNOWN_FIELDS
from pipeline.cli import main
from pipeline.synthetic import GeneratedDelivery, generate_delivery

CURRENT_ONLY = tuple(f for f in KNOWN_FIELDS if f not in ("VersionId", "IsLatest", "IsDeleteMarker"))


@dataclass
class Said:
    code: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], *args: str) -> Said:
    code = main(list(args))
    captured = capsys.readouterr()
    return Said(code, captured.out, captured.err)


def deliver(tmp_path: Path, name: str = "bucket", **kwargs) -> GeneratedDelivery:
    kwargs.setdefault("objects", 300)
    kwargs.setdefault("files", 2)
    return generate_delivery(tmp_path / name, **kwargs)


def rewrite(gen: GeneratedDelivery, index: int, change: Callable[[bytes], bytes]) -> None:
    """Change data file ``index`` (its uncompressed CSV); the manifest and checksum follow."""
    path = gen.root / gen.data_keys[index]
    data = gzip.compress(change(gzip.decompress(path.read_bytes())))
    path.write_bytes(data)
    manifest = json.loads(gen.manifest_path.read_bytes())
    manifest["files"][index].update(size=len(data), MD5checksum=hashlib.md5(data).hexdigest())
    edit_manifest(gen, manifest)


def edit_manifest(gen: GeneratedDelivery, manifest: dict) -> None:
    raw = json.dumps(manifest).encode()
    gen.manifest_path.write_bytes(raw)
    (gen.root / gen.delivery.checksum_key).write_text(hashlib.md5(raw).hexdigest())


def replace_field(line_no: int, field: str, value: str) -> Callable[[bytes], bytes]:
    """Set ``field`` of row ``line_no`` (1-based) to ``value`` in the data file's CSV."""
    position = KNOWN_FIELDS.index(field)

    def change(csv: bytes) -> bytes:
        lines = csv.decode().split("\n")
        fields = lines[line_no - 1].split('","')
        fields[position] = value
        lines[line_no - 1] = '","'.join(fields)
        return "\n".join(lines).encode()

    return change


def published(out: Path, layout: RunLayout) -> dict[str, list[str]]:
    """What --out holds of the run, by kind."""

    def names(prefix: str) -> list[str]:
        folder = out / prefix
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

    return {
        "parts": names(layout.processed_prefix),
        "state": names(layout.state_prefix),
        "reports": names(layout.reports_prefix),
        "staging": names(".staging"),
    }


# ---------- misuse: one line on stderr, exit 2, nothing started ----------


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> GeneratedDelivery:
    return deliver(tmp_path_factory.mktemp("small"))


MISUSE = [
    (["run-local", "{tmp}/missing.json", "--out", "{tmp}/out"], r"MANIFEST .*missing\.json does not exist"),
    (
        ["run-local", "{tmp}", "--out", "{tmp}/out"],
        r"MANIFEST .* is a folder; give the path of a manifest\.json",
    ),
    (
        ["run-local", "{manifest}", "--out", "{file}"],
        r"--out .*a-file is a file; give a folder for the output",
    ),
    (["run-local", "{manifest}", "--out", "{file}/sub"], r"--out .*a-file/sub: cannot write there"),
    (
        ["run-local", "{manifest}", "--out", "{tmp}/out", "--bucket-root", "{tmp}"],
        r"--bucket-root .* does not contain MANIFEST",
    ),
    (
        ["run-local", "{manifest}", "--out", "{tmp}/out", "--bucket-root", "{file}"],
        r"--bucket-root .*a-file is not a folder",
    ),
    (
        ["run-local", "{manifest}", "--out", "{tmp}/out", "--bucket-root", "{root}/inventory"],
        r"2 of its 2 data files are not under .*/inventory, e\.g\. inventory/.*; download every file",
    ),
    (
        ["run-local", "{manifest}", "--out", "{tmp}/out", "--workers", "0"],
        r"argument --workers: must be a whole number of at least 1, got '0'",
    ),
    (
        ["run-local", "{manifest}", "--out", "{tmp}/out", "--workers", "-2"],
        r"argument --workers: must be a whole number",
    ),
    (
        ["run-local", "{manifest}", "--out", "{tmp}/out", "--target-chunk-mib", "0"],
        r"argument --target-chunk-mib: must be a whole number of at least 1, got '0'",
    ),
    (["run-local", "{manifest}"], r"the following arguments are required: --out"),
    (["demo", "--objects", "0"], r"argument --objects: must be a whole number"),
    (["demo", "--out", "{root}"], r"--out .* is not empty and was not made by demo"),
    (["inspect", "{tmp}/missing.json"], r"MANIFEST .*missing\.json does not exist; give a file"),
    (["inspect", "{manifest}", "--checksum", "{tmp}"], r"--checksum .* is a folder; give a file"),
    (["trigger", "not-a-uri"], r"MANIFEST 'not-a-uri' is not an S3 object URI"),
    (["trigger", "s3://bucket-only"], r"is not an S3 object URI like s3://BUCKET/"),
    (
        ["trigger", "s3://dest/inventory/src/cfg/2026-11-24T01-00Z/manifest.json"],
        r"give --job-queue or set JOB_QUEUE",
    ),
    (
        ["trigger", "s3://dest/not/a/delivery.json", "--job-queue", "q"],
        r"is not an S3 Inventory manifest key",
    ),
    (["status"], r"give --bucket or set DESTINATION_BUCKET"),
    (
        ["status", "--bucket", "b", "not-a-run"],
        r"'not-a-run' is neither a run, SOURCE-BUCKET/YYYY-MM-DD, nor a folder on this machine",
    ),
    (["status", "{tmp}/missing"], r"'.*missing' is neither a run, SOURCE-BUCKET/YYYY-MM-DD, nor a folder"),
    (["status", "--bucket", "b", "--limit", "0"], r"argument --limit: must be a whole number"),
    (["no-such-command"], r"argument COMMAND: invalid choice: 'no-such-command'"),
    (["run-local", "", "--out", "{tmp}/out"], r"argument manifest: must not be empty"),
    (["run-local", "{manifest}", "--out", ""], r"argument --out: must not be empty"),
    (
        ["run-local", "{tmp}/missing.json", "--out", "{tmp}/new/deep"],
        r"MANIFEST .*missing\.json does not exist",
    ),
]


@pytest.mark.parametrize(("args", "expected"), MISUSE, ids=[" ".join(a) for a, _ in MISUSE])
def test_misuse_is_one_line_exit_2_and_starts_nothing(
    small, tmp_path, capsys, monkeypatch, args, expected
) -> None:
    import re

    for name in (
        "JOB_QUEUE",
        "SPLIT_JOB_DEFINITION",
        "PROCESS_JOB_DEFINITION",
        "FINALIZE_JOB_DEFINITION",
        "DESTINATION_BUCKET",
    ):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "a-file").write_text("x")
    values = {
        "tmp": str(tmp_path),
        "manifest": str(small.manifest_path),
        "file": str(tmp_path / "a-file"),
        "root": str(small.root),
    }
    said = run(capsys, *(a.format(**values) for a in args))
    assert said.code == 2, said
    lines = said.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), said.err
    assert re.search(expected, lines[0]), lines[0]
    assert "Traceback" not in said.err
    assert not (tmp_path / "out").exists() and not (tmp_path / "new").exists()  # nothing was made


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "error: no AWS Region: set AWS_DEFAULT_REGION"),
        ({"AWS_DEFAULT_REGION": "us-east-1"}, "error: no AWS credentials: run `aws configure`"),
    ],
)
def test_status_without_aws_configuration_says_what_to_set(
    tmp_path, capsys, monkeypatch, environment, expected
):
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    said = run(capsys, "status", "--bucket", "dest")
    assert said.code == 2
    assert said.err.strip().splitlines() == [said.err.strip()] and said.err.startswith(expected)


@pytest.mark.slow
def test_status_of_a_bucket_that_does_not_exist_is_bad_input(server_env, capsys):
    said = run(capsys, "status", "--bucket", "no-such-bucket-anywhere")
    assert said.code == 2
    assert said.err.startswith("error: AWS refused ListObjectsV2: NoSuchBucket")
    assert len(said.err.strip().splitlines()) == 1


# ---------- any fileSchema, any prefix ----------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kwargs", "shows", "hides"),
    [
        (
            {"fields": CURRENT_ONLY, "versions": False},
            ["total bytes:", "storage classes (objects / bytes):\n  class", "STANDARD_IA"],
            ["delete markers:", "noncurrent  "],
        ),
        (
            {"fields": ("Bucket", "Key", "LastModifiedDate", "ETag")},
            ["largest prefixes at depth 1 (rolled up to depth 3):"],
            ["total bytes:", "STANDARD", "delete markers:"],
        ),
        ({"prefix": "reports/s3/inventory"}, ["delete markers:"], []),
        ({"prefix": ""}, ["delete markers:"], []),
    ],
    ids=["current-versions-only", "no-size-or-class", "nested-prefix", "no-prefix"],
)
def test_any_field_set_and_any_prefix_converts_and_summarizes(tmp_path, capsys, kwargs, shows, hides):
    gen = deliver(tmp_path, **kwargs)
    out = tmp_path / "out"
    said = run(capsys, "run-local", str(gen.manifest_path), "--out", str(out))
    assert said.code == 0, said.err
    layout = RunLayout.of(gen.delivery)
    assert published(out, layout)["reports"] == ["_COMPLETE", "run-report.json"]
    frame = pl.read_parquet(out / layout.processed_prefix / "*.parquet")
    assert frame.height == gen.truth.rows
    assert f"objects (rows):   {gen.truth.rows:,}" in said.out
    for text in shows:
        assert text in said.out
    for text in hides:
        assert text not in said.out


@pytest.mark.slow
def test_bucket_root_given_explicitly_works(tmp_path, capsys):
    gen = deliver(tmp_path, prefix="")
    said = run(
        capsys,
        "run-local",
        str(gen.manifest_path),
        "--out",
        str(tmp_path / "out"),
        "--bucket-root",
        str(gen.root),
    )
    assert said.code == 0, said.err


# ---------- bad input: exit 2, the data file and its line, nothing published ----------


BAD_ROWS = [
    (replace_field(7, "Key", "caf%FF"), "line 7", "field Key (key) does not URL-decode to UTF-8: 'caf%FF'"),
    (replace_field(7, "Key", ""), "line 7", "field Key (key) is empty: S3 keys are 1 to 1,024 bytes"),
    (replace_field(7, "Size", "-3"), "line 7", "field Size (size) is negative: '-3'"),
    (
        replace_field(7, "Size", "5000000000000000000"),  # 5e18: two such would wrap a 64-bit sum
        "line 7",
        "field Size (size) is larger than S3's largest object (5,497,558,138,880 bytes, 5 TiB): "
        "'5000000000000000000'",
    ),
    (
        lambda csv: b"\xef\xbb\xbf" + csv,
        "line 1",
        "starts with a UTF-8 byte-order mark, which S3 Inventory never writes",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "line", "expected"),
    BAD_ROWS,
    ids=["undecodable-key", "empty-key", "negative-size", "size-past-5-TiB", "bom"],
)
def test_bad_data_is_exit_2_naming_file_line_and_value_and_publishes_nothing(
    tmp_path, capsys, change, line, expected
):
    gen = deliver(tmp_path)
    rewrite(gen, 1, change)
    out = tmp_path / "out"
    said = run(capsys, "run-local", str(gen.manifest_path), "--out", str(out))
    assert said.code == 2
    assert f"{gen.data_keys[1]}: {line}" in said.err and expected in said.err
    assert "Traceback" not in said.err
    assert published(out, RunLayout.of(gen.delivery)) == {
        "parts": [],
        "state": [],
        "reports": [],
        "staging": [],
    }


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda m: m["files"].append(dict(m["files"][0])),
            r"files\[2\]\.key '.+' is listed already, as files\[0\]",
        ),
        (
            lambda m: m["files"][0].update(size=0),
            r"files\[0\]\.size must be positive \(a gzip data file is never empty\)",
        ),
    ],
    ids=["data-file-listed-twice", "zero-byte-data-file"],
)
def test_a_manifest_that_lists_a_file_twice_or_an_empty_file_is_refused(tmp_path, capsys, edit, expected):
    import re

    gen = deliver(tmp_path)
    manifest = json.loads(gen.manifest_path.read_bytes())
    edit(manifest)
    edit_manifest(gen, manifest)
    said = run(capsys, "run-local", str(gen.manifest_path), "--out", str(tmp_path / "out"))
    assert said.code == 2 and re.search(expected, said.err), said.err
    assert not (tmp_path / "out" / "processed").exists()


# ---------- failed, interrupted and forced runs ----------


@pytest.mark.slow
def test_a_failed_run_is_never_reported_done_and_the_plain_rerun_converts(tmp_path, capsys):
    gen = deliver(tmp_path)
    good = (gen.root / gen.data_keys[1]).read_bytes()
    manifest = gen.manifest_path.read_bytes()
    rewrite(gen, 1, replace_field(3, "Size", "lots"))
    out = tmp_path / "out"
    args = ("run-local", str(gen.manifest_path), "--out", str(out))
    assert run(capsys, *args).code == 2
    # the same command again: still the bad data, still a failure (not "already ran")
    again = run(capsys, *args)
    assert again.code == 2 and "complete in" not in again.out
    # once the data is fixed, the plain rerun converts it
    (gen.root / gen.data_keys[1]).write_bytes(good)
    edit_manifest(gen, json.loads(manifest))
    fixed = run(capsys, *args)
    assert fixed.code == 0, fixed.err
    assert "trigger: submitted" in fixed.err
    assert published(out, RunLayout.of(gen.delivery))["reports"] == ["_COMPLETE", "run-report.json"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "damage",
    [
        "marker-removed",
        "part-removed",
        "part-truncated",
        "marker-without-parts",
        "leftover-claim-in-progress",
    ],
)
def test_an_incomplete_earlier_run_is_run_again_not_reported_done(tmp_path, capsys, damage):
    gen = deliver(tmp_path)
    out = tmp_path / "out"
    args = ("run-local", str(gen.manifest_path), "--out", str(out), "--target-chunk-mib", "1")
    assert run(capsys, *args).code == 0
    layout = RunLayout.of(gen.delivery)
    part = out / layout.part_key(0)
    good_part = part.read_bytes()
    if damage == "marker-removed":  # an interruption after the data, before the marker
        (out / layout.complete_marker_key).unlink()
    elif damage == "part-removed":
        part.unlink()
    elif damage == "part-truncated":
        part.write_bytes(good_part[:100])
    elif damage == "marker-without-parts":  # a marker from before markers listed their parts
        (out / layout.complete_marker_key).write_text(json.dumps({"rows": gen.truth.rows}))
    else:  # Ctrl-C between claim and submission, in the layout of earlier versions
        claim = {"state": "claimed", "lease_expires_at": time.time() + 900, "manifest": "x", "generation": 1}
        (out / layout.claim_key).write_text(json.dumps(claim))
        (out / layout.complete_marker_key).unlink()
    said = run(capsys, *args)
    assert said.code == 0, said.err
    assert "trigger: submitted" in said.err and "complete in" not in said.out
    assert part.read_bytes() == good_part
    assert json.loads((out / layout.complete_marker_key).read_text())["rows"] == gen.truth.rows


@pytest.mark.slow
def test_a_forced_rerun_with_fewer_chunks_leaves_exactly_its_own_parts_and_state(tmp_path, capsys):
    gen = deliver(tmp_path, objects=20_000, files=2)
    out = tmp_path / "out"
    layout = RunLayout.of(gen.delivery)
    first = run(capsys, "run-local", str(gen.manifest_path), "--out", str(out), "--target-chunk-mib", "1")
    assert first.code == 0, first.err
    before = published(out, layout)
    assert len(before["parts"]) >= 2
    forced = run(
        capsys, "run-local", str(gen.manifest_path), "--out", str(out), "--force", "--target-chunk-mib", "64"
    )
    assert forced.code == 0, forced.err
    after = published(out, layout)
    assert after["parts"] == ["part-000000.parquet"]
    assert [s for s in after["state"] if s.startswith("parts/")] == sorted(
        ["parts/part-000000.json", "parts/part-000000.identities.parquet"]
        + [f"parts/part-000000.{r.name}.parquet" for r in ROLLUPS]
    )
    assert after["staging"] == [] and not (out / ".staging").exists()
    assert pl.read_parquet(out / layout.processed_prefix / "*.parquet").height == gen.truth.rows


@pytest.mark.slow
def test_demo_replaces_only_what_it_made(tmp_path, capsys):
    out = tmp_path / "demo"
    assert run(capsys, "demo", "--objects", "2000", "--out", str(out), "--workers", "1").code == 0
    (out / "notes.txt").write_text("mine")  # the user's own file, in the demo's folder
    again = run(capsys, "demo", "--objects", "1000", "--out", str(out), "--workers", "1")
    assert again.code == 0, again.err
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "summary.json").read_text())["rows"] == 1000


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sent", "code", "said", "phase"),
    [
        (signal.SIGTERM, 143, "terminated", "s3inv-split-"),
        (signal.SIGTERM, 143, "terminated", "children,"),
        (signal.SIGINT, 130, "interrupted", "s3inv-split-"),
        (signal.SIGINT, 130, "interrupted", "children,"),
    ],
    ids=["sigterm-during-split", "sigterm-during-array", "ctrl-c-during-split", "ctrl-c-during-array"],
)
def test_a_signal_stops_every_job_process_at_once(tmp_path, sent, code, said, phase):
    out = tmp_path / "demo"
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "demo",
            "--objects",
            "400000",
            "--out",
            str(out),
            "--target-chunk-mib",
            "1",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert demo.stderr is not None
    for line in demo.stderr:  # the progress line that says the phase started
        if phase in line and ("children," in line or ": running" in line):
            break
    time.sleep(0.3)
    children = subprocess.run(["pgrep", "-P", str(demo.pid)], capture_output=True, text=True).stdout.split()
    assert children
    demo.send_signal(sent)
    assert demo.wait(timeout=30) == code
    assert f"{said}: stopped the stand-in and every job" in demo.stderr.read()
    for pid in children:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split()[2] == "Z", f"job process {pid} still running"
    split_logs = list((out / "logs").glob("*/*/s3inv-split-*.log"))
    if phase == "s3inv-split-":  # stopped, not waited for
        assert split_logs and all('"split done"' not in log.read_text() for log in split_logs)
    assert not (out / "processed").exists()
    assert not (out / ".staging").exists() or not any((out / ".staging").iterdir())


@pytest.mark.slow
def test_another_delivery_of_the_same_bucket_and_day_is_not_taken_for_done(tmp_path, capsys):
    # GIVEN two inventory configurations of one bucket, delivered the same day, into one --out
    first = deliver(tmp_path, "a", config_id="config-a", objects=300)
    second = deliver(tmp_path, "b", config_id="config-b", objects=700)
    out = tmp_path / "out"
    assert run(capsys, "run-local", str(first.manifest_path), "--out", str(out)).code == 0
    # WHEN the second is run
    said = run(capsys, "run-local", str(second.manifest_path), "--out", str(out))
    # THEN it runs (its partition replaces the first's), rather than saying "complete"
    assert said.code == 0, said.err
    assert "trigger: submitted" in said.err and "objects (rows):   700" in said.out
    marker = json.loads((out / RunLayout.of(second.delivery).complete_marker_key).read_text())
    assert marker["manifest"].endswith(second.delivery.manifest_key)


@pytest.mark.slow
def test_glob_characters_and_symlinks_in_paths_are_taken_literally(tmp_path, capsys):
    gen = deliver(tmp_path, objects=500)
    (tmp_path / "outA" / "processed").mkdir(parents=True)  # would match the glob "out?"
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "bucket").symlink_to(gen.root)  # a delivery reached through a symlink (DVC, git-annex)
    manifest = linked / "bucket" / gen.delivery.manifest_key
    for out in ("out[1]", "out?"):
        said = run(
            capsys,
            "run-local",
            str(manifest),
            "--out",
            str(tmp_path / out),
            "--bucket-root",
            str(linked / "bucket"),
        )
        assert said.code == 0, said.err
        assert "objects (rows):   500" in said.out
    assert run(capsys, "run-local", str(manifest), "--out", str(tmp_path / "out3")).code == 0


@pytest.mark.slow
def test_what_an_interrupted_publication_left_aside_is_removed_by_the_next_run(tmp_path, capsys):
    gen = deliver(tmp_path)
    out = tmp_path / "out"
    leftover = out / ".staging" / "0123abcd" / "processed"
    leftover.mkdir(parents=True)
    (leftover / "part-000000.parquet").write_bytes(b"half a run")
    assert run(capsys, "run-local", str(gen.manifest_path), "--out", str(out)).code == 0
    assert not (out / ".staging").exists()
