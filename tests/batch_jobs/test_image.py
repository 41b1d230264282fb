"""The image: what the Dockerfile copies is what the tag hashes, and the jobs need nothing else."""

from __future__ import annotations

import ast
import fnmatch
import subprocess
import sys
from pathlib import Path

from components.image_context import DOCKERFILE, IMAGE_INPUTS, ROOT, content_tag, image_files

JOB_MODULES = ("batch_jobs.cli", "batch_jobs.split", "batch_jobs.process", "batch_jobs.finalize")


def _copied_sources() -> list[str]:
    sources = []
    for line in (ROOT / DOCKERFILE).read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from") for p in parts):
            sources += parts[1:-1]
    return sources


def test_every_file_the_dockerfile_copies_feeds_the_content_tag():
    hashed = {p.relative_to(ROOT).as_posix() for p in image_files()}
    for source in _copied_sources():
        pattern = source.rstrip("/") + ("/*.py" if not any(c in source for c in "*.") else "")
        matched = [p for p in hashed if fnmatch.fnmatch(p, pattern)]
        assert matched, f"COPY {source} is not covered by IMAGE_INPUTS {IMAGE_INPUTS}"
    assert "requirements/jobs.lock" in hashed and DOCKERFILE in hashed


def test_the_tag_changes_when_an_input_changes(tmp_path: Path):
    for name in (
        "batch_jobs/Dockerfile",
        "requirements/jobs.lock",
        "pipeline/__init__.py",
        "pipeline/contract/a.py",
        "batch_jobs/b.py",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("one")
    before = content_tag("linux/amd64", tmp_path)
    (tmp_path / "batch_jobs/b.py").write_text("two")
    assert content_tag("linux/amd64", tmp_path) != before


def test_the_jobs_import_nothing_the_image_does_not_ship(tmp_path: Path):
    # statically: batch_jobs imports only the standard library, the jobs.lock set and the contract
    lock = {
        line.split("==")[0].lower().replace("-", "_")
        for line in (ROOT / "requirements/jobs.lock").read_text().split()
    }
    allowed = set(sys.stdlib_module_names) | lock | {"batch_jobs", "pipeline"}
    for path in sorted((ROOT / "batch_jobs").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
                if name.startswith("pipeline"):
                    assert name == "pipeline" or name.startswith("pipeline.contract"), (
                        f"{path.name} imports {name}"
                    )
    # and at run time, with what the image lacks made unimportable
    probe = "import sys\n"
    for blocked in (
        "pulumi",
        "pulumi_aws",
        "pulumi_docker",
        "moto",
        "duckdb",
        "pyarrow",
        "lambdas",
        "components",
    ):
        probe += f"sys.modules[{blocked!r}] = None\n"
    probe += "".join(f"import {m}\n" for m in JOB_MODULES)
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
