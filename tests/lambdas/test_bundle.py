"""The trigger Lambda's zip: the handler, the contract and the pinned SDK, and nothing else.

The slow test builds the zip the stack deploys and runs the handler from it alone, in a clean
interpreter, against S3 and Batch on a moto server: what runs there is what Lambda runs.
"""

from __future__ import annotations

import ast
import copy
import importlib.metadata
import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import botocore
import botocore.session
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from components.lambda_bundle import (
    INSTALL_RECORDS,
    LAMBDA_LOCK,
    ROOT,
    BundleError,
    bundle_archive,
    bundle_files,
    code_files,
    locked_pins,
    write_bundle,
)
from inventory_contract.layout import RunLayout
from lambdas import inventory_trigger
from lambdas.runs import job_name
from lambdas.sdk import SdkError, missing_conditional_writes
from pipeline.local.batch_env import create_local_batch
from pipeline.local.stand_in import stand_in
from pipeline.synthetic import generate_delivery
from tests.aws_fixtures import DEST, object_created

MiB = 1024 * 1024
PROBE = Path(__file__).with_name("run_in_bundle.py")
SDK = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
# The Lambda's platform, for the environment markers of the SDK's requirements.
LAMBDA_MARKERS = {"python_version": "3.13", "python_full_version": "3.13.0", "platform_machine": "aarch64"}
STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


def _canonical(pins: dict[str, str]) -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in pins.items()}


def _runtime_closure(name: str) -> set[str]:
    """``name`` and everything it needs at run time on Lambda (no extras), from installed metadata."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = canonicalize_name(todo.pop())
        if current in seen:
            continue
        seen.add(current)
        for line in importlib.metadata.requires(current) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({**LAMBDA_MARKERS, "extra": ""}):
                todo.append(requirement.name)
    return seen


# ---------- the lock ----------


def test_the_lambda_lock_is_boto3_and_its_runtime_dependencies_at_the_dev_locks_versions():
    lambda_pins = _canonical(locked_pins(LAMBDA_LOCK))
    dev_pins = _canonical(locked_pins(ROOT / "requirements" / "dev.lock"))
    assert set(lambda_pins) == SDK == _runtime_closure("boto3")
    assert {name: dev_pins.get(name) for name in lambda_pins} == lambda_pins  # make install has them
    assert lambda_pins["boto3"] == lambda_pins["botocore"]


def test_a_malformed_lock_line_is_named(tmp_path):
    lock = tmp_path / "lambda.lock"
    lock.write_text("boto3==1.44.8\n# a comment\nbotocore>=1.35\n")
    with pytest.raises(BundleError) as err:
        locked_pins(lock)
    assert str(err.value) == "lambda.lock line 3: expected name==version, got 'botocore>=1.35'"


@pytest.mark.parametrize(
    ("pin", "found"),
    [
        ("botocore==1.35.0", importlib.metadata.version("botocore")),
        ("no-such-distribution==1.0", "nothing"),
    ],
)
def test_an_installed_version_other_than_the_locked_one_is_refused_with_what_to_run(tmp_path, pin, found):
    lock = tmp_path / "lambda.lock"
    lock.write_text(f"boto3=={importlib.metadata.version('boto3')}\n{pin}\n")
    with pytest.raises(BundleError) as err:
        bundle_files(lock=lock)
    assert str(err.value) == (
        f"the Lambda bundle needs {pin} (requirements/lambda.lock) but {found} is installed: run `make install`"
    )


def test_a_distribution_with_compiled_code_is_refused(tmp_path):
    lock = tmp_path / "lambda.lock"
    pin = f"isal=={importlib.metadata.version('isal')}"  # compiled for this machine, not for arm64
    lock.write_text(f"{pin}\n")
    with pytest.raises(BundleError) as err:
        bundle_files(lock=lock)
    assert (
        str(err.value) == f"{pin} is not a pure-python wheel, so the Lambda bundle cannot take it from here"
    )


# ---------- what the zip holds ----------


def test_the_bundle_holds_the_code_the_contract_and_exactly_the_locked_sdk():
    files = bundle_files()
    pins = locked_pins(LAMBDA_LOCK)
    code = {name for name in files if name.startswith(("lambdas/", "inventory_contract/", "pipeline/"))}
    assert code == set(code_files())
    assert {"lambdas/inventory_trigger.py", "lambdas/sdk.py", "inventory_contract/manifest.py"} <= code
    assert not [name for name in code if name.startswith("pipeline/")]  # nothing of the operator CLI
    tops = {name.split("/")[0] for name in files if "dist-info" not in name.split("/")[0]}
    assert tops == {
        "lambdas",
        "inventory_contract",
        "boto3",
        "botocore",
        "s3transfer",
        "jmespath",
        "dateutil",
        "six.py",
        "urllib3",
    }
    dist_infos = {name.split("/")[0] for name in files if name.split("/")[0].endswith(".dist-info")}
    assert dist_infos == {f"{name.replace('-', '_')}-{version}.dist-info" for name, version in pins.items()}
    assert "botocore/data/s3/2006-03-01/service-2.json.gz" in files  # botocore ships whole
    assert not [n for n in files if "__pycache__" in n or n.endswith((".pyc", ".so", ".pyd"))]


def test_the_handlers_code_imports_only_the_standard_library_the_sdk_and_the_contract():
    allowed = set(sys.stdlib_module_names) | {"boto3", "botocore", "lambdas", "inventory_contract"}
    for name, path in code_files().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{name} imports {roots - allowed}"


def test_the_zip_holds_nothing_that_differs_between_installs_of_the_same_lock(tmp_path):
    # pip and uv, with or without bytecode, record different RECORD/INSTALLER files for one wheel;
    # Pulumi compares the zip's bytes, so they would update the function from another deployer's .venv
    files = bundle_files()
    installed = [
        n for n in files if n.split("/")[0].endswith(".dist-info") and n.split("/")[-1] in INSTALL_RECORDS
    ]
    assert installed == []
    assert {n.split("/")[-1] for n in files if n.startswith("boto3-")} >= {"METADATA", "WHEEL"}
    archive = write_bundle(tmp_path / "bundle.zip", files)
    # stored, not deflated: the bytes do not depend on the machine's zlib build
    assert {e.compress_type for e in zipfile.ZipFile(archive).infolist()} == {zipfile.ZIP_STORED}


def test_the_same_files_make_the_same_zip(tmp_path):
    files = code_files()
    first = write_bundle(tmp_path / "first.zip", files).read_bytes()
    os.utime(files["lambdas/settings.py"], (0, 0))  # a checkout's file times must not change the zip
    second = write_bundle(tmp_path / "second.zip", files).read_bytes()
    os.utime(files["lambdas/settings.py"])
    assert first == second
    entries = zipfile.ZipFile(tmp_path / "first.zip").infolist()
    assert [e.filename for e in entries] == sorted(files)
    assert {(e.date_time, e.external_attr >> 16) for e in entries} == {((1980, 1, 1, 0, 0, 0), 0o100644)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.zip", "second.zip"]  # no partial files


# ---------- the SDK check at cold start ----------


def test_the_pinned_sdk_has_both_conditional_writes():
    s3 = boto3.client("s3", region_name="us-east-1")
    assert botocore.__version__ == locked_pins(LAMBDA_LOCK)["botocore"]
    assert missing_conditional_writes(s3) == []


@pytest.fixture
def cold_start(monkeypatch):
    """A fresh execution environment for the handler: no cached clients, a new default session."""
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    inventory_trigger.clients.cache_clear()
    yield
    inventory_trigger.clients.cache_clear()


def _old_s3_model(root: Path, dropped: tuple[str, ...]) -> Path:
    """botocore's S3 model without ``dropped`` PutObject members, where AWS_DATA_PATH finds it first."""
    loader = botocore.session.get_session().get_component("data_loader")
    model = copy.deepcopy(loader.load_service_model("s3", "service-2"))
    members = model["shapes"]["PutObjectRequest"]["members"]
    for name in dropped:
        del members[name]
    folder = root / "s3" / model["metadata"]["apiVersion"]
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model))
    return root


