"""Child processes that end with their parent."""

from __future__ import annotations

import signal
import sys


def die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the process gets SIGTERM when its parent ends, however it ends (even SIGKILL), so no
    child keeps working (or writing) for a parent that is gone. Elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
