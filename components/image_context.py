"""The files the job image is built from, and a tag derived from their content.

ECR tags are immutable, so the tag must change exactly when the image would: it is a hash of
every file the Dockerfile copies plus the target platform.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = "batch_jobs/Dockerfile"
IMAGE_INPUTS = (
    DOCKERFILE,
    "requirements/jobs.lock",
    "pipeline/__init__.py",
    "pipeline/contract/*.py",
    "batch_jobs/*.py",
)


def image_files(root: Path = ROOT) -> list[Path]:
    files: set[Path] = set()
    for pattern in IMAGE_INPUTS:
        files.update(root.glob(pattern))
    return sorted(files)


def content_tag(platform: str, root: Path = ROOT) -> str:
    digest = hashlib.sha256(platform.encode())
    for path in image_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]
