"""The operator CLI, ``s3-inventory`` or ``python -m pipeline``: one parser, one ``main(argv) -> int``.

Each command's handler returns an exit code; the product's own errors are caught here and printed
in one line (exit codes in ``pipeline/errors.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType

from inventory_contract.delivery import CHECKSUM_NAME, MANIFEST_NAME, check_creation_time, parse_delivery_key
from inventory_contract.errors import ContractError, DeliveryKeyError
from inventory_contract.layout import RunLayout
from inventory_contract.manifest import parse_manifest
from inventory_contract.schema import table_columns
from lambdas.settings import SettingsError
from pipeline.arguments import CommandListFormatter, Parser, add_command, manifest_source, path, positive_int
from pipeline.errors import (
    EXIT_BAD_INPUT,
    EXIT_CLOSED_OUTPUT,
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
Exit codes: 0 done, 1 failed, 2 bad input or usage, 130 Ctrl-C, 143 SIGTERM,
141 output closed (a reader such as `head` went away).
More in the project's README.md: quick start, deploy, operate, query."""


def package_version() -> str:
    """The installed distribution's version: pyproject.toml's, the one source of truth."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "unknown (not installed; run `make install`)"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, where a reader that went away is seen, not at exit
    except BrokenPipeError:
        return _closed_output()
    return code


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = _parser(_program_name()).parse_args(argv)
    except SystemExit as done:  # --help, or misuse already reported in one line
        return int(done.code or 0)
    received: list[int] = []
    code = _handle(args, received)
    if received and code not in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        # the signal's exception was raised where Python drops it (a finalizer, a weakref
        # callback), or a job died of it first: the command stops as asked all the same
        return _stopped(received[0])
    return code


def _handle(args: argparse.Namespace, received: list[int]) -> int:
    """The command's handler, its errors mapped to exit codes; ``received`` gets each signal."""
    try:
        with _signals_as_interrupt(received):
            code: int = args.handler(args)
    except BrokenPipeError:
        raise
    except (UsageError, ContractError, SettingsError) as err:
        return _fail(EXIT_BAD_INPUT, err)
    except PipelineError as err:
        return _fail(err.exit_code, err)
    except _Terminated:
        return _stopped(signal.SIGTERM)
    except KeyboardInterrupt:
        return _stopped(signal.SIGINT)
    except Exception as err:  # AWS configuration and refusals, reported in one line; anything else is a bug
        found = _aws_problem(err)
        if found is None:
            raise
        return _fail(*found)
    return code


def _closed_output() -> int:
    """The reader of stdout or stderr went away (``| head -1``): stop quietly, as a Unix tool
    killed by SIGPIPE, with no traceback at exit when Python flushes what is left."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):  # a stream that is not a file (captured in tests)
            continue
    os.close(devnull)
    return EXIT_CLOSED_OUTPUT


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


def _stopped(signum: int) -> int:
    if signum == signal.SIGTERM:
        print("terminated: stopped the stand-in and every job", file=sys.stderr)
        return EXIT_TERMINATED
    print("interrupted: stopped the stand-in and every job", file=sys.stderr)
    return EXIT_INTERRUPTED


@contextmanager
def _signals_as_interrupt(received: list[int]) -> Iterator[None]:
    """Ctrl-C and SIGTERM raise in the main thread (SIGTERM as ``_Terminated``), and are recorded in
    ``received``, so that one whose exception Python dropped still ends the command as stopped."""

    def stop(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        raise _Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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

    inspect = add_command(
        commands,
        "inspect",
        summary="check a downloaded manifest.json; show its run and columns",
        description="""\
Check a manifest.json on local disk as the trigger would (its fields, and its MD5 against
manifest.checksum: the one beside it, or --checksum's), and print as JSON what its run would be:
source bucket, run date and output prefix (when the manifest sits in its delivery folder), data
files, gzip bytes, the delivery's fields and the columns of the Parquet parts (every table column,
null where the delivery lacks the field). Exit 2 names what is wrong.""",
        examples=[
            "inspect demo-output/bucket/inventory/demo-source-bucket/daily-all-fields/2026-11-24T01-00Z/manifest.json",
            "inspect ./manifest.json --checksum ./manifest.checksum",
        ],
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

    from pipeline.report import command as report_command

    report_command.add_parser(commands)

    demo = add_command(
        commands,
        "demo",
        summary="run the whole pipeline locally on a synthetic inventory",
        description="""\
