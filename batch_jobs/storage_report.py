"""Finalize's last step: the storage report of the runs up to this one, as one HTML page.

Written after the ``_COMPLETE`` marker, so a report never stands for a run that is not whole, at
``reports/source_bucket=B/run_date=D/report.html`` with the content type ``text/html`` (the S3
console's Open shows it as a page); then ``reports/source_bucket=B/latest.html``, the key the
stack outputs, is the newest complete run's page: this one's, or, when a newer run completed
first (a backfill, a rerun of an older day), that run's page written again to show this one too.
Two finalizes ending in the same second may still leave ``latest.html`` one run behind until the
next run. The page is the one
``python -m pipeline report`` writes (``batch_jobs/report_page.py``), from the same tables.

The run is complete whatever happens here: a report that cannot be written is an error in the log
(with the command that writes it again), never a failed run, and nothing of the run is touched.
"""

from __future__ import annotations

from batch_jobs.report_figures import store_figures
from batch_jobs.run import newer_complete_run
from batch_jobs.storage import Storage
from inventory_contract.jsonlog import JsonLogger
from inventory_contract.layout import RunLayout
from inventory_contract.prices import Prices, PricesError, default_region, prices_for

CONTENT_TYPE = "text/html; charset=utf-8"
CHANGES_MAX_ROWS = 25_000_000
"""Rows of the last two runs above which the report leaves out their changes: comparing them holds
the runs' current objects in memory, about 270 bytes a row (bench/results-changes.md: 634 MiB at
2 million rows, 1,151 MiB at 4 million), so 25 million rows take about 6.5 GiB, within finalize's
8 GiB (components/job_definitions.py). Past it, the page says so and names the command."""


def write_storage_report(store: Storage, layout: RunLayout, *, where: str, log: JsonLogger) -> str | None:
    """The storage report of ``layout``'s run, from the runs in ``store`` (``where`` names it on the
    page); its key, or None when it could not be written (logged)."""
    source_bucket, day = layout.source_bucket, layout.run_date
    again = f"python -m pipeline report {where} --source-bucket {source_bucket} --run-date {day}"
    if where.startswith("s3://"):  # then put it where finalize would have
        again += (
            f" --out report.html && aws s3 cp report.html {where}/{layout.storage_report_key} "
            f"--content-type '{CONTENT_TYPE}'"
        )
    try:
        from batch_jobs.report_page import render  # matplotlib loads for this step only
    except ImportError as err:  # a local install without the charts' library
        log.warning("storage report not written: its charting library is missing", error=str(err))
        return None
    try:
        log.info("finalize step", step="writing the storage report")

        def page_up_to(day: str) -> bytes:
            figures = store_figures(
                store,
                source_bucket,
                up_to=day,
                changes_max_rows=CHANGES_MAX_ROWS,
                progress=lambda step: log.info("finalize step", step=step),
            )
            return render(figures, _prices(), source=f"{where} (source bucket {source_bucket})").encode()

        page = page_up_to(day)
        store.write(layout.storage_report_key, page, CONTENT_TYPE)
        newest = newer_complete_run(store, layout)
        if newest is not None:  # it completed first (a backfill, a rerun): its page shows this run too
            log.info("finalize step", step=f"writing the storage report of {newest} again, the newest run")
            page = page_up_to(newest)
            store.write(RunLayout(source_bucket, newest).storage_report_key, page, CONTENT_TYPE)
        store.write(layout.latest_storage_report_key, page, CONTENT_TYPE)
    except Exception as err:  # the run is complete: say what failed, and how to write it again
        log.error(
            "storage report not written; the run is complete",
            error=str(err),
            error_type=type(err).__name__,
            write_it_with=again,
        )
        return None
    log.info("storage report written", key=layout.storage_report_key, bytes=len(page), newest=newest or day)
    return layout.storage_report_key


def _prices() -> Prices | str:
    region = default_region()
    try:
        return prices_for(region)
    except PricesError:
        return (
            f"no built-in S3 prices for {region}; `python -m pipeline report --prices FILE` writes the "
            "page with that Region's prices"
        )
