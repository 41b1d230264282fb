"""Run ``__main__.py`` under the recording mocks as one named stack, in a process of its own.

    python -m tests.components.program_under_mocks STACK CONFIG_JSON [MOCKS_JSON]

``set_mocks`` is process-wide and fixes the stack's name, so a test that compares two stacks runs
each in a subprocess; so does a test of a program that fails (its pending registrations would
fail the next program run in the same process). MOCKS_JSON sets attributes of the mocks, e.g.
``{"default_vpc": false}``. Prints one JSON object: the stack's outputs and every resource
registered (type, logical name, inputs, outputs); a failing program exits 1 with its error.
"""

from __future__ import annotations

import hashlib
import json
import runpy
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pulumi

from tests.components.mocks import RecordingMocks, install

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    stack, config = argv[0], json.loads(argv[1])
    mocks = RecordingMocks()
    for name, value in json.loads(argv[2] if len(argv) > 2 else "{}").items():
        setattr(mocks, name, value)
    install(mocks, stack)
    pulumi.runtime.set_all_config(config)
    exported: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    pulumi.export = exported.__setitem__  # the program's exports, as the CLI would print them

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        return pulumi.Output.all(**exported).apply(outputs.update)

    program()
    resources = [asdict(r) for r in mocks.resources]
    print(json.dumps({"outputs": outputs, "resources": resources}, default=_plain))
    return 0


def _plain(value: Any) -> Any:
    """An archive as what Pulumi compares of it (its path and its content), anything else as text."""
    if isinstance(value, pulumi.FileArchive):
        path = Path(value.path)
        return {"FileArchive": value.path, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return str(value)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
