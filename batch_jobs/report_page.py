"""The storage report as one self-contained HTML page: styles inline, charts as inline SVG, no
script and nothing fetched when it is opened; readable on a laptop screen and printable.

Every figure is an element with its raw value in ``data-value`` (bytes, objects, USD), beside the
text a person reads, so the page can be checked against the tables it came from.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from batch_jobs.report_charts import bar_chart
from batch_jobs.report_figures import ReportFigures, RunFigures, prefix_rows
from batch_jobs.units import human
from inventory_contract.prices import GIB, INTELLIGENT_TIERING, Prices
from inventory_contract.rollups import AGE_BANDS, CURRENT, DELETE_MARKER, NONCURRENT

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2430;margin:0 auto;
max-width:1000px;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d8dde6;padding-bottom:4px}
h3{font-size:14px;margin:16px 0 6px}.muted{color:#5b6576}
dl.headline{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;margin:16px 0}
dl.headline div{background:#f3f6fa;border-radius:6px;padding:10px 12px}dl.headline dt{font-size:12px;color:#5b6576}
dl.headline dd{margin:2px 0 0;font-size:19px;font-weight:600}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:13px}
th,td{padding:4px 8px;border-bottom:1px solid #e6e9ef;text-align:right;overflow-wrap:anywhere}th:first-child,td:first-child{text-align:left}
th{background:#f3f6fa;font-weight:600}figure.chart{margin:8px 0}figure.chart svg{max-width:100%;height:auto}
figcaption{font-size:13px;font-weight:600;margin-bottom:2px}.up{color:#b23b3b}.down{color:#2a7d4f}
.note{background:#fff8e6;border-left:3px solid #f2b84c;padding:6px 10px;margin:8px 0}
@media print{body{max-width:none;padding:0;font-size:11px}h2{break-after:avoid}figure,table,dl{break-inside:avoid}}
"""


def render(figures: ReportFigures, prices: Prices | str, *, source: str) -> str:
    """The page; ``prices`` is the price table, or why there is none (the costs are left out)."""
    latest = figures.latest
    title = f"Storage report: {figures.bucket}"
    body = [f"<h1>{html.escape(title)}</h1>"]
    if latest is None:
        body.append(
            '<p class="note" id="no-runs">No complete run of this bucket yet: nothing to report. '
            + _left_out(figures)
            + "</p>"
        )
        return _page(title, body, source, prices)
    body.append(
        f'<p class="muted">Run of <b>{html.escape(latest.run_date)}</b> ({html.escape(str(latest.report.get("inventory_kind")))}),'
        + (
            f' {len(figures.runs) + figures.earlier_runs} complete runs kept; the last <span id="runs-shown">'
            f"{len(figures.runs)}</span> shown, from {html.escape(figures.runs[0].run_date)} (the rollup tables hold every run)"
            if figures.earlier_runs
            else f" {len(figures.runs)} complete run(s) kept, from {html.escape(figures.runs[0].run_date)}"
        )
        + f". {_left_out(figures)}</p>"
    )
    body += _headline(latest, figures.previous)
    body += _classes_over_time(figures.runs)
    body += _prefixes(latest, figures.previous)
    body += _ages(latest)
    body += _changes(figures)
    body += _costs(latest, prices) if isinstance(prices, Prices) else _no_costs(prices)
    return _page(title, body, source, prices)


def _page(title: str, body: list[str], source: str, prices: Prices | str) -> str:
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    priced = (
        f"Prices: {html.escape(prices.region)}, {html.escape(prices.source)} (as of {html.escape(prices.as_of)})."
        if isinstance(prices, Prices)
        else "No prices."
    )
    footer = (
        f'<p class="muted" id="provenance">Made {made} by s3-inventory-pipeline from {html.escape(source)}. '
        f"{priced}</p>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        + "\n".join(body)
        + footer
        + "</body></html>\n"
    )


def _left_out(figures: ReportFigures) -> str:
    if not figures.not_complete:
        return ""
    return (
        "Runs left out (not complete): " + "; ".join(html.escape(why) for why in figures.not_complete) + "."
    )


def _figure(label: str, value: int | float, text: str, figure_id: str) -> str:
    return f'<div><dt>{html.escape(label)}</dt><dd id="{figure_id}" data-value="{value}">{html.escape(text)}</dd></div>'