@pytest.mark.parametrize(
    ("version", "dropped"),
    [("1.35.1", ("IfMatch", "IfNoneMatch")), ("1.35.68", ("IfMatch",))],  # before each was added
)
def test_the_handler_refuses_an_sdk_without_conditional_writes(
    tmp_path, monkeypatch, cold_start, version, dropped
):
    monkeypatch.setenv("AWS_DATA_PATH", str(_old_s3_model(tmp_path, dropped)))
    monkeypatch.setattr(botocore, "__version__", version)
    event = object_created(DEST, "inventory/src/cfg/2026-11-24T01-00Z/manifest.json")
    with pytest.raises(SdkError) as err:
        inventory_trigger.handler(event)
    assert str(err.value) == (
        f"S3 PutObject lacks {', '.join(dropped)} in botocore {version}; conditional writes need "
        "botocore >= 1.35.69: the Lambda bundle must ship the SDK pinned in requirements/lambda.lock "
        "(components/lambda_bundle.py)"
    )


# ---------- the built zip, alone, against S3 and Batch ----------


def _submitted_job_ids(batch, queue: str) -> set[str]:
    """Every job in the queue in any state, but array children (``parent-id:index``)."""
    ids = set()
    for status in STATUSES:
        ids |= {j["jobId"] for j in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]}
    return {job_id for job_id in ids if ":" not in job_id}


def _run_in_bundle(task: Path, events: list[dict], env: dict[str, str], tmp_path: Path) -> tuple[dict, list]:
    """The handler in a clean interpreter whose only import path beyond the stdlib is ``task``."""
    events_path = tmp_path / "events.json"
    events_path.write_text(json.dumps(events))
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(PROBE), str(task), str(events_path)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    logs = [json.loads(line) for line in result.stderr.splitlines()]
    return json.loads(result.stdout), logs


