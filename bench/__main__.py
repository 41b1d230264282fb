"""``make bench``: the jobs against gzip -dc, DuckDB and pyarrow, on the same files, in one run.

Every task runs in its own process, at least 3 times; medians of wall time and of peak RSS (from
wait4) are reported with ratios against the targets of issue 8, and written to bench/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from pipeline.contract.layout import RunLayout
from pipeline.synthetic import GeneratedDelivery

HERE = Path(__file__).resolve().parent
BUCKET = "bench-destination"
MB = 1_000_000


@dataclass
class Measured:
    name: str
    seconds: list[float]
    rss: list[int]  # bytes
    last_stderr: str = ""

    @property
    def wall(self) -> float:
        return statistics.median(self.seconds)

    @property
    def peak(self) -> int:
        return int(statistics.median(self.rss))


def measure(name: str, command: list[str], runs: int, *, before=None, env=None) -> Measured:  # type: ignore[no-untyped-def]
    seconds, rss = [], []
    for _ in range(runs):
        if before:
            before()
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        err = process.stderr.read().decode(errors="replace") if process.stderr else ""
        if os.waitstatus_to_exitcode(status) != 0:
            msg = f"{name} failed: {' '.join(command)}\n{err[-2000:]}"
            raise RuntimeError(msg)
        seconds.append(elapsed)
        rss.append(usage.ru_maxrss * 1024)
    result = Measured(name, seconds, rss, err)
    print(f"  {name:<34} {result.wall:8.2f} s   peak {result.peak / 2**20:8.0f} MiB", flush=True)
    return result


def inventory(data: Path, rows: int, files: int) -> GeneratedDelivery:
    """The benchmark's inventory, generated once (in a child process, so that this process stays
    small: a child's peak RSS counts the parent's pages it maps between fork and exec)."""
    from pipeline.contract.delivery import parse_delivery_key
    from pipeline.synthetic import Truth

    root = data / f"inventory-{rows}-{files}"
    marker = root / "generated.json"
    if not marker.is_file():
        shutil.rmtree(root, ignore_errors=True)
        print(f"generating {rows:,} rows in {files} files under {root} (reused by later runs)", flush=True)
        subprocess.run(
            [sys.executable, "-m", "bench.tasks", "generate", str(root / BUCKET), str(rows), str(files)],
            check=True,
        )
    meta = json.loads(marker.read_text())
    return GeneratedDelivery(
        root / BUCKET, parse_delivery_key(meta["manifest_key"]), BUCKET, tuple(meta["data_keys"]), Truth()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument(
        "--chunks", type=int, default=4, help="chunks the splitter writes; chunk 0 is the processor's input"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--results", type=Path, default=HERE / "results.md")
    parser.add_argument(
        "--split-only", action="store_true", help="only gzip -dc and the splitter (e.g. --rows 10000000)"
    )
    args = parser.parse_args(argv)
    if args.runs < 3:
        parser.error("--runs must be at least 3 (medians)")

    gen = inventory(args.data, args.rows, args.files)
    work = args.data / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    py = sys.executable
    gz = [str(gen.root / k) for k in gen.data_keys]
    local_root = str(gen.root.parent)
    layout = RunLayout.of(gen.delivery)
    compressed = sum(Path(f).stat().st_size for f in gz)

    print("splitter vs gzip -dc (whole inventory)", flush=True)
    gzip = measure(
        "gzip -dc > /dev/null", ["bash", "-c", 'gzip -dc "$@" > /dev/null', "gzip", *gz], args.runs
    )
    # Written objects go to tmpfs when there is one: on AWS the chunks leave through the uploader to
    # the network, so the disk's writeback is not the splitter's cost. Fresh keys on every run.
    written = Path("/dev/shm/s3-inventory-bench") if Path("/dev/shm").is_dir() else work / "written"
    split_command = [py, "-m", "bench.tasks", "split", local_root, BUCKET, gen.delivery.manifest_key]
    split = measure(
        "split (batch_jobs.split)",
        [*split_command, str(args.chunks), str(written)],
        args.runs,
        before=lambda: shutil.rmtree(written, ignore_errors=True),
    )
    report = json.loads((written / BUCKET / layout.split_report_key).read_text())
    uncompressed = int(report["uncompressed_bytes"])
    if args.split_only:
        shutil.rmtree(written, ignore_errors=True)
        targets = [
            ("split MB/s vs gzip -dc", gzip.wall / split.wall, ">= 2.0", lambda r: r >= 2.0),
            ("split peak RSS (MiB)", split.peak / 2**20, "< 300", lambda r: r < 300),
        ]
        text = render(args, gen, compressed, uncompressed, 0, [gzip, split], targets)
        args.results.write_text(text)
        print(text)
        return 0
    chunk = work / "chunk-0.csv"
    shutil.copyfile(written / BUCKET / layout.chunk_key(0), chunk)
    shutil.rmtree(written, ignore_errors=True)
    chunk_bytes = chunk.stat().st_size

    print(
        f"processor vs DuckDB and pyarrow (chunk 0: {report['chunks'][0]['rows']:,} rows, {chunk_bytes / MB:.0f} MB)",
        flush=True,
    )
    out = work / "part.parquet"
    process = measure(
        "process (batch_jobs.convert)", [py, "-m", "bench.tasks", "process", str(chunk), str(out)], args.runs
    )
    duck_chunk = measure(
        "DuckDB COPY, same transform", [py, "-m", "bench.tasks", "duckdb", str(chunk), str(out)], args.runs
    )
    arrow = measure(
        "pyarrow CSV -> Parquet (no decoding)",
        [py, "-m", "bench.tasks", "pyarrow", str(chunk), str(out)],
        args.runs,
    )

    print("whole pipeline vs one DuckDB query (all gzip files)", flush=True)
    local_out = work / "run-local"
    pipeline = measure(
        "run-local (stand-in, 2 workers)",
        [
            py,
            "-m",
            "pipeline",
            "run-local",
            str(gen.root / gen.delivery.manifest_key),
            "--out",
            str(local_out),
            "--target-chunk-mib",
            str(max(1, compressed // (2 * 2**20) + 1)),
        ],
        args.runs,
        before=lambda: shutil.rmtree(local_out, ignore_errors=True),
    )
    duck_all = measure(
        "DuckDB COPY over the gzip files",
        [py, "-m", "bench.tasks", "duckdb", ",".join(gz), str(work / "all.parquet")],
        args.runs,
    )

    rows = [
        ("split MB/s vs gzip -dc", gzip.wall / split.wall, ">= 2.0", lambda r: r >= 2.0),
        ("split peak RSS (MiB)", split.peak / 2**20, "< 300", lambda r: r < 300),
        ("process wall / DuckDB wall", process.wall / duck_chunk.wall, "<= 0.75", lambda r: r <= 0.75),
        ("process peak RSS / chunk size", process.peak / chunk_bytes, "<= 2.0", lambda r: r <= 2.0),
        ("run-local wall / DuckDB query wall", pipeline.wall / duck_all.wall, "<= 1.0", lambda r: r <= 1.0),
    ]
    measured = [gzip, split, process, duck_chunk, arrow, pipeline, duck_all]
    text = render(args, gen, compressed, uncompressed, chunk_bytes, measured, rows)
    text += stages(pipeline.last_stderr)
    args.results.write_text(text)
    print(text)
    return 0


def render(args, gen, compressed, uncompressed, chunk_bytes, measured, rows) -> str:  # type: ignore[no-untyped-def]
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    gzip_version = subprocess.run(["gzip", "--version"], capture_output=True, text=True).stdout.splitlines()[
        0
    ]
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench`); do not edit by hand. Analysis: docs/scaling.md.",
        "",
        f"- machine: {os.cpu_count()} cores ({cpu}), {memory / 2**30:.0f} GiB memory, {platform.platform()}",
        f"- versions: Python {platform.python_version()}, polars {version('polars')}, duckdb {version('duckdb')}, "
        f"pyarrow {version('pyarrow')}, isal {version('isal')}, {gzip_version}",
        f"- data: {args.rows:,} rows in {args.files} gzip files, {compressed / MB:.0f} MB compressed, "
        f"{uncompressed / MB:.0f} MB of CSV; chunk 0 of {args.chunks}: {chunk_bytes / MB:.0f} MB",
        f"- runs: {args.runs} per task, medians; each task in its own process (interpreter start and imports included)",
        "- split and process run the jobs' own code on the local storage backend (batch_jobs/storage.py); what",
        "  split writes goes to tmpfs, as on AWS it goes to the network; run-local goes through the moto stand-in",
        "  over loopback HTTP, as `make demo` does",
        "",
        "| task | median wall (s) | min-max (s) | throughput (MB/s of CSV, median) | median peak RSS (MiB) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    sizes = {"gzip -dc > /dev/null": uncompressed, "split (batch_jobs.split)": uncompressed}
    for m in measured:
        size = sizes.get(
            m.name,
            chunk_bytes
            if "Parquet" in m.name or "process" in m.name or "same transform" in m.name
            else uncompressed,
        )
        spread = f"{min(m.seconds):.2f}-{max(m.seconds):.2f}"
        lines.append(
            f"| {m.name} | {m.wall:.2f} | {spread} | {size / MB / m.wall:.0f} | {m.peak / 2**20:.0f} |"
        )
    lines += ["", "| target | measured | goal | met |", "| --- | ---: | --- | --- |"]
    for name, value, goal, ok in rows:
        threshold = float(goal.split()[-1])
        met = "yes" if ok(value) else f"**no**, missed by {abs(value / threshold - 1) * 100:.0f}%"
        lines.append(f"| {name} | {value:.2f} | {goal} | {met} |")
    if not all(ok(value) for _, value, _, ok in rows) and (HERE / "analysis.md").is_file():
        lines += ["", (HERE / "analysis.md").read_text().strip()]
    return "\n".join(lines) + "\n"


def stages(progress: str) -> str:
    """Where run-local's time goes, from the timestamps of its progress lines (its last run)."""
    marks = []
    for line in progress.splitlines():
        match = re.match(r"^\[\s*([0-9.]+)s\] (.*)$", line)
        if match:
            marks.append((float(match.group(1)), match.group(2)))
    if not marks:
        return ""
    lines = [
        "",
        "run-local, last run, by stage (from its progress lines):",
        "",
        "| from | to | seconds |",
        "| --- | --- | ---: |",
    ]
    previous = (0.0, "start (interpreter, stand-in)")
    for mark in marks:
        lines.append(f"| {previous[1][:60]} | {mark[1][:60]} | {mark[0] - previous[0]:.1f} |")
        previous = mark
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
