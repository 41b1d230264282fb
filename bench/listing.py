"""``make bench BENCH_ARGS=--listing``: the snapshot job's listing, measured against the stand-in,
projected for S3.

A moto server in its own process holds a bucket of N objects (put straight into its backend, so
that filling it takes seconds); the snapshot job (``python -m batch_jobs snapshot``, the command of
the job definition) lists it into a destination bucket of the same server, at two sizes and two
worker counts, each run at least 3 times. Measured: wall time, the CPU time of the job and its
listing processes (wait4), and the peak memory of the whole process tree.

What the stand-in cannot show is S3's rate: moto answers every page by scanning the whole bucket
(a page takes longer the larger the bucket), and it serves from one process. So the projection
for S3 takes the measured CPU per object (the client's part, which is the same against S3: parsing
a page's XML and writing the CSV) and an assumed S3 page latency, printed with its source.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.model import ASSUMPTIONS

HERE = Path(__file__).resolve().parent
PAGE = 1_000  # entries a LIST page returns at most (S3 API reference)
PAGE_LATENCY_S = (0.1, 0.05, 0.2)  # value, low, high
PAGE_LATENCY_SOURCE = (
    "assumption: AWS does not publish LIST latency; the S3 performance guidelines give 100-200 ms "
    "first-byte latency for small objects, and a page of 1,000 entries is about 300 KB of XML"
)
JOB_VCPU, JOB_MEMORY_GB, JOB_WORKERS = 4, 8, 16  # components/job_definitions.SNAPSHOT_SIZE, DEFAULT_WORKERS
TASK_START_S = ASSUMPTIONS["task_start_s"].value

_SERVE = """
import sys, logging
from moto.server import ThreadedMotoServer
from moto.s3.models import s3_backends
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
backend = s3_backends["123456789012"]["aws"]
backend.create_bucket("src", "us-east-1")
backend.create_bucket("dest", "us-east-1")
for i in range(int(sys.argv[1])):  # 100 top-level prefixes, two levels deep
    backend.put_object("src", f"p{i % 100:03d}/sub/object-{i:09d}.json", b"x" * (i % 100))
print(f"http://{host}:{port}", flush=True)
sys.stdin.read()  # serve until the bench closes stdin
"""


@dataclass
class Run:
    objects: int
    workers: int
    seconds: float
    cpu: float
    tree_rss: int


def _serve(objects: int) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(objects)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    return server, server.stdout.readline().strip()


def _list_once(endpoint: str, objects: int, workers: int) -> Run:
    from bench.__main__ import tree_rss

    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    command = [
        sys.executable, "-m", "batch_jobs", "snapshot", "--source", "s3://src", "--destination-bucket",
        "dest", "--inventory-prefix", "inventory", "--versions", "current", "--workers", str(workers),
    ]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, tree_rss(process.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    assert process.stderr is not None
    err = process.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0 or f'"rows": {objects}' not in err:
        msg = f"the listing of {objects} objects failed or lost rows:\n{err[-2000:]}"
        raise RuntimeError(msg)
    # wait4 of a process counts the CPU of the children it reaped: the listing processes
    return Run(objects, workers, seconds, usage.ru_utime + usage.ru_stime, max(peak, usage.ru_maxrss * 1024))


def listing_bench(args: argparse.Namespace) -> int:
    sizes = (args.listing_objects // 5, args.listing_objects)
    runs: list[Run] = []
    for objects in sizes:
        server, endpoint = _serve(objects)
        try:
            for workers in (1, 4):
                for _ in range(args.runs):
                    run = _list_once(endpoint, objects, workers)
                    print(
                        f"  {objects:>9,} objects, {workers:>2} worker(s): {run.seconds:6.2f} s, "
                        f"CPU {run.cpu:6.2f} s, tree {run.tree_rss / 2**20:5.0f} MiB",
                        file=sys.stderr,
                        flush=True,
                    )
                    runs.append(run)
        finally:
            server.communicate("")
    report = render(runs, sizes, args.runs)
    args.results.write_text(report)
    print(report)
    return 0


def _median(runs: list[Run], objects: int, workers: int, attribute: str) -> float:
    return statistics.median(
        getattr(r, attribute) for r in runs if (r.objects, r.workers) == (objects, workers)
    )


def cpu_per_object(runs: list[Run], sizes: tuple[int, int]) -> float:
    """Seconds of CPU an object, from the difference of the two sizes (start-up cancels out)."""
    small, large = sizes
    return (_median(runs, large, 1, "cpu") - _median(runs, small, 1, "cpu")) / (large - small)


def project(objects: int, cpu_s: float, latency_s: float, vcpu_speed: float) -> tuple[float, float, str]:
    """(minutes, USD, what bounds it) of a snapshot job of ``objects`` on the stack's task size."""
    by_requests = JOB_WORKERS * PAGE / latency_s
    by_cpu = JOB_VCPU * vcpu_speed / cpu_s
    rate = min(by_requests, by_cpu)
    seconds = objects / rate + TASK_START_S
    hours = seconds / 3600
    task = hours * (
        JOB_VCPU * ASSUMPTIONS["vcpu_hour_usd"].value + JOB_MEMORY_GB * ASSUMPTIONS["gb_hour_usd"].value
    )
    requests = objects / PAGE * ASSUMPTIONS["put_per_1000_usd"].value / 1000
    return seconds / 60, task + requests, "S3 latency" if by_requests < by_cpu else "CPU"


