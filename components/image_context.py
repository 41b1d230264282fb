"""The files the job image is built from, and a tag derived from their content.

pulumi-docker rebuilds and pushes exactly when its digest of the build context (or another input,
the tag among them) changes, and a push under a tag that holds another image moves the tag. So the
tag must change exactly when the digest does, and both derive from one list: ``batch_jobs/Dockerfile.dockerignore`` excludes everything and admits only the image's
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


class ImageContextError(ValueError):
    """The image's inputs cannot be hashed as pulumi-docker will hash them; the message says why."""


def image_inputs(root: Path = ROOT) -> tuple[str, ...]:
    """The patterns the ignore file admits (its ``!`` lines), relative to the context (``root``).

    The file must be ``*`` then only ``!`` lines: any other exclusion would make the context and
    the tag disagree."""
    lines = [line.strip() for line in (root / IGNORE_FILE).read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    if patterns[:1] != ["*"] or not all(p.startswith("!") for p in patterns[1:]):
        msg = f"{IGNORE_FILE} must be '*' followed only by '!PATTERN' lines, got {patterns}"
        raise ImageContextError(msg)
    return tuple(p[1:] for p in patterns[1:])


def image_files(root: Path = ROOT) -> list[Path]:
    """The files the image is built from. Anything else the patterns match (a symlink, such as an
    editor's lock file ``.#split.py``, or a folder) is refused: pulumi-docker would hash or fail
    on it differently from the tag."""
    files: set[Path] = set()
    for pattern in image_inputs(root):
        for path in root.glob(pattern):
            if path.is_symlink() or not path.is_file():
                kind = "a symbolic link" if path.is_symlink() else "not a regular file"
                msg = (
                    f"{path.relative_to(root)} matches the image input {pattern!r} but is {kind}; "
                    "remove it (an editor's lock file?) before `pulumi up`"
                )
                raise ImageContextError(msg)
            files.add(path)
    return sorted(files)


def content_tag(platform: str, root: Path = ROOT) -> str:
    digest = hashlib.sha256(platform.encode())
    for path in image_files(root):
        mode = stat.filemode(path.stat().st_mode)
        name = path.relative_to(root).as_posix()
        digest.update(f"{name}\0{mode}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]
