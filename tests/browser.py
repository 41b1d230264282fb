"""A real browser for tests: Debian's Chromium, driven by Playwright, with the network cut off.

A machine without Chromium skips these tests with one line saying how to get it; CI (``CI`` set,
as ``.ci/run`` does) never skips them: it installs the package.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@dataclass
class Opened:
    page: Any  # playwright.sync_api.Page
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every request other than the page itself
    failed: list[str] = field(default_factory=list)
    load_ms: float = 0.0


def chromium_or_skip() -> str:
    if Path(CHROMIUM).is_file() or shutil.which(CHROMIUM):
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"no browser at {CHROMIUM} in CI: .ci/run installs Debian's chromium package")
    pytest.skip(f"no browser at {CHROMIUM}: `sudo apt-get install chromium` (Debian, Ubuntu) or set CHROMIUM")
    raise AssertionError  # unreachable: skip raises


@contextmanager
def offline_page(path: Path, *, width: int = 1280, height: int = 900) -> Iterator[Opened]:
    """``path`` opened in headless Chromium with no network: any request but the file is refused."""
    from playwright.sync_api import sync_playwright

    executable = chromium_or_skip()
    url = path.resolve().as_uri()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": width, "height": height}, offline=True)
            page = context.new_page()
            opened = Opened(page)

            def route(request_route: Any) -> None:
                if request_route.request.url != url:
                    opened.requests.append(request_route.request.url)
                    request_route.abort()
                else:
                    request_route.continue_()

            context.route("**/*", route)
            page.on("console", lambda m: opened.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: opened.console_errors.append(str(e)))
            page.on("requestfailed", lambda r: opened.failed.append(r.url))
            page.goto(url, wait_until="load")
            opened.load_ms = page.evaluate(
                "() => { const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime; }"
            )
            yield opened
        finally:
            browser.close()


def charts(page: Any) -> dict[str, dict[str, Any]]:
    """Every chart of the page: its data (labels, series) and, per bar segment drawn, its extent
    in pixels along the value axis: ``{id: {"labels", "series", "drawn": {(s, l): px}, "horizontal"}}``."""
    found: dict[str, dict[str, Any]] = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('figure.chart')].map(f => {
            const data = JSON.parse(f.dataset.chart);
            const drawn = {};
            let horizontal = null;
            Object.keys(data.series).forEach((name, s) => data.labels.forEach((_, l) => {
                const bar = f.querySelector(`[id="${f.id}-${s}-${l}"]`);
                if (!bar) return;
                const box = bar.getBBox();
                drawn[`${s}-${l}`] = [box.width, box.height];
            }));
            return [f.id, {labels: data.labels, series: data.series, drawn}];
        }))"""
    )
    return found


def figure_value(page: Any, element_id: str) -> str:
    value: str = page.get_attribute(f"#{element_id}", "data-value")
    return value
