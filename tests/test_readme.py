"""The README's Quick start, Convert and Query sections, executed: every code block runs here, so a
wrong example fails CI.

Each block is run as written, with only the placeholders the README itself uses (``DEST``,
``SOURCE``, ``CONFIG``, ``OUT``, ``my-bucket``) replaced by the names of generated test data, and
``s3://`` pointed at a moto server. Queries run on two days of one bucket converted by run-local,
the second derived from the first with known changes; Athena SQL is transpiled to DuckDB with
sqlglot. A block without a runner here fails ``test_every_block_has_a_runner``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import boto3
import duckdb
import polars as pl
import pytest
import sqlglot

from inventory_contract.layout import PROCESSED_ROOT, ROLLUPS_ROOT
from inventory_contract.rollups import ROLLUPS
from pipeline.synthetic import generate_delivery
from tests.components.conftest import settings
from tests.conftest import spark_session, upload_tree
from tests.two_days import BUCKET, DAY1, DAY2, TwoDays, two_days

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
EXECUTED = ("Quick start", "Query")  # top-level sections; "Convert an inventory" is in Quick start
DEST = "readme-destination"
DATABASE = "s3_inventory_dev"  # the README's example stack


@dataclass(frozen=True)
class Block:
    section: str
    lang: str
    text: str
    line: int

    @property
    def first(self) -> str:
        return self.text.splitlines()[0]


def readme_blocks() -> list[Block]:
    found, section, fence = [], "", None
    lines: list[str] = []
    for number, line in enumerate(README.read_text().splitlines(), 1):
        if fence is None and line.startswith("## "):
            section = line[3:].strip()
        if line.startswith("```"):
            if fence is None:
                fence, lines, start = line[3:].strip(), [], number
            else:
                if section in EXECUTED:
                    found.append(Block(section, fence, "\n".join(lines), start))
                fence = None
            continue
        if fence is not None:
            lines.append(line)
    return found


def inline_commands() -> list[tuple[str, str]]:
    section, found = "", []
    for line in README.read_text().splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        if section in EXECUTED:
            found += [(section, m) for m in re.findall(r"`((?:python -m pipeline|make) [^`]*)`", line)]
    return found


# ---------- the data the examples run on ----------


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> TwoDays:
    return two_days(tmp_path_factory.mktemp("readme-days"), versions=True, objects=1500)


@pytest.fixture
def workdir(tmp_path: Path, days: TwoDays) -> Path:
    """A folder like the user's: ``out/`` is the two days' run-local output."""
    (tmp_path / "out").symlink_to(days.out)
    return tmp_path


def substituted(text: str) -> str:
    return text.replace("my-bucket", BUCKET)


def shell(script: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A bash block as a user runs it, with the project's .venv first on PATH."""
    path = f"{ROOT / '.venv' / 'bin'}:{Path(sys.executable).parent}:{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env={**os.environ, "PATH": path, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def project_copy(where: Path) -> Path:
    """A folder where ``make install`` finds this checkout's installed .venv (nothing to do)."""
    where.mkdir(parents=True, exist_ok=True)
    for name in ("Makefile", "pyproject.toml", "requirements", ".venv"):
        (where / name).symlink_to(ROOT / name)
    return where


# ---------- one runner per block ----------


def run_quick_start(block: Block, tmp_path: Path, days: TwoDays, moto_endpoint: str) -> None:
    for command in _commands(block.text):
        if command == "make test":  # what CI runs: .ci/run is exactly this command
            assert "\nmake test\n" in (ROOT / ".ci" / "run").read_text()
            continue
        assert command == "make demo", command
        out = tmp_path / "demo-output"
        done = shell(command, ROOT, {"DEMO_ARGS": f"--objects 3000 --out {out}"})
        assert done.returncode == 0, done.stderr
        assert "reconciliation:   complete: rows in " in done.stdout
        assert list((out / PROCESSED_ROOT).rglob("part-*.parquet"))


