"""The trigger Lambda against moto's S3 and Batch: assert on what was submitted."""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from inventory_contract.jsonlog import JsonLogger
from inventory_contract.layout import RunLayout
from inventory_contract.plan import plan_chunks
from lambdas import runs
from lambdas.inventory_trigger import handle_event
from lambdas.runs import RunInProgressError, job_name, start_run
from pipeline.synthetic import generate_delivery
from tests.aws_fixtures import DEST, EVENTS, object_created
from tests.conftest import upload_tree

STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


def expected_name(kind: str, bucket: str = "demo-source-bucket", generation: int = 1) -> str:
    """The job name of a run of ``bucket`` on 2026-11-24 (the fixtures' date)."""
    digest = hashlib.sha256(bucket.encode()).hexdigest()[:8]
    return f"s3inv-{kind}-{bucket.replace('.', '-')}-{digest}-20261124-g{generation}"


def submitted(aws) -> list[dict]:
    summaries = []
    for queue in {aws.settings.job_queue, aws.settings.process_queue}:
        for status in STATUSES:
            summaries += aws.batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
    ids = sorted({s["jobId"] for s in summaries if ":" not in s["jobId"]})  # not array children
    return aws.batch.describe_jobs(jobs=ids)["jobs"] if ids else []


def handle(aws, event, stream=None):
    log = JsonLogger(stream or io.StringIO(), component="test")
    return handle_event(event, settings=aws.settings, s3=aws.s3, batch=aws.batch, log=log)


def test_a_delivery_submits_the_splitter_then_the_array_that_depends_on_it(aws, delivery):
    sizes = [f["size"] for f in json.loads(delivery.manifest_path.read_bytes())["files"]]
    expected_chunks = plan_chunks(sizes, aws.settings.target_chunk_bytes).count  # what the splitter plans
    assert expected_chunks >= 2

    result = handle(aws, object_created(DEST, delivery.delivery.manifest_key))

    [run] = result["runs"]
    assert (run["status"], run["run_id"], run["chunks"]) == (
        "submitted",
        "demo-source-bucket/2026-11-24/g1",
        expected_chunks,
    )
    jobs = {j["jobName"]: j for j in submitted(aws)}
    names = [expected_name(kind) for kind in ("split", "process", "finalize")]
    assert set(jobs) == set(names)
    split, process, finalize = (jobs[name] for name in names)
    assert run["jobs"] == {
        "split": split["jobId"],
        "process": process["jobId"],
        "finalize": finalize["jobId"],
    }
    assert finalize["jobDefinition"] == aws.settings.finalize_job_definition
    assert finalize["dependsOn"] == [{"jobId": process["jobId"]}]  # after every array child
    assert split["jobDefinition"] == aws.settings.split_job_definition
    assert process["jobDefinition"] == aws.settings.process_job_definition
    assert split["jobQueue"] == process["jobQueue"] == aws.settings.job_queue
    assert process["dependsOn"] == [{"jobId": split["jobId"]}]
    assert process["arrayProperties"]["size"] == expected_chunks
    uri = f"s3://{DEST}/{delivery.delivery.manifest_key}"
    common = {
        "manifest": uri,
        "source_bucket": "demo-source-bucket",
        "run_date": "2026-11-24",
        "chunks": str(expected_chunks),
        "target_chunk_bytes": str(aws.settings.target_chunk_bytes),
    }
    assert split["parameters"] == common == finalize["parameters"]
    # the job definition's defaults: the index from AWS_BATCH_JOB_ARRAY_INDEX, the stack's prefix depth
    assert process["parameters"] == {**common, "index": "array", "prefix_depth": "3"}
    claim = json.loads(
        aws.s3.get_object(Bucket=DEST, Key=RunLayout.of(delivery.delivery).claim_key)["Body"].read()
    )
    assert (claim["state"], claim["jobs"], claim["chunks"]) == ("submitted", run["jobs"], expected_chunks)


