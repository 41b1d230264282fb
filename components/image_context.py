"""The files the job image is built from, and a tag derived from their content.

ECR tags are immutable, so the tag must change exactly when the image would, and pulumi-docker
rebuilds and pushes exactly when its digest of the build context changes. So both derive from one
list: ``batch_jobs/Dockerfile.dockerignore`` excludes everything and admits only the image's
inputs with ``!`` lines; the tag hashes the files those lines admit, with their mode (which
pulumi-docker's digest also covers), plus the target platform.
"""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = "batch_jobs/Dockerfile"
IGNORE_FILE = f"{DOCKERFILE}.dockerignore"
"""Docker and pulumi-docker read ``<Dockerfile>.dockerignore`` before ``<context>/.dockerignore``."""


def image_inputs(root: Path = ROOT) -> tuple[str, ...]:
    """The patterns the ignore file admits (its ``!`` lines), relative to the context (``root``)."""
    lines = (line.strip() for line in (root / IGNORE_FILE).read_text().splitlines())
    return tuple(line[1:] for line in lines if line.startswith("!"))


def image_files(root: Path = ROOT) -> list[Path]:
    files: set[Path] = set()
    for pattern in image_inputs(root):
        files.update(p for p in root.glob(pattern) if p.is_file())
    return sorted(files)


def content_tag(platform: str, root: Path = ROOT) -> str:
    digest = hashlib.sha256(platform.encode())
    for path in image_files(root):
        mode = stat.filemode(path.stat().st_mode)
        name = path.relative_to(root).as_posix()
        digest.update(f"{name}\0{mode}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]
