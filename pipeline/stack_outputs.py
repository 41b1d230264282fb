"""The deployed stack's outputs: from ``pulumi stack output --json``, or the JSON it printed.

Every problem is a ``UsageError`` (exit code 2, one line): nothing has been written yet.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from pipeline.errors import UsageError

PULUMI_TIMEOUT_SECONDS = 120


def read_outputs(
    source: str | None, *, stack: str | None = None, instead: str = "--destination-bucket"
) -> dict[str, Any]:
    """The outputs in ``source`` (a file, ``-`` for stdin), or, when None, from the Pulumi CLI
    (``instead``: what else the command takes, said when the CLI is missing)."""
    if source is None:
        return _from_pulumi(stack, instead)
    where = "standard input" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as err:
        msg = f"--outputs {source}: cannot read it ({err.strerror}); give the file `pulumi stack output --json` wrote"
        raise UsageError(msg) from err
    return _parse(text, where)


def _from_pulumi(stack: str | None, instead: str) -> dict[str, Any]:
    command = ["pulumi", "stack", "output", "--json", *(["--stack", stack] if stack else [])]
    shown = " ".join(command)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PULUMI_TIMEOUT_SECONDS, check=False
        )
    except FileNotFoundError as err:
        msg = (
            "the pulumi CLI is not on PATH: install it, or give --outputs FILE (the JSON of "
            "`pulumi stack output --json`)" + (f" or {instead}" if instead else "")
        )
        raise UsageError(msg) from err
    except subprocess.TimeoutExpired as err:
        msg = f"`{shown}` did not answer within {PULUMI_TIMEOUT_SECONDS} s; give --outputs FILE instead"
        raise UsageError(msg) from err
    if done.returncode != 0:
        said = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        reason = said[-1] if said else "no message"
        msg = f"`{shown}` failed (exit {done.returncode}): {reason}; select the stack (--stack) or give --outputs FILE"
        raise UsageError(msg)
    return _parse(done.stdout, f"`{shown}`")


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        outputs = json.loads(text)
    except ValueError as err:
        msg = f"the stack outputs from {where} are not JSON ({err}); give what `pulumi stack output --json` prints"
        raise UsageError(msg) from err
    if not isinstance(outputs, dict):
        msg = f"the stack outputs from {where} are not a JSON object of output names and values"
        raise UsageError(msg)
    return outputs


_PREFIX_IN_BACKFILL = re.compile(r"s3://[^/\s]+/(?P<prefix>\S+)/SOURCE-BUCKET/")


def inventory_prefix_of(outputs: dict[str, Any]) -> str | None:
    """The output ``inventoryPrefix``; a stack deployed before it existed names the prefix only in
    ``backfillCommand`` (``s3://DEST/PREFIX/SOURCE-BUCKET/...``)."""
    prefix = outputs.get("inventoryPrefix")
    if isinstance(prefix, str):
        return prefix
    found = _PREFIX_IN_BACKFILL.search(str(outputs.get("backfillCommand", "")))
    return found["prefix"] if found else None