def test_the_same_event_five_times_in_sequence_submits_once(aws, delivery):
    event = object_created(DEST, delivery.delivery.manifest_key)
    results = [handle(aws, event)["runs"][0] for _ in range(5)]
    assert [r["status"] for r in results] == ["submitted"] + ["duplicate"] * 4
    assert len({json.dumps(r["jobs"], sort_keys=True) for r in results}) == 1
    assert len(submitted(aws)) == 3


def test_the_same_event_five_times_concurrently_submits_once(aws, delivery, monkeypatch):
    # S3 applies each PUT atomically, conditional ones included; moto's handler is not thread-safe
    # (a concurrent overwrite can close the buffer another PUT is reading), so serialize it, as S3 does.
    from moto.s3.responses import S3Response

    lock, put = threading.Lock(), S3Response.put_object

    def atomic_put(self):
        with lock:
            return put(self)

    monkeypatch.setattr(S3Response, "put_object", atomic_put)
    event = object_created(DEST, delivery.delivery.manifest_key)
    barrier = threading.Barrier(5)

    def invoke(_):
        barrier.wait()
        try:
            return handle(aws, event)["runs"][0]["status"]
        except RunInProgressError:
            return "retry-later"  # Lambda retries it; the retry finds the run submitted

    with ThreadPoolExecutor(5) as pool:
        statuses = list(pool.map(invoke, range(5)))
    assert statuses.count("submitted") == 1
    assert len(submitted(aws)) == 3
    retried = [handle(aws, event)["runs"][0]["status"] for s in statuses if s != "submitted"]
    assert set(retried) <= {"duplicate"}
    assert len(submitted(aws)) == 3


@pytest.mark.parametrize("death", ["error", "killed"])
def test_a_crash_after_the_claim_is_completed_by_a_retry_once(aws, delivery, monkeypatch, death):
    event = object_created(DEST, delivery.delivery.manifest_key)
    real_submit = aws.batch.submit_job
    calls = {"n": 0}

    def crash_on_second_submit(**request):
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionError("the invocation died between the two submissions")
        return real_submit(**request)

    monkeypatch.setattr(aws.batch, "submit_job", crash_on_second_submit)
    if death == "killed":  # a timeout or a kill: the invocation never gets to release its claim
        monkeypatch.setattr(runs, "_release", lambda *args: None)
    with pytest.raises(ConnectionError):
        handle(aws, event)
    assert [j["jobName"] for j in submitted(aws)] == [expected_name("split", "demo-source-bucket", 1)]

    if death == "killed":
        # a retry inside the lease backs off (Lambda retries it again later)...
        with pytest.raises(RunInProgressError, match="retry after its lease"):
            handle(aws, event)
        # ...until the lease has expired
        clock = runs.time.time() + aws.settings.claim_lease_seconds + 1
        monkeypatch.setattr(runs.time, "time", lambda: clock)
    # an error released the claim at once: the next retry completes the run, reusing the splitter
    [run] = handle(aws, event)["runs"]
    assert run["status"] == "submitted"
    jobs = submitted(aws)
    assert sorted(j["jobName"] for j in jobs) == [
        expected_name("finalize", "demo-source-bucket", 1),
        expected_name("process", "demo-source-bucket", 1),
        expected_name("split", "demo-source-bucket", 1),
    ]
    split = next(j for j in jobs if "split" in j["jobName"])
    assert run["jobs"]["split"] == split["jobId"]
    assert handle(aws, event)["runs"][0]["status"] == "duplicate"


def test_a_forced_rerun_is_refused_while_the_earlier_run_has_active_jobs(aws, delivery):
    # GIVEN a submitted run whose splitter is still running
    [first] = handle(aws, object_created(DEST, delivery.delivery.manifest_key))["runs"]
    real_describe = aws.batch.describe_jobs

    def still_running(**request):
        described = real_describe(**request)
        for job in described["jobs"]:
            job["status"] = "RUNNING" if job["jobId"] == first["jobs"]["split"] else "PENDING"
        return described

    aws.batch.describe_jobs = still_running
    log = JsonLogger(io.StringIO())
    # WHEN it is forced to rerun, THEN that is refused, naming the active jobs and what to do
    with pytest.raises(RunInProgressError, match=r"still has jobs that have not finished: split RUNNING"):
        start_run(
            DEST, delivery.delivery, settings=aws.settings, s3=aws.s3, batch=aws.batch, log=log, force=True
        )
    assert "aws batch terminate-job" in str(_refusal(aws, delivery, log))
    assert len(submitted(aws)) == 3  # nothing new submitted
    # and once its jobs have finished, the forced rerun starts generation 2
    aws.batch.describe_jobs = real_describe
    rerun = start_run(
        DEST, delivery.delivery, settings=aws.settings, s3=aws.s3, batch=aws.batch, log=log, force=True
    )
    assert (rerun.status, rerun.run_id) == ("submitted", "demo-source-bucket/2026-11-24/g2")


