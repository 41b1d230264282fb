"""The job as PID 1 of its own PID namespace, as in a Fargate task: SIGTERM (a Spot interruption)
ends it with 143, which the retry rules retry, not with the SIGKILL that follows an ignored one."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import pytest


def _unshare_works() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--pid", "--fork", "true"], capture_output=True, check=False
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs unshare with user and PID namespaces")
def test_a_job_that_is_pid_1_exits_143_on_sigterm(tmp_path):
    # python -m batch_jobs as PID 1 (exec, no init), waiting on a FIFO nobody writes: a job at work
    fifo = tmp_path / "never"
    script = (
        "import os, sys, runpy; sys.argv = ['batch_jobs', 'split', '--manifest', '-']; "
        f"import batch_jobs.cli as c; c.main = lambda argv=None: open({str(fifo)!r}).read() and 0; "
        "runpy.run_module('batch_jobs', run_name='__main__')"
    )
    import os

    os.mkfifo(fifo)
    job = subprocess.Popen(
        ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--kill-child",
         sys.executable, "-c", script],
    )  # fmt: skip
    time.sleep(2)  # imported and blocked on the FIFO
    inner = subprocess.run(["pgrep", "-P", str(job.pid)], capture_output=True, text=True, check=False)
    child = int(inner.stdout.split()[0])
    os.kill(child, signal.SIGTERM)
    assert job.wait(10) == 143
