"""What goes into the trigger Lambda's zip: the handler package and the inventory contract.

Used by the stack (``components/trigger.py``) and by the test that builds the bundle and imports
the handler from it, so both ship exactly the same files. No Pulumi import here.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_PACKAGES = ("lambdas", "pipeline/contract")
BUNDLED_FILES = ("pipeline/__init__.py",)
HANDLER = "lambdas.inventory_trigger.handler"


def bundle_files(root: Path = ROOT) -> dict[str, Path]:
    """Archive path -> source file, for every file of the Lambda bundle."""
    files = {name: root / name for name in BUNDLED_FILES}
    for package in BUNDLED_PACKAGES:
        for path in sorted((root / package).glob("*.py")):
            files[path.relative_to(root).as_posix()] = path
    return files