def _refusal(aws, delivery, log) -> Exception:
    try:
        start_run(
            DEST, delivery.delivery, settings=aws.settings, s3=aws.s3, batch=aws.batch, log=log, force=True
        )
    except RunInProgressError as err:
        return err
    raise AssertionError("the forced rerun was not refused")


def test_buckets_whose_names_differ_only_in_a_dot_each_get_their_own_run(aws, tmp_path):
    # GIVEN deliveries of my.bucket and my-bucket on the same day (the same Batch-safe spelling)
    keys = []
    for bucket in ("my.bucket", "my-bucket"):
        gen = generate_delivery(
            tmp_path / bucket, objects=50, files=1, source_bucket=bucket, destination_bucket=DEST
        )
        upload_tree(aws.s3, gen.root, DEST)
        keys.append(gen.delivery.manifest_key)
    # WHEN both manifests land
    runs_started = [handle(aws, object_created(DEST, key))["runs"][0] for key in keys]
    # THEN each run submitted its own jobs, for its own manifest
    assert [r["status"] for r in runs_started] == ["submitted", "submitted"]
    assert runs_started[0]["jobs"]["split"] != runs_started[1]["jobs"]["split"]
    splits = {j["jobName"]: j for j in submitted(aws) if "split" in j["jobName"]}
    assert set(splits) == {expected_name("split", "my.bucket"), expected_name("split", "my-bucket")}
    for bucket, key in zip(("my.bucket", "my-bucket"), keys, strict=True):
        assert splits[expected_name("split", bucket)]["parameters"]["manifest"] == f"s3://{DEST}/{key}"


def test_a_job_found_by_name_is_reused_only_if_it_names_this_runs_manifest(aws, delivery):
    # GIVEN a job in the queue with this run's split name but another manifest (a name clash)
    other = aws.batch.submit_job(
        jobName=expected_name("split"),
        jobQueue=aws.settings.job_queue,
        jobDefinition=aws.settings.split_job_definition,
        parameters={"manifest": f"s3://{DEST}/elsewhere/manifest.json"},
    )["jobId"]
    # WHEN the delivery's manifest lands
    [run] = handle(aws, object_created(DEST, delivery.delivery.manifest_key))["runs"]
    # THEN the run submitted its own splitter, and its processor depends on that one
    assert run["status"] == "submitted" and run["jobs"]["split"] != other
    jobs = {j["jobId"]: j for j in submitted(aws)}
    assert (
        jobs[run["jobs"]["split"]]["parameters"]["manifest"]
        == f"s3://{DEST}/{delivery.delivery.manifest_key}"
    )
    assert jobs[run["jobs"]["process"]]["dependsOn"] == [{"jobId": run["jobs"]["split"]}]


def test_force_starts_a_new_generation(aws, delivery):
    event = object_created(DEST, delivery.delivery.manifest_key)
    handle(aws, event)
    log = JsonLogger(io.StringIO())
    rerun = start_run(
        DEST, delivery.delivery, settings=aws.settings, s3=aws.s3, batch=aws.batch, log=log, force=True
    )
    assert (rerun.status, rerun.run_id) == ("submitted", "demo-source-bucket/2026-11-24/g2")
    assert len(submitted(aws)) == 6
    assert handle(aws, event)["runs"][0]["status"] == "duplicate"


