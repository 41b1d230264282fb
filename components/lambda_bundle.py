"""What goes into the trigger Lambda's zip: the handler package, the inventory contract and the SDK.

The SDK is boto3 and its runtime dependencies at exactly the versions of ``requirements/lambda.lock``
(ADR 0006): the function does not rely on the boto3 the Lambda runtime happens to ship. They are
pure-python wheels, so their files are taken from the installed environment (each distribution's
RECORD) after checking that the installed version is the locked one; no network is needed.

Used by the stack (``components/trigger.py``) and by the tests that build the zip and run the
handler from it, so both ship exactly the same files. No Pulumi import here.
"""

from __future__ import annotations

import importlib.metadata
import os
import tempfile
import zipfile
from functools import cache
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_LOCK = ROOT / "requirements" / "lambda.lock"
ARCHIVE = ROOT / "build" / "lambda" / "inventory_trigger.zip"
BUNDLED_PACKAGES = ("lambdas", "inventory_contract")
HANDLER = "lambdas.inventory_trigger.handler"
# Fixed entry metadata, so the same files always make the same zip (and Pulumi sees no change).
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_ZIP_MODE = 0o100644 << 16  # a regular file, rw-r--r--: what Lambda needs to read it


class BundleError(RuntimeError):
    """The environment cannot produce the bundle the lock describes; the message says what to run."""


def bundle_files(root: Path = ROOT, lock: Path = LAMBDA_LOCK) -> dict[str, Path]:
    """Archive path -> source file, for every file of the Lambda bundle."""
    code, sdk = code_files(root), sdk_files(locked_pins(lock))
    if clash := sorted(code.keys() & sdk.keys()):
        msg = f"the Lambda's code and its SDK both ship {clash[0]}: rename the module"
        raise BundleError(msg)
    return {**sdk, **code}


def code_files(root: Path = ROOT) -> dict[str, Path]:
    """The handler package and the inventory contract."""
    files: dict[str, Path] = {}
    for package in BUNDLED_PACKAGES:
        for path in sorted((root / package).glob("*.py")):
            files[path.relative_to(root).as_posix()] = path
    return files


def locked_pins(lock: Path = LAMBDA_LOCK) -> dict[str, str]:
    """``name==version`` lines of a lock file -> {name: version}."""
    pins = {}
    for number, line in enumerate(lock.read_text().splitlines(), start=1):
        requirement = line.split("#", 1)[0].strip()
        if not requirement:
            continue
        name, sep, version = requirement.partition("==")
        if not sep or not name.strip() or not version.strip():
            msg = f"{lock.name} line {number}: expected name==version, got {line!r}"
            raise BundleError(msg)
        pins[name.strip()] = version.strip()
    return pins


def sdk_files(pins: dict[str, str]) -> dict[str, Path]:
    """Every file of each pinned distribution, as installed, without bytecode or scripts."""
    files: dict[str, Path] = {}
    for name, version in sorted(pins.items()):
        files.update(_distribution_files(_installed(name, version)))
    return files


def _installed(name: str, locked: str) -> importlib.metadata.Distribution:
    """The installed distribution, if it is the locked version of a pure-python wheel."""
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is None or dist.version != locked:
        found = dist.version if dist else "nothing"
        msg = (
            f"the Lambda bundle needs {name}=={locked} (requirements/lambda.lock) "
            f"but {found} is installed: run `make install`"
        )
        raise BundleError(msg)
    wheel = dist.read_text("WHEEL") or ""
    if "Root-Is-Purelib: true" not in wheel:
        msg = f"{name}=={locked} is not a pure-python wheel, so the Lambda bundle cannot take it from here"
        raise BundleError(msg)
    return dist


INSTALL_RECORDS = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
"""What the installer writes into a distribution's ``.dist-info``: it differs between installs of
the same wheel (pip or uv, with or without bytecode, which Python), so it would change the zip,
and with it the function's code, from one deployer's ``.venv`` to another's."""


def _distribution_files(dist: importlib.metadata.Distribution) -> dict[str, Path]:
    files = {}
    for entry in dist.files or ():
        path = PurePosixPath(entry.as_posix())
        if ".." in path.parts or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue  # scripts outside site-packages; bytecode compiled for this machine
        if path.parent.name.endswith(".dist-info") and path.name in INSTALL_RECORDS:
            continue
        files[path.as_posix()] = Path(str(dist.locate_file(entry)))
    return files


def write_bundle(dest: Path, files: dict[str, Path] | None = None) -> Path:
    """Write the bundle's zip to ``dest``: sorted entries, fixed times and modes, replaced atomically.

    Entries are stored, not deflated: a deflate stream depends on the machine's zlib build (zlib-ng
    and zlib differ), and Pulumi compares the archive's bytes. Stored, the zip is about 24 MB, under
    Lambda's 50 MB for a direct upload."""
    files = bundle_files() if files is None else files
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    partial = Path(name)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as zf:
            for entry in sorted(files):
                info = zipfile.ZipInfo(entry, date_time=_ZIP_TIME)
                info.external_attr = _ZIP_MODE
                info.compress_type = zipfile.ZIP_STORED
                zf.writestr(info, files[entry].read_bytes())
        partial.chmod(0o644)
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)
    return dest


@cache
def bundle_archive() -> Path:
    """The zip the stack deploys, built once per process under ``build/``."""
    return write_bundle(ARCHIVE)
