"""The trigger's configuration, from environment variables, parsed once and validated.

| variable | meaning | default |
| --- | --- | --- |
| ``JOB_QUEUE`` | Batch job queue name or ARN | required |
| ``PROCESS_JOB_QUEUE`` | the queue of the processor children (the stack's Fargate Spot queue with ``processCapacity spot``) | ``JOB_QUEUE`` |
| ``SPLIT_JOB_DEFINITION`` | splitter job definition name or ARN | required |
| ``PROCESS_JOB_DEFINITION`` | processor job definition name or ARN | required |
| ``FINALIZE_JOB_DEFINITION`` | finalize job definition name or ARN | required |
| ``INVENTORY_PREFIX`` | only manifests under this prefix start runs | ``inventory/`` |
| ``TARGET_CHUNK_MIB`` | compressed inventory MiB per chunk (one processor child each) | ``1024`` |
| ``CLAIM_LEASE_SECONDS`` | how long a claim without submissions blocks a takeover; at least the function timeout | ``900`` |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from inventory_contract.plan import DEFAULT_TARGET_CHUNK_MIB

MiB = 1024 * 1024


class SettingsError(ValueError):
    """A configuration variable is missing or invalid; the message names it."""


@dataclass(frozen=True)
class Settings:
    job_queue: str
    split_job_definition: str
    process_job_definition: str
    finalize_job_definition: str
    inventory_prefix: str = "inventory/"
    target_chunk_bytes: int = DEFAULT_TARGET_CHUNK_MIB * MiB
    claim_lease_seconds: int = 900
    process_job_queue: str = ""  # empty: job_queue

    @property
    def process_queue(self) -> str:
        return self.process_job_queue or self.job_queue

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            job_queue=_required(env, "JOB_QUEUE"),
            split_job_definition=_required(env, "SPLIT_JOB_DEFINITION"),
            process_job_definition=_required(env, "PROCESS_JOB_DEFINITION"),
            finalize_job_definition=_required(env, "FINALIZE_JOB_DEFINITION"),
            inventory_prefix=env.get("INVENTORY_PREFIX", "inventory/"),
            target_chunk_bytes=_positive_int(env, "TARGET_CHUNK_MIB", DEFAULT_TARGET_CHUNK_MIB) * MiB,
            claim_lease_seconds=_positive_int(env, "CLAIM_LEASE_SECONDS", 900),
            process_job_queue=env.get("PROCESS_JOB_QUEUE", "").strip(),
        )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        msg = (
            f"environment variable {name} is required (a Batch {name.lower().replace('_', ' ')} name or ARN)"
        )
        raise SettingsError(msg)
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if not raw.strip().isdigit() or int(raw) <= 0:
        msg = f"environment variable {name} must be a positive integer, got {raw!r}"
        raise SettingsError(msg)
    return int(raw)