@pytest.mark.slow
def test_the_built_zip_alone_claims_the_run_and_submits_its_jobs(tmp_path, monkeypatch):
    # GIVEN the zip the stack deploys, unpacked as Lambda unpacks it into /var/task
    archive = bundle_archive()
    assert archive.stat().st_size < 50 * MiB  # Lambda's limit for a zip uploaded directly
    task = tmp_path / "task"
    zipfile.ZipFile(archive).extractall(task)
    # AND S3 and Batch on a moto server, with a delivery of several chunks (only what the trigger reads)
    gen = generate_delivery(tmp_path / "root", objects=30_000, files=3, destination_bucket=DEST)
    manifest = json.loads(gen.manifest_path.read_bytes())
    chunks = math.ceil(sum(f["size"] for f in manifest["files"]) / MiB)
    assert chunks >= 2  # an array job
    with stand_in() as aws:
        for name, value in aws.env.items():
            monkeypatch.setenv(name, value)
        s3, batch = aws.client("s3"), aws.client("batch")
        s3.create_bucket(Bucket=DEST)
        for key in (gen.delivery.manifest_key, gen.delivery.checksum_key):
            s3.upload_file(str(gen.root / key), DEST, key)
        local = create_local_batch(aws.session())
        env = {
            **aws.env,  # the credentials, Region and endpoint, as the function's environment
            "HOME": str(tmp_path),
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
            "LAMBDA_TASK_ROOT": str(task),
            "JOB_QUEUE": local.queue,
            "SPLIT_JOB_DEFINITION": local.job_definitions["split"],
            "PROCESS_JOB_DEFINITION": local.job_definitions["process"],
            "FINALIZE_JOB_DEFINITION": local.job_definitions["finalize"],
            "TARGET_CHUNK_MIB": "1",
        }
        event = object_created(DEST, gen.delivery.manifest_key)

        # WHEN the manifest event arrives twice (S3 delivers at least once)
        report, logs = _run_in_bundle(task, [event, event], env, tmp_path)

        # THEN nothing but the bundle and the standard library was importable or imported
        assert report["flags"] == {"isolated": 1, "no_site": 1}
        assert report["sys_path"][0] == str(task)
        assert not [p for p in report["sys_path"] if "site-packages" in p or "dist-packages" in p]
        assert report["importable"] == dict.fromkeys(report["importable"], False)
        roots = (str(task), *report["stdlib"])
        assert {m: f for m, f in report["module_files"].items() if not f.startswith(roots)} == {}
        assert {
            name: Path(f).is_relative_to(task) for name, f in report["sdk_files"].items()
        } == dict.fromkeys(report["sdk_files"], True)
        assert report["sdk_files"]["botocore"] == str(task / "botocore" / "__init__.py")
        pins = locked_pins(LAMBDA_LOCK)
        assert report["versions"] == {"boto3": pins["boto3"], "botocore": pins["botocore"]}
        assert report["missing_conditional_writes"] == []
        # AND the first event claimed the run (If-None-Match) and submitted its three jobs
        first, second = (r["runs"] for r in report["responses"])
        [run] = first
        assert (run["status"], run["run_id"], run["chunks"]) == (
            "submitted",
            "demo-source-bucket/2026-11-24/g1",
            chunks,
        )
        jobs = {j["jobName"]: j for j in batch.describe_jobs(jobs=list(run["jobs"].values()))["jobs"]}
        split, process, finalize = (
            jobs[job_name(kind, gen.delivery, 1)] for kind in ("split", "process", "finalize")
        )
        assert [split["jobId"], process["jobId"], finalize["jobId"]] == [
            run["jobs"][k] for k in ("split", "process", "finalize")
        ]
        assert process["arrayProperties"]["size"] == chunks
        assert process["dependsOn"] == [{"jobId": split["jobId"]}]
        assert finalize["dependsOn"] == [{"jobId": process["jobId"]}]
        assert {split["jobQueue"], process["jobQueue"], finalize["jobQueue"]} == {local.queue}
        # AND marked the claim submitted (If-Match on its ETag)
        claim_key = RunLayout.of(gen.delivery).claim_key
        claim = json.loads(s3.get_object(Bucket=DEST, Key=claim_key)["Body"].read())
        assert (claim["state"], claim["jobs"], claim["chunks"]) == ("submitted", run["jobs"], chunks)
        # AND the duplicate lost the If-None-Match race to the claim and submitted nothing
        assert second == [{**run, "status": "duplicate"}]
        assert _submitted_job_ids(batch, local.queue) == set(run["jobs"].values())
        messages = [line["message"] for line in logs if line.get("component") == "inventory_trigger"]
        assert messages == [
            "run claimed",
            "job submitted",
            "job submitted",
            "job submitted",
            "run submitted",
            "duplicate delivery ignored",
        ]
