"""The AWS model: a run's wall time and cost at any size, from figures measured here and AWS's
documented limits and prices, each assumption with its source.

Measured here (``python -m bench --model``): the jobs' CPU-seconds and wall seconds per GB of
gzip (the processor child's whole work on 2 cores, as a 2-vCPU Fargate task has), the splitter's
and finalize's per data file and per million rows, the S3 requests each job makes per GB (a
counting wrapper around the storage interface), the bytes of gzip per object, and for the local
check the fixed cost of ``run-local`` (interpreter, stand-in, trigger, publication).

The same arithmetic predicts ``run-local`` on this machine (no task starts, the children sharing
its cores), which is measured, so the model is checked where it can be.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from components.job_definitions import FINALIZE_SIZE

GB = 1e9


@dataclass(frozen=True)
class Assumption:
    name: str
    value: float
    low: float
    high: float
    unit: str
    source: str


ASSUMPTIONS = {
    a.name: a
    for a in (
        Assumption(
            "task_start_s",
            50,
            35,
            75,
            "s",
            "Fargate task start with a ~150 MB image (placement, ENI, image pull): AWS's Fargate "
            "documentation and re:Invent talks give 30-60 s; Batch adds its scheduling",
        ),
        Assumption(
            "image_pull_s",
            20,
            10,
            30,
            "s",
            "the billed part of a start: Fargate bills from the image pull's start (AWS Fargate "
            "pricing: 'from the time you start to download your container image')",
        ),
        Assumption(
            "fargate_vcpu_speed",
            1.0,
            0.8,
            1.2,
            "x this machine's core",
            "assumption: a Fargate x86 vCPU (a hyperthread of a recent Xeon/EPYC) against one core "
            "of this machine; the range covers one generation either way",
        ),
        Assumption(
            "task_network_mb_s",
            300,
            150,
            600,
            "MB/s per task",
            "assumption: Fargate does not document a task's network bandwidth; finalize fetches the "
            "children's identity hashes with 16 streams in parallel, which this caps",
        ),
        Assumption(
            "s3_read_mb_s",
            90,
            60,
            150,
            "MB/s per stream",
            "Amazon S3 performance guidelines: about 85-90 MB/s per request stream; a child reads "
            "one stream per data file",
        ),
        Assumption(
            "s3_write_mb_s",
            150,
            80,
            300,
            "MB/s per task",
            "the part's upload: boto3 multipart, 4 parts of 64 MiB in flight (batch_jobs/s3io.py)",
        ),
        Assumption(
            "vcpu_hour_usd",
            0.04048,
            0.04048,
            0.04048,
            "USD",
            "AWS Fargate pricing, us-east-1, Linux/x86, per vCPU-hour (2025)",
        ),
        Assumption(
            "gb_hour_usd",
            0.004445,
            0.004445,
            0.004445,
            "USD",
            "AWS Fargate pricing, us-east-1, Linux/x86, per GB-hour of memory (2025)",
        ),
        Assumption(
            "billing_minimum_s",
            60,
            60,
            60,
            "s",
            "AWS Fargate pricing: per second, with a 1-minute minimum for Linux tasks",
        ),
        Assumption(
            "spot_discount",
            0.70,
            0.50,
            0.70,
            "fraction",
            "AWS Fargate Spot: 'up to a 70% discount' off on-demand; the rate varies",
        ),
        Assumption(
            "put_per_1000_usd",
            0.005,
            0.005,
            0.005,
            "USD",
            "Amazon S3 pricing, us-east-1, S3 Standard: PUT, COPY, POST, LIST per 1,000 requests",
        ),
        Assumption(
            "get_per_1000_usd",
            0.0004,
            0.0004,
            0.0004,
            "USD",
            "Amazon S3 pricing, us-east-1, S3 Standard: GET, SELECT and all other requests per 1,000",
        ),
        Assumption(
            "gb_month_usd",
            0.023,
            0.023,
            0.023,
            "USD",
            "Amazon S3 pricing, us-east-1, S3 Standard, first 50 TB per month",
        ),
        Assumption(
            "trigger_s",
            2,
            1,
            5,
            "s",
            "the trigger Lambda: S3 event delivery (seconds) and three SubmitJob calls",
        ),
    )
}
"""Every assumption the projection makes, with its range and where it comes from."""


@dataclass(frozen=True)
class Stack:
    """The stack's defaults (Pulumi.yaml) that the projection follows."""

    target_chunk_bytes: int = 1024 * 2**20
    max_vcpus: int = 256
    process_vcpu: float = 2
    process_memory_gb: float = 4
    split_vcpu: float = 0.5
    split_memory_gb: float = 1
    finalize_vcpu: float = float(FINALIZE_SIZE[0])  # components/job_definitions.py
    finalize_memory_gb: float = FINALIZE_SIZE[1] / 1024
    state_retention_days: int = 7
    max_array: int = 10_000