def test_test_events_foreign_keys_and_other_events_are_ignored_with_one_log_line_each(aws, delivery):
    stream = io.StringIO()
    test_event = json.loads((EVENTS / "s3-test-event.json").read_text())
    assert handle(aws, test_event, stream) == {"runs": [], "ignored": 1}
    manifest = delivery.delivery.manifest_key
    event = object_created(
        DEST,
        "inventory/demo-source-bucket/daily-all-fields/data/x.csv.gz",
        manifest.replace("inventory/", "elsewhere/"),
        manifest.replace("/manifest.json", "/manifest.checksum"),
        "inventory/demo-source-bucket/not-a-timestamp/manifest.json",
    )
    event["Records"] += object_created(DEST, manifest, event_name="ObjectRemoved:Delete")["Records"]
    event["Records"] += object_created(DEST, manifest, version="1.0")["Records"]
    assert handle(aws, event, stream) == {"runs": [], "ignored": 6}
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == [
        "ignored s3:TestEvent",
        *["ignored record: not a manifest.json under the inventory prefix"] * 3,
        "ignored record: not an inventory delivery key",
        "ignored record: not an object-created event",
        "ignored record: unsupported event version",
    ]
    assert submitted(aws) == []


def test_keys_with_spaces_and_non_ascii_and_several_records(aws, tmp_path):
    aws_settings = aws.settings.__class__(**{**aws.settings.__dict__, "inventory_prefix": "inv entory/ü/"})
    aws.settings = aws_settings
    keys = []
    for i, bucket in enumerate(("source-one", "source-two")):
        gen = generate_delivery(
            tmp_path / str(i), objects=50, files=1, source_bucket=bucket, destination_bucket=DEST
        )
        root = tmp_path / f"r{i}"
        (root / "inv entory" / "ü").mkdir(parents=True)
        (gen.root / "inventory").rename(root / "inv entory" / "ü" / "inventory")
        keys.append(f"inv entory/ü/{gen.delivery.manifest_key}")
        upload_tree(aws.s3, root, DEST)
    aws.settings = aws_settings.__class__(
        **{**aws_settings.__dict__, "inventory_prefix": "inv entory/ü/inventory/"}
    )
    event = object_created(DEST, *keys)
    assert "inv+entory/%C3%BC/" in event["Records"][0]["s3"]["object"]["key"]

    result = handle(aws, event)

    assert [r["status"] for r in result["runs"]] == ["submitted", "submitted"]
    assert [r["manifest"] for r in result["runs"]] == [f"s3://{DEST}/{k}" for k in keys]
    jobs = submitted(aws)
    assert sorted(j["jobName"] for j in jobs if "split" in j["jobName"]) == [
        expected_name("split", "source-one", 1),
        expected_name("split", "source-two", 1),
    ]
    single = [j for j in jobs if "process" in j["jobName"]]
    assert all("arrayProperties" not in j or not j["arrayProperties"].get("size") for j in single)
    assert {j["parameters"]["index"] for j in single} == {"0"}  # one chunk: a plain job with index 0


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda m: m.update(fileFormat="Parquet"), "fileFormat 'Parquet'"),
        (lambda m: m.pop("files"), "required field files is missing"),
        (lambda m: m["files"][0].pop("MD5checksum"), r"files[0].MD5checksum is missing"),
    ],
)
def test_a_bad_manifest_is_rejected_once_recorded_and_not_retried(aws, delivery, mutate, reason):
    manifest = json.loads(delivery.manifest_path.read_bytes())
    mutate(manifest)
    key = delivery.delivery.manifest_key
    aws.s3.put_object(Bucket=DEST, Key=key, Body=json.dumps(manifest).encode())
    aws.s3.delete_object(Bucket=DEST, Key=delivery.delivery.checksum_key)
    stream = io.StringIO()

    result = handle(aws, object_created(DEST, key), stream)  # returns: no exception, so no retry

    [run] = result["runs"]
    assert run["status"] == "rejected" and reason in run["reason"]
    record = json.loads(
        aws.s3.get_object(Bucket=DEST, Key=RunLayout.of(delivery.delivery).failure_key)["Body"].read()
    )
    assert reason in record["error"] and record["manifest"] == f"s3://{DEST}/{key}"
    errors = [json.loads(line) for line in stream.getvalue().splitlines() if '"ERROR"' in line]
    assert errors[0]["message"] == "manifest rejected" and errors[0]["key"] == key
    assert errors[0]["run_id"] == "demo-source-bucket/2026-11-24"
    assert submitted(aws) == []


