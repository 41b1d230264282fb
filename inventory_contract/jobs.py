"""The batch job commands and parameters: one definition, used by the stack and the local runner.

The Pulumi stack registers each ``JobSpec`` as a job definition (command and default parameters);
the trigger submits jobs with ``*_parameters(...)``; AWS Batch substitutes ``Ref::NAME`` in the
command with the job's parameters. The local runner reads the definitions back from the Batch API
and substitutes the same way, with ``render_command``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from inventory_contract.rollups import DEFAULT_PREFIX_DEPTH

ARRAY_INDEX_ENV = "AWS_BATCH_JOB_ARRAY_INDEX"
FROM_ARRAY = "array"
"""The processor's ``--index`` default: take the chunk index from ``AWS_BATCH_JOB_ARRAY_INDEX``."""
MIN_ARRAY_SIZE, MAX_ARRAY_SIZE = 2, 10_000


@dataclass(frozen=True)
class JobSpec:
    name: str
    command: tuple[str, ...]
    default_parameters: Mapping[str, str] = field(default_factory=dict)


_RUN_ARGS = (
    "--manifest",
    "Ref::manifest",
    "--source-bucket",
    "Ref::source_bucket",
    "--run-date",
    "Ref::run_date",
)
SPLIT = JobSpec(
    name="split",
    command=(
        "python",
        "-m",
        "batch_jobs",
        "split",
        *_RUN_ARGS,
        "--chunks",
        "Ref::chunks",
        "--target-chunk-bytes",
        "Ref::target_chunk_bytes",
    ),
)
PROCESS = JobSpec(
    name="process",
    command=(
        "python",
        "-m",
        "batch_jobs",
        "process",
        *_RUN_ARGS,
        "--index",
        "Ref::index",
        "--prefix-depth",
        "Ref::prefix_depth",
    ),
    default_parameters={"index": FROM_ARRAY, "prefix_depth": str(DEFAULT_PREFIX_DEPTH)},
)
FINALIZE = JobSpec(
    name="finalize",
    command=("python", "-m", "batch_jobs", "finalize", *_RUN_ARGS, "--chunks", "Ref::chunks"),
)
JOB_SPECS = (SPLIT, PROCESS, FINALIZE)
"""The jobs of a run, which the trigger submits."""

SNAPSHOT = JobSpec(
    name="snapshot",
    command=(
        "python",
        "-m",
        "batch_jobs",
        "snapshot",
        "--source",
        "Ref::source",
        "--destination-bucket",
        "Ref::destination_bucket",
        "--inventory-prefix",
        "Ref::inventory_prefix",
        "--versions",
        "Ref::versions",
        "--workers",
        "Ref::workers",
    ),
    default_parameters={"versions": "all", "workers": "16"},
)
"""Lists a source bucket into a delivery under the destination's inventory prefix
(``inventory_contract/listing.py``); the delivery's manifest then starts a run like any other."""
ALL_JOB_SPECS = (*JOB_SPECS, SNAPSHOT)


def snapshot_parameters(
    source_uri: str, destination_bucket: str, inventory_prefix: str, *, current_only: bool, workers: int
) -> dict[str, str]:
    """The parameters a ``snapshot`` job is submitted with (``source_uri``: s3://BUCKET[/PREFIX])."""
    return {
        "source": source_uri,
        "destination_bucket": destination_bucket,
        "inventory_prefix": inventory_prefix,
        "versions": "current" if current_only else "all",
        "workers": str(workers),
    }


def run_parameters(
    manifest_uri: str, source_bucket: str, run_date: str, chunks: int, target_chunk_bytes: int
) -> dict[str, str]:
    """The parameters every job of a run is submitted with: the splitter plans its ``chunks``
    again from the manifest and ``target_chunk_bytes`` (``inventory_contract/plan.py``) and checks
    that they are as many."""
    return {
        "manifest": manifest_uri,
        "source_bucket": source_bucket,
        "run_date": run_date,
        "chunks": str(chunks),
        "target_chunk_bytes": str(target_chunk_bytes),
    }


def render_command(command: tuple[str, ...] | list[str], parameters: Mapping[str, str]) -> list[str]:
    """Substitute ``Ref::NAME`` as AWS Batch does; an unknown reference is an error here."""
    rendered = []
    for arg in command:
        if arg.startswith("Ref::"):
            name = arg.removeprefix("Ref::")
            if name not in parameters:
                msg = f"command references parameter {name!r}, which the job was not given"
                raise KeyError(msg)
            arg = parameters[name]
        rendered.append(arg)
    return rendered
