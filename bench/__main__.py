"""``make bench``: the jobs against gzip -dc, DuckDB and pyarrow, on the same files, in one run.

Every task runs in its own process, at least 3 times; medians of wall time and of peak RSS (from
wait4) are reported with ratios against the performance targets (each results file lists them with
the measured value), and written to bench/results.md.
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
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from inventory_contract.layout import RunLayout
from pipeline.synthetic import GeneratedDelivery

HERE = Path(__file__).resolve().parent
BUCKET = "bench-destination"
MB = 1_000_000


@dataclass
class Measured:
    name: str
    seconds: list[float]
    rss: list[int]  # bytes: wait4's peak of the largest single process
    tree: list[int] = field(default_factory=list)  # bytes: the whole process tree, sampled
    disk: list[int] = field(default_factory=list)  # bytes: the file system's peak growth, sampled
    last_stderr: str = ""

    @property
    def wall(self) -> float:
        return statistics.median(self.seconds)

    @property
    def peak(self) -> int:
        return int(statistics.median(self.rss))

    @property
    def tree_peak(self) -> int:
        return int(max(self.tree)) if self.tree else 0

    @property
    def disk_peak(self) -> int:
        return int(max(self.disk)) if self.disk else 0


SAMPLE_SECONDS = 0.1
PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and every process below it, from /proc, now."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in members]
        members.update(children)
        frontier += children
    total = 0
    for pid in members:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def measure(
    name: str, command: list[str], runs: int, *, before=None, env=None, disk: Path | None = None
) -> Measured:  # type: ignore[no-untyped-def]
    """Run ``command`` ``runs`` times; wall time, wait4's peak RSS, and, sampled every 0.1 s, the
    whole process tree's RSS (spikes shorter than that can be missed: wait4 catches them for the
    largest single process) and, with ``disk``, how much the file system holding it grew."""
    seconds, rss, tree, grown = [], [], [], []
    for _ in range(runs):
        if before:
            before()
        used_before = shutil.disk_usage(disk).used if disk else 0
        started = time.perf_counter()
        with tempfile.TemporaryFile() as err_file:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err_file, env=env)
            peak_tree = peak_disk = 0
            while True:
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    break
                peak_tree = max(peak_tree, tree_rss(process.pid))
                if disk:
                    peak_disk = max(peak_disk, shutil.disk_usage(disk).used - used_before)
                time.sleep(SAMPLE_SECONDS)
            elapsed = time.perf_counter() - started
            err_file.seek(0)
            err = err_file.read().decode(errors="replace")
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            msg = f"{name} failed: {' '.join(command)}\n{err[-2000:]}"
            raise RuntimeError(msg)
        seconds.append(elapsed)
        rss.append(usage.ru_maxrss * 1024)
        tree.append(max(peak_tree, usage.ru_maxrss * 1024))
        grown.append(peak_disk)
    result = Measured(name, seconds, rss, tree, grown if disk else [], err)
    print(
        f"  {name:<34} {result.wall:8.2f} s   peak {result.peak / 2**20:6.0f} MiB   "
        f"tree {result.tree_peak / 2**20:6.0f} MiB"
        + (f"   disk +{result.disk_peak / 2**20:.0f} MiB" if disk else ""),
        file=sys.stderr,
        flush=True,
    )
    return result


def inventory(data: Path, rows: int, files: int) -> GeneratedDelivery:
    """The benchmark's inventory, generated once (in a child process, so that this process stays
    small: a child's peak RSS counts the parent's pages it maps between fork and exec)."""
    from inventory_contract.delivery import parse_delivery_key
    from pipeline.synthetic import Truth

    root = data / f"inventory-{rows}-{files}"
    marker = root / "generated.json"
    if not marker.is_file():
        shutil.rmtree(root, ignore_errors=True)
        print(
            f"generating {rows:,} rows in {files} files under {root} (reused by later runs)",
            file=sys.stderr,
            flush=True,
        )
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
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument(
        "--results", type=Path, help="report file (default bench/results.md, -model.md, -changes.md)"
    )
    parser.add_argument(
        "--pipeline-only", action="store_true", help="only run-local and DuckDB (e.g. --rows 20000000)"
    )
    parser.add_argument(
        "--changes-only",
        action="store_true",
        help="only `pipeline changes` against DuckDB on two days of --rows rows, and of half as many",
    )
    parser.add_argument(
        "--model",
        action="store_true",
        help="measure the jobs at three sizes and project a run on AWS at 100M, 1B and 10B objects",
    )
    parser.add_argument("--json", action="store_true", help="with --model: print one JSON object on stdout")
    parser.add_argument(
        "--listing",
        action="store_true",
        help="only the snapshot job's listing against the stand-in, and its projection for S3",
    )
    parser.add_argument(
        "--listing-objects",
        type=int,
        default=100_000,
        help="with --listing: the larger bucket (and a fifth of it)",
    )
    parser.add_argument(
        "--model-sizes",
        default="500000:1,1000000:2,2000000:4",
        help="with --model: the three deliveries measured, ROWS:FILES each; the two largest calibrate",
    )
    args = parser.parse_args(argv)
    if args.runs < 3:
        parser.error("--runs must be at least 3 (medians)")
    if args.json and not args.model:
        parser.error("--json goes with --model")
    if args.listing:
        from bench.listing import listing_bench

        args.results = args.results or HERE / "results-listing.md"
        return listing_bench(args)
    if args.changes_only:
        args.results = args.results or HERE / "results-changes.md"
        return changes_bench(args)
    if args.model:
        from bench.measure_model import model_bench

        args.results = args.results or HERE / "results-model.md"
        return model_bench(args)
    args.results = args.results or HERE / "results.md"

    gen = inventory(args.data, args.rows, args.files)
    work = args.data / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    py = sys.executable
    gz = [str(gen.root / k) for k in gen.data_keys]
    compressed = sum(Path(f).stat().st_size for f in gz)
    shape = Shape(rows=args.rows, files=args.files, gzip_bytes=compressed)
    if args.pipeline_only:
        pipeline, duck_all, output_bytes, children = whole_pipeline(args, gen, gz, work)
        targets = pipeline_targets(shape, pipeline, duck_all, output_bytes, children)
        text = render(args, shape, gz[0], [pipeline, duck_all], targets)
        text += stages(pipeline.last_stderr)
        args.results.write_text(text)
        print(text)
        return 0

    print("inflate: gzip -dc over every data file", flush=True)
    gzip = measure(
        "gzip -dc > /dev/null", ["bash", "-c", 'gzip -dc "$@" > /dev/null', "gzip", *gz], args.runs
    )
    first = gz[0]
    print(
        f"processor vs DuckDB and pyarrow on one gzip data file ({Path(first).stat().st_size / MB:.0f} MB)",
        flush=True,
    )
    out = work / "part.parquet"
    process = measure(
        "process (batch_jobs, gzip in)", [py, "-m", "bench.tasks", "process", first, str(out)], args.runs
    )
    whole = measure(
        "process, the child's whole work",
        [py, "-m", "bench.tasks", "process_whole", first, str(out)],
        args.runs,
    )
    duck_file = measure(
        "DuckDB COPY, same transform", [py, "-m", "bench.tasks", "duckdb", first, str(out)], args.runs
    )
    arrow = measure(
        "pyarrow CSV -> Parquet (no decoding)",
        [py, "-m", "bench.tasks", "pyarrow", first, str(out)],
        args.runs,
    )
    pipeline, duck_all, output_bytes, children = whole_pipeline(args, gen, gz, work)
    rows = [
        (
            "processor throughput vs DuckDB's same transform (same gzip file)",
            duck_file.wall / process.wall,
            ">= 1.0",
            lambda r: r >= 1.0,
        ),
        ("processor peak RSS (MiB)", process.peak / 2**20, "reported", lambda r: True),
        (
            "rollups and identity hashes' added share of the child's time",
            whole.wall / process.wall - 1,
            "reported",
            lambda r: True,
        ),
        *pipeline_targets(shape, pipeline, duck_all, output_bytes, children),
    ]
    measured = [gzip, process, whole, duck_file, arrow, pipeline, duck_all]
    text = render(args, shape, first, measured, rows)
    text += stages(pipeline.last_stderr)
    args.results.write_text(text)
    print(text)
    return 0


@dataclass(frozen=True)
class Shape:
    rows: int
    files: int
    gzip_bytes: int


def whole_pipeline(args, gen, gz, work):  # type: ignore[no-untyped-def]
    """run-local on the delivery (its defaults: one chunk per worker) against one DuckDB query over
    the same gzip files; also the Parquet output's size and how many children the run had."""
    print("whole pipeline vs one DuckDB query (all gzip files)", flush=True)
    py = sys.executable
    local_out = work / "run-local"
    pipeline = measure(
        "run-local (2 workers)",
        [
            py,
            "-m",
            "pipeline",
            "run-local",
            str(gen.root / gen.delivery.manifest_key),
            "--out",
            str(local_out),
        ],
        args.runs,
        before=lambda: shutil.rmtree(local_out, ignore_errors=True),
        disk=work,
    )
    output_bytes = sum(p.stat().st_size for p in local_out.rglob("*") if p.is_file())
    plan = json.loads((local_out / RunLayout.of(gen.delivery).plan_key).read_text())
    duck_all = measure(
        "DuckDB COPY over the gzip files",
        [py, "-m", "bench.tasks", "duckdb", ",".join(gz), str(work / "all.parquet")],
        args.runs,
    )
    return pipeline, duck_all, output_bytes, int(plan["chunk_count"])