def test_a_checksum_mismatch_is_rejected_and_a_missing_checksum_is_tolerated(aws, delivery):
    key = delivery.delivery.manifest_key
    aws.s3.put_object(Bucket=DEST, Key=delivery.delivery.checksum_key, Body=b"0" * 32)
    [run] = handle(aws, object_created(DEST, key))["runs"]
    assert run["status"] == "rejected" and "but manifest.checksum says 000" in run["reason"]
    aws.s3.delete_object(Bucket=DEST, Key=delivery.delivery.checksum_key)
    assert handle(aws, object_created(DEST, key))["runs"][0]["status"] == "submitted"


def test_transient_errors_propagate_so_lambda_retries(aws, delivery, monkeypatch):
    def throttled(**_):
        raise ClientError(
            {"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}}, "SubmitJob"
        )

    monkeypatch.setattr(aws.batch, "submit_job", throttled)
    with pytest.raises(ClientError, match="TooManyRequestsException"):
        handle(aws, object_created(DEST, delivery.delivery.manifest_key))


def test_every_log_line_of_a_run_carries_the_run_id(aws, delivery):
    stream = io.StringIO()
    handle(aws, object_created(DEST, delivery.delivery.manifest_key), stream)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines and all(line["run_id"].startswith("demo-source-bucket/2026-11-24") for line in lines)
    assert (
        lines[-1]["message"] == "run submitted" and lines[-1]["run_id"] == "demo-source-bucket/2026-11-24/g1"
    )


def test_job_names_are_valid_for_batch_readable_and_distinct_per_exact_bucket():
    from datetime import UTC, datetime

    from inventory_contract.delivery import Delivery

    def name(bucket: str, kind: str = "process", generation: int = 12) -> str:
        return job_name(
            kind, Delivery("inventory", bucket, "cfg", datetime(2024, 2, 29, tzinfo=UTC)), generation
        )

    long_bucket = "a." + "b" * 61
    digest = hashlib.sha256(long_bucket.encode()).hexdigest()[:8]
    assert name(long_bucket) == f"s3inv-process-a-{'b' * 61}-{digest}-20240229-g12"
    # the same Batch-safe spelling, different buckets: different names (ListJobs ignores case, too)
    assert name("my.bucket").lower() != name("my-bucket").lower()
    assert name("my.bucket").startswith("s3inv-process-my-bucket-")
    for bucket in (long_bucket, "x" * 63, "my.bucket"):
        for kind in ("split", "process", "finalize"):
            assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}", name(bucket, kind, 10_000)), (
                bucket,
                kind,
            )


def test_uploaded_fixture_is_untouched(delivery):  # guards the fixture the other tests rely on
    assert delivery.truth.rows == 3000


CONFLICT = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ConditionalRequestConflict</Code>'
    "<Message>A conflicting conditional operation is currently in progress against this resource. "
    "Please try again.</Message><RequestId>R</RequestId><HostId>H</HostId></Error>"
)


class Race:
    """While it runs, the stand-in S3 answers PutObjects that carry ``header`` as AWS does when
    another conditional write to the key is in flight: 409 ConditionalRequestConflict, writing
    nothing. The answer goes over botocore's wire path (parsing, retries) like any S3 error.
    ``refused`` lists the keys it refused."""

    def __init__(self, monkeypatch, header: str) -> None:
        from moto.s3.responses import S3Response

        self.header, self.refused, self.racing = header, [], True
        put = S3Response.put_object
        race = self

        def conflicting_put(response):
            if race.racing and response.headers.get(race.header):
                race.refused.append(response.path.rsplit("/", 1)[-1])
                return 409, {"Content-Type": "application/xml"}, CONFLICT
            return put(response)

        monkeypatch.setattr(S3Response, "put_object", conflicting_put)

    def end(self) -> None:
        self.racing = False


