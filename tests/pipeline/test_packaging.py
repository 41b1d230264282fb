"""What an installed package shows a user: the console script, --version and the top-level help."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import entry_points, metadata
from pathlib import Path

import pytest

from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
CONSOLE_SCRIPT = Path(sys.executable).parent / "s3-inventory"


def test_the_console_script_is_the_same_entry_point_as_python_m_pipeline() -> None:
    [script] = entry_points(group="console_scripts", name="s3-inventory")
    assert script.value == "pipeline.cli:main"
    assert script.load() is main
    assert PYPROJECT["project"]["scripts"] == {"s3-inventory": "pipeline.cli:main"}


@pytest.mark.parametrize(
    "command", [[str(CONSOLE_SCRIPT)], [sys.executable, "-m", "pipeline"]], ids=["s3-inventory", "python-m"]
)
def test_version_prints_pyprojects_version(command: list[str]) -> None:
    done = subprocess.run([*command, "--version"], capture_output=True, text=True, check=False, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"s3-inventory-pipeline {VERSION}\n", "")


def test_the_console_script_names_itself_in_usage_and_answers_misuse_in_one_line() -> None:
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "demo", "--objects", "none"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert done.stderr == (
        "error: argument --objects: must be a whole number of at least 1, got 'none' "
        "(see `s3-inventory demo --help`)\n"
    )


def test_the_license_is_declared_and_shipped() -> None:
    meta = metadata("s3-inventory-pipeline")
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_the_top_level_help_is_for_users(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0] == "usage: python -m pipeline [-h] [--version] COMMAND ..."
    assert lines[2:4] == [
        "Turn the daily Amazon S3 Inventory into typed, partitioned Parquet: convert a",
        "delivery on this machine, or start and follow the stack's runs on AWS Batch.",
    ]
    commands = {line.split()[0]: line.split(None, 1)[1] for line in lines if line.startswith("    ")}
    assert commands == {  # one line each
        "inspect": "check a downloaded manifest.json; show its run and columns",
        "trigger": "start the run of one delivery on AWS now, or --force a rerun",
        "status": "runs on AWS, or in a local output folder, and their state",
        "changes": "day-over-day changes between two complete local runs",
        "demo": "run the whole pipeline locally on a synthetic inventory",
        "run-local": "convert one delivery (local or s3://) on this machine",
        "smoke": "prove a deployed stack: a small synthetic run, then cleanup",
        "snapshot": "list a bucket now instead of waiting for its inventory",
        "report": "a storage report to open in a browser (one HTML file)",
    }
    assert lines[-4:] == [
        "Run `python -m pipeline COMMAND --help` for a command's options.",
        "Exit codes: 0 done, 1 failed, 2 bad input or usage, 130 Ctrl-C, 143 SIGTERM,",
        "141 output closed (a reader such as `head` went away).",
        "More in the project's README.md: quick start, deploy, operate, query.",
    ]
    assert max(map(len, lines)) <= 80
    assert "``" not in text  # no reStructuredText from a docstring


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (
            "run-local",
            "(default: one chunk per worker: the delivery's gzip bytes divided by the workers, at most 128,",
        ),
        (
            "demo",
            "(default: one chunk per worker: the delivery's gzip bytes divided by the workers, at most 128, which bounds memory)",
        ),
        ("trigger", "(default: $TARGET_CHUNK_MIB or 1024, the stack's targetChunkMib)"),
    ],
)
def test_each_chunk_size_default_says_why_it_differs(command: str, says: str, capsys) -> None:
    assert main([command, "--help"]) == 0
    words = " ".join(capsys.readouterr().out.split())  # the help as one line, however argparse wraps it
    flag_help = words.split("--target-chunk-mib TARGET_CHUNK_MIB ")[-1].split(" --")[0]
    assert flag_help.startswith("compressed inventory MiB per chunk")
    assert says in flag_help
