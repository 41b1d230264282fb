"""Job processes started ahead of their jobs, as a Fargate task is started from an image already
pulled: each imports the jobs, then waits for its command, so a job's interpreter start and imports
(about half a second here) overlap the work before it instead of delaying it.

``python -m pipeline.local.warm`` is one such process: it reads one JSON line on stdin, ``{"argv":
[...], "env": {...}, "log": PATH}``, sends its output to the log, takes the job's environment and
runs ``python -m batch_jobs ARGV`` in itself; an empty stdin (the runner had no job for it) ends it.
The job runs exactly as it would in a fresh process: its command, environment, exit code and log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

JOB_MODULE = ("-m", "batch_jobs")


def serve() -> int:
    """In the warm process: import the jobs, wait for one command, run it, exit with its code."""
    from batch_jobs import cli, finalize, process, split  # noqa: F401 - importing them is the point

    line = sys.stdin.readline()
    if not line:
        return 0
    request = json.loads(line)
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.clear()
    os.environ.update(request["env"])
    argv = list(request["argv"])
    sys.argv = ["python", *argv]
    return cli.main(argv[len(JOB_MODULE) :])


class WarmPool:
    """Warm processes ready to take a job; ``take`` hands one out (or None).

    They are started by a thread of the pool's own that lives as long as the pool: a process that
    asks to die with its parent (``preexec``, Linux's PR_SET_PDEATHSIG) dies with the thread that
    started it, and a job's own thread ends before a process warmed for the next job is taken."""

    def __init__(self, env: dict[str, str], preexec: Callable[[], None] | None = None) -> None:
        self._env = env
        self._preexec = preexec
        self._ready: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self._wanted = threading.Condition(self._lock)
        self._target = 0
        self._closed = False
        self._starter = threading.Thread(target=self._start_wanted, name="warm-pool", daemon=True)
        self._starter.start()

    def warm(self, target: int) -> None:
        """Have ``target`` processes ready (more are not stopped: they will be taken)."""
        with self._wanted:
            self._target = target
            self._wanted.notify()

    def _start_wanted(self) -> None:
        with self._wanted:
            while not self._closed:
                self._ready = [p for p in self._ready if p.poll() is None]
                if len(self._ready) >= self._target:
                    self._wanted.wait()
                    continue
                self._ready.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "pipeline.local.warm"],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        env=self._env,
                        preexec_fn=self._preexec,
                    )
                )

    def take(self, command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes] | None:
        """A warm process running ``command`` (``python -m batch_jobs ...``), or None when none is
        ready or the command is not a job: the caller then starts a fresh one."""
        if command[1:3] != list(JOB_MODULE):
            return None
        with self._wanted:
            while self._ready:
                process = self._ready.pop(0)
                if process.poll() is None:
                    break
            else:
                return None
            self._target = max(self._target - 1, 0)
        request = {"argv": command[1:], "env": env, "log": str(log)}
        stdin: IO[bytes] = process.stdin  # type: ignore[assignment]
        try:
            stdin.write((json.dumps(request) + "\n").encode())
            stdin.close()
        except OSError:  # it died while waiting: start a fresh one instead
            return None
        return process

    def close(self) -> None:
        """End the processes nobody took (an empty stdin ends them), and the pool's thread."""
        with self._wanted:
            self._closed = True
            ready, self._ready = self._ready, []
            self._wanted.notify()
        self._starter.join()
        for process in ready:
            _close(process)


def _close(process: subprocess.Popen[Any]) -> None:
    try:
        if process.stdin:
            process.stdin.close()
        process.wait(5)
    except (OSError, subprocess.TimeoutExpired):
        process.kill()
        process.wait()


if __name__ == "__main__":
    raise SystemExit(serve())
