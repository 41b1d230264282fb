from __future__ import annotations

import io
import json

import pytest

from inventory_contract.jobs import MAX_ARRAY_SIZE
from inventory_contract.plan import chunk_count
from lambdas.settings import Settings, SettingsError
from pipeline.cli import main as cli

REQUIRED = {
    "JOB_QUEUE": "q",
    "SPLIT_JOB_DEFINITION": "s",
    "PROCESS_JOB_DEFINITION": "p",
    "FINALIZE_JOB_DEFINITION": "f",
}


def test_settings_defaults_and_overrides():
    assert Settings.from_env(REQUIRED) == Settings("q", "s", "p", "f", "inventory/", 1024 * 1024 * 1024, 900)
    custom = Settings.from_env({**REQUIRED, "TARGET_CHUNK_MIB": "64", "CLAIM_LEASE_SECONDS": "120"})
    assert (custom.target_chunk_bytes, custom.claim_lease_seconds) == (64 * 1024 * 1024, 120)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_a_missing_variable_is_named(name):
    env = {k: v for k, v in REQUIRED.items() if k != name}
    with pytest.raises(SettingsError, match=f"environment variable {name} is required"):
        Settings.from_env(env)


@pytest.mark.parametrize("value", ["0", "-5", "ten", "1.5"])
def test_an_invalid_number_is_named_with_its_value(value):
    with pytest.raises(SettingsError, match=f"TARGET_CHUNK_MIB must be a positive integer, got '{value}'"):
        Settings.from_env({**REQUIRED, "TARGET_CHUNK_MIB": value})


MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        (0, 1),  # an empty inventory: one chunk, a plain job
        (1, 1),  # tiny
        (256 * MiB - 1, 1),  # just below one chunk
        (256 * MiB, 1),  # exactly one
        (256 * MiB + 1, 2),  # just above: the smallest array
        (10 * 256 * MiB, 10),
        (MAX_ARRAY_SIZE * 256 * MiB, MAX_ARRAY_SIZE),  # the largest array
        (MAX_ARRAY_SIZE * 256 * MiB + 1, MAX_ARRAY_SIZE),  # more would be needed: capped, chunks grow
        (50 * MAX_ARRAY_SIZE * 256 * MiB, MAX_ARRAY_SIZE),
    ],
)
def test_chunk_count_boundaries(total, expected):
    assert chunk_count(total, 256 * MiB) == expected


def test_chunk_count_needs_a_positive_target():
    with pytest.raises(ValueError, match="target chunk size must be positive"):
        chunk_count(10, 0)


def test_cli_trigger_reports_a_missing_setting(monkeypatch, capsys):
    for name in REQUIRED:
        monkeypatch.delenv(name, raising=False)
    code = cli(["trigger", "s3://dest/inventory/src/cfg/2024-11-24T01-00Z/manifest.json"])
    assert code == 2
    assert "error: give --job-queue or set JOB_QUEUE" in capsys.readouterr().err


def test_cli_trigger_runs_and_refuses_a_second_run_without_force(aws, delivery, monkeypatch, capsys):
    monkeypatch.setenv("JOB_QUEUE", aws.settings.job_queue)
    monkeypatch.setenv("SPLIT_JOB_DEFINITION", aws.settings.split_job_definition)
    monkeypatch.setenv("PROCESS_JOB_DEFINITION", aws.settings.process_job_definition)
    monkeypatch.setenv("FINALIZE_JOB_DEFINITION", aws.settings.finalize_job_definition)
    uri = f"s3://demo-inventory-destination/{delivery.delivery.manifest_key}"
    assert cli(["trigger", uri]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["status"] == "submitted" and set(first["jobs"]) == {"split", "process", "finalize"}
    assert cli(["trigger", uri]) == 0
    out = capsys.readouterr().out
    assert "already ran for this delivery; nothing submitted. Use --force to rerun it." in out
    assert cli(["trigger", uri, "--force"]) == 0
    forced = json.loads(io.StringIO(capsys.readouterr().out).getvalue())
    assert forced["run_id"].endswith("/g2") and forced["jobs"] != first["jobs"]


def test_cli_trigger_says_a_failed_run_needs_force_and_exits_1(aws, delivery, monkeypatch, capsys):
    for name, value in (
        ("JOB_QUEUE", aws.settings.job_queue),
        ("SPLIT_JOB_DEFINITION", aws.settings.split_job_definition),
        ("PROCESS_JOB_DEFINITION", aws.settings.process_job_definition),
        ("FINALIZE_JOB_DEFINITION", aws.settings.finalize_job_definition),
    ):
        monkeypatch.setenv(name, value)
    uri = f"s3://demo-inventory-destination/{delivery.delivery.manifest_key}"
    assert cli(["trigger", uri]) == 0
    first = json.loads(capsys.readouterr().out)
    # the splitter failed (moto marks every job SUCCEEDED: tell describe_jobs otherwise)
    from botocore.client import BaseClient

    real = BaseClient._make_api_call

    def split_failed(self, operation, params):
        response = real(self, operation, params)
        if operation == "DescribeJobs":
            for job in response["jobs"]:
                if job["jobId"] == first["jobs"]["split"]:
                    job.update(status="FAILED", statusReason="Essential container in task exited")
        return response

    monkeypatch.setattr(BaseClient, "_make_api_call", split_failed)
    assert cli(["trigger", uri]) == 1
    out = capsys.readouterr().out
    assert "ran for this delivery and failed (s3inv-split-" in out
    assert "FAILED: Essential container in task exited). Rerun it with --force." in out


def test_the_processor_queue_is_the_job_queue_unless_one_is_given():
    assert Settings.from_env(REQUIRED).process_queue == "q"
    spot = Settings.from_env({**REQUIRED, "PROCESS_JOB_QUEUE": " spot-q "})
    assert (spot.job_queue, spot.process_queue) == ("q", "spot-q")
