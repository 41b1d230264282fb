"""Fargate's valid task sizes (vCPU -> memory MiB), checked at preview, not at deploy."""

from __future__ import annotations

GIB = 1024


def _steps(low: int, high: int, step: int) -> tuple[int, ...]:
    return tuple(range(low, high + 1, step))


FARGATE_MEMORY: dict[str, tuple[int, ...]] = {
    "0.25": (512, 1024, 2048),
    "0.5": _steps(1 * GIB, 4 * GIB, GIB),
    "1": _steps(2 * GIB, 8 * GIB, GIB),
    "2": _steps(4 * GIB, 16 * GIB, GIB),
    "4": _steps(8 * GIB, 30 * GIB, GIB),
    "8": _steps(16 * GIB, 60 * GIB, 4 * GIB),
    "16": _steps(32 * GIB, 120 * GIB, 8 * GIB),
}
EPHEMERAL_STORAGE_GIB = (21, 200)


def fargate_size_problem(vcpu: str, memory_mib: int) -> str | None:
    """Why ``vcpu``/``memory_mib`` is not a Fargate size, or None when it is one."""
    if vcpu not in FARGATE_MEMORY:
        return f"vCPU {vcpu!r} is not a Fargate size; choose one of {', '.join(FARGATE_MEMORY)}"
    allowed = FARGATE_MEMORY[vcpu]
    if memory_mib not in allowed:
        steps = allowed[1] - allowed[0]
        return f"{memory_mib} MiB is not valid with {vcpu} vCPU; Fargate allows " + (
            ", ".join(map(str, allowed))
            if vcpu == "0.25"
            else f"{allowed[0]} to {allowed[-1]} in steps of {steps}"
        )
    return None