def render(runs: list[Run], sizes: tuple[int, int], repeats: int) -> str:
    small, large = sizes
    cpu = cpu_per_object(runs, sizes)
    speed = ASSUMPTIONS["fargate_vcpu_speed"]
    lines = [
        "# Listing: the snapshot job against the stand-in, projected for S3",
        "",
        f"Generated by `python -m bench --listing` on {os.cpu_count()} cores; medians of {repeats} runs. "
        "ListObjectsV2 (`--versions current`) of a bucket of 100 prefixes two levels deep; the job's "
        "own command, its data files written into the stand-in.",
        "",
        "| objects | workers | wall s | objects/s | CPU s | peak memory (tree) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for objects in sizes:
        for workers in (1, 4):
            wall = _median(runs, objects, workers, "seconds")
            lines.append(
                f"| {objects:,} | {workers} | {wall:.2f} | {objects / wall:,.0f} | "
                f"{_median(runs, objects, workers, 'cpu'):.2f} | "
                f"{_median(runs, objects, workers, 'tree_rss') / 2**20:,.0f} MiB |"
            )
    growth = _median(runs, large, 4, "tree_rss") / _median(runs, small, 4, "tree_rss")
    lines += [
        "",
        f"- CPU an object (client side: the page's XML, the CSV, gzip): **{cpu * 1e6:.0f} µs** "
        f"(the difference of the {small:,} and {large:,} runs, 1 worker), so one core lists about "
        f"{1 / cpu:,.0f} objects a second whatever S3's speed.",
        f"- Memory does not grow with the bucket: the process tree's peak is {growth:.2f}x at "
        f"{large // small}x the objects (4 workers).",
        "- The stand-in's own rate is not S3's: moto scans the whole bucket for every page, so its pages "
        "slow down as the bucket grows, and one server process answers every worker (4 workers are no "
        "faster than 1 here).",
        "",
        "## Projected on AWS (the stack's snapshot job: "
        f"{JOB_VCPU} vCPU, {JOB_MEMORY_GB} GB, {JOB_WORKERS} workers)",
        "",
        "| objects | minutes (low-high) | bound by | cost, USD (LIST + task) |",
        "| ---: | ---: | --- | ---: |",
    ]
    for objects in (10**6, 10**8, 10**9):
        value, low_, high_ = (
            project(objects, cpu, latency, vcpu)
            for latency, vcpu in (
                (PAGE_LATENCY_S[0], speed.value),
                (PAGE_LATENCY_S[1], speed.high),
                (PAGE_LATENCY_S[2], speed.low),
            )
        )
        lines.append(
            f"| {objects:,} | {value[0]:,.0f} ({low_[0]:,.0f}-{high_[0]:,.0f}) | {value[2]} | {value[1]:,.2f} |"
        )
    lines += [
        "",
        "Assumptions:",
        f"- S3 page latency {PAGE_LATENCY_S[0] * 1000:.0f} ms ({PAGE_LATENCY_S[1] * 1000:.0f}-"
        f"{PAGE_LATENCY_S[2] * 1000:.0f}): {PAGE_LATENCY_SOURCE}.",
        f"- A page holds {PAGE:,} entries (S3 API reference, ListObjectsV2 and ListObjectVersions).",
        f"- Fargate vCPU speed {speed.value}x ({speed.low}-{speed.high}) this machine's core: {speed.source}.",
        f"- Task start {TASK_START_S:.0f} s: {ASSUMPTIONS['task_start_s'].source}.",
        f"- Prices: {ASSUMPTIONS['put_per_1000_usd'].source}; {ASSUMPTIONS['vcpu_hour_usd'].source}; "
        f"{ASSUMPTIONS['gb_hour_usd'].source}.",
        "- Versions listed with ListObjectVersions cost the same per entry (same page size, same XML "
        "per entry, plus delete markers as entries).",
        "- Keys spread over prefixes: the ranges are cut at the prefixes a delimiter listing finds; a "
        "bucket with no `/` in its keys lists as one range, one worker.",
    ]
    return "\n".join(lines) + "\n"
