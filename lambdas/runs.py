"""Start exactly one Batch run per inventory delivery: claim it, then submit its jobs.

The claim is ``run-state/source_bucket=B/run_date=D/claim.json``, created with
``If-None-Match: *`` so that only one invocation wins it. It holds a lease; the winner submits the
splitter, the processor (depending on the splitter) and finalize (depending on the processor), and
then marks the claim ``submitted`` with the job ids.

- A duplicate event finds a ``submitted`` claim and returns it: nothing is submitted twice.
- A duplicate that arrives while the winner is still submitting (a valid lease, not yet
  ``submitted``) raises ``RunInProgressError``, so Lambda retries it later; so does one whose
  conditional write loses a race outright (S3 answers 412, or 409 ``ConditionalRequestConflict``
  while another conditional write to the key is in flight).
- If the winner crashed between claim and submission, a retry after the lease expired takes the
  claim over (``If-Match`` on the claim's ETag, so only one retry can) and completes the run.
  Job names are deterministic, and each job is looked up by name before it is submitted, so a job
  that the crashed invocation did submit for this manifest is reused, not submitted again.
- ``force`` reruns a delivery on purpose: a new generation, with new job names.
- A manifest that can never be processed (malformed, unsupported format, wrong checksum) is
  recorded in ``rejected.json`` and returned as ``rejected``: retrying it would not help.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from inventory_contract.delivery import Delivery
from inventory_contract.errors import ManifestError
from inventory_contract.jobs import MIN_ARRAY_SIZE, run_parameters
from inventory_contract.jsonlog import JsonLogger
from inventory_contract.layout import RunLayout
from inventory_contract.listing import is_listing_manifest
from inventory_contract.manifest import Manifest, parse_manifest
from inventory_contract.plan import plan_chunks
from inventory_contract.s3 import is_missing
from lambdas.settings import Settings

SUBMITTED, CLAIMED = "submitted", "claimed"
FINISHED = {"SUCCEEDED", "FAILED"}
JOB_KINDS = ("split", "process", "finalize")
"""Batch job states after which a job writes nothing more."""


class RunInProgressError(RuntimeError):
    """Another invocation holds a live claim on this run and has not submitted yet: retry later."""


@dataclass
class RunResult:
    run_id: str
    status: str  # submitted | duplicate | rejected | conflict
    manifest: str
    jobs: dict[str, str] = field(default_factory=dict)
    chunks: int | None = None
    reason: str | None = None


@dataclass
class _Claim:
    manifest: str
    run_id: str
    generation: int
    state: str
    lease_expires_at: float
    claimed_at: str
    chunks: int | None = None
    jobs: dict[str, str] = field(default_factory=dict)


def start_run(
    bucket: str,
    delivery: Delivery,
    *,
    settings: Settings,
    s3: Any,
    batch: Any,
    log: JsonLogger,
    force: bool = False,
    now: Callable[[], float] | None = None,
) -> RunResult:
    now = now or time.time  # looked up at call time, so tests can move the clock
    layout = RunLayout.of(delivery)
    uri = f"s3://{bucket}/{delivery.manifest_key}"
    log = log.bind(run_id=_run_id(delivery, None), bucket=bucket, key=delivery.manifest_key)
    try:
        manifest = _read_manifest(s3, bucket, delivery, uri)
    except ManifestError as err:
        log.error("manifest rejected", error=str(err))
        document = {"manifest": uri, "error": str(err), "rejected_at": _iso(now())}
        s3.put_object(Bucket=bucket, Key=layout.failure_key, Body=json.dumps(document, indent=2).encode())
        return RunResult(run_id=_run_id(delivery, None), status="rejected", manifest=uri, reason=str(err))

    claim, etag = _claim(s3, batch, bucket, layout, uri, delivery, settings, log, force=force, now=now)
    log = log.bind(run_id=claim.run_id)
    if claim.state == SUBMITTED:
        if claim.manifest != uri:
            log.warning("run already claimed by another delivery", claimed_by=claim.manifest)
            return RunResult(
                claim.run_id, "conflict", uri, claim.jobs, claim.chunks, f"claimed by {claim.manifest}"
            )
        log.info("duplicate delivery ignored", jobs=claim.jobs)
        return RunResult(claim.run_id, "duplicate", uri, claim.jobs, claim.chunks)

    # the splitter plans again with the same pure function and the same target: the same N
    chunks = plan_chunks([f.size for f in manifest.files], settings.target_chunk_bytes).count
    try:
        jobs = _submit(batch, settings, delivery, uri, chunks, claim.generation, log)
        submitted = _Claim(**{**asdict(claim), "state": SUBMITTED, "chunks": chunks, "jobs": jobs})
        try:
            s3.put_object(Bucket=bucket, Key=layout.claim_key, Body=_body(submitted), IfMatch=etag)
        except ClientError as err:
            if _lost_race(err):  # our lease ran out and another invocation took the claim over
                msg = f"run {claim.run_id}: another invocation took the claim over while this one submitted"
                raise RunInProgressError(msg) from err
            raise
    except RunInProgressError:
        raise
    except Exception:
        _release(s3, bucket, layout, claim, etag, now, log)
        raise
    claim = submitted
    log.info("run submitted", chunks=chunks, jobs=jobs, compressed_bytes=manifest.total_size)
    return RunResult(claim.run_id, "submitted", uri, jobs, chunks)


def _read_manifest(s3: Any, bucket: str, delivery: Delivery, uri: str) -> Manifest:
    raw = s3.get_object(Bucket=bucket, Key=delivery.manifest_key)["Body"].read()
    try:  # S3 may write manifest.checksum after manifest.json: check it only when it is there
        checksum = s3.get_object(Bucket=bucket, Key=delivery.checksum_key)["Body"].read()
    except ClientError as err:
        if not is_missing(err, s3=s3, bucket=bucket, key=delivery.checksum_key):
            raise
        checksum = None
    manifest = parse_manifest(raw, source=uri, checksum=checksum)
    if manifest.source_bucket != delivery.source_bucket:
        msg = f"{uri}: sourceBucket {manifest.source_bucket!r} differs from the key's {delivery.source_bucket!r}"
        raise ManifestError(msg)
    return manifest


def _release(
    s3: Any,
    bucket: str,
    layout: RunLayout,
    claim: _Claim,
    etag: str,
    now: Callable[[], float],
    log: JsonLogger,
) -> None:
    """After a failure past the claim, end its lease now, so that a retry (Lambda's, or the next
    ``pipeline trigger``) takes it over at once and reuses the jobs already submitted."""
    released = _Claim(**{**asdict(claim), "lease_expires_at": now()})
    try:
        s3.put_object(Bucket=bucket, Key=layout.claim_key, Body=_body(released), IfMatch=etag)
    except ClientError as err:  # the failure itself is what matters; the lease then runs out on its own
        log.warning("could not release the claim", error=str(err))
    else:
        log.info("claim released after a failure")


def _replaces_a_listing(claimed: str, uri: str) -> bool:
    """A delivery of S3 Inventory replaces a listing's run of the same date (it has every field, and
    is what later days compare with), and so does a later listing (the same source and date: its
    timestamp folder sorts later); a listing never replaces an inventory's run."""
    if not is_listing_manifest(claimed):
        return False
    return not is_listing_manifest(uri) or uri > claimed


