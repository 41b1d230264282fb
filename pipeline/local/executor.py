"""Run the jobs that the trigger submitted, as AWS Batch would, in local processes.

The jobs are read back from the Batch API: each job's definition gives the command, the job's
parameters are substituted for ``Ref::NAME`` (``inventory_contract.jobs.render_command``), array
children get ``AWS_BATCH_JOB_ARRAY_INDEX`` and run in parallel up to the CPU count, and a job
starts only after the jobs it depends on succeeded. The image's ``python`` is this interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from batch_jobs.child import die_with_parent
from inventory_contract.jobs import ARRAY_INDEX_ENV, render_command
from pipeline.errors import EXIT_BAD_INPUT, EXIT_FAILED, PipelineError
from pipeline.local.warm import WarmPool


class JobFailedError(PipelineError):
    """A job exited non-zero; the message is the job's own error line. A job's exit code 2 (bad
    input) is the run's too."""


@dataclass(frozen=True)
class PlannedJob:
    job_id: str
    name: str
    command: list[str]
    array_size: int | None
    depends_on: tuple[str, ...]


def plan(batch: Any, job_ids: list[str]) -> list[PlannedJob]:
    """The submitted jobs with their rendered commands, in an order that respects ``dependsOn``."""
    jobs = {j["jobId"]: j for j in batch.describe_jobs(jobs=job_ids)["jobs"]}
    planned: dict[str, PlannedJob] = {}
    for job in jobs.values():
        definition = batch.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])["jobDefinitions"][
            0
        ]
        command = render_command(definition["containerProperties"]["command"], job.get("parameters", {}))
        size = (job.get("arrayProperties") or {}).get("size")
        planned[job["jobId"]] = PlannedJob(
            job_id=job["jobId"],
            name=job["jobName"],
            command=command,
            array_size=size,
            depends_on=tuple(d["jobId"] for d in job.get("dependsOn", [])),
        )
    ordered: list[PlannedJob] = []
    while len(ordered) < len(planned):
        ready = [
            j
            for j in planned.values()
            if j not in ordered and all(d in {o.job_id for o in ordered} for d in j.depends_on)
        ]
        if not ready:
            msg = f"jobs {sorted(planned)} depend on jobs that were not submitted with them"
            raise ValueError(msg)
        ordered.extend(ready)
    return ordered


