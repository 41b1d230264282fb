"""``python -m pipeline report OUT --source-bucket B``: the storage report of a local output folder."""

from __future__ import annotations

import argparse
import os

from inventory_contract.layout import RunLayout
from inventory_contract.prices import PRICE_TABLE, PricesError, load_prices, prices_for
from pipeline.arguments import add_command, path
from pipeline.errors import EXIT_OK, UsageError


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands,
        "report",
        summary="a storage report to open in a browser (one HTML file)",
        description="""\\
Write one self-contained HTML page about a source bucket's runs in OUT (the folder run-local, demo
or snapshot wrote): objects and bytes of the latest complete run and their change since the
previous one, storage by class over every run kept, the largest prefixes at each depth of the
rollup (the rest summed), age bands by storage class, the changes between the last two runs and
the duplicate candidates' reclaimable bytes, and an estimated monthly storage cost by class and
by prefix. The page needs no network: open it in any browser, or print it.""",
        examples=[
            "report demo-output --source-bucket demo-source-bucket",
            "report out --source-bucket my-bucket --out report.html --region us-west-2",
        ],
    )
    parser.add_argument("out", metavar="OUT", type=path, help="the folder that holds the runs")
    parser.add_argument("--source-bucket", required=True, help="the inventoried bucket")
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
        default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        help=f"the bucket's Region, for its prices ({', '.join(sorted(PRICE_TABLE))}; default: $AWS_REGION, "
        "else us-east-1)",
    )
    prices.add_argument(
        "--prices", type=path, metavar="FILE", help="a JSON file of prices instead (see README)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.report.figures import local_figures
    from pipeline.report.page import render

    try:
        prices = load_prices(args.prices) if args.prices else prices_for(args.region)
    except PricesError as err:
        raise UsageError(str(err)) from err
    figures = local_figures(args.out, args.source_bucket)
    target = args.target
    if target is None:
        if figures.latest is None:
            msg = f"no complete run of {args.source_bucket} in {args.out}: give --out REPORT.html for a report that says so"
            raise UsageError(msg)
        target = args.out / RunLayout(args.source_bucket, figures.latest.run_date).storage_report_key
    if target.is_dir():
        msg = f"--out {target} is a folder; give the path of the .html file to write"
        raise UsageError(msg)
    page = render(figures, prices, source=f"{args.out} (source bucket {args.source_bucket})")
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.partial")
    staged.write_text(page, encoding="utf-8")
    staged.replace(target)  # a reader never sees half a page
    print(f"report: {target} ({len(page.encode()) / 1024:,.0f} KiB); open it in a browser")
    return EXIT_OK
