"""The operator CLI, ``s3-inventory`` or ``python -m pipeline``: one parser, one ``main(argv) -> int``.

Each command's handler returns an exit code; the product's own errors are caught here and printed
in one line (exit codes in ``pipeline/errors.py``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType

from inventory_contract.delivery import parse_delivery_key
from inventory_contract.errors import ContractError, DeliveryKeyError
from inventory_contract.layout import RunLayout
from inventory_contract.manifest import parse_manifest
from inventory_contract.schema import columns_for
from lambdas.settings import SettingsError
from pipeline.arguments import CommandListFormatter, Parser, manifest_source, path, positive_int
from pipeline.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    PipelineError,
    UsageError,
)

DISTRIBUTION = "s3-inventory-pipeline"
CONSOLE_SCRIPT = "s3-inventory"

DESCRIPTION = """\
Turn the daily Amazon S3 Inventory into typed, partitioned Parquet: convert a
delivery on this machine, or start and follow the stack's runs on AWS Batch."""

EPILOG = """\
Run `%(prog)s COMMAND --help` for a command's options.
Exit codes: 0 done, 1 failed, 2 bad input or usage, 130 Ctrl-C, 143 SIGTERM.
More in the project's README.md: quick start, deploy, operate, query."""


def package_version() -> str:
    """The installed distribution's version: pyproject.toml's, the one source of truth."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "unknown (not installed; run `make install`)"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser(_program_name()).parse_args(argv)
    except SystemExit as done:  # --help, or misuse already reported in one line
        return int(done.code or 0)
    try:
        with _terminate_as_interrupt():
            code: int = args.handler(args)
    except (UsageError, ContractError, SettingsError) as err:
        return _fail(EXIT_BAD_INPUT, err)
    except PipelineError as err:
        return _fail(err.exit_code, err)
    except _Terminated:
        print("terminated: stopped the stand-in and every job", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("interrupted: stopped the stand-in and every job", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # AWS configuration and refusals, reported in one line; anything else is a bug
        found = _aws_problem(err)
        if found is None:
            raise
        return _fail(*found)
    return code


def _fail(code: int, err: object) -> int:
    print(f"error: {err}", file=sys.stderr)
    return code


def _aws_problem(err: Exception) -> tuple[int, str] | None:
    """(exit code, message) for an error of the AWS SDK, or None for anything else."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    if isinstance(err, NoRegionError):
        return (
            EXIT_BAD_INPUT,
            "no AWS Region: set AWS_DEFAULT_REGION, or AWS_PROFILE to a profile with a region",
        )
    if isinstance(err, NoCredentialsError):
        return EXIT_BAD_INPUT, "no AWS credentials: run `aws configure`, `aws sso login`, or set AWS_PROFILE"
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code = (
            EXIT_BAD_INPUT
            if error.get("Code") in {"NoSuchBucket", "NoSuchKey", "InvalidBucketName"}
            else EXIT_FAILED
        )
        operation = getattr(err, "operation_name", "a request")
        return code, f"AWS refused {operation}: {error.get('Code')}: {error.get('Message')}"
    if isinstance(err, BotoCoreError):
        return EXIT_FAILED, f"AWS: {err}"
    return None


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is, so every job process is stopped as for Ctrl-C."""


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    def terminated(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    previous: Callable[..., object] | int | None = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _program_name() -> str:
    """How the user called us, for usage lines: the console script or ``python -m pipeline``."""
    return CONSOLE_SCRIPT if Path(sys.argv[0]).name == CONSOLE_SCRIPT else "python -m pipeline"


def _parser(prog: str = "python -m pipeline") -> Parser:
    parser = Parser(
        prog=prog,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=CommandListFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"{DISTRIBUTION} {package_version()}", help="print the version"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")

    inspect = commands.add_parser(
        "inspect", help="check a downloaded manifest.json; show its run and columns"
    )
    inspect.add_argument("manifest", type=path, help="path to a manifest.json on local disk")
    inspect.add_argument("--checksum", type=path, help="manifest.checksum to verify it against")
    inspect.set_defaults(handler=_inspect)

    from pipeline import trigger  # imported here: only the commands that need boto3 load it

    trigger.add_parser(commands)

    from pipeline import status

    status.add_parser(commands)

    from pipeline import changes_command

    changes_command.add_parser(commands)

    from pipeline import smoke

    smoke.add_parser(commands)

    from pipeline import snapshot_command

    snapshot_command.add_parser(commands)

    demo = commands.add_parser("demo", help="run the whole pipeline locally on a synthetic inventory")
    demo.add_argument(
        "--objects",
        type=positive_int,
        default=1_000_000,
        help="inventory rows to generate (default 1,000,000)",
    )
    demo.add_argument(
        "--files", type=positive_int, default=4, help="gzip data files in the delivery (default 4)"
    )
    demo.add_argument(
        "--out", type=path, default=Path("demo-output"), help="output folder (default demo-output)"
    )
    demo.add_argument(
        "--target-chunk-mib",
        type=positive_int,
        help="compressed inventory MiB per chunk, one processor child each (default: one chunk per "
        "worker: the delivery's gzip bytes divided by the workers, at most 128, which bounds memory)",
    )
    demo.add_argument("--workers", type=positive_int, help="parallel array children (default: CPU count)")
    demo.set_defaults(handler=_demo)

    local = commands.add_parser("run-local", help="convert one delivery (local or s3://) on this machine")
    local.add_argument(
        "manifest",
        type=manifest_source,
        help="a manifest.json inside a folder laid out like the bucket, or s3://DEST/.../manifest.json "
        "to download exactly that delivery first",
    )
    local.add_argument(
        "--download-dir", type=path, help="where an s3:// delivery is downloaded (default: OUT/downloads)"
    )
    local.add_argument("--out", type=path, required=True, help="where processed/ and run-state/ are written")
    local.add_argument("--bucket-root", type=path, help="the folder that stands for the destination bucket")
    local.add_argument("--force", action="store_true", help="run again a delivery that is complete in --out")
    local.add_argument(
        "--target-chunk-mib",
        type=positive_int,
        help="compressed inventory MiB per chunk, one processor child each (default: one chunk per "
        "worker: the delivery's gzip bytes divided by the workers, at most 128, which bounds memory; "
        "the stack's targetChunkMib is for "
        "Fargate tasks that take a minute to start)",
    )
    local.add_argument("--workers", type=positive_int, help="parallel array children (default: CPU count)")
    local.set_defaults(handler=_run_local)
    return parser


def _inspect(args: argparse.Namespace) -> int:
    for flag, given in (("MANIFEST", args.manifest), ("--checksum", args.checksum)):
        if given is not None and not given.is_file():
            msg = f"{flag} {given} {'is a folder' if given.is_dir() else 'does not exist'}; give a file"
            raise UsageError(msg)
    checksum = args.checksum.read_bytes() if args.checksum else None
    manifest = parse_manifest(args.manifest.read_bytes(), source=str(args.manifest), checksum=checksum)
    summary: dict[str, object] = {
        "source_bucket": manifest.source_bucket,
        "destination_bucket": manifest.destination_bucket,
        "created_at": manifest.created_at.isoformat(),
        "data_files": len(manifest.files),
        "compressed_bytes": manifest.total_size,
        "columns": {c.name: c.type.value for c in columns_for(manifest.file_schema)},
        "checksum_verified": checksum is not None,
    }
    try:  # a manifest kept in its delivery layout also tells the run it starts
        delivery = parse_delivery_key(args.manifest.resolve().as_posix().lstrip("/"))
    except DeliveryKeyError:
        pass
    else:
        summary["run_date"] = delivery.run_date
        summary["processed_prefix"] = RunLayout.of(delivery).processed_prefix
    print(json.dumps(summary, indent=2))
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from pipeline.local.demo import demo

    demo(
        args.out,
        objects=args.objects,
        files=args.files,
        target_chunk_mib=args.target_chunk_mib,
        workers=args.workers or 0,
    )
    return EXIT_OK


def _run_local(args: argparse.Namespace) -> int:
    from pipeline.local.run_local import check_out, open_delivery, progress_printer, run_local
    from pipeline.local.summary import print_run

    progress = progress_printer()
    if isinstance(args.manifest, str):  # s3://...: fetch exactly that delivery first
        from pipeline.local.download import download_delivery

        check_out(args.out)
        into = args.download_dir or args.out / "downloads"
        check_out(into, "--download-dir")
        source = open_delivery(download_delivery(args.manifest, into, progress), args.bucket_root)
    else:
        source = open_delivery(args.manifest, args.bucket_root)
        check_out(args.out)
    run = run_local(
        source,
        args.out,
        force=args.force,
        target_chunk_mib=args.target_chunk_mib,
        workers=args.workers or 0,
        progress=progress,
    )
    if run.result is None:
        print(
            f"{source.delivery.source_bucket}/{source.delivery.run_date} is complete in {args.out} "
            f"(see {args.out / run.layout.complete_marker_key}); nothing was run. Use --force to run it again."
        )
    print_run(run, args.out)
    return EXIT_OK
