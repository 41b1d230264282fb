"""``python -m pipeline status`` against moto's S3 and Batch, and its state rules."""

from __future__ import annotations

import io
import json

import pytest

from inventory_contract.jsonlog import JsonLogger
from inventory_contract.layout import RunLayout
from lambdas.runs import start_run
from pipeline.cli import main
from pipeline.status import derive_state
from pipeline.synthetic import generate_delivery
from tests.aws_fixtures import DEST
from tests.conftest import upload_tree


def test_status_lists_recent_runs_with_their_state(aws, tmp_path, monkeypatch, capsys):
    # GIVEN three deliveries: one complete, one still claimed, one with a rejected manifest
    from datetime import UTC, datetime

    runs = {}
    for day, source in ((22, "alpha"), (23, "beta"), (24, "gamma")):
        gen = generate_delivery(
            tmp_path / source,
            objects=100,
            files=1,
            source_bucket=source,
            destination_bucket=DEST,
            timestamp=datetime(2026, 11, day, 1, 0, tzinfo=UTC),
        )
        upload_tree(aws.s3, gen.root, DEST)
        runs[source] = gen
    log = JsonLogger(io.StringIO())
    start_run(DEST, runs["alpha"].delivery, settings=aws.settings, s3=aws.s3, batch=aws.batch, log=log)
    alpha = RunLayout.of(runs["alpha"].delivery)
    aws.s3.put_object(Bucket=DEST, Key=alpha.complete_marker_key, Body=b"{}")
    aws.s3.put_object(Bucket=DEST, Key=alpha.run_report_key, Body=json.dumps({"rows_out": 100}).encode())
    beta = RunLayout.of(runs["beta"].delivery)
    claim = {
        "manifest": "m",
        "run_id": "beta/2026-11-23/g1",
        "generation": 1,
        "state": "claimed",
        "lease_expires_at": 1.0,
        "claimed_at": "2026-11-23T03:00:00+00:00",
        "chunks": None,
        "jobs": {},
    }
    aws.s3.put_object(Bucket=DEST, Key=beta.claim_key, Body=json.dumps(claim).encode())
    aws.s3.put_object(Bucket=DEST, Key=runs["gamma"].delivery.manifest_key, Body=b'{"fileFormat": "ORC"}')
    aws.s3.delete_object(Bucket=DEST, Key=runs["gamma"].delivery.checksum_key)
    start_run(DEST, runs["gamma"].delivery, settings=aws.settings, s3=aws.s3, batch=aws.batch, log=log)

    # WHEN the operator asks
    code = main(["status", "--bucket", DEST, "--json"])

    # THEN newest first, each with its state
    statuses = json.loads(capsys.readouterr().out)
    assert code == 0  # --json reports; the table form exits 1 when a run failed
    assert [(s["run"], s["state"]) for s in statuses] == [
        ("gamma/2026-11-24", "failed"),
        ("beta/2026-11-23", "claimed"),
        ("alpha/2026-11-22", "complete"),
    ]
    assert "manifest rejected" in statuses[0]["detail"] and "fileFormat 'ORC'" in statuses[0]["detail"]
    assert statuses[2]["rows"] == 100 and statuses[2]["generation"] == 1
    assert main(["status", "alpha/2026-11-22", "--bucket", DEST]) == 0
    table = capsys.readouterr().out
    assert "alpha/2026-11-22" in table and "complete" in table and "beta" not in table
    assert main(["status", "--bucket", DEST]) == 1  # a failed run in the list


def _job(status: str, reason: str = "") -> dict:
    return {"status": status, "jobName": "n", "statusReason": reason}


@pytest.mark.parametrize(
    ("jobs", "state"),
    [
        ({"split": _job("RUNNING"), "process": _job("PENDING"), "finalize": _job("PENDING")}, "splitting"),
        ({"split": _job("SUCCEEDED"), "process": _job("RUNNING"), "finalize": _job("PENDING")}, "processing"),
        (
            {"split": _job("SUCCEEDED"), "process": _job("SUCCEEDED"), "finalize": _job("RUNNING")},
            "processing",
        ),
        (
            {"split": _job("FAILED", "Essential container in task exited"), "process": _job("FAILED")},
            "failed",
        ),
        ({}, "unknown"),
    ],
)
def test_state_rules(jobs, state):
    claim = {"state": "submitted", "jobs": {k: k for k in jobs}}
    assert derive_state(claim, None, False, jobs)[0] == state


def test_the_marker_wins_and_a_failed_job_is_named():
    assert derive_state({"state": "submitted"}, None, True, {})[0] == "complete"
    state, detail = derive_state({"state": "submitted"}, None, False, {"split": _job("FAILED", "exit 2")})
    assert (state, detail) == ("failed", "split job n failed: exit 2")