@dataclass(frozen=True)
class Measured:
    """Figures measured on this machine by the benchmark (``python -m bench --model``)."""

    gzip_bytes_per_object: float
    parquet_per_gzip: float  # Parquet bytes written per gzip byte read
    process_cpu_s_per_gb: float  # the child's whole work, CPU-seconds per GB of gzip
    process_wall_s_per_gb: float  # the same on 2 cores (what a 2-vCPU task sees)
    process_fixed_s: float  # a child's start (interpreter, imports, plan), wall
    inflate_s_per_gb: float  # ISA-L inflate alone, seconds per GB of gzip (a cut file's skipped head)
    split_cpu_s: float  # the splitter's work, per run (HEADs and trailers are per file, below)
    split_s_per_file: float
    finalize_cpu_s_per_million_rows: float
    finalize_fixed_s: float
    state_bytes_per_object: float  # intermediate run state (identity hashes, partial rollups)
    requests_per_chunk: dict[str, float]  # S3 requests of the whole run per chunk (a data file each)
    data_file_bytes: float = 1.0e9  # assumption for the projection, see Projection.files


@dataclass
class Projection:
    objects: int
    gzip_gb: float
    chunks: int
    waves: int
    chunk_gzip_gb: float
    wall_minutes: float
    wall_minutes_low: float
    wall_minutes_high: float
    cost_usd: float
    cost_spot_usd: float
    stages: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)


def _value(name: str, case: str) -> float:
    a = ASSUMPTIONS[name]
    return {"low": a.low, "high": a.high}.get(case, a.value)


