"""One recording Mocks class for the session (``set_mocks`` is process-wide), run with preview=False
so that every ``apply`` runs and every assertion is checked."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components.config import StackSettings, load_settings
from tests.components.mocks import ACCOUNT, REGION, Recorded, RecordingMocks, install

__all__ = ["ACCOUNT", "REGION", "Recorded"]
ROOT = Path(__file__).resolve().parents[2]
STACK = "test"


MOCKS = RecordingMocks()
install(MOCKS, STACK)


def project_defaults() -> dict[str, Any]:
    """The config values `pulumi` would apply from Pulumi.yaml's declared defaults."""
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    return {key: spec["default"] for key, spec in declared.items()}


def settings(*, region: str = REGION, **overrides: Any) -> StackSettings:
    return load_settings({**project_defaults(), **overrides}, region=region, stack=STACK)


@dataclass
class Deployed:
    resources: list[Recorded]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name: str | None = None) -> Recorded:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {typ} {name or ''}, found {[r.name for r in found]}"
        return found[0]

    def policy(self, r: Recorded, key: str = "policy") -> dict[str, Any]:
        value = r.inputs[key]
        return json.loads(value) if isinstance(value, str) else value


def deploy(stack_settings: StackSettings) -> Deployed:
    """Run the whole program under the mocks and wait for every resource to be registered."""
    from components.stack import build_stack

    MOCKS.reset()
    captured: dict[str, Any] = {}

    @pulumi.runtime.test
    def program():
        outputs = build_stack(stack_settings)
        return pulumi.Output.all(**outputs).apply(captured.update)

    program()
    return Deployed(resources=list(MOCKS.resources), outputs=captured)


@pytest.fixture(scope="module")
def stack() -> Deployed:
    return deploy(settings())


def stack_config(values: dict[str, Any], region: str = REGION) -> dict[str, str]:
    """Config as ``pulumi`` hands it to the program: namespaced keys, JSON for non-strings."""
    config = {
        f"s3-inventory-pipeline:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()
    }
    return {**config, "aws:region": region}


def run_program(
    stack: str,
    values: dict[str, Any],
    *,
    mocks: dict[str, Any] | None = None,
    root: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """``__main__.py`` of the checkout at ``root`` as stack ``stack`` under the mocks, in a process
    of its own (``tests/components/program_under_mocks.py``), as ``pulumi up`` runs it."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.components.program_under_mocks",
            stack,
            json.dumps(stack_config(values)),
            json.dumps(mocks or {}),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
