"""run-local's job processes: warm ones run the job exactly as a fresh one would, and none outlives
run-local, however run-local ends (Linux's parent-death signal)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.local.executor import die_with_parent
from pipeline.local.warm import WarmPool

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")

PARENT = textwrap.dedent(
    """
    import subprocess, sys, threading, time
    from pipeline.local.executor import die_with_parent
    from pipeline.local.warm import WarmPool

    pool = WarmPool({**__import__("os").environ}, preexec=die_with_parent)
    t = threading.Thread(target=pool.warm, args=(1,))  # asked for from a thread that then ends
    t.start()
    t.join()
    fresh = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                              preexec_fn=die_with_parent)]
    while not pool._ready:
        time.sleep(0.05)
    time.sleep(1)  # a process that died with the thread that asked for it would be gone by now
    print(pool._ready[0].pid, fresh[0].pid, flush=True)
    time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (dead, not yet reaped by init) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@linux_only
def test_no_job_process_outlives_a_killed_run_local():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    warm, fresh = (int(pid) for pid in parent.stdout.readline().split())
    assert _alive(warm) and _alive(fresh)
    parent.send_signal(signal.SIGKILL)  # nothing of run-local's own code runs: only the kernel can help
    parent.wait()
    deadline = time.monotonic() + 10
    while (_alive(warm) or _alive(fresh)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(warm), "the warm process outlived its parent"
    assert not _alive(fresh), "the job process outlived its parent"


def test_a_warm_process_runs_the_job_with_its_command_environment_and_log(tmp_path):
    pool = WarmPool(dict(os.environ), preexec=die_with_parent)
    try:
        pool.warm(1)
        deadline = time.monotonic() + 30
        process = None
        log = tmp_path / "job.log"
        env = dict(os.environ)
        command = [sys.executable, "-m", "batch_jobs", "split", "--no-such-flag"]
        while process is None and time.monotonic() < deadline:
            process = pool.take(command, env, log)
            time.sleep(0.05)
        assert process is not None
        code = process.wait(30)
        fresh = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        assert code == fresh.returncode == 2  # argparse's usage error, from the job's own parser
        assert log.read_text() == fresh.stderr and "required: --manifest" in fresh.stderr
        assert pool.take([sys.executable, "-c", "pass"], env, log) is None  # not a job: started fresh
    finally:
        pool.close()


def test_closing_the_pool_ends_the_processes_nobody_took():
    pool = WarmPool(dict(os.environ))
    pool.warm(2)
    deadline = time.monotonic() + 30
    while len(pool._ready) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = [p.pid for p in pool._ready]
    assert len(pids) == 2
    pool.close()
    assert not any(_alive(pid) for pid in pids)