def run_convert(block: Block, tmp_path: Path, days: TwoDays, moto_endpoint: str) -> None:
    # the delivery the command names, in a bucket of the stand-in, at the README's key
    gen = generate_delivery(
        tmp_path / "delivery",
        objects=500,
        files=2,
        source_bucket="source-bucket",
        destination_bucket=DEST,
        config_id="CONFIG",
    )
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=DEST)
    upload_tree(s3, gen.root, DEST)
    script = block.text.replace("DEST", DEST).replace("SOURCE", "source-bucket")
    assert gen.delivery.manifest_key in script, "the README's key is the delivery's"
    cwd = project_copy(tmp_path / "clone")
    done = shell(script, cwd, _s3_env(moto_endpoint))
    assert done.returncode == 0, done.stderr
    assert "reconciliation:   complete: rows in 500 = rows out 500" in done.stdout
    assert (cwd / "out" / "downloads" / DEST / gen.delivery.manifest_key).is_file()
    assert list((cwd / "out" / PROCESSED_ROOT).rglob("part-*.parquet"))


def run_athena_sql(block: Block, tmp_path: Path, days: TwoDays, moto_endpoint: str) -> None:
    db = _catalog_in_duckdb(days)
    sql = sqlglot.transpile(substituted(block.text), read="trino", write="duckdb")[0]
    rows = db.execute(sql).fetchall()
    assert rows
    if "FROM s3_inventory_dev.inventory\n" in block.text or "FROM s3_inventory_dev.inventory " in block.text:
        expected = (
            pl.scan_parquet(days.out / PROCESSED_ROOT, hive_partitioning=True)
            .filter(pl.col("run_date").cast(pl.String) == DAY1, ~pl.col("is_delete_marker"))
            .group_by("storage_class")
            .agg(pl.len())
            .collect()
        )
        assert {r[0]: r[1] for r in rows} == dict(expected.iter_rows())
    if "inventory_rollup_prefix" in block.text:
        assert {str(r[0]) for r in rows} == {DAY1, DAY2}  # the history: both days
        assert all(r[1].count("/") == 2 or r[1].count("/") < 2 for r in rows)


def run_changes(block: Block, tmp_path: Path, days: TwoDays, moto_endpoint: str) -> None:
    (tmp_path / "out").symlink_to(days.out)
    script = substituted(block.text)
    assert f"--from {DAY1} --to {DAY2}" in script
    done = shell(script, tmp_path)
    assert done.returncode == 0, done.stderr
    changes = pl.read_parquet(tmp_path / "changes" / "changes.parquet")
    found = dict(changes.group_by("change").len().iter_rows())
    assert found == {kind: n for kind, n in days.day2.truth.objects.items() if n}
    assert "added" in done.stdout and "storage_class_changed" in done.stdout


def run_two_day_demo(block: Block, tmp_path: Path, days: TwoDays, moto_endpoint: str) -> None:
    from pipeline.local.demo import daily_changes

    objects = 3000
    script = block.text.replace("demo --days 2", f"demo --days 2 --objects {objects} --workers 2")
    done = shell(script, tmp_path)
    assert done.returncode == 0, done.stderr
    plan = daily_changes(objects)
    table = {
        line.split()[0]: int(line.split()[1].replace(",", ""))
        for line in done.stdout.split("(current objects only):\n", 1)[1].splitlines()[1:5]
    }
    assert table == {
        "added": plan.added + plan.copies + plan.multipart_copies,
        "deleted": plan.deleted + plan.delete_marked,
        "modified": plan.modified + plan.modified_and_moved,
        "storage_class_changed": plan.moved,
    }
    assert (tmp_path / "demo-output" / "changes" / "changes.parquet").is_file()
    status = done.stdout.split("object-level rows: ", 1)[1].splitlines()[1:]
    assert [line.split()[:2] for line in status[1:]] == [
        ["demo-source-bucket/2026-11-25", "complete"],
        ["demo-source-bucket/2026-11-24", "complete"],
    ]