def _active_jobs(batch: Any, jobs: dict[str, str]) -> list[str]:
    """``kind STATUS (id)`` of a run's jobs that have not finished (jobs Batch no longer keeps have)."""
    if not jobs:
        return []
    found = {j["jobId"]: j for j in batch.describe_jobs(jobs=list(jobs.values()))["jobs"]}
    in_order = sorted(jobs.items(), key=lambda item: JOB_KINDS.index(item[0]) if item[0] in JOB_KINDS else 99)
    return [
        f"{kind} {found[job_id]['status']} ({job_id})"
        for kind, job_id in in_order
        if job_id in found and found[job_id]["status"] not in FINISHED
    ]


def _claim(
    s3: Any,
    batch: Any,
    bucket: str,
    layout: RunLayout,
    uri: str,
    delivery: Delivery,
    settings: Settings,
    log: JsonLogger,
    *,
    force: bool,
    now: Callable[[], float],
) -> tuple[_Claim, str]:
    """Win the run's claim, or return the existing ``submitted`` claim (with an empty ETag)."""

    def fresh(generation: int) -> _Claim:
        return _Claim(
            manifest=uri,
            run_id=_run_id(delivery, generation),
            generation=generation,
            state=CLAIMED,
            lease_expires_at=now() + settings.claim_lease_seconds,
            claimed_at=_iso(now()),
        )

    claim = fresh(1)
    try:
        response = s3.put_object(Bucket=bucket, Key=layout.claim_key, Body=_body(claim), IfNoneMatch="*")
        log.info("run claimed", generation=1)
        return claim, response["ETag"]
    except ClientError as err:
        if _write_in_flight(err):  # another invocation's claim is being written right now
            msg = f"run {claim.run_id}: another invocation is writing the claim; retry later"
            raise RunInProgressError(msg) from err
        if not _precondition_failed(err):
            raise
    current = s3.get_object(Bucket=bucket, Key=layout.claim_key)
    existing = _Claim(**json.loads(current["Body"].read()))
    if force:
        if existing.state != SUBMITTED and existing.lease_expires_at > now():
            msg = f"run {existing.run_id} is being started by another invocation; retry after its lease"
            raise RunInProgressError(msg)
        if active := _active_jobs(batch, existing.jobs):
            msg = (
                f"run {existing.run_id} still has jobs that have not finished: {', '.join(active)}; a rerun "
                "now would mix two runs' parts. Wait for them, or stop them with `aws batch terminate-job "
                "--job-id ID --reason rerun`, then rerun"
            )
            raise RunInProgressError(msg)
        claim = fresh(existing.generation + 1)
        reason = "forced rerun"
    elif existing.state == SUBMITTED and not _replaces_a_listing(existing.manifest, uri):
        return existing, ""
    elif existing.state == SUBMITTED:  # S3's inventory of the date replaces a listing of it
        if active := _active_jobs(batch, existing.jobs):
            msg = f"run {existing.run_id} of a listing still has jobs running ({', '.join(active)}); retry later"
            raise RunInProgressError(msg)
        claim = fresh(existing.generation + 1)
        reason = "replaces the listing of the same date"
    elif existing.manifest != uri:
        if existing.lease_expires_at > now():
            msg = f"run {existing.run_id} is being started for {existing.manifest}; retry later"
            raise RunInProgressError(msg)
        claim = fresh(existing.generation)
        reason = "took over an expired claim of another delivery"
    elif existing.lease_expires_at > now():
        msg = (
            f"run {existing.run_id} is being started by another invocation; retry after its lease "
            f"(until {_iso(existing.lease_expires_at)})"
        )
        raise RunInProgressError(msg)
    else:
        claim = fresh(existing.generation)
        reason = "took over an expired claim"
    try:
        response = s3.put_object(
            Bucket=bucket, Key=layout.claim_key, Body=_body(claim), IfMatch=current["ETag"]
        )
    except ClientError as err:
        if _lost_race(err):
            msg = f"run {existing.run_id}: another invocation changed the claim first; retry later"
            raise RunInProgressError(msg) from err
        raise
    log.info("run claimed", generation=claim.generation, reason=reason, previous=asdict(existing))
    return claim, response["ETag"]


