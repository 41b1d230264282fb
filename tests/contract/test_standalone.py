"""The contract stands alone: the standard library only, in source and in a clean interpreter.

The layers above it (which package may import which) are import-linter's `layers` contract in
pyproject.toml, checked by `make lint`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import inventory_contract

PACKAGE = Path(inventory_contract.__file__).parent


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_every_module_of_the_contract_imports_only_the_standard_library_and_itself():
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 9  # manifest, delivery, schema, layout, jobs, rollups, errors, jsonlog, s3
    allowed = set(sys.stdlib_module_names) | {"inventory_contract"}
    found = {path.name: imported_roots(path) - allowed for path in modules}
    assert {name: roots for name, roots in found.items() if roots} == {}


def test_the_contract_imports_in_an_interpreter_that_has_nothing_but_the_standard_library(tmp_path: Path):
    # GIVEN a copy of the package alone, and an interpreter without site-packages (-I -S)
    copy = tmp_path / "inventory_contract"
    copy.mkdir()
    for path in PACKAGE.glob("*.py"):
        (copy / path.name).write_bytes(path.read_bytes())
    names = sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__")
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        f"for name in {names!r}: __import__('inventory_contract.' + name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('polars', 'boto3', 'botocore', 'pipeline')))"
    )
    # WHEN every module is imported THEN it works and nothing beyond the standard library was loaded
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
