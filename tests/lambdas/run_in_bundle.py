"""Run the trigger handler as the Lambda runtime does, with nothing importable but the bundle.

Started by ``tests/lambdas/test_bundle.py`` as ``python -I -S run_in_bundle.py TASK_DIR EVENTS_JSON``
with only the Lambda's environment variables. ``-I`` ignores ``PYTHON*`` variables, the user site and
the script's folder; ``-S`` skips ``site``, so no site-packages (the project's .venv) is on sys.path:
only the standard library. TASK_DIR, the unpacked zip (Lambda's ``/var/task``), goes first, as on
Lambda. Imports nothing outside the standard library itself; prints one JSON report on stdout.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import sysconfig
from pathlib import Path

SDK_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
NOT_SHIPPED = ("moto", "polars", "pytest", "isal", "pulumi", "components")


class Context:
    aws_request_id = "bundle-test"


def _module_files() -> dict[str, str]:
    """Where every imported module came from, but this script (the runtime's part, not the bundle's)."""
    this = sys.modules["__main__"]  # also aliased as __mp_main__ once multiprocessing is imported
    modules = sorted((name, m) for name, m in sys.modules.items() if m is not this)
    return {name: f for name, m in modules if (f := getattr(m, "__file__", None))}


def main(task: str, events_path: str) -> None:
    sys.path.insert(0, task)
    trigger = importlib.import_module("lambdas.inventory_trigger")
    events = json.loads(Path(events_path).read_text())
    responses = [trigger.handler(event, Context()) for event in events]
    sdk = importlib.import_module("lambdas.sdk")
    s3, _ = trigger.clients()
    report = {
        "flags": {"isolated": sys.flags.isolated, "no_site": sys.flags.no_site},
        "sys_path": sys.path,
        "stdlib": sorted({sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")}),
        "module_files": _module_files(),
        "sdk_files": {name: importlib.import_module(name).__file__ for name in SDK_MODULES},
        "versions": {name: sys.modules[name].__version__ for name in ("boto3", "botocore")},
        "importable": {name: importlib.util.find_spec(name) is not None for name in NOT_SHIPPED},
        "missing_conditional_writes": sdk.missing_conditional_writes(s3),
        "responses": responses,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:])