def run_report(block: Block, tmp_path: Path, days: TwoDays, moto_endpoint: str) -> None:
    from tests.browser import charts, offline_page

    (tmp_path / "demo-output").symlink_to(days.out)
    done = shell(block.text, tmp_path)
    assert done.returncode == 0, done.stderr
    report = days.out / "reports" / f"source_bucket={BUCKET}" / f"run_date={DAY2}" / "report.html"
    assert f"report: demo-output/reports/source_bucket={BUCKET}/run_date={DAY2}/report.html (" in done.stdout
    with offline_page(report) as opened:
        assert (opened.console_errors, opened.requests) == ([], [])
        assert set(charts(opened.page)) >= {"classes-bytes", "prefixes-depth-1", "ages", "changes-objects"}


def run_spark(block: Block, tmp_path: Path, days: TwoDays, moto_endpoint: str) -> None:
    spark = spark_session(pytest.importorskip("pyspark.sql"))  # the test run's session, if started
    code = substituted(block.text).replace("s3://DEST/processed/", str(days.out / PROCESSED_ROOT))
    printed = _exec(code, {"spark": spark})
    assert "sum(size)" in printed and "STANDARD" in printed


def run_duckdb_python(block: Block, tmp_path: Path, days: TwoDays, moto_endpoint: str) -> None:
    (tmp_path / "out").symlink_to(days.out)
    with contextlib.chdir(tmp_path):
        printed = _exec(substituted(block.text), {})
    assert "storage_class" in printed and "STANDARD" in printed


def run_duckdb_s3(block: Block, tmp_path: Path, days: TwoDays, moto_endpoint: str) -> None:
    """DuckDB's S3 access needs the httpfs extension, downloaded by INSTALL: not possible offline.
    The setup statements are checked by DuckDB's parser; the query runs on the same files locally."""
    statements = duckdb.extract_statements(block.text)
    setup = [s.query.replace(";", " ").split()[0:2] for s in statements[:3]]
    assert setup == [["INSTALL", "httpfs"], ["LOAD", "httpfs"], ["CREATE", "SECRET"]]
    assert "PROVIDER credential_chain" in block.text
    query = substituted(statements[-1].query).replace("s3://DEST/", f"{days.out}/")
    rows = duckdb.sql(query).fetchall()
    assert rows and all(isinstance(r[1], int) for r in rows)


def run_polars(block: Block, tmp_path: Path, days: TwoDays, moto_endpoint: str) -> None:
    (tmp_path / "out").symlink_to(days.out)
    with contextlib.chdir(tmp_path):
        local = _exec(substituted(block.text), {})
    assert "storage_class" in local and "STANDARD" in local
    # the same code on S3, as the README says: the processed folder in a bucket of the stand-in
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    bucket = "readme-polars"
    s3.create_bucket(Bucket=bucket)
    for path in sorted((days.out / PROCESSED_ROOT).rglob("*.parquet")):
        s3.upload_file(str(path), bucket, path.relative_to(days.out).as_posix())
    remote_code = substituted(block.text).replace('"out/processed/"', f'"s3://{bucket}/processed/"')
    with mock.patch.dict(os.environ, {**_s3_env(moto_endpoint), "AWS_ALLOW_HTTP": "true"}):
        remote = _exec(remote_code, {})
    assert remote == local


def run_snapshot(block: Block, tmp_path: Path, days: TwoDays, moto_endpoint: str) -> None:
    from tests.moto_s3_listing import s3_key_marker_as_aws

    # the user's bucket, in the stand-in: versioned, with a few versions and a delete marker
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    bucket = f"{BUCKET}-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for n in range(120):
        s3.put_object(Bucket=bucket, Key=f"logs/{n % 7}/object {n}.txt", Body=b"x" * n)
    s3.put_object(Bucket=bucket, Key="logs/0/object 0.txt", Body=b"second version")
    s3.delete_object(Bucket=bucket, Key="logs/1/object 1.txt")
    cwd = project_copy(tmp_path / "clone")
    with s3_key_marker_as_aws():
        done = shell(block.text.replace("my-bucket", bucket), cwd, _s3_env(moto_endpoint))
    assert done.returncode == 0, done.stderr
    assert "reconciliation:   complete: rows in 122 = rows out 122" in done.stdout
    assert "a listing of the bucket (snapshot)" in done.stdout
    assert list((cwd / "snapshot-output" / PROCESSED_ROOT).rglob("part-*.parquet"))
    assert list((cwd / "snapshot-output" / "listing").rglob("manifest.json"))