def test_a_forced_rerun_is_not_shown_complete_by_the_earlier_runs_marker(aws, tmp_path, capsys, monkeypatch):
    from lambdas import runs

    gen = generate_delivery(tmp_path / "d", objects=100, files=1, destination_bucket=DEST)
    upload_tree(aws.s3, gen.root, DEST)
    log = JsonLogger(io.StringIO())
    start_run(DEST, gen.delivery, settings=aws.settings, s3=aws.s3, batch=aws.batch, log=log)
    layout = RunLayout.of(gen.delivery)
    claimed = json.loads(aws.s3.get_object(Bucket=DEST, Key=layout.claim_key)["Body"].read())
    marker = {"completed_at": claimed["claimed_at"], "rows": 100}  # finalize, right after the claim
    aws.s3.put_object(Bucket=DEST, Key=layout.complete_marker_key, Body=json.dumps(marker).encode())
    run = f"{gen.delivery.source_bucket}/{gen.delivery.run_date}"
    assert main(["status", run, "--bucket", DEST, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["state"] == "complete"
    # a forced rerun claims generation 2 after the marker was written: no longer complete
    later = runs.time.time() + 3600
    monkeypatch.setattr(runs.time, "time", lambda: later)
    start_run(DEST, gen.delivery, settings=aws.settings, s3=aws.s3, batch=aws.batch, log=log, force=True)
    main(["status", run, "--bucket", DEST, "--json"])
    [status] = json.loads(capsys.readouterr().out)
    assert status["state"] != "complete" and status["generation"] == 2


def test_status_of_one_complete_run_shows_its_rollups(aws, tmp_path, capsys):
    # GIVEN a run converted by the real jobs, its marker and report in the destination bucket
    gen = generate_delivery(tmp_path / "src", objects=500, files=1, destination_bucket=DEST)
    assert main(["run-local", str(gen.manifest_path), "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    layout = RunLayout.of(gen.delivery)
    for key in (layout.complete_marker_key, layout.run_report_key):
        aws.s3.put_object(Bucket=DEST, Key=key, Body=(tmp_path / "out" / key).read_bytes())
    report = json.loads((tmp_path / "out" / layout.run_report_key).read_text())
    run = f"{layout.source_bucket}/{layout.run_date}"

    # WHEN the operator asks for that run
    assert main(["status", run, "--bucket", DEST, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)[0]
    assert main(["status", run, "--bucket", DEST]) == 0
    table = capsys.readouterr().out

    # THEN its rollups are the run report's, and they add up to the generated inventory
    assert status["state"] == "complete" and status["rollups"] == report["rollups"]
    classes = status["rollups"]["storage_class"]
    assert sum(r["objects"] for r in classes) == gen.truth.rows
    assert (
        sum(r["objects"] for r in classes if r["version_kind"] == "delete_marker") == gen.truth.delete_markers
    )
    assert sum(r["bytes"] for r in classes) == gen.truth.total_size
    assert "storage classes (objects / bytes):" in table
    assert "largest prefixes at depth 1 (rolled up to depth 3):" in table
    top = status["rollups"]["largest_prefixes"][0]
    assert f"  {top['prefix']:<22}" in table
    assert "age of stored versions" in table and "encryption of stored versions:" in table


def test_the_job_that_failed_first_is_named_whatever_order_the_claim_lists_them():
    # the claim is written with sorted keys: finalize, process, split
    jobs = {
        "finalize": {**_job("FAILED", "Dependent Job failed"), "jobName": "fin"},
        "process": {**_job("FAILED", "Dependent Job failed"), "jobName": "proc"},
        "split": {**_job("FAILED", "Essential container in task exited"), "jobName": "split"},
    }
    state, detail = derive_state({"state": "submitted"}, None, False, jobs)
    assert (state, detail) == ("failed", "split job split failed: Essential container in task exited")
    running = {"finalize": _job("RUNNABLE"), "process": _job("RUNNING"), "split": _job("SUCCEEDED")}
    assert derive_state({"state": "submitted"}, None, False, running) == (
        "processing",
        "process RUNNING, finalize RUNNABLE",
    )


def test_a_report_written_between_a_refused_read_and_the_listing_is_read_again():
    # GIVEN a caller that may list only some prefixes: a missing key answers 403, and finalize
    # writes the key just after that answer, before the listing that tells "missing" from "denied"
    from botocore.exceptions import ClientError

    from pipeline.status import read_json

    class S3:
        reads = 0

        def get_object(self, Bucket: str, Key: str) -> dict:
            self.reads += 1
            if self.reads == 1:
                raise ClientError({"Error": {"Code": "AccessDenied"}}, "GetObject")
            return {"Body": io.BytesIO(b'{"rows_out": 400}')}

        def list_objects_v2(self, Bucket: str, Prefix: str, MaxKeys: int) -> dict:
            return {"Contents": [{"Key": Prefix}]}

    s3 = S3()
    assert read_json(s3, "b", "run-reports/x/run-report.json") == {"rows_out": 400}
    assert s3.reads == 2


def test_a_key_that_exists_but_stays_refused_is_a_permission_error():
    from botocore.exceptions import ClientError

    from pipeline.status import read_json

    class S3:
        def get_object(self, Bucket: str, Key: str) -> dict:
            raise ClientError({"Error": {"Code": "AccessDenied"}}, "GetObject")

        def list_objects_v2(self, Bucket: str, Prefix: str, MaxKeys: int) -> dict:
            return {"Contents": [{"Key": Prefix}]}

    with pytest.raises(ClientError, match="AccessDenied"):
        read_json(S3(), "b", "run-reports/x/run-report.json")


def test_status_says_which_run_converts_a_listing(aws, tmp_path, capsys):
    from inventory_contract.listing import LISTING_CONFIG_ID

    log = JsonLogger(io.StringIO())
    for source, config in (("listed", LISTING_CONFIG_ID), ("inventoried", "daily-all-fields")):
        gen = generate_delivery(
            tmp_path / source,
            objects=20,
            files=1,
            source_bucket=source,
            destination_bucket=DEST,
            config_id=config,
        )
        upload_tree(aws.s3, gen.root, DEST)
        start_run(DEST, gen.delivery, settings=aws.settings, s3=aws.s3, batch=aws.batch, log=log)

    assert main(["status", "--bucket", DEST, "--json"]) == 0
    kinds = {s["run"]: s["kind"] for s in json.loads(capsys.readouterr().out)}
    assert kinds == {"listed/2026-11-24": "listing", "inventoried/2026-11-24": "s3-inventory"}
    main(["status", "listed/2026-11-24", "--bucket", DEST])
    assert " listing " in capsys.readouterr().out