def _submit(
    batch: Any,
    settings: Settings,
    delivery: Delivery,
    uri: str,
    chunks: int,
    generation: int,
    log: JsonLogger,
) -> dict[str, str]:
    parameters = run_parameters(
        uri, delivery.source_bucket, delivery.run_date, chunks, settings.target_chunk_bytes
    )

    def request(kind: str, definition: str, after: str | None = None, **extra: Any) -> dict[str, Any]:
        submit = {
            "jobName": job_name(kind, delivery, generation),
            "jobQueue": settings.process_queue if kind == "process" else settings.job_queue,
            "jobDefinition": definition,
            "parameters": parameters,
            **extra,
        }
        if after:  # on an array job: after every child succeeded
            submit["dependsOn"] = [{"jobId": after}]
        return submit

    split_id = _submit_once(batch, log, **request("split", settings.split_job_definition))
    if chunks >= MIN_ARRAY_SIZE:
        children: dict[str, Any] = {"arrayProperties": {"size": chunks}}
    else:  # a single chunk: a plain job told its index, since an array needs 2 children
        children = {"parameters": {**parameters, "index": "0"}}
    process_id = _submit_once(
        batch, log, **request("process", settings.process_job_definition, split_id, **children)
    )
    finalize_id = _submit_once(
        batch, log, **request("finalize", settings.finalize_job_definition, process_id)
    )
    return {"split": split_id, "process": process_id, "finalize": finalize_id}