def _delta(now: int, before: int | None, unit: str) -> str:
    if before is None:
        return "first run"
    change = now - before
    sign = "+" if change >= 0 else "-"
    shown = human(abs(change)) if unit == "bytes" else f"{abs(change):,}"
    return f"{sign}{shown} since the previous run"


def _headline(run: RunFigures, previous: RunFigures | None) -> list[str]:
    kinds = run.by_version_kind()
    stored = sum(b for kind, (_, b) in kinds.items() if kind != DELETE_MARKER)
    objects = kinds.get(CURRENT, (0, 0))[0]
    before = previous.by_version_kind() if previous else None
    stored_before = (
        sum(b for k, (_, b) in before.items() if k != DELETE_MARKER) if before is not None else None
    )
    objects_before = before.get(CURRENT, (0, 0))[0] if before is not None else None
    report = run.report
    reconciled = (
        f"rows in {report['rows_in']:,} = rows out {report['rows_out']:,}"
        if report.get("status") == "complete"
        else f"{report.get('status')}: {report.get('problems')}"
    )
    unsized = stored == 0 and (objects or kinds.get(NONCURRENT, (0, 0))[0])
    return [
        *(
            [
                '<p class="note" id="no-sizes">Every stored version counts 0 bytes: they are all empty, or '
                "the inventory does not deliver the Size field (add it to the inventory configuration for "
                "the byte figures and costs below).</p>"
            ]
            if unsized
            else []
        ),
        '<dl class="headline">',
        _figure("current objects", objects, f"{objects:,}", "headline-objects"),
        _figure("bytes stored (all versions)", stored, human(stored), "headline-bytes"),
        _figure(
            "noncurrent versions",
            kinds.get(NONCURRENT, (0, 0))[0],
            f"{kinds.get(NONCURRENT, (0, 0))[0]:,}",
            "headline-noncurrent",
        ),
        _figure(
            "delete markers",
            kinds.get(DELETE_MARKER, (0, 0))[0],
            f"{kinds.get(DELETE_MARKER, (0, 0))[0]:,}",
            "headline-delete-markers",
        ),
        "</dl>",
        f'<p>Change: <span id="headline-bytes-change" data-value="{stored - stored_before if stored_before is not None else ""}">'
        f"{_delta(stored, stored_before, 'bytes')}</span> in bytes, "
        f'<span id="headline-objects-change" data-value="{objects - objects_before if objects_before is not None else ""}">'
        f"{_delta(objects, objects_before, 'objects')}</span> in current objects. "
        f'Reconciliation: <span id="headline-reconciliation">{html.escape(reconciled)}</span>.</p>',
    ]


def _classes_over_time(runs: list[RunFigures]) -> list[str]:
    dates = [r.run_date for r in runs]
    classes = sorted(
        {c for r in runs for c in r.stored_by_class()},
        key=lambda c: -runs[-1].stored_by_class().get(c, (0, 0))[1],
    )
    size = {c: [r.stored_by_class().get(c, (0, 0))[1] for r in runs] for c in classes}
    count = {c: [r.stored_by_class().get(c, (0, 0))[0] for r in runs] for c in classes}
    return [
        "<h2>Storage by class, every run kept</h2>",
        bar_chart(
            "classes-bytes",
            "Bytes stored by storage class (current and noncurrent versions)",
            dates,
            size,
            unit=_bytes_axis,
        ),
        bar_chart("classes-objects", "Objects (versions) by storage class", dates, count, unit=_count_axis),
        _table(  # a row a run: the table grows down with the runs kept, never off the page
            ["run date", *classes],
            [[d, *(human(size[c][i]) for c in classes)] for i, d in enumerate(dates)],
            values=[[size[c][i] for c in classes] for i in range(len(dates))],
            table_id="classes-by-run",
        ),
    ]


def _prefixes(run: RunFigures, previous: RunFigures | None) -> list[str]:
    out = [
        "<h2>Where the bytes are</h2>",
        '<p class="muted">Stored versions by prefix at each depth of the rollup; every depth adds up to the bucket.</p>',
    ]
    for depth in run.depths:
        rows = prefix_rows(run, previous, depth)
        drawn = [r for r in rows if r.kind != "gone"]
        out.append(
            bar_chart(
                f"prefixes-depth-{depth}",
                f"Depth {depth}: the largest prefixes",
                [r.label for r in drawn],
                {"bytes": [r.bytes for r in drawn]},
                unit=_bytes_axis,
                horizontal=True,
            )
        )
        out.append(
            _table(
                ["prefix", "bytes", "since the previous run"],
                [
                    [
                        r.label,
                        human(r.bytes),
                        "new" if r.kind == "new" else "" if r.change is None else _signed(r.change),
                    ]
                    for r in rows
                ],
                values=[[r.bytes, "" if r.change is None else r.change] for r in rows],
                table_id=f"prefixes-{depth}",
            )
        )
    return out


