"""The image: what the Dockerfile copies is what the tag hashes, and the jobs need nothing else."""

from __future__ import annotations

import ast
import fnmatch
import re
import subprocess
import sys
from pathlib import Path

import pytest

from components.config import PLATFORMS
from components.image_context import (
    CONTEXT,
    DOCKERFILE,
    IGNORE_FILE,
    ROOT,
    ImageContextError,
    assemble_context,
    content_tag,
    image_files,
    image_inputs,
)
from tests.docker_context import (
    EVERYDAY_WORK,
    build_context,
    clean_clone,
    plant,
    under_umask_002,
)

JOB_MODULES = (
    "batch_jobs.cli",
    "batch_jobs.split",
    "batch_jobs.process",
    "batch_jobs.finalize",
    "batch_jobs.report_page",  # finalize's storage report imports it (and matplotlib) when it runs
)


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
    # GIVEN a clean clone, WHEN everyday work plants files all over it (and an older version's
    # module is left in the build folder)
    clone = clean_clone(ROOT, tmp_path / "clone")
    before = build_context(clone)
    plant(clone, EVERYDAY_WORK)
    # THEN the context pulumi-docker sends and digests is exactly what the tag hashes, both ways
    after = build_context(clone)
    assert after[0] == _relative(image_files(clone), clone)
    assert after == before  # no rebuild, no push
    assert content_tag("linux/amd64", clone) == content_tag("linux/amd64", ROOT)


def test_a_checkout_under_another_umask_builds_the_same_context_and_tag(tmp_path: Path):
    # GIVEN the same commit checked out on a laptop with umask 002 (group-writable files) and in CI
    ci = clean_clone(ROOT, tmp_path / "ci")
    laptop = under_umask_002(clean_clone(ROOT, tmp_path / "laptop"))
    assert (laptop / "batch_jobs/split.py").stat().st_mode & 0o777 == 0o664
    # THEN both send the same files with the modes git records: no rebuild when the other deploys
    assert build_context(laptop) == build_context(ci)
    assert content_tag("linux/amd64", laptop) == content_tag("linux/amd64", ci)
    modes = {p.stat().st_mode & 0o777 for p in (laptop / CONTEXT).rglob("*") if p.is_file()}
    assert modes == {0o644}


def test_assembling_the_context_replaces_whatever_an_earlier_version_left_there(tmp_path: Path):
    clone = clean_clone(ROOT, tmp_path / "clone")
    context = assemble_context(clone)
    (context / "batch_jobs/gone.py").write_text("a module an earlier version had\n")
    (context / "batch_jobs/split.py").write_text("an earlier version of the module\n")
    (context / "old/folder").mkdir(parents=True)
    assemble_context(clone)
    assert {p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()} == _relative(
        image_files(clone), clone
    )
    assert (context / "batch_jobs/split.py").read_bytes() == (clone / "batch_jobs/split.py").read_bytes()
    assert not (context / "old").exists()


@pytest.mark.parametrize(
    "change",
    [
        "edit batch_jobs/split.py",
        "add batch_jobs/extra.py",
        "edit inventory_contract/layout.py",
        "edit requirements/jobs.lock",
        "edit batch_jobs/Dockerfile",
        "chmod +x batch_jobs/cli.py",
    ],
)
def test_whatever_changes_the_context_digest_changes_the_tag(tmp_path: Path, change: str):
    # a rebuild under an unchanged tag would move the tag under the images that name it
    clone = clean_clone(ROOT, tmp_path / "clone")
    (_, digest), tag = build_context(clone), content_tag("linux/amd64", clone)
    verb, name = change.split(" ", 1)
    path = clone / name.removeprefix("+x ")
    if verb == "chmod":
        path.chmod(0o755)
    else:
        with path.open("a") as f:
            f.write("\n# changed\n")
    assert build_context(clone)[1] != digest
    assert content_tag("linux/amd64", clone) != tag