def _submit_once(batch: Any, log: JsonLogger, **request: Any) -> str:
    """Submit unless this run's job of that name is already in the queue (from a crashed invocation).

    Batch's JOB_NAME filter is case-insensitive and returns jobs in every status, so a job it finds is
    reused only if its parameters name this run's manifest.
    """
    found = batch.list_jobs(
        jobQueue=request["jobQueue"], filters=[{"name": "JOB_NAME", "values": [request["jobName"]]}]
    )["jobSummaryList"]
    if found:
        described = batch.describe_jobs(jobs=[job["jobId"] for job in found])["jobs"]
        manifest = request["parameters"]["manifest"]
        ours = [job for job in described if (job.get("parameters") or {}).get("manifest") == manifest]
        if ours:
            job_id: str = ours[0]["jobId"]
            log.info("job already submitted", job_name=request["jobName"], job_id=job_id)
            return job_id
        log.warning(
            "job name taken by another run; submitting anyway",
            job_name=request["jobName"],
            other_jobs=[job["jobId"] for job in described],
        )
    job_id = batch.submit_job(**request)["jobId"]
    log.info("job submitted", job_name=request["jobName"], job_id=job_id)
    return job_id


_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]")
_NAME_HASH_CHARS = 8


def job_name(kind: str, delivery: Delivery, generation: int) -> str:
    """``s3inv-split-my-bucket-1a2b3c4d-20241124-g1``: valid for Batch, readable, one per run.

    Batch names allow only letters, digits, ``-`` and ``_``, so ``my.bucket`` and ``my-bucket`` read
    alike; the short hash of the exact bucket name keeps their runs apart.
    """
    digest = hashlib.sha256(delivery.source_bucket.encode()).hexdigest()[:_NAME_HASH_CHARS]
    suffix = f"-{digest}-{delivery.run_date.replace('-', '')}-g{generation}"
    bucket = _NOT_NAME.sub("-", delivery.source_bucket)[: 128 - len(f"s3inv-{kind}-") - len(suffix)]
    return f"s3inv-{kind}-{bucket}{suffix}"


def _run_id(delivery: Delivery, generation: int | None) -> str:
    base = f"{delivery.source_bucket}/{delivery.run_date}"
    return base if generation is None else f"{base}/g{generation}"


def _precondition_failed(err: ClientError) -> bool:
    """412: the condition was false (the key exists, or its ETag changed)."""
    return _s3_error(err, "PreconditionFailed", 412)


def _write_in_flight(err: ClientError) -> bool:
    """409: another conditional write to the same key was in flight (S3 refuses this one)."""
    return _s3_error(err, "ConditionalRequestConflict", 409)


def _lost_race(err: ClientError) -> bool:
    """Either answer to a conditional write means someone else is writing the key: a lost race."""
    return _precondition_failed(err) or _write_in_flight(err)


def _s3_error(err: ClientError, code: str, status: int) -> bool:
    """S3's error code; the HTTP status only when the response carried no code."""
    found = err.response.get("Error", {}).get("Code")
    if found:
        return bool(found == code)
    return bool(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == status)


def _body(claim: _Claim) -> bytes:
    return json.dumps(asdict(claim), indent=2, sort_keys=True).encode()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="seconds")
