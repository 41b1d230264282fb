"""The job image's build context and its digest, computed as pulumi-docker computes them.

pulumi-docker (provider/provider.go, ``hashContext`` and ``getIgnorePatterns``, v5) reads the
ignore patterns from ``<dockerfile>.dockerignore`` if it exists, else ``<context>/.dockerignore``;
walks the context without the excluded files; and digests the Dockerfile's content (always under
the name ``Dockerfile``), then every file's relative path, mode and content hash, in walk
(lexical) order. ``pulumi up`` rebuilds and pushes the image exactly when that digest, or another
input of the image resource, changes. Docker's pattern rules are docker-py's implementation of
them (``docker.utils.build.PatternMatcher``), not this project's.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
import subprocess
from pathlib import Path

from docker.utils.build import PatternMatcher

from components.image_context import DOCKERFILE, assemble_context


def ignore_patterns(context: Path, dockerfile: Path) -> list[str]:
    for candidate in (Path(f"{dockerfile}.dockerignore"), context / ".dockerignore"):
        if candidate.is_file():
            lines = (line.strip() for line in candidate.read_text().splitlines())
            return [line for line in lines if line and not line.startswith("#")]
    return []


def context_files(context: Path, dockerfile: Path) -> set[str]:
    """The regular files the digest walks, relative to the context (``/``-separated).

    docker-py's matcher always admits the root ``.dockerignore`` (the Docker CLI sends it to the
    daemon); pulumi-docker's digest walks the raw patterns, so that exception is dropped here."""
    matcher = PatternMatcher(ignore_patterns(context, dockerfile))
    matcher.patterns.pop()  # Pattern('!.dockerignore'), appended by PatternMatcher itself
    return {p for p in matcher.walk(str(context)) if (context / p).is_file()}


def context_digest(context: Path, dockerfile: Path) -> str:
    accumulator = hashlib.sha256()

    def add(name: str, path: Path, mode: str) -> None:
        accumulator.update(name.encode() + mode.encode() + hashlib.sha256(path.read_bytes()).digest() + b"\0")

    add("Dockerfile", dockerfile, "----------")  # Go's FileMode(0).String(): the provider's literal
    for name in sorted(context_files(context, dockerfile)):
        add(name, context / name, stat.filemode((context / name).stat().st_mode))
    return accumulator.hexdigest()


def clean_clone(root: Path, into: Path) -> Path:
    """The files git tracks (and would track: untracked, not ignored) under ``root``, copied into
    ``into``, with their modes, as a fresh clone of the change has them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (root / name).is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, into / name)
    return into


EVERYDAY_WORK = {
    # what editing, testing, committing and installing leave in a checkout
    "README.md": "# edited\n",
    "docs/notes.md": "a new page\n",
    "tests/test_new.py": "def test_x(): pass\n",
    "pipeline/cli.py": "# the operator CLI is not in the image\n",
    ".pytest_cache/v/cache/lastfailed": "{}",
    ".mypy_cache/3.11/batch_jobs/split.data.json": "{}",
    ".ruff_cache/0.15/123": "x",
    "batch_jobs/__pycache__/split.cpython-311.pyc": "pyc",
    "inventory_contract/__pycache__/layout.cpython-311.pyc": "pyc",
    ".venv/lib/python3.11/site-packages/polars/__init__.py": "x = 1\n",
    ".git/HEAD": "ref: refs/heads/main\n",
    ".git/objects/ab/cdef": "blob",
    "bench/data/2m/inventory.csv.gz": "gzip",
    "out/processed/part-000000.parquet": "PAR1",
    "build/lambda/handler.zip": "zip",
    "build/image/batch_jobs/removed_module.py": "what an earlier version's build left\n",
    ".dockerignore": "# a root ignore file: the Dockerfile's own takes precedence\n",
}


def build_context(checkout: Path) -> tuple[set[str], str]:
    """What ``pulumi up`` from ``checkout`` sends to Docker and digests: the program assembles the
    context folder, then pulumi-docker walks it with the ignore-file rules above."""
    context = assemble_context(checkout)
    dockerfile = context / DOCKERFILE
    return context_files(context, dockerfile), context_digest(context, dockerfile)


def under_umask_002(checkout: Path) -> Path:
    """The checkout as git leaves it under umask 002: every file group-writable."""
    for path in checkout.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o020)
    return checkout


def plant(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
