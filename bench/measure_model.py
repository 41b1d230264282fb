"""``python -m bench --model``: measure the jobs here at three delivery sizes, check that what they
cost per GB is flat, check the model against ``run-local`` at two sizes, and project a run on AWS.

Every job runs in one measured process per size (``bench.tasks jobs``): the splitter, each
processor child and finalize on local storage wrapped to count the S3 requests each call would be
on AWS (``bench.tasks.CountingStorage``); CPU and wall seconds per job come from the process's own
``getrusage``. The AWS side of the model is ``bench/model.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.__main__ import HERE, measure
from bench.model import ASSUMPTIONS, GB, Measured, Stack, local_wall, project
from inventory_contract.layout import RunLayout

OBJECTS = (100_000_000, 1_000_000_000, 10_000_000_000)
FLAT_WITHIN = 0.10
CALIBRATED_WITHIN = 0.20


def model_bench(args: argparse.Namespace) -> int:
    from bench.__main__ import inventory

    sizes = _sizes(args.model_sizes)
    runs: dict[int, list[dict[str, Any]]] = {}
    gens = {}
    for rows, files in sizes:
        gen = inventory(args.data, rows, files)
        gens[rows] = gen
        runs[rows] = [_jobs(args, gen) for _ in range(args.runs)]
        print(
            f"  jobs on {rows:,} rows in {files} files: {_summary(runs[rows])}", file=sys.stderr, flush=True
        )
    per_size = {rows: _figures(runs[rows], gens[rows]) for rows in runs}
    measured, flatness = _measured(per_size, {r: [g.root / k for k in g.data_keys] for r, g in gens.items()})
    tiny = inventory(args.data, 1000, 1)
    fixed = _run_local(args, tiny, "tiny")
    local_fixed = max(fixed - local_wall(1000, measured, cores=os.cpu_count() or 1, local_fixed_s=0), 0)
    calibration = []
    for rows, files in sizes[1:]:
        gen = gens.get(rows) or inventory(args.data, rows, files)
        seconds = _run_local(args, gen, f"calibration-{rows}")
        modelled = local_wall(rows, measured, cores=os.cpu_count() or 1, local_fixed_s=local_fixed)
        calibration.append({"rows": rows, "measured_s": round(seconds, 2), "modelled_s": round(modelled, 2)})
    projections = [project(n, measured) for n in OBJECTS]
    one_file = project(1_000_000_000, measured, one_file=True)
    report = {
        "sizes": [{"rows": rows, "files": files} for rows, files in sizes],
        "projections": [asdict(p) for p in projections],
        "one_data_file_1b": asdict(one_file),
        "calibration": calibration,
        "flatness": flatness,
        "measured": asdict(measured),
        "local_fixed_s": round(local_fixed, 2),
        "assumptions": [asdict(a) for a in ASSUMPTIONS.values()],
        "stack": asdict(Stack()),
    }
    text = render(report)
    args.results.write_text(text)
    if args.json:
        print(json.dumps(report))
    else:
        print(text)
    failures = [f for f in flatness if not f["flat"]] + [
        c for c in calibration if abs(c["modelled_s"] / c["measured_s"] - 1) > CALIBRATED_WITHIN
    ]
    for failure in failures:
        print(f"bench --model: not within its bound: {failure}", file=sys.stderr)
    return 1 if failures else 0


def _shape(size: dict[str, int]) -> str:
    return f"{size['rows']:,} rows in {size['files']} files"


def _sizes(text: str) -> list[tuple[int, int]]:
    """``ROWS:FILES,...``: three deliveries, by rows (the default: one 500,000-row file a chunk,
    one to four chunks)."""
    try:
        sizes = sorted((int(r), int(f)) for r, f in (item.split(":") for item in text.split(",")))
    except ValueError:
        sizes = []
    if len(sizes) != 3 or any(r < 1 or f < 1 for r, f in sizes):
        msg = f"--model-sizes: three ROWS:FILES, comma-separated, got {text!r}"
        raise SystemExit(msg)
    return sizes


def _jobs(args: argparse.Namespace, gen: Any) -> dict[str, Any]:
    """One measured run of every job (a chunk per data file) on ``gen``; the counts it wrote."""
    work = args.data / "work-model"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    counts = work / "counts.json"
    largest = max((gen.root / key).stat().st_size for key in gen.data_keys)
    command = [sys.executable, "-m", "bench.tasks", "jobs", str(gen.root.parent), gen.root.name,
               gen.delivery.manifest_key, str(largest + 1), str(work), str(counts)]  # fmt: skip
    measured = measure(f"jobs, {gen.delivery.manifest_key[-40:]}", command, 1)
    found: dict[str, Any] = json.loads(counts.read_text())
    bucket = work / gen.root.name
    layout = RunLayout.of(gen.delivery)
    found["wall"] = measured.wall
    found["whole_peak_rss"] = measured.peak
    found["parquet_bytes"] = sum(p.stat().st_size for p in (bucket / layout.processed_prefix).glob("*"))
    found["state_bytes"] = sum(p.stat().st_size for p in (bucket / layout.part_stats_prefix).glob("*"))
    return found


def _summary(runs: list[dict[str, Any]]) -> str:
    cpu = statistics.median(sum(j["cpu_s"] for j in r["jobs"]) for r in runs)
    return f"{cpu:.2f} CPU-s, peak {statistics.median(r['peak_rss'] for r in runs) / 2**20:.0f} MiB"


def _figures(runs: list[dict[str, Any]], gen: Any) -> dict[str, Any]:
    """Medians over the runs of one size: per job kind, CPU and wall; requests; sizes."""
    gzip = sum((gen.root / key).stat().st_size for key in gen.data_keys)

    def median(kind: str, what: str) -> float:
        return statistics.median(sum(j[what] for j in r["jobs"] if j["job"] == kind) for r in runs)

    requests: dict[str, float] = {}
    for r in runs[:1]:
        for job in r["jobs"]:
            for kind in ("GET", "PUT", "HEAD", "LIST", "DELETE"):
                requests[kind] = requests.get(kind, 0) + job.get(kind, 0)
    return {
        "rows": None,
        "gzip": gzip,
        "files": len(gen.data_keys),
        "chunks": runs[0]["chunks"],
        "process_cpu": median("process", "cpu_s"),
        "process_wall": median("process", "wall_s"),
        "split_cpu": median("split", "cpu_s"),
        "finalize_cpu": median("finalize", "cpu_s"),
        "peak_rss": statistics.median(r["peak_rss"] for r in runs),
        "process_peak": statistics.median(
            max(j["peak_rss"] for j in r["jobs"] if j["job"] == "process") for r in runs
        ),
        "finalize_peak": statistics.median(
            max(j["peak_rss"] for j in r["jobs"] if j["job"] == "finalize") for r in runs
        ),
        "parquet_bytes": runs[0]["parquet_bytes"],
        "state_bytes": runs[0]["state_bytes"],
        "requests": requests,
    }


def _fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares y = a + b x."""
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return my - b * mx, b