def _signed(change: int) -> str:
    return ("+" if change >= 0 else "-") + human(abs(change))


def _ages(run: RunFigures) -> list[str]:
    bands = [label for _, label in AGE_BANDS if any(r["age_band"] == label for r in run.rollups["age"])]
    classes = sorted({r["storage_class"] or "(none)" for r in run.rollups["age"]})
    series = {
        c: [
            sum(
                r["bytes"] or 0
                for r in run.rollups["age"]
                if r["age_band"] == b and (r["storage_class"] or "(none)") == c
            )
            for b in bands
        ]
        for c in classes
    }
    return [
        "<h2>Age by storage class</h2>",
        '<p class="muted">Stored versions by time since last modified, on the run date: what a lifecycle rule would move.</p>',
        bar_chart("ages", "Bytes by age band and storage class", bands, series, unit=_bytes_axis),
    ]


def _changes(figures: ReportFigures) -> list[str]:
    out = ["<h2>Changes since the previous run</h2>"]
    if figures.changes_left_out:
        out.append(
            f'<p class="note" id="changes-left-out">Changes and duplicate candidates not computed: '
            f"{html.escape(figures.changes_left_out)}.</p>"
        )
        return out
    if figures.changes is None:
        out.append(
            '<p class="note" id="no-changes">One complete run only: no changes to show until the next run.</p>'
        )
    else:
        kinds = list(figures.changes)
        out.append(
            f'<p class="muted">{html.escape(figures.previous.run_date if figures.previous else "")} to '
            f"{html.escape(figures.latest.run_date if figures.latest else '')}, "
            "current objects only (the rules of the changes command).</p>"
        )
        out.append(
            bar_chart(
                "changes-objects",
                "Objects changed, by kind",
                kinds,
                {"objects": [t.objects for t in figures.changes.values()]},
                unit=_count_axis,
                horizontal=True,
            )
        )
        out.append(
            _table(
                ["change", "objects", "bytes before", "bytes after"],
                [
                    [k, f"{t.objects:,}", human(t.bytes_before), human(t.bytes_after)]
                    for k, t in figures.changes.items()
                ],
                values=[[t.objects, t.bytes_before, t.bytes_after] for t in figures.changes.values()],
                table_id="changes",
            )
        )
    if figures.candidates is not None:
        c = figures.candidates
        out.append(
            f"<p>Duplicate candidates (same size and single-part ETag under more than one key): {c.groups:,} group(s) of "
            f'{c.objects:,} objects; <b id="reclaimable" data-value="{c.reclaimable_bytes}">{human(c.reclaimable_bytes)}</b> reclaimable '
            "by keeping one copy of each.</p>"
        )
    return out