def project(objects: int, m: Measured, stack: Stack | None = None, *, one_file: bool = False) -> Projection:
    """Wall time (likely, best and worst) and cost (on demand, and with Spot children) of one run.

    The delivery is data files of ``Measured.data_file_bytes`` (whole files balance the chunks);
    with ``one_file`` it is one file cut into a piece per chunk, whose last piece's child inflates
    the whole file from its first byte (docs/adr/0013)."""
    stack = stack or Stack()
    gzip = objects * m.gzip_bytes_per_object
    chunks = min(max(math.ceil(gzip / stack.target_chunk_bytes), 1), stack.max_array)
    per_chunk = gzip / chunks
    at_once = max(int(stack.max_vcpus // stack.process_vcpu), 1)
    waves = math.ceil(chunks / at_once)
    files = 1 if one_file else max(math.ceil(gzip / m.data_file_bytes), 1)
    rows_m = objects / 1e6

    def stages(case: str) -> dict[str, float]:
        # best case: fast starts, fast CPUs, fast streams; worst: the other end of each range
        start = _value("task_start_s", {"low": "low", "high": "high"}.get(case, ""))
        speed = _value("fargate_vcpu_speed", {"low": "high", "high": "low"}.get(case, ""))
        read = _value("s3_read_mb_s", {"low": "high", "high": "low"}.get(case, "")) * 1e6
        write = _value("s3_write_mb_s", {"low": "high", "high": "low"}.get(case, "")) * 1e6
        compute = per_chunk / GB * m.process_wall_s_per_gb / speed
        child = m.process_fixed_s + max(compute, per_chunk / read) + per_chunk * m.parquet_per_gzip / write
        last = child
        if one_file:  # the last piece: the whole file read and inflated, its own rows converted
            head = max((gzip - per_chunk) / GB * m.inflate_s_per_gb / speed, (gzip - per_chunk) / read)
            last = child + head
        split = m.split_cpu_s / speed / stack.split_vcpu + files * m.split_s_per_file
        finalize = (
            (m.finalize_fixed_s + rows_m * m.finalize_cpu_s_per_million_rows) / speed / stack.finalize_vcpu
        )
        network = _value("task_network_mb_s", {"low": "high", "high": "low"}.get(case, "")) * 1e6
        finalize += objects * m.state_bytes_per_object / min(16 * read, network)  # the partials it reads back
        return {
            "trigger_s": _value("trigger_s", case),
            "split_s": start + split,
            "process_s": waves * start + (waves - 1) * child + last,
            "finalize_s": start + finalize,
            "child_work_s": child,
        }

    likely, best, worst = stages(""), stages("low"), stages("high")

    def total(s: dict[str, float]) -> float:
        return (s["trigger_s"] + s["split_s"] + s["process_s"] + s["finalize_s"]) / 60

    rate = _value("vcpu_hour_usd", "")
    memory = _value("gb_hour_usd", "")
    pull, minimum = _value("image_pull_s", ""), _value("billing_minimum_s", "")

    def task(vcpu: float, gb: float, seconds: float) -> float:
        return max(seconds + pull, minimum) / 3600 * (vcpu * rate + gb * memory)

    child = likely["child_work_s"]
    split_cost = task(stack.split_vcpu, stack.split_memory_gb, likely["split_s"] - _value("task_start_s", ""))
    process_cost = chunks * task(stack.process_vcpu, stack.process_memory_gb, child)
    if one_file:  # each later piece inflates more of the file's head: on average half of it
        head = (gzip / 2) / GB * m.inflate_s_per_gb
        process_cost = chunks * task(stack.process_vcpu, stack.process_memory_gb, child + head)
    finalize_work = likely["finalize_s"] - _value("task_start_s", "")
    finalize_cost = task(stack.finalize_vcpu, stack.finalize_memory_gb, finalize_work)
    gb = gzip / GB
    requests = {kind: n * chunks for kind, n in m.requests_per_chunk.items()}
    extra_files = max(files - chunks, 0)  # beyond one a chunk: a HEAD (the splitter) and a GET each
    requests["HEAD"] = requests.get("HEAD", 0) + extra_files
    requests["GET"] = requests.get("GET", 0) + extra_files
    puts = requests.get("PUT", 0) + requests.get("LIST", 0)
    gets = requests.get("GET", 0) + requests.get("HEAD", 0)
    request_cost = puts / 1000 * _value("put_per_1000_usd", "") + gets / 1000 * _value("get_per_1000_usd", "")
    state_gb = objects * m.state_bytes_per_object / GB
    state_cost = state_gb * _value("gb_month_usd", "") * stack.state_retention_days / 30
    costs = {
        "split": split_cost,
        "process": process_cost,
        "finalize": finalize_cost,
        "s3_requests": request_cost,
        "intermediate_storage": state_cost,
    }
    on_demand = sum(costs.values())
    spot = on_demand - process_cost * _value("spot_discount", "")
    return Projection(
        objects=objects,
        gzip_gb=round(gb, 2),
        chunks=chunks,
        waves=waves,
        chunk_gzip_gb=round(per_chunk / GB, 3),
        wall_minutes=round(total(likely), 2),
        wall_minutes_low=round(total(best), 2),
        wall_minutes_high=round(total(worst), 2),
        cost_usd=round(on_demand, 4),
        cost_spot_usd=round(spot, 4),
        stages={k: round(v, 1) for k, v in likely.items()},
        costs={k: round(v, 4) for k, v in costs.items()},
    )


def local_wall(rows: int, m: Measured, *, cores: int, local_fixed_s: float) -> float:
    """``run-local`` on this machine, by the same figures: the fixed cost, the splitter, the children
    sharing the cores (one chunk per worker, CPU-bound), finalize."""
    gzip = rows * m.gzip_bytes_per_object
    process = gzip / GB * m.process_cpu_s_per_gb / cores + m.process_fixed_s
    finalize = m.finalize_fixed_s + rows / 1e6 * m.finalize_cpu_s_per_million_rows
    return local_fixed_s + m.split_cpu_s + process + finalize


def as_dict(p: Projection) -> dict[str, Any]:
    return asdict(p)