def _measured(
    per_size: dict[int, dict[str, Any]], gens_files: dict[int, list[Path]]
) -> tuple[Measured, list[dict[str, Any]]]:
    sizes = sorted(per_size)
    rows = {s: per_size[s]["rows"] or s for s in sizes}
    per_gb = {s: per_size[s]["process_cpu"] / (per_size[s]["gzip"] / GB) for s in sizes}
    wall_per_gb = {s: per_size[s]["process_wall"] / (per_size[s]["gzip"] / GB) for s in sizes}
    memory = {s: per_size[s]["process_peak"] for s in sizes}
    finalize_memory = {s: per_size[s]["finalize_peak"] for s in sizes}
    flatness = [
        {
            "what": "processor CPU-seconds per GB of gzip",
            "values": {str(s): round(v, 2) for s, v in per_gb.items()},
            "spread": round(max(per_gb.values()) / min(per_gb.values()) - 1, 3),
        },
        {
            "what": "peak memory of a processor child (MiB)",
            "values": {str(s): round(v / 2**20) for s, v in memory.items()},
            "spread": round(max(memory.values()) / min(memory.values()) - 1, 3),
        },
        {  # bounded by its merge buckets, not flat: reported
            "what": "peak memory of finalize (MiB), reported",
            "values": {str(s): round(v / 2**20) for s, v in finalize_memory.items()},
            "spread": round(max(finalize_memory.values()) / min(finalize_memory.values()) - 1, 3),
        },
    ]
    for f in flatness:
        f["flat"] = f["spread"] <= FLAT_WITHIN or f["what"].endswith("reported")
    largest = sizes[-1]
    split_fixed, split_per_file = _fit([(per_size[s]["files"], per_size[s]["split_cpu"]) for s in sizes])
    final_fixed, final_per_row = _fit([(rows[s] / 1e6, per_size[s]["finalize_cpu"]) for s in sizes])
    big = per_size[largest]
    requests_per_chunk = {k: v / big["chunks"] for k, v in big["requests"].items()}
    from bench.tasks import inflate_seconds_per_gb, interpreter_seconds

    measured = Measured(
        gzip_bytes_per_object=big["gzip"] / rows[largest],
        parquet_per_gzip=big["parquet_bytes"] / big["gzip"],
        process_cpu_s_per_gb=statistics.median(per_gb.values()),
        process_wall_s_per_gb=statistics.median(wall_per_gb.values()),
        process_fixed_s=interpreter_seconds(),
        split_cpu_s=max(split_fixed, 0.0),
        split_s_per_file=max(split_per_file, 0.0),
        finalize_cpu_s_per_million_rows=max(final_per_row, 0.0),
        finalize_fixed_s=max(final_fixed, 0.0),
        state_bytes_per_object=big["state_bytes"] / rows[largest],
        requests_per_chunk=requests_per_chunk,
        inflate_s_per_gb=inflate_seconds_per_gb(gens_files[largest][0]),
    )
    return measured, flatness