RUNNERS: dict[str, Callable[[Block, Path, TwoDays, str], None]] = {
    "python -m pipeline snapshot s3://my-bucket --out ./snapshot-output   # in .venv: make install first": run_snapshot,
    "make demo   # the whole pipeline on a laptop, on a synthetic inventory": run_quick_start,
    "make install && source .venv/bin/activate   # every `python -m pipeline` command runs in .venv": run_convert,
    "-- bytes and objects by storage class in one bucket's inventory of one day": run_athena_sql,
    "-- storage by prefix two levels deep, with its history": run_athena_sql,
    "python -m pipeline changes ./out --source-bucket my-bucket --from 2026-11-24 --to 2026-11-25 --out changes/": run_changes,
    "python -m pipeline demo --days 2   # two days of one bucket, then the changes between them": run_two_day_demo,
    "python -m pipeline report demo-output --source-bucket demo-source-bucket": run_report,
    'df = spark.read.parquet("s3://DEST/processed/")  # source_bucket and run_date are discovered': run_spark,
    "import duckdb": run_duckdb_python,
    "INSTALL httpfs;": run_duckdb_s3,
    "from datetime import date": run_polars,
}


def test_every_block_has_a_runner() -> None:
    blocks = readme_blocks()
    assert len(blocks) >= len(RUNNERS) - 0
    missing = [f"README.md:{b.line} {b.first!r}" for b in blocks if b.first not in RUNNERS]
    assert missing == [], "a README block no test runs"
    assert {b.first for b in blocks} == set(RUNNERS), "a runner for a block the README no longer has"


@pytest.mark.parametrize("block", readme_blocks(), ids=lambda b: f"line{b.line}")
def test_readme_block_runs(block: Block, tmp_path: Path, days: TwoDays, moto_endpoint: str) -> None:
    RUNNERS[block.first](block, tmp_path, days, moto_endpoint)


def test_inline_commands_name_real_targets_and_commands() -> None:
    from pipeline.cli import _parser

    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    commands = set(_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    checked = 0
    for _, command in inline_commands():
        words = shlex.split(command)
        if words[0] == "make":
            assert words[1] in targets, command
        else:
            assert words[3] in commands, command
        checked += 1
    assert checked >= 5


def test_the_local_path_form_of_run_local_works(tmp_path: Path) -> None:
    [command] = [c for _, c in inline_commands() if c.startswith("python -m pipeline run-local ./dest/")]
    gen = generate_delivery(
        tmp_path / "dest", objects=300, files=1, source_bucket="source-bucket", config_id="CONFIG"
    )
    layout_root = tmp_path / "user"
    (layout_root / "dest").mkdir(parents=True)
    (layout_root / "dest" / "inventory").symlink_to(gen.root / "inventory")
    done = shell(command.replace("SOURCE", "source-bucket"), layout_root)
    assert done.returncode == 0, done.stderr
    assert "rows in 300 = rows out 300" in done.stdout


# ---------- helpers ----------


def _commands(text: str) -> list[str]:
    return [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]


def _exec(code: str, namespace: dict[str, object]) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), namespace)
    return printed.getvalue()


def _catalog_in_duckdb(days: TwoDays) -> duckdb.DuckDBPyConnection:
    db = duckdb.connect()
    db.execute(f'CREATE SCHEMA "{DATABASE}"')
    table = settings().catalog_table
    sources = {table: days.out / PROCESSED_ROOT, **{
        f"{table}_rollup_{r.name}": days.out / ROLLUPS_ROOT / r.name for r in ROLLUPS
    }}  # fmt: skip
    for name, folder in sources.items():
        db.execute(
            f'CREATE VIEW "{DATABASE}"."{name}" AS SELECT * FROM '
            f"read_parquet('{folder}/*/*/*.parquet', hive_partitioning = true)"
        )
    return db


def _s3_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
