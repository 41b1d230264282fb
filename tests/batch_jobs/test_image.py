"""The image: what the Dockerfile copies is what the tag hashes, and the jobs need nothing else."""

from __future__ import annotations

import ast
import fnmatch
import subprocess
import sys
from pathlib import Path

import pytest

from components.image_context import DOCKERFILE, IGNORE_FILE, ROOT, content_tag, image_files, image_inputs
from tests.docker_context import EVERYDAY_WORK, clean_clone, context_digest, context_files, plant

JOB_MODULES = ("batch_jobs.cli", "batch_jobs.split", "batch_jobs.process", "batch_jobs.finalize")


def _copied_sources() -> list[str]:
    sources = []
    for line in (ROOT / DOCKERFILE).read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from") for p in parts):
            sources += parts[1:-1]
    return sources


def _relative(paths: list[Path], root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in paths}


def test_every_file_the_dockerfile_copies_feeds_the_content_tag():
    hashed = _relative(image_files(), ROOT)
    for source in _copied_sources():
        pattern = source.rstrip("/") + ("/*.py" if not any(c in source for c in "*.") else "")
        matched = [p for p in hashed if fnmatch.fnmatch(p, pattern)]
        assert matched, f"COPY {source} is not covered by {IGNORE_FILE}'s inputs {image_inputs()}"
    assert "requirements/jobs.lock" in hashed and DOCKERFILE in hashed


def test_the_build_context_holds_exactly_the_tags_inputs_after_everyday_work(tmp_path: Path):
    # GIVEN a clean clone, WHEN everyday work plants files all over it
    clone = clean_clone(ROOT, tmp_path / "clone")
    dockerfile = clone / DOCKERFILE
    before = (context_files(clone, dockerfile), context_digest(clone, dockerfile))
    plant(clone, EVERYDAY_WORK)
    # THEN the context pulumi-docker sends and digests is exactly what the tag hashes, both ways
    files = context_files(clone, dockerfile)
    assert files == _relative(image_files(clone), clone)
    assert (files, context_digest(clone, dockerfile)) == before  # no rebuild, no push
    assert content_tag("linux/amd64", clone) == content_tag("linux/amd64", ROOT)


@pytest.mark.parametrize(
    "change",
    [
        "edit batch_jobs/split.py",
        "add batch_jobs/extra.py",
        "edit pipeline/contract/layout.py",
        "edit requirements/jobs.lock",
        "edit batch_jobs/Dockerfile",
        "chmod batch_jobs/cli.py",
    ],
)
def test_whatever_changes_the_context_digest_changes_the_tag(tmp_path: Path, change: str):
    # a rebuild under an unchanged tag is what an IMMUTABLE repository refuses
    clone = clean_clone(ROOT, tmp_path / "clone")
    dockerfile = clone / DOCKERFILE
    digest, tag = context_digest(clone, dockerfile), content_tag("linux/amd64", clone)
    verb, name = change.split(" ", 1)
    path = clone / name
    if verb == "chmod":
        path.chmod(0o755)
    else:
        with path.open("a") as f:
            f.write("\n# changed\n")
    assert context_digest(clone, dockerfile) != digest
    assert content_tag("linux/amd64", clone) != tag


def test_the_tag_changes_when_an_input_changes(tmp_path: Path):
    (tmp_path / IGNORE_FILE).parent.mkdir(parents=True)
    (tmp_path / IGNORE_FILE).write_text((ROOT / IGNORE_FILE).read_text())
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