def _run_local(args: argparse.Namespace, gen: Any, name: str) -> float:
    out = args.data / "work-model" / name
    command = [sys.executable, "-m", "pipeline", "run-local", str(gen.root / gen.delivery.manifest_key),
               "--out", str(out)]  # fmt: skip
    result = measure(
        f"run-local, {name}", command, args.runs, before=lambda: shutil.rmtree(out, ignore_errors=True)
    )
    return result.wall


def render(report: dict[str, Any]) -> str:
    m = report["measured"]
    lines = [
        "# The AWS model",
        "",
        "Written by `python -m bench --model`; do not edit by hand. How it works: bench/model.py;",
        "what it means: docs/scaling.md.",
        "",
        "## Measured here",
        "",
        "| figure | value |",
        "| --- | ---: |",
        f"| gzip bytes per object | {m['gzip_bytes_per_object']:.1f} |",
        f"| Parquet bytes per gzip byte | {m['parquet_per_gzip']:.3f} |",
        f"| processor, CPU-seconds per GB of gzip (the child's whole work) | {m['process_cpu_s_per_gb']:.1f} |",
        f"| processor, wall seconds per GB of gzip on 2 cores | {m['process_wall_s_per_gb']:.1f} |",
        f"| a job's start here (interpreter and imports) | {m['process_fixed_s']:.2f} s |",
        f"| splitter, CPU-seconds per run, and per data file | {m['split_cpu_s']:.2f}, {m['split_s_per_file']:.3f} |",
        f"| finalize, CPU-seconds per run, and per million objects | {m['finalize_fixed_s']:.2f}, "
        f"{m['finalize_cpu_s_per_million_rows']:.2f} |",
        f"| run state kept per object (identity hashes, partials, stats) | {m['state_bytes_per_object']:.1f} B |",
        "| S3 requests per chunk (every job of a run, one data file a chunk) | "
        + ", ".join(f"{k} {v:.1f}" for k, v in sorted(m["requests_per_chunk"].items()))
        + " |",
        f"| run-local's fixed cost (interpreter, stand-in, trigger, publication) | {report['local_fixed_s']:.2f} s |",
        "",
        "Flat across three delivery sizes (a bound of 10%):",
        "",
        "| figure | by rows | spread | flat |",
        "| --- | --- | ---: | --- |",
    ]
    for f in report["flatness"]:
        values = ", ".join(f"{int(k):,}: {v}" for k, v in f["values"].items())
        lines.append(
            f"| {f['what']} | {values} | {f['spread'] * 100:.1f}% | "
            f"{'-' if f['what'].endswith('reported') else 'yes' if f['flat'] else '**no**'} |"
        )
    lines += [
        "",
        "The model against `run-local` measured here (a bound of 20%):",
        "",
        "| rows | measured (s) | modelled (s) | off by |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for c in report["calibration"]:
        lines.append(
            f"| {c['rows']:,} | {c['measured_s']:.2f} | {c['modelled_s']:.2f} | "
            f"{(c['modelled_s'] / c['measured_s'] - 1) * 100:+.0f}% |"
        )
    stack = report["stack"]
    lines += [
        "",
        f"## Projected on AWS (the stack's defaults: {stack['target_chunk_bytes'] // 2**20} MiB of gzip a chunk, "
        f"maxVcpus {stack['max_vcpus']}, children of {stack['process_vcpu']:g} vCPU / {stack['process_memory_gb']:g} GB)",
        "",
        "| objects | gzip (GB) | chunks | waves | manifest to complete (min), likely [range] | cost on demand (USD) | cost, Spot children (USD) |",
        "| ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for p in [*report["projections"], report["one_data_file_1b"]]:
        label = f"{p['objects']:,}" + (" (one data file)" if p is report["one_data_file_1b"] else "")
        lines.append(
            f"| {label} | {p['gzip_gb']:,.1f} | {p['chunks']:,} | {p['waves']} | {p['wall_minutes']:.1f} "
            f"[{p['wall_minutes_low']:.1f}-{p['wall_minutes_high']:.1f}] | {p['cost_usd']:.3f} | {p['cost_spot_usd']:.3f} |"
        )
    billion = next(p for p in report["projections"] if p["objects"] == 1_000_000_000)
    lines += [
        "",
        "At a billion objects, by stage (s): "
        + ", ".join(f"{k.removesuffix('_s')} {v:,.0f}" for k, v in billion["stages"].items())
        + "; cost by part (USD): "
        + ", ".join(f"{k} {v:.4f}" for k, v in billion["costs"].items()),
        "",
        "| target | measured | goal | met |",
        "| --- | ---: | --- | --- |",
        f"| 1B objects, manifest to complete Parquet (minutes, likely) | {billion['wall_minutes']:.1f} | <= 10 | "
        f"{'yes' if billion['wall_minutes'] <= 10 else '**no**'} |",
        f"| 1B objects, cost of one run incl. intermediates (USD, on demand) | {billion['cost_usd']:.3f} | <= 0.50 | "
        f"{'yes' if billion['cost_usd'] <= 0.5 else '**no**'} |",
        "",
        "## Assumptions (not measured here)",
        "",
        "| assumption | value [range] | source |",
        "| --- | --- | --- |",
    ]
    for a in report["assumptions"]:
        span = f" [{a['low']:g}-{a['high']:g}]" if a["low"] != a["high"] else ""
        lines.append(f"| {a['name']} | {a['value']:g}{span} {a['unit']} | {a['source']} |")
    lines.append("")
    lines.append(f"Data: {', '.join(_shape(s) for s in report['sizes'])}, generated under {HERE.name}/data.")
    return "\n".join(lines) + "\n"