Write a synthetic inventory in S3's exact delivery format (versions, delete markers, every optional
field, keys that need encoding) and convert it with run-local: the real trigger against a stand-in
of S3 and Batch, then the real jobs on this machine. With --days N, N consecutive days of one
bucket are written and converted, each day after the first derived from the one before with known
additions, deletions, modifications and storage class moves; the demo ends with the changes
command between the last two days, and its result.

--out is the demo's own folder: a new demo replaces what a demo wrote there and refuses a folder
that holds anything else.""",
        examples=["demo", "demo --objects 100000 --days 2 --out demo-output"],
    )
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
        "--days",
        type=positive_int,
        default=1,
        help="consecutive days of the bucket's inventory to write and convert (default 1); with 2 or more, "
        "the demo ends with the changes between the last two",
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

    local = add_command(
        commands,
        "run-local",
        summary="convert one delivery (local or s3://) on this machine",
        description="""\
Convert one inventory delivery on this machine, exactly as the stack does on AWS: the real trigger
decides the chunks and jobs (against a stand-in of S3 and Batch that sees only the manifest), then
the real split, processor and finalize jobs run here, reading the delivery where it is.

A delivery on disk must keep its bucket layout (ROOT/PREFIX/SOURCE/CONFIG/TIMESTAMP/manifest.json,
the data files at their keys under ROOT); an s3:// manifest is downloaded first, with exactly the
files it lists. A run already complete in --out is not run again unless --force; any other (failed,
interrupted) is run again from the start. Progress goes to stderr, the summary to stdout.""",
        examples=[
            "run-local s3://DEST/inventory/SOURCE/CONFIG/2026-11-24T01-00Z/manifest.json --out out",
            "run-local dest/inventory/SOURCE/CONFIG/2026-11-24T01-00Z/manifest.json --out out --workers 4",
        ],
    )
    local.add_argument(
        "manifest",
        type=manifest_source,
        help="a manifest.json inside a folder laid out like the bucket, or s3://DEST/.../manifest.json "
        "to download exactly that delivery first",
    )
    local.add_argument(
        "--download-dir", type=path, help="where an s3:// delivery is downloaded (default: OUT/downloads)"
    )
    local.add_argument(
        "--out",
        type=path,
        required=True,
        help="the output folder: processed/ (the Parquet table), rollups/, run-reports/ (run report and "
        "_COMPLETE marker), run-state/ (claim, plan, part stats), logs/ (each job's log), downloads/ (an "
        "s3:// delivery); shared by many runs",
    )
    local.add_argument("--bucket-root", type=path, help="the folder that stands for the destination bucket")
    local.add_argument(
        "--force",
        action="store_true",
        help="run again a delivery that is complete in --out (its logs replaced)",
    )
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
    checksum_path = args.checksum or args.manifest.with_name(CHECKSUM_NAME)  # S3 writes it beside
    if args.checksum is None and args.manifest.name != MANIFEST_NAME:
        checksum_path = None  # a renamed manifest: the checksum beside it may be another's
    checksum = checksum_path.read_bytes() if checksum_path and checksum_path.is_file() else None
    source = (
        f"{args.manifest} (checked against {checksum_path})" if checksum is not None else str(args.manifest)
    )
    manifest = parse_manifest(args.manifest.read_bytes(), source=source, checksum=checksum)
    delivered = set(manifest.file_schema)
    columns = table_columns(manifest.file_schema)
    summary: dict[str, object] = {
        "source_bucket": manifest.source_bucket,
        "destination_bucket": manifest.destination_bucket,
        "created_at": manifest.created_at.isoformat(),
        "data_files": len(manifest.files),
        "compressed_bytes": manifest.total_size,
        "delivery_fields": list(manifest.file_schema),
        "columns": {c.name: c.type.value for c in columns},
        "null_columns": [c.name for c in columns if c.field not in delivered],
        "checksum_verified": checksum is not None,
        "checksum_file": str(checksum_path) if checksum is not None else None,
    }
    try:  # a manifest kept in its delivery layout also tells the run it starts
        delivery = parse_delivery_key(args.manifest.resolve().as_posix().lstrip("/"))
    except DeliveryKeyError:
        pass
    else:
        check_creation_time(delivery, manifest.created_at, source=str(args.manifest))
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
        days=args.days,
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