def _handle_logged(aws, event):
    stream = io.StringIO()
    try:
        return handle(aws, event, stream), stream.getvalue()
    except RunInProgressError as err:
        return err, stream.getvalue()


def test_a_claim_that_loses_a_409_race_is_a_run_in_progress_not_an_error(aws, delivery, monkeypatch):
    # GIVEN another invocation's claim being written at this very moment
    event = object_created(DEST, delivery.delivery.manifest_key)
    refused = Race(monkeypatch, "If-None-Match").refused
    # WHEN this copy of the event tries to claim the run
    outcome, logged = _handle_logged(aws, event)
    # THEN it hands the event back to Lambda as in progress (the line the alerts count), submits nothing
    assert isinstance(outcome, RunInProgressError), outcome
    assert "another invocation is writing the claim" in str(outcome)
    assert refused and all(key == "claim.json" for key in refused)
    assert "run in progress, Lambda retries the event" in logged
    assert submitted(aws) == []
    with pytest.raises(ClientError, match="NoSuchKey"):  # the refused write wrote nothing
        aws.s3.get_object(Bucket=DEST, Key=RunLayout.of(delivery.delivery).claim_key)


def test_a_takeover_that_loses_a_409_race_is_a_run_in_progress(aws, delivery, monkeypatch):
    # GIVEN a claim whose winner died before submitting (its lease has run out)
    event = object_created(DEST, delivery.delivery.manifest_key)
    with monkeypatch.context() as dying:
        dying.setattr(runs, "_submit", lambda *args: (_ for _ in ()).throw(ConnectionError("died")))
        dying.setattr(runs, "_release", lambda *args: None)
        with pytest.raises(ConnectionError):
            handle(aws, event)
    clock = runs.time.time() + aws.settings.claim_lease_seconds + 1
    monkeypatch.setattr(runs.time, "time", lambda: clock)
    # WHEN the retry's takeover (If-Match) races another retry's
    Race(monkeypatch, "If-Match")
    outcome, logged = _handle_logged(aws, event)
    # THEN it is in progress, and nothing was submitted
    assert isinstance(outcome, RunInProgressError), outcome
    assert "changed the claim first" in str(outcome)
    assert "run in progress, Lambda retries the event" in logged
    assert submitted(aws) == []


def test_a_409_on_marking_the_claim_submitted_is_in_progress_and_the_retry_reuses_the_jobs(
    aws, delivery, monkeypatch
):
    event = object_created(DEST, delivery.delivery.manifest_key)
    race = Race(monkeypatch, "If-Match")  # the claim's create passes; its update is refused
    outcome, _ = _handle_logged(aws, event)
    assert isinstance(outcome, RunInProgressError), outcome
    assert "took the claim over" in str(outcome)
    assert race.refused and set(race.refused) == {"claim.json"}
    assert len(submitted(aws)) == 3
    race.end()
    clock = runs.time.time() + aws.settings.claim_lease_seconds + 1
    monkeypatch.setattr(runs.time, "time", lambda: clock)
    [run] = handle(aws, event)["runs"]
    assert run["status"] == "submitted"
    assert len(submitted(aws)) == 3  # the three jobs found by name, none submitted twice


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"sourceBucket": "a", "sourceBucket": "b"}', "appears more than once"),
        (b'{"files": [{"size": ' + b"9" * 5000 + b"}]}", "more than 4,300 digits"),
    ],
    ids=["deep", "duplicate-key", "huge-number"],
)
def test_a_malformed_manifest_body_is_rejected_and_recorded_not_raised(aws, delivery, body, reason):
    key = delivery.delivery.manifest_key
    aws.s3.put_object(Bucket=DEST, Key=key, Body=body)
    aws.s3.delete_object(Bucket=DEST, Key=delivery.delivery.checksum_key)
    stream = io.StringIO()

    [run] = handle(aws, object_created(DEST, key), stream)["runs"]  # no exception: Lambda does not retry

    assert run["status"] == "rejected" and reason in run["reason"]
    record = json.loads(
        aws.s3.get_object(Bucket=DEST, Key=RunLayout.of(delivery.delivery).failure_key)["Body"].read()
    )
    assert reason in record["error"]
    assert '"message": "manifest rejected"' in stream.getvalue()  # what the rejected-manifest alarm counts
    assert submitted(aws) == []