def _costs(run: RunFigures, prices: Prices) -> list[str]:
    by_class = run.stored_by_class()
    tiers = run.tiering()
    priced = {c: prices.monthly(c, b) for c, (_, b) in by_class.items()}
    tier_costs = {
        t: (b / GIB * p if (p := prices.tier_price(t)) is not None else None) for t, b in tiers.items()
    }
    if INTELLIGENT_TIERING in priced and tiers:  # by access tier, where the inventory has them
        costs = list(tier_costs.values())
        priced[INTELLIGENT_TIERING] = None if None in costs else sum(c for c in costs if c is not None)
    known = {c: v for c, v in priced.items() if v is not None}
    total = sum(known.values())
    stored = sum(b for _, b in by_class.values())
    per_byte = total / stored if stored else 0.0  # over every byte, so the prefixes add up to the total
    rows = [
        [c, human(by_class[c][1]), _usd(v) if v is not None else "no price"]
        for c, v in sorted(priced.items(), key=lambda i: -(i[1] or 0))
    ]
    values = [
        [by_class[c][1], v if v is not None else ""]
        for c, v in sorted(priced.items(), key=lambda i: -(i[1] or 0))
    ]
    top = [r for r in prefix_rows(run, None, 1) if r.kind != "gone"]
    labels, sizes = [r.label for r in top], [r.bytes for r in top]
    notes = [
        "Storage only, first price tier; Intelligent-Tiering's monitoring and automation charge (per "
        "object over 128 KB) and requests are not included."
    ]
    unpriced = sorted(t for t in tiers if t and t not in prices.tiering)
    if unpriced and prices.per_gb_month.get(INTELLIGENT_TIERING) is not None:
        notes.append(
            f"No price for the access tier(s) {', '.join(unpriced)} in these prices: their bytes are priced at "
            "Intelligent-Tiering's class price, as if in Frequent Access."
        )
    untiered = tiers.get(None, 0)
    if untiered:
        notes.append(
            f"{human(untiered)} of Intelligent-Tiering have no access tier in the inventory (the "
            "IntelligentTieringAccessTier field is not delivered, or the run predates the split): "
            "priced at the Frequent Access tier's price, an upper bound."
        )
    if len(known) < len(priced):
        notes.append(
            "Classes without a price are left out of the total: "
            + ", ".join(c for c, v in priced.items() if v is None)
            + "."
        )
    tier_rows = sorted(tiers.items(), key=lambda i: -i[1])
    tiering = (
        [
            "<h3>Intelligent-Tiering by access tier</h3>",
            _table(
                ["access tier", "bytes", "USD per GB-month", "USD a month"],
                [
                    [
                        t or "(not in the inventory)",
                        human(b),
                        f"{prices.tier_price(t)}" if prices.tier_price(t) is not None else "no price",
                        _usd(tier_costs[t] or 0) if tier_costs[t] is not None else "no price",
                    ]
                    for t, b in tier_rows
                ],
                values=[[b, prices.tier_price(t) or "", tier_costs[t] or ""] for t, b in tier_rows],
                table_id="cost-by-tier",
            ),
        ]
        if tiers
        else []
    )
    return [
        "<h2>Estimated monthly storage cost</h2>",
        f'<p>About <b id="cost-total" data-value="{total}">{_usd(total)}</b> a month in {html.escape(prices.region)}.</p>',
        bar_chart(
            "cost-classes",
            "USD a month by storage class",
            [r[0] for r in rows if r[2] != "no price"],
            {"USD": [known[r[0]] for r in rows if r[2] != "no price"]},
            unit=_usd_axis,
            horizontal=True,
        ),
        _table(["storage class", "bytes", "USD a month"], rows, values=values, table_id="cost-by-class"),
        *tiering,
        "<h3>By top-level prefix</h3>",
        "<p class=\"muted\">A prefix's bytes at the bucket's average price a byte (the prefix rollup does not split by class).</p>",
        _table(
            ["prefix", "bytes", "USD a month"],
            [[label, human(size), _usd(size * per_byte)] for label, size in zip(labels, sizes, strict=True)],
            values=[[size, size * per_byte] for size in sizes],
            table_id="cost-by-prefix",
        ),
        *(f'<p class="muted">{html.escape(n)}</p>' for n in notes),
    ]


def _no_costs(why: str) -> list[str]:
    return [
        "<h2>Estimated monthly storage cost</h2>",
        f'<p class="note" id="no-costs">Not estimated: {html.escape(why)}.</p>',
    ]


def _table(
    header: list[str],
    rows: list[list[str]],
    *,
    values: list[list[Any]] | None = None,
    table_id: str | None = None,
) -> str:
    head = "".join(f"<th>{_text(h)}</th>" for h in header)
    lines = []
    for i, row in enumerate(rows):
        raw = values[i] if values else []
        cells = [f"<td>{_text(str(row[0]))}</td>"]
        for j, cell in enumerate(row[1:]):
            data = f' data-value="{raw[j]}"' if j < len(raw) else ""
            cells.append(f"<td{data}>{_text(str(cell))}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    ident = f' id="{table_id}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def _text(text: str) -> str:
    """A cell's text, escaped, its control characters (S3 keys may hold them) shown as escapes."""
    return html.escape("".join(c if c.isprintable() else repr(c)[1:-1] for c in text))


def _usd(value: float) -> str:
    return f"${value:,.2f}"


def _bytes_axis(value: float) -> str:
    return human(int(value))


def _count_axis(value: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:g}{unit}"
    return f"{value:g}"


def _usd_axis(value: float) -> str:
    return f"${value:,.0f}" if abs(value) >= 10 else f"${value:,.2f}"
