"""The files the job image is built from, the folder it is built in, and a tag from their content.

pulumi-docker rebuilds and pushes exactly when its digest of the build context (or another input,
the tag among them) changes, and a push under a tag that holds another image moves the tag. So the
tag must change exactly when the digest does, and both derive from one list:
``batch_jobs/Dockerfile.dockerignore`` excludes everything and admits only the image's inputs with
``!`` lines. The digest covers each file's mode, and a checkout's modes follow its umask (a laptop
on umask 002 has ``rw-rw-r--`` where CI has ``rw-r--r--``), so the image is built from a context of
its own, ``build/image/``: the inputs copied with modes normalised to what git records (``0644``, or
``0755`` for an executable), nothing else. The same commit then gives the same context, digest and
tag from every checkout and machine. The tag hashes the files with those modes, plus the platform.
"""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = "batch_jobs/Dockerfile"
IGNORE_FILE = f"{DOCKERFILE}.dockerignore"
"""Docker and pulumi-docker read ``<Dockerfile>.dockerignore`` before ``<context>/.dockerignore``;
it serves ``docker build -f batch_jobs/Dockerfile .`` by hand, and is the list of inputs here."""
CONTEXT = "build/image"
"""The build context pulumi-docker is given, relative to the project folder: the inputs alone."""


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


def normalized_mode(path: Path) -> int:
    """The mode an input has in the build context: what git records, whatever the umask."""
    return 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644


def content_tag(platform: str, root: Path = ROOT) -> str:
    digest = hashlib.sha256(platform.encode())
    for path in image_files(root):
        mode = stat.filemode(stat.S_IFREG | normalized_mode(path))
        name = path.relative_to(root).as_posix()
        digest.update(f"{name}\0{mode}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def assemble_context(root: Path = ROOT) -> Path:
    """Make ``root/build/image`` hold exactly the image's inputs, with normalised modes; returns it.

    Files already there with the same content are left alone, anything else there is removed, and
    each file is written whole under a temporary name first: an interrupted run leaves no half file."""
    context = root / CONTEXT
    wanted = {path.relative_to(root).as_posix(): path for path in image_files(root)}
    if context.is_dir():
        for existing in sorted(context.rglob("*"), reverse=True):  # files before their folders
            name = existing.relative_to(context).as_posix()
            if existing.is_symlink() or existing.is_file():
                if name not in wanted:
                    existing.unlink()
            elif existing.is_dir() and not any(existing.iterdir()):
                existing.rmdir()
    for name, source in wanted.items():
        target, data = context / name, source.read_bytes()
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.is_file() and not target.is_symlink() and target.read_bytes() == data):
            partial = target.with_name(f".{target.name}.partial")
            partial.write_bytes(data)
            partial.replace(target)
        target.chmod(normalized_mode(source))
    return context