def test_with_a_spot_queue_only_the_processor_children_go_to_it(aws, delivery):
    # GIVEN the stack's processCapacity spot: a queue of their own for the processor children
    import dataclasses

    from pipeline.local.batch_env import create_local_batch

    spot = create_local_batch(aws.session, name_prefix="s3inv-spot").queue
    aws.settings = dataclasses.replace(aws.settings, process_job_queue=spot)
    # WHEN a delivery starts its run
    [run] = handle(aws, object_created(DEST, delivery.delivery.manifest_key))["runs"]
    # THEN the splitter and finalize run on demand, the array on the Spot queue
    queues = {job["jobName"]: job["jobQueue"] for job in submitted(aws)}
    assert run["status"] == "submitted"
    assert queues[expected_name("process")] == spot
    assert (
        queues[expected_name("split")] == queues[expected_name("finalize")] == aws.settings.job_queue != spot
    )


def _delivery_of(aws, tmp_path, config_id: str, hour: int):
    from datetime import UTC, datetime

    gen = generate_delivery(
        tmp_path / config_id,
        objects=50,
        files=1,
        destination_bucket=DEST,
        config_id=config_id,
        timestamp=datetime(2026, 11, 24, hour, 0, tzinfo=UTC),
    )
    upload_tree(aws.s3, gen.root, DEST)
    return gen.delivery.manifest_key


def test_an_inventory_replaces_the_listing_of_its_date_and_a_listing_never_replaces_an_inventory(
    aws, tmp_path
):
    from inventory_contract.listing import LISTING_CONFIG_ID

    # GIVEN a listing's run of 2026-11-24 (day 0), then S3's first inventory of the same date
    listing = _delivery_of(aws, tmp_path, LISTING_CONFIG_ID, 1)
    inventory = _delivery_of(aws, tmp_path, "daily-all-fields", 5)
    [first] = handle(aws, object_created(DEST, listing))["runs"]
    real_describe = aws.batch.describe_jobs

    def still_running(**request):
        described = real_describe(**request)
        for job in described["jobs"]:
            job["status"] = "RUNNING"
        return described

    # WHEN the inventory lands while the listing's run still runs, THEN it is retried later
    aws.batch.describe_jobs = still_running
    with pytest.raises(RunInProgressError, match="of a listing still has jobs running"):
        handle(aws, object_created(DEST, inventory))
    aws.batch.describe_jobs = real_describe
    # AND once it has finished, the inventory's run replaces it as generation 2
    [second] = handle(aws, object_created(DEST, inventory))["runs"]
    assert first["status"] == "submitted" and first["run_id"].endswith("/g1")
    assert (second["status"], second["run_id"]) == ("submitted", "demo-source-bucket/2026-11-24/g2")
    assert second["manifest"] == f"s3://{DEST}/{inventory}"
    # AND a listing of that date after the inventory is a conflict: the inventory's run stays
    later = _delivery_of(aws, tmp_path / "later", LISTING_CONFIG_ID, 9)
    [third] = handle(aws, object_created(DEST, later))["runs"]
    assert third["status"] == "conflict" and third["run_id"].endswith("/g2")


def test_a_later_listing_of_the_same_date_replaces_an_earlier_one_and_not_the_reverse(aws, tmp_path):
    from inventory_contract.listing import LISTING_CONFIG_ID

    earlier = _delivery_of(aws, tmp_path / "a", LISTING_CONFIG_ID, 1)
    later = _delivery_of(aws, tmp_path / "b", LISTING_CONFIG_ID, 3)
    [first] = handle(aws, object_created(DEST, earlier))["runs"]
    [second] = handle(aws, object_created(DEST, later))["runs"]
    assert (second["status"], second["run_id"]) == ("submitted", "demo-source-bucket/2026-11-24/g2")
    # the earlier one's event again (at-least-once delivery) does not take the run back
    [again] = handle(aws, object_created(DEST, earlier))["runs"]
    assert first["status"] == "submitted" and again["status"] == "conflict"