def test_the_tag_changes_when_an_input_changes(tmp_path: Path):
    (tmp_path / IGNORE_FILE).parent.mkdir(parents=True)
    (tmp_path / IGNORE_FILE).write_text((ROOT / IGNORE_FILE).read_text())
    for name in (
        "batch_jobs/Dockerfile",
        "requirements/jobs.lock",
        "inventory_contract/a.py",
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
    allowed = set(sys.stdlib_module_names) | lock | {"batch_jobs", "inventory_contract"}
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
        "pipeline",
        "playwright",
    ):
        probe += f"sys.modules[{blocked!r}] = None\n"
    probe += "".join(f"import {m}\n" for m in JOB_MODULES)
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# The base image's C library: Debian bookworm ships glibc 2.36, so the image installs wheels tagged
# manylinux_2_17 .. manylinux_2_36 (and manylinux2014, the 2_17 alias). pip does not widen a
# --platform to older glibc versions on its own, so each tag is named.
BASE_RELEASES = {"bookworm": 36}
MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


@pytest.mark.slow
@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_every_pin_of_the_jobs_lock_has_a_wheel_for_each_image_platform(platform: str, tmp_path: Path):
    # GIVEN the base image's Python and glibc, as the Dockerfile names them
    base = re.search(r"^FROM python:(\d+\.\d+)\.\d+-slim-(\w+)", (ROOT / DOCKERFILE).read_text(), re.M)
    assert base, "the Dockerfile's base is python:X.Y.Z-slim-RELEASE"
    python, release = base.group(1), base.group(2)
    machine = MACHINES[platform]
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(17, BASE_RELEASES[release] + 1)]
    # WHEN pip resolves every pin to a wheel, as the image's `pip install --only-binary=:all:` must
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    command += ["--only-binary=:all:", "--no-deps", "--implementation", "cp", "--python-version", python]
    command += [arg for tag in [*tags, f"manylinux2014_{machine}"] for arg in ("--platform", tag)]
    command += ["-d", str(tmp_path), "-r", str(ROOT / "requirements/jobs.lock")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    # THEN each pin has its wheel, so `pulumi up` with imagePlatform {platform} cannot fail on it
    assert done.returncode == 0, done.stderr[-2000:]
    pins = {
        tuple(line.lower().replace("-", "_").split("=="))
        for line in (ROOT / "requirements/jobs.lock").read_text().split()
    }
    wheels = {tuple(w.name.lower().split("-")[:2]) for w in tmp_path.glob("*.whl")}
    assert wheels == pins
    for wheel in tmp_path.glob("*.whl"):
        tag = wheel.name.removesuffix(".whl").split("-")[-1]
        assert tag == "any" or machine in tag, wheel.name


def test_a_symlink_or_folder_matching_an_input_is_refused_by_name(tmp_path: Path):
    # an editor's lock file is a dangling symlink named like a module: the provider cannot hash it
    clone = clean_clone(ROOT, tmp_path / "clone")
    (clone / "batch_jobs/.#split.py").symlink_to("user@host.1234:1700000000")
    with pytest.raises(ImageContextError, match=r"batch_jobs/\.#split\.py matches .* symbolic link"):
        content_tag("linux/amd64", clone)
    (clone / "batch_jobs/.#split.py").unlink()
    (clone / "inventory_contract/odd.py").mkdir()
    with pytest.raises(ImageContextError, match=r"inventory_contract/odd\.py .* not a regular file"):
        content_tag("linux/amd64", clone)


def test_the_ignore_file_admits_with_bang_lines_only(tmp_path: Path):
    clone = clean_clone(ROOT, tmp_path / "clone")
    with (clone / IGNORE_FILE).open("a") as f:
        f.write("batch_jobs/test_*.py\n")  # an exclusion the tag would not see
    with pytest.raises(ImageContextError, match="must be '\\*' followed only by '!PATTERN' lines"):
        image_inputs(clone)
