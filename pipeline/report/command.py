"""``python -m pipeline report OUT|s3://DEST|--stack NAME --source-bucket B``: the storage report
of a local output folder, or of the stack's destination bucket on S3."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from inventory_contract.layout import RunLayout
from inventory_contract.prices import (
    PRICE_TABLE,
    Prices,
    PricesError,
    default_region,
    load_prices,
    prices_for,
)
from pipeline.arguments import add_command, path, run_date
from pipeline.errors import EXIT_OK, PipelineError, UsageError
from pipeline.stack_outputs import read_outputs

if TYPE_CHECKING:
    from batch_jobs.report_figures import ReportFigures


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands,
        "report",
        summary="a storage report to open in a browser (one HTML file)",
        description="""\\
Write one self-contained HTML page about a source bucket's runs in OUT (the folder run-local, demo
or snapshot wrote), or in the stack's destination bucket (s3://DEST, or --stack NAME): objects and bytes of the latest complete run and their change since the
previous one, storage by class over every run kept, the largest prefixes at each depth of the
rollup (the rest summed), age bands by storage class, the changes between the last two runs and
the duplicate candidates' reclaimable bytes, and an estimated monthly storage cost by class and
by prefix. The page needs no network: open it in any browser, or print it.""",
        examples=[
            "report demo-output --source-bucket demo-source-bucket",
            "report s3://DEST --source-bucket my-bucket --out report.html",
            "report --stack dev --source-bucket my-bucket --out report.html",
            "report out --source-bucket my-bucket --out report.html --region us-west-2",
            "report out --source-bucket my-bucket --run-date 2026-11-24",
        ],
    )
    parser.add_argument(
        "out",
        metavar="OUT | s3://DEST",
        nargs="?",
        help="the folder that holds the runs, or the stack's destination bucket",
    )
    parser.add_argument("--stack", help="the destination bucket of this Pulumi stack (its outputs)")
    parser.add_argument(
        "--outputs", metavar="FILE", help="as --stack, from `pulumi stack output --json` (- for stdin)"
    )
    parser.add_argument("--source-bucket", required=True, help="the inventoried bucket")
    parser.add_argument(
        "--run-date",
        type=run_date,
        metavar="YYYY-MM-DD",
        help="the report as of this run: the runs up to it (default: every run; the page finalize wrote for it)",
    )
    parser.add_argument(
        "--out",
        dest="target",
        metavar="REPORT.html",
        type=path,
        help="the file to write (default: OUT/reports/source_bucket=B/run_date=D/report.html, D the latest run)",
    )
    prices = parser.add_mutually_exclusive_group()
    prices.add_argument(
        "--region",
        help=f"the bucket's Region, for its prices ({', '.join(sorted(PRICE_TABLE))}; default: $AWS_REGION, "
        "else us-east-1; a default Region without prices leaves the costs out)",
    )
    prices.add_argument(
        "--prices", type=path, metavar="FILE", help="a JSON file of prices instead (see README)"
    )
    parser.set_defaults(handler=run)


def _figures(args: argparse.Namespace) -> tuple[Path | str, ReportFigures]:
    """Where the runs are (a folder, or s3://DEST) and their figures."""
    from pipeline.report.figures import (
        local_figures,  # imported here: Polars and boto3 load for this command only
    )

    given = [
        name
        for name, value in (("OUT", args.out), ("--stack", args.stack), ("--outputs", args.outputs))
        if value
    ]
    if len(given) != 1:
        msg = f"give one of OUT, s3://DEST, --stack NAME or --outputs FILE (got {' and '.join(given) or 'none'})"
        raise UsageError(msg)
    if args.out and not args.out.startswith("s3://"):
        return Path(args.out), local_figures(Path(args.out), args.source_bucket, up_to=args.run_date)
    if args.out:
        bucket = args.out.removeprefix("s3://").strip("/")
        if not bucket or "/" in bucket:
            msg = f"{args.out!r} is not a bucket: give s3://DEST, the stack's destination bucket"
            raise UsageError(msg)
    else:
        bucket = str(
            read_outputs(args.outputs, stack=args.stack, instead="s3://DEST").get("destinationBucket") or ""
        )
        if not bucket:
            msg = "the stack outputs have no destinationBucket: is it this project's stack?"
            raise UsageError(msg)
    import boto3

    from batch_jobs.report_figures import NoRunsError, store_figures
    from batch_jobs.storage import S3Storage
    from pipeline.local.run_local import progress_printer

    store = S3Storage(bucket, boto3.Session().client("s3"))
    try:
        return f"s3://{bucket}", store_figures(
            store, args.source_bucket, up_to=args.run_date, progress=progress_printer()
        )
    except NoRunsError as err:
        raise UsageError(str(err)) from err


def _prices(args: argparse.Namespace) -> Prices | str:
    """The price table asked for; a Region given by default that has none leaves the costs out."""
    try:
        if args.prices:
            return load_prices(args.prices)
        if args.region:
            return prices_for(args.region)
        return prices_for(default_region())
    except PricesError as err:
        if args.prices or args.region:
            raise UsageError(str(err)) from err
        return f"{err}"


def run(args: argparse.Namespace) -> int:
    from batch_jobs.report_page import render

    prices = _prices(args)
    if args.target is None and (args.stack or args.outputs or (args.out or "").startswith("s3://")):
        msg = "give --out REPORT.html: where to write the report of the stack's bucket"
        raise UsageError(msg)
    where, figures = _figures(args)
    target = args.target
    if target is None and isinstance(where, Path):
        if figures.latest is None:
            msg = f"no complete run of {args.source_bucket} in {where}: give --out REPORT.html for a report that says so"
            raise UsageError(msg)
        target = where / RunLayout(args.source_bucket, figures.latest.run_date).storage_report_key
    if target is None:  # not reached: s3:// forms were given --out above
        msg = "give --out REPORT.html"
        raise UsageError(msg)
    if target.is_dir():
        msg = f"--out {target} is a folder; give the path of the .html file to write"
        raise UsageError(msg)
    page = render(figures, prices, source=f"{where} (source bucket {args.source_bucket})")
    staged = target.with_name(f".{target.name}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staged.write_text(page, encoding="utf-8")
        staged.replace(target)  # a reader never sees half a page
    except OSError as err:  # a full disk, a read-only folder, a file where a folder should be
        with contextlib.suppress(OSError):
            staged.unlink(missing_ok=True)
        msg = f"--out {target}: cannot write the report: {err.strerror or err}"
        raise PipelineError(msg) from err
    print(f"report: {target} ({len(page.encode()) / 1024:,.0f} KiB); open it in a browser")
    return EXIT_OK