class Executor:
    def __init__(
        self,
        env: dict[str, str],
        log_dir: Path,
        progress: Callable[[str], None],
        workers: int = 0,
        pool: WarmPool | None = None,
        env_by_command: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self._env = {**os.environ, **env}
        # what one job command runs with on top of ``env`` (its own role's credentials, as the job
        # definitions give finalize a role of its own), by the ``batch_jobs`` subcommand
        self._env_by_command = env_by_command or {}
        self._log_dir = log_dir
        self._progress = progress
        self._workers = workers or os.cpu_count() or 1
        self._processes: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._stopping = False
        self._pool = pool
        self._next: PlannedJob | None = None  # the job after the running one, warmed ahead
        self._dispatched = 0  # children of the running array handed a process so far
        self._rows_now: dict[int, int] = {}  # rows each child of the running array has read so far

    def run(self, jobs: list[PlannedJob]) -> None:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        try:
            for position, job in enumerate(jobs):
                self._next = jobs[position + 1] if position + 1 < len(jobs) else None
                if job.array_size is None:  # a single job: its successor imports while it runs
                    self._warm(self._next)
                self._run_job(job)
        finally:
            self.stop()

    def _warm(self, job: PlannedJob | None) -> None:
        if self._pool and job is not None:
            self._pool.warm(1 if job.array_size is None else min(self._workers, job.array_size))

    def stop(self) -> None:
        """Terminate every job process still running (failure elsewhere, or Ctrl-C)."""
        with self._lock:
            running = list(self._processes)
        _stop(*running)

    def _run_job(self, job: PlannedJob) -> None:
        started = time.monotonic()
        if job.array_size is None:
            self._progress(f"{job.name}: running")
            self._run_process(job, None)
        else:
            done = 0
            self._progress(
                f"{job.name}: {job.array_size} children, {min(self._workers, job.array_size)} at a time"
            )
            self._dispatched = 0
            self._rows_now = {}
            with ThreadPoolExecutor(self._workers) as pool:
                futures = [pool.submit(self._run_process, job, i) for i in range(job.array_size)]
                pending = set(futures)
                try:
                    while pending:
                        finished, pending = wait(
                            pending, timeout=ARRAY_STATUS_SECONDS, return_when=FIRST_EXCEPTION
                        )
                        for future in finished:
                            future.result()  # a failed child fails the job
                        done += len(finished)
                        with self._lock:
                            rows = sum(self._rows_now.values())
                        rate = rows / max(time.monotonic() - started, 1e-9)
                        self._progress(
                            f"{job.name}: {done}/{job.array_size} children done, {len(pending) - self._queued(pending)} "
                            f"running, {rows:,} rows read so far, {rate:,.0f} rows/s"
                        )
                except BaseException:  # a failed child or Ctrl-C: cancel the queue, stop the running
                    self._stopping = True
                    for future in pending:
                        future.cancel()
                    self.stop()
                    raise
        self._progress(f"{job.name}: succeeded in {time.monotonic() - started:.1f}s")

    def _run_process(self, job: PlannedJob, index: int | None) -> int | None:
        """Run one job process to its end; returns the rows it says it wrote (a processor child)."""
        command = list(job.command)
        if command and command[0] == "python":
            command[0] = sys.executable
        env = dict(self._env)
        if "batch_jobs" in command[:-1]:
            env.update(self._env_by_command.get(command[command.index("batch_jobs") + 1], {}))
        suffix = ""
        if index is not None:
            env[ARRAY_INDEX_ENV] = str(index)
            suffix = f"-{index:06d}"
        log_path = self._log_dir / f"{job.name}{suffix}.log"
        with log_path.open("wb") as log:
            with self._lock:
                if self._stopping:
                    msg = f"{job.name}: stopped before child {index} started"
                    raise JobFailedError(msg)
                process = self._start(job, command, env, log, log_path)
                self._processes.add(process)
            try:
                code = self._wait(process, job.name, log_path, index)
            finally:  # interrupted while waiting (Ctrl-C, SIGTERM): the process is stopped, not left
                if process.poll() is None:
                    _stop(process)
                with self._lock:
                    self._processes.discard(process)
        if code != 0:
            lines = log_path.read_text(errors="replace").splitlines()
            errors = [line for line in lines if line.startswith("error: ")]
            detail = (
                errors[-1].removeprefix("error: ")
                if errors
                else (lines[-1] if lines else f"exit code {code}")
            )
            child = f" child {index}" if index is not None else ""
            msg = f"{job.name}{child} failed (exit {code}): {detail} (log: {log_path})"
            raise JobFailedError(msg, exit_code=EXIT_BAD_INPUT if code == EXIT_BAD_INPUT else EXIT_FAILED)
        rows = _rows_written(log_path)
        if index is not None and rows is not None:
            with self._lock:
                self._rows_now[index] = rows
        return rows

    def _start(
        self, job: PlannedJob, command: list[str], env: dict[str, str], log: IO[bytes], log_path: Path
    ) -> subprocess.Popen[bytes]:
        """A warm process for the job if one is ready, else a fresh one; then warm what comes next:
        this array's children still to start, else the next job."""
        process = self._pool.take(command, env, log_path) if self._pool else None
        if process is None:
            process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
            )
        if job.array_size is not None:
            self._dispatched += 1
            left = job.array_size - self._dispatched
            if left > 0 and self._pool:
                self._pool.warm(min(self._workers, left))
            elif left == 0:
                self._warm(self._next)
        return process

    def _queued(self, pending: set[Any]) -> int:
        """Of the array's children not finished, those still waiting for a worker."""
        return sum(1 for future in pending if not future.running())

    def _wait(self, process: subprocess.Popen[bytes], name: str, log_path: Path, index: int | None) -> int:
        """Wait for the process, relaying the progress lines it logs (the plan, each child's rows,
        finalize's steps); an array child's rows so far count in the array's status line."""
        seen = 0
        while True:
            try:
                code = process.wait(timeout=PROGRESS_POLL_SECONDS)
            except subprocess.TimeoutExpired:
                code = None
            with log_path.open("rb") as log:
                log.seek(seen)
                text = log.read()
            end = text.rfind(b"\n") + 1
            seen += end
            for line in text[:end].decode(errors="replace").splitlines():
                said = _progress_line(line)
                if said:
                    self._progress(f"{name}: {said}")
                rows = _rows_read(line)
                if index is not None and rows is not None:
                    with self._lock:
                        self._rows_now[index] = rows
            if code is not None:  # what it logged since the last look is relayed too
                return code


ARRAY_STATUS_SECONDS = 2.0
"""How often an array's status line (children done and running, rows read so far) is shown."""
PROGRESS_POLL_SECONDS = 0.5
"""How often a running job's log is read for progress lines: a child logs one every 2 s (``flow.py``),
shown within half a second."""


def _json_lines(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def _progress_line(line: str) -> str | None:
    entries = _json_lines(line)
    if not entries:
        return None
    entry = entries[0]
    if entry.get("message") == "finalize step":
        return str(entry.get("step"))
    if entry.get("message") == "part converted":
        return f"chunk {entry.get('chunk')}: all {entry.get('rows', 0):,} rows converted; its rollups and identity hashes next"
    if entry.get("message") == "plan written":
        return (
            f"planned {entry.get('chunks')} chunk(s) over {entry.get('files')} data file(s), "
            f"{entry.get('cut_files')} cut in pieces"
        )
    if entry.get("message") != "process progress":
        return None
    total = entry.get("compressed_bytes_total") or 0
    share = min(entry.get("compressed_bytes_done", 0) / total * 100, 100) if total else 100
    return (
        f"chunk {entry.get('chunk')}: {entry.get('rows', 0):,} rows, {share:.0f}% of its "
        f"{total / 1e6:,.0f} MB of gzip read, {entry.get('rows_per_s', 0):,} rows/s"
    )


def _rows_read(line: str) -> int | None:
    """The rows a child says it has read so far, from one of its progress lines."""
    entries = _json_lines(line)
    if entries and entries[0].get("message") in {"process progress", "part converted"}:
        return int(entries[0].get("rows") or 0)
    return None


def _rows_written(log_path: Path) -> int | None:
    entries = [
        e for e in _json_lines(log_path.read_text(errors="replace")) if e.get("message") == "part written"
    ]
    return int(entries[-1]["rows"]) if entries else None


def _stop(*processes: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s for a process that does not exit."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
