"""The trigger Lambda's zip: the handler and the contract, and nothing else."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile

import pytest

from components.lambda_bundle import HANDLER, bundle_files


def test_the_bundle_holds_only_the_handler_and_the_contract():
    files = bundle_files()
    assert "lambdas/inventory_trigger.py" in files and "pipeline/contract/manifest.py" in files
    assert all(
        name.startswith(("lambdas/", "pipeline/contract/")) or name == "pipeline/__init__.py"
        for name in files
    )
    allowed = set(sys.stdlib_module_names) | {"boto3", "botocore", "lambdas", "pipeline"}
    for name, path in files.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = {node.module.split(".")[0]}
                if node.module.startswith("pipeline") and not node.module.startswith("pipeline.contract"):
                    pytest.fail(f"{name} imports {node.module}, which is not in the bundle")
            else:
                continue
            assert roots <= allowed, f"{name} imports {roots - allowed}"


def test_the_handler_imports_from_the_built_bundle_where_polars_cannot(tmp_path):
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, path in bundle_files().items():
            zf.write(path, name)
    unpacked = tmp_path / "task"
    zipfile.ZipFile(archive).extractall(unpacked)
    module, function = HANDLER.rsplit(".", 1)
    probe = f"""
import sys, importlib
for blocked in ("polars", "pyarrow", "duckdb", "batch_jobs", "components"):
    sys.modules[blocked] = None  # importing these now fails
sys.path.insert(0, {str(unpacked)!r})
handler = getattr(importlib.import_module({module!r}), {function!r})
import pipeline.contract.manifest as m
assert m.__file__.startswith({str(unpacked)!r}), m.__file__
print(handler.__module__, sorted(k for k in sys.modules if k.split(".")[0] in ("lambdas", "pipeline")))
"""
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("lambdas.inventory_trigger ")
