"""The report's charts: bar charts drawn by matplotlib as SVG, inlined in the page.

Every chart carries its data beside it (``data-chart``: labels, series and values, as JSON) and
every bar segment an id, ``CHART-S-L`` (series S, label L), so a reader (or a test, in a browser)
finds each value and the bar drawn for it. Text stays text in the SVG (``svg.fonttype: none``):
the page is smaller, searchable and sharp when printed.
"""

from __future__ import annotations

import html
import io
import json
import warnings
from collections.abc import Callable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display: draw to files only

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

PALETTE = ("#1b6ca8", "#f29e4c", "#2a9d8f", "#e15759", "#8c6bb1", "#76b041", "#b07aa1", "#9c755f", "#bab0ac")
"""Colour-blind-safe enough and distinct in print; series beyond it repeat the cycle."""
CLASS_COLOURS = {
    "STANDARD": "#1b6ca8",
    "INTELLIGENT_TIERING": "#f29e4c",
    "STANDARD_IA": "#2a9d8f",
    "ONEZONE_IA": "#76b041",
    "GLACIER_IR": "#8c6bb1",
    "GLACIER": "#e15759",
    "DEEP_ARCHIVE": "#5b3a29",
    "EXPRESS_ONEZONE": "#b07aa1",
    "REDUCED_REDUNDANCY": "#bab0ac",
}
"""A storage class has one colour on every chart of the page."""
plt.rcParams.update(
    {
        "svg.fonttype": "none",
        "text.parse_math": False,  # a key with two $ is a key, not a formula
        "svg.hashsalt": "s3-inventory-report",  # the same ids in every report: a reproducible file
        "font.family": "sans-serif",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)


def bar_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[int | float]],
    *,
    unit: Callable[[float], str],
    horizontal: bool = False,
) -> str:
    """A (stacked, when several series) bar chart as an HTML ``<figure>`` holding its SVG and data."""
    rows = max(len(labels), 1)
    size = (10, 0.32 * rows + 0.9) if horizontal else (10, 3.2)
    figure, axes = plt.subplots(figsize=size, layout="constrained")
    base = [0.0] * len(labels)
    taken = {CLASS_COLOURS[n] for n in series if n in CLASS_COLOURS}  # a class's colour is its own
    others = [c for c in PALETTE if c not in taken] or list(PALETTE)
    for s, (name, values) in enumerate(series.items()):
        color = CLASS_COLOURS.get(name) or others[s % len(others)]
        if horizontal:
            bars = axes.barh(range(len(labels)), values, left=base, color=color, label=name, height=0.7)
        else:
            bars = axes.bar(range(len(labels)), values, bottom=base, color=color, label=name, width=0.7)
        for i, bar in enumerate(bars):
            bar.set_gid(f"{chart_id}-{s}-{i}")
        base = [b + float(v) for b, v in zip(base, values, strict=True)]
    ticks = [_short(label) for label in labels]
    if horizontal:
        axes.set_yticks(range(len(labels)), ticks)
        axes.invert_yaxis()  # the largest first, at the top
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: unit(value)))
    else:
        axes.set_xticks(range(len(labels)), ticks, rotation=0 if len(labels) <= 8 else 45, ha="center")
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: unit(value)))
    if len(series) > 1:  # below the bars, never over them
        figure.legend(frameon=False, fontsize=8, ncols=min(len(series), 6), loc="outside lower center")
    axes.grid(axis="x" if horizontal else "y", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    svg = io.StringIO()
    with warnings.catch_warnings():
        # text stays text in the SVG: the browser draws a key's CJK or emoji with a font that has
        # them; matplotlib's own font only measures it
        warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
        figure.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(figure)
    drawing = svg.getvalue()
    drawing = drawing[drawing.index("<svg") :]  # the XML prolog and doctype have no place inline
    data = {"labels": list(labels), "series": {k: [_number(v) for v in vs] for k, vs in series.items()}}
    return (
        f'<figure class="chart" id="{chart_id}" data-chart="{html.escape(json.dumps(data))}">'
        f"<figcaption>{html.escape(title)}</figcaption>{drawing}</figure>"
    )


def _short(label: str, most: int = 40) -> str:
    """A label that fits beside the bars: a long one keeps its start and its end (prefixes that
    share a long start differ at the end); the table under the chart has it whole."""
    printable = "".join(c if c.isprintable() else "?" for c in label)
    if len(printable) <= most:
        return printable
    head = (most - 1) // 2
    return printable[:head] + "…" + printable[-(most - 1 - head) :]


def _number(value: int | float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)