def changes_bench(args: argparse.Namespace) -> int:
    """``pipeline changes`` against the saved query's changes in DuckDB (a full outer join of the
    two snapshots writing the same rows), on two days of ``--rows`` rows and of half as many, so
    that memory growth can be set against snapshot growth."""
    work = args.data / "work-changes"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    measured, pairs = [], []
    for rows in (args.rows // 2, args.rows):
        out, dates, snapshots = two_days(args.data, inventory(args.data, rows, args.files), rows)
        print(
            f"changes vs DuckDB, two days of {rows:,} rows ({snapshots / MB:.0f} MB of Parquet)", flush=True
        )
        target, duck_target = work / f"changes-{rows}", work / f"duckdb-{rows}.parquet"
        command = [sys.executable, "-m", "pipeline", "changes", str(out), "--source-bucket", dates[0],
                   "--from", dates[1], "--to", dates[2], "--out", str(target), "--force"]  # fmt: skip
        ours = measure(f"changes, {rows:,} rows a day", command, args.runs)
        duck = measure(
            f"DuckDB same query, {rows:,} rows a day",
            [sys.executable, "-m", "bench.tasks", "duckdb-changes", str(out), *dates, str(duck_target)],
            args.runs,
        )
        import pyarrow.parquet as pq

        written = pq.ParquetFile(target / "changes.parquet").metadata.num_rows
        if written != pq.ParquetFile(duck_target).metadata.num_rows:
            msg = f"changes wrote {written} rows, DuckDB {pq.ParquetFile(duck_target).metadata.num_rows}"
            raise RuntimeError(msg)
        measured += [ours, duck]
        pairs.append((rows, snapshots, written, ours, duck))
    (small_rows, small_bytes, *_, small, _), (rows, big_bytes, written, big, duck) = pairs
    growth = (big.peak / small.peak) / (big_bytes / small_bytes)
    targets = [
        (f"changes peak RSS, {rows:,} rows a day (MiB)", big.peak / 2**20, "reported", lambda r: True),
        ("changes peak RSS / DuckDB peak RSS", big.peak / duck.peak, "reported", lambda r: True),
        ("changes wall / DuckDB wall", big.wall / duck.wall, "reported", lambda r: True),
        (
            f"changes RSS growth / snapshot growth ({small_rows:,} -> {rows:,} rows)",
            growth,
            "<= 1.0",
            lambda r: r <= 1.0,
        ),
    ]
    text = render_changes(args, pairs, measured, targets)
    args.results.write_text(text)
    print(text)
    return 0


def two_days(data: Path, gen: GeneratedDelivery, rows: int) -> tuple[Path, tuple[str, str, str], int]:
    """Day 2 derived from ``gen`` (once, reused) and both days run locally (run-local skips a
    complete run): the output folder, (source bucket, day 1, day 2) and the snapshots' Parquet bytes."""
    from inventory_contract.delivery import parse_delivery_key

    marker = gen.root.parent / "next-day.json"
    if not marker.is_file():
        print(f"deriving the next day of {rows:,} rows (reused by later runs)", flush=True)
        subprocess.run(
            [sys.executable, "-m", "bench.tasks", "next-day", str(gen.root), gen.delivery.manifest_key,
             ",".join(gen.data_keys), str(rows)],
            check=True,
        )  # fmt: skip
    day2 = parse_delivery_key(json.loads(marker.read_text())["manifest_key"])
    out = gen.root.parent / "runs"
    for manifest_key in (gen.delivery.manifest_key, day2.manifest_key):
        subprocess.run(
            [sys.executable, "-m", "pipeline", "run-local", str(gen.root / manifest_key), "--out", str(out)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    layouts = (RunLayout.of(gen.delivery), RunLayout.of(day2))
    snapshots = sum(p.stat().st_size for layout in layouts for p in (out / layout.processed_prefix).glob("*"))
    return out, (gen.delivery.source_bucket, gen.delivery.run_date, day2.run_date), snapshots


def render_changes(args, pairs, measured, targets) -> str:  # type: ignore[no-untyped-def]
    lines = [
        "# Benchmark results: day-over-day changes",
        "",
        "Written by `python -m bench --changes-only`; do not edit by hand.",
        "",
        f"- machine: {os.cpu_count()} cores, {platform.platform()}; polars {version('polars')}, "
        f"duckdb {version('duckdb')}, sqlglot {version('sqlglot')}",
        *(
            f"- {rows:,} rows a day: two complete run-local runs, {snapshots / MB:.0f} MB of Parquet, "
            f"{written:,} changed objects (about 1% of rows of each kind)"
            for rows, snapshots, written, *_ in pairs
        ),
        "- changes: `python -m pipeline changes` (Polars streaming engine); DuckDB: the saved Athena query's",
        "  changes (components/queries.py), transpiled with sqlglot, `COPY ... TO` Parquet: the same rows",
        f"- runs: {args.runs} per task, medians; memory: wait4's peak of the process (median), and the",
        "  process tree's RSS sampled every 0.1 s",
        "",
        "| task | median wall (s) | min-max (s) | peak RSS, one process (MiB) | peak RSS, process tree (MiB) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for m in measured:
        lines.append(
            f"| {m.name} | {m.wall:.2f} | {min(m.seconds):.2f}-{max(m.seconds):.2f} | {m.peak / 2**20:.0f} "
            f"| {m.tree_peak / 2**20:.0f} |"
        )
    lines += ["", "| target | measured | goal | met |", "| --- | ---: | --- | --- |"]
    for name, value, goal, ok in targets:
        met = "-" if goal == "reported" else ("yes" if ok(value) else "**no**")
        lines.append(f"| {name} | {value:.2f} | {goal} | {met} |")
    return "\n".join(lines) + "\n"


def pipeline_targets(
    shape: Shape, pipeline: Measured, duck_all: Measured, output_bytes: int, children: int
) -> list:  # type: ignore[type-arg]
    """run-local's targets for this shape of delivery (issue #22): against one DuckDB query, its
    whole tree's memory, its scratch disk beyond the output, and its children."""
    scratch = max(pipeline.disk_peak - output_bytes, 0)
    one_file = shape.files == 1
    goal = 1.5 if one_file else 1.0 if shape.rows >= 8_000_000 else 1.2
    scratch_goal = 1.5 if one_file else 0.25
    found = [
        (
            "run-local wall / DuckDB query wall",
            pipeline.wall / duck_all.wall,
            f"<= {goal}",
            lambda r: r <= goal,
        ),
        (
            "run-local peak memory, whole tree (MiB)",
            pipeline.tree_peak / 2**20,
            "<= 1536",
            lambda r: r <= 1536,
        ),
        (
            "run-local scratch disk beyond the output / the delivery's gzip bytes",
            scratch / shape.gzip_bytes,
            f"<= {scratch_goal}",
            lambda r: r <= scratch_goal,
        ),
    ]
    if one_file:
        found.append(("run-local children (one data file)", float(children), ">= 2", lambda r: r >= 2))
    return found


def render(args, shape: Shape, first: str, measured, rows) -> str:  # type: ignore[no-untyped-def]
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
    file_bytes = Path(first).stat().st_size
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench`); do not edit by hand. Analysis: bench/analysis.md, "
        "docs/scaling.md.",
        "",
        f"- machine: {os.cpu_count()} cores ({cpu}), {memory / 2**30:.0f} GiB memory, {platform.platform()}",
        f"- versions: Python {platform.python_version()}, polars {version('polars')}, duckdb {version('duckdb')}, "
        f"pyarrow {version('pyarrow')}, isal {version('isal')}, {gzip_version}",
        f"- data: {shape.rows:,} rows in {shape.files} gzip data files, {shape.gzip_bytes / MB:.0f} MB "
        f"compressed; the processor rows: one data file, {file_bytes / MB:.0f} MB of gzip",
        f"- runs: {args.runs} per task, medians; each task in its own process (interpreter start and imports included)",
        "- the processor rows run the job's own code (batch_jobs.source, batch_jobs.convert) on a gzip data",
        "  file on local storage; run-local is the command a user runs (its defaults: one chunk per worker):",
        "  the trigger against the moto stand-in, the jobs on local storage, `--out` on disk",
        "- memory: wait4's peak of the largest single process (median), and the whole process tree's RSS",
        "  sampled every 0.1 s (the largest of the runs, never below wait4's); disk: the file system's peak",
        "  growth while the task ran, sampled likewise",
        "",
        "| task | median wall (s) | min-max (s) | throughput (MB/s of gzip, median) | peak RSS, one process (MiB) | peak RSS, process tree (MiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in measured:
        size = (
            file_bytes
            if ("process" in m.name and "run-local" not in m.name)
            or "same transform" in m.name
            or "pyarrow" in m.name
            else shape.gzip_bytes
        )
        spread = f"{min(m.seconds):.2f}-{max(m.seconds):.2f}"
        lines.append(
            f"| {m.name} | {m.wall:.2f} | {spread} | {size / MB / m.wall:.0f} | {m.peak / 2**20:.0f} "
            f"| {m.tree_peak / 2**20:.0f} |"
        )
    lines += ["", "| target | measured | goal | met |", "| --- | ---: | --- | --- |"]
    for name, value, goal, ok in rows:
        if goal == "reported":
            met = "-"
        else:
            threshold = float(goal.split()[-1])
            met = "yes" if ok(value) else f"**no**, missed by {abs(value / threshold - 1) * 100:.0f}%"
        lines.append(f"| {name} | {value:.2f} | {goal} | {met} |")
    return "\n".join(lines) + "\n"


def _intermediate(message: str) -> bool:
    """A progress line inside a stage (a child's rows, children done so far), not a boundary."""
    done = re.search(r"(\d+)/(\d+) children done", message)
    per_chunk = (" of gzip read, ", " rows converted; ")
    return any(said in message for said in per_chunk) or bool(done and done[1] != done[2])


def stages(progress: str) -> str:
    """Where run-local's time goes, from the timestamps of its progress lines (its last run)."""
    marks = []
    for line in progress.splitlines():
        match = re.match(r"^\[\s*([0-9.]+)s\] (.*)$", line)
        if match and not _intermediate(match.group(2)):
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
